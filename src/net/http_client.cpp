#include "net/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "common/log.h"

namespace bf {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      throw HttpTransportError(std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
    }
  });
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return std::string(s.substr(b, e - b));
}

// The URL without userinfo and query, for error messages (a query may carry tokens).
std::string redact_url(const std::string& url) {
  std::string out = url;
  if (auto q = out.find('?'); q != std::string::npos) out.erase(q);
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    auto slash = out.find('/', scheme + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      out.erase(scheme + 3, at + 1 - (scheme + 3));
    }
  }
  return out;
}

bool method_has_no_body(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "DELETE" || method == "OPTIONS";
}

// Source of the request body, for curl's read and seek callbacks.
struct BodySource {
  // memory
  std::string_view data;
  // file region
  int fd = -1;
  uint64_t file_offset = 0;
  // common
  uint64_t length = 0;
  uint64_t pos = 0;
  int read_errno = 0;
};

size_t read_cb(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* src = static_cast<BodySource*>(userdata);
  size_t want = size * nitems;
  uint64_t left = src->length - src->pos;
  size_t n = static_cast<size_t>(std::min<uint64_t>(want, left));
  if (n == 0) return 0;
  if (src->fd < 0) {
    std::memcpy(buffer, src->data.data() + src->pos, n);
    src->pos += n;
    return n;
  }
  for (;;) {
    ssize_t got = ::pread(src->fd, buffer, n, static_cast<off_t>(src->file_offset + src->pos));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {  // error, or the file shrank under us
      src->read_errno = got < 0 ? errno : EIO;
      return CURL_READFUNC_ABORT;
    }
    src->pos += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

int seek_cb(void* userdata, curl_off_t offset, int origin) {
  auto* src = static_cast<BodySource*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > src->length) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  src->pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* body = static_cast<std::string*>(userdata);
  body->append(ptr, size * nmemb);
  return size * nmemb;
}

size_t header_cb(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* headers = static_cast<Headers*>(userdata);
  std::string_view line(buffer, size * nitems);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response (after 100 Continue or a redirect)
    return line.size();
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();  // blank line ending the block
  std::string name = trim(line.substr(0, colon));
  std::string value = trim(line.substr(colon + 1));
  if (name.empty()) return line.size();
  auto it = headers->find(name);
  if (it == headers->end()) {
    headers->emplace(std::move(name), std::move(value));
  } else {
    it->second += ", " + value;  // repeated header: combined as RFC 9110 allows
  }
  return line.size();
}

struct SlistGuard {
  curl_slist* list = nullptr;
  ~SlistGuard() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (!next) throw std::bad_alloc();
    list = next;
  }
};

struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

struct HttpClient::Impl {
  CURL* curl = nullptr;
  std::mt19937_64 rng{std::random_device{}()};
};

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  global_init();
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw HttpTransportError("curl_easy_init failed");
}

HttpClient::~HttpClient() {
  if (impl_ && impl_->curl) curl_easy_cleanup(impl_->curl);
}

namespace {

HttpResult perform(CURL* curl, const HttpClientOptions& opt, const std::string& method,
                   const std::string& url, const Headers& headers, BodySource& src) {
  curl_easy_reset(curl);  // keeps live connections, DNS and TLS session caches
  HttpResult result;
  char errbuf[CURL_ERROR_SIZE] = {0};
  SlistGuard hdrs;

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // the caller's path is final (SigV4 signs it)
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(opt.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (!opt.user_agent.empty()) curl_easy_setopt(curl, CURLOPT_USERAGENT, opt.user_agent.c_str());
  if (opt.cancel) {
    // libcurl calls this about once a second even on an idle transfer; non-zero aborts.
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, opt.cancel.get());
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
                     +[](void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                       return static_cast<std::atomic<bool>*>(flag)->load() ? 1 : 0;
                     });
  }
  if (!opt.verify_tls) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!opt.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, opt.ca_file.c_str());
  if (!opt.username.empty() || !opt.password.empty()) {
    curl_easy_setopt(curl, CURLOPT_USERNAME, opt.username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, opt.password.c_str());
  }
  if (!opt.aws_sigv4.empty()) curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, opt.aws_sigv4.c_str());

  const bool upload = src.length > 0 || !method_has_no_body(method);
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !upload) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    if (upload) {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(src.length));
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt(curl, CURLOPT_READDATA, &src);
      curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, seek_cb);
      curl_easy_setopt(curl, CURLOPT_SEEKDATA, &src);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  bool has_expect = false;
  for (const auto& [name, value] : headers) {
    if (name.empty()) continue;
    if (strcasecmp(name.c_str(), "Expect") == 0) has_expect = true;
    // "Name:" removes a header curl would add; "Name;" sends it empty.
    hdrs.add(value.empty() ? name + ";" : name + ": " + value);
  }
  // Small bodies go without the 100-continue round trip; large ones keep it so a
  // server can refuse (auth, size) before the body is sent.
  if (!has_expect && upload && src.length < (1u << 20)) hdrs.add("Expect:");
  if (hdrs.list) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs.list);

  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);

  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    std::string msg = method + " " + redact_url(url) + ": " + curl_easy_strerror(rc);
    if (errbuf[0]) msg += std::string(" (") + errbuf + ")";
    if (src.read_errno) msg += std::string(": reading request body: ") + std::strerror(src.read_errno);
    throw HttpTransportError(msg);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

BodySource open_body(const HttpBody& body, FdGuard& fd) {
  BodySource src;
  if (const auto* sv = std::get_if<std::string_view>(&body)) {
    src.data = *sv;
    src.length = sv->size();
    return src;
  }
  const auto& region = std::get<FileRegion>(body);
  fd.fd = ::open(region.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0) {
    throw HttpTransportError("cannot open request body " + region.path.string() + ": " +
                             std::strerror(errno));
  }
  src.fd = fd.fd;
  src.file_offset = region.offset;
  src.length = region.length;
  return src;
}

}  // namespace

HttpResult HttpClient::send(const std::string& method, const std::string& url,
                            const Headers& headers, std::string_view body) {
  BodySource src;
  src.data = body;
  src.length = body.size();
  return perform(impl_->curl, options_, method, url, headers, src);
}

HttpResult HttpClient::send_file(const std::string& method, const std::string& url,
                                 const Headers& headers, const FileRegion& body) {
  FdGuard fd;
  BodySource src = open_body(HttpBody(body), fd);
  return perform(impl_->curl, options_, method, url, headers, src);
}

std::optional<std::chrono::milliseconds> HttpClient::retry_after(const HttpResult& result) {
  auto it = result.headers.find("Retry-After");
  if (it == result.headers.end()) return std::nullopt;
  const std::string v = trim(it->second);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (v.size() > 9) return std::chrono::milliseconds(std::chrono::hours(24));
    return std::chrono::milliseconds(std::stoll(v) * 1000);
  }
  time_t when = curl_getdate(v.c_str(), nullptr);  // HTTP date
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return std::chrono::milliseconds(when > now ? (when - now) * 1000LL : 0);
}

std::chrono::milliseconds HttpClient::backoff(int attempt) const {
  const int64_t base = std::max<int64_t>(0, options_.backoff_base.count());
  const int64_t cap = std::max<int64_t>(0, options_.backoff_max.count());
  int64_t ceiling = base;
  for (int i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;  // no overflow: stops at cap
  ceiling = std::min(ceiling, cap);
  if (ceiling <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<int64_t> dist(0, ceiling);
  return std::chrono::milliseconds(dist(impl_->rng));
}

HttpResult HttpClient::execute(const std::string& method, const std::string& url,
                               const Headers& headers, const HttpBody& body,
                               const RetryOn& retry_on) {
  const int max_retries = std::max(0, options_.max_retries);
  for (int attempt = 0;; ++attempt) {
    std::chrono::milliseconds delay{0};
    try {
      FdGuard fd;
      BodySource src = open_body(body, fd);
      HttpResult result = perform(impl_->curl, options_, method, url, headers, src);
      result.attempts = attempt + 1;
      if (attempt >= max_retries || !retry_on || !retry_on(result)) return result;
      if (auto ra = retry_after(result)) {
        delay = std::min(*ra, options_.retry_after_max);
      } else {
        delay = backoff(attempt + 1);
      }
      spdlog::debug("http: {} {} answered {}; retry {}/{} in {}ms", method, redact_url(url),
                    result.status, attempt + 1, max_retries, delay.count());
    } catch (const HttpTransportError& e) {
      if (attempt >= max_retries) {
        if (attempt == 0) throw;
        throw HttpTransportError(std::string(e.what()) + " (after " + std::to_string(attempt + 1) +
                                 " attempts)");
      }
      delay = backoff(attempt + 1);
      spdlog::debug("http: {}; retry {}/{} in {}ms", e.what(), attempt + 1, max_retries, delay.count());
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
  }
}

HttpResult HttpClient::send_with_retry(const std::string& method, const std::string& url,
                                       const Headers& headers, std::string_view body,
                                       std::function<bool(long)> retryable) {
  RetryOn retry_on;
  if (retryable) {
    retry_on = [&retryable](const HttpResult& r) { return retryable(r.status); };
  } else {
    retry_on = [](const HttpResult& r) {
      return r.status == 408 || r.status == 429 || (r.status >= 500 && r.status <= 599);
    };
  }
  return execute(method, url, headers, HttpBody(body), retry_on);
}

}  // namespace bf
