#include "storage/s3_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>
#include <vector>

#include "common/digest.h"
#include "net/http_client.h"

namespace fs = std::filesystem;

namespace bf {

// ---------------------------------------------------------------------------
// URL building and encoding
// ---------------------------------------------------------------------------

std::string s3_uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

namespace {

struct Endpoint {
  std::string scheme;  // "http" | "https"
  std::string host;    // host[:port]
  std::string path;    // "" or "/base" (no trailing slash)
};

Endpoint parse_endpoint(const StorageOptions& o) {
  std::string e = o.endpoint.empty() ? "https://s3." + o.region + ".amazonaws.com" : o.endpoint;
  Endpoint out;
  auto sep = e.find("://");
  if (sep == std::string::npos) {
    out.scheme = "https";
  } else {
    out.scheme = e.substr(0, sep);
    e = e.substr(sep + 3);
  }
  auto slash = e.find('/');
  out.host = e.substr(0, slash);
  if (slash != std::string::npos) {
    out.path = e.substr(slash);
    while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  }
  return out;
}

}  // namespace

std::string s3_request_url(const StorageOptions& options, std::string_view wire_key,
                           std::string_view canonical_query) {
  const Endpoint ep = parse_endpoint(options);
  std::string url = ep.scheme + "://";
  if (options.path_style) {
    url += ep.host + ep.path + "/" + s3_uri_encode(options.bucket, false);
    if (!wire_key.empty()) url += "/" + s3_uri_encode(wire_key, true);
  } else {
    url += options.bucket + "." + ep.host + ep.path + "/" + s3_uri_encode(wire_key, true);
  }
  if (!canonical_query.empty()) {
    url += "?";
    url += canonical_query;
  }
  return url;
}

namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

// SigV4 canonical query: encoded names and values, sorted, '=' always present. curl
// 7.88 signs the query exactly as it appears in the URL, so the URL carries this form.
std::string canonical_query(const Query& q) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(q.size());
  for (const auto& [k, v] : q) enc.emplace_back(s3_uri_encode(k, false), s3_uri_encode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// A minimal, tolerant XML reader for S3 responses: finds elements by name (any
// attributes, optional namespace prefix ignored), returns their text with entities
// decoded. S3 responses are flat enough that this needs no tree.
// ---------------------------------------------------------------------------

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x110000) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string xml_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.substr(i).starts_with("<![CDATA[")) {
      size_t end = s.find("]]>", i + 9);
      if (end == std::string_view::npos) end = s.size();
      out += s.substr(i + 9, end - (i + 9));
      i = end == s.size() ? end : end + 3;
      continue;
    }
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += s[i++];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      unsigned long cp = 0;
      bool ok = true;
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      for (char c : ent.substr(hex ? 2 : 1)) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else { ok = false; break; }
        cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(d);
        if (cp > 0x10FFFF) { ok = false; break; }
      }
      if (!ok) {
        out += s.substr(i, semi - i + 1);
      } else {
        append_utf8(out, cp);
      }
    } else {
      out += s.substr(i, semi - i + 1);  // unknown entity: keep as is
    }
    i = semi + 1;
  }
  return out;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

struct XmlElement {
  std::string_view inner;  // raw content between the tags
  size_t end = 0;          // position after the closing tag
};

// Next element named `name` at or after `from` (matching "<name" or "<ns:name").
std::optional<XmlElement> xml_find(std::string_view xml, std::string_view name, size_t from = 0) {
  size_t pos = from;
  while (true) {
    size_t lt = xml.find('<', pos);
    if (lt == std::string_view::npos) return std::nullopt;
    size_t p = lt + 1;
    if (p < xml.size() && (xml[p] == '/' || xml[p] == '?' || xml[p] == '!')) {
      pos = p;
      continue;
    }
    size_t name_end = p;
    while (name_end < xml.size() && xml[name_end] != '>' && xml[name_end] != '/' &&
           xml[name_end] != ' ' && xml[name_end] != '\t' && xml[name_end] != '\r' &&
           xml[name_end] != '\n') {
      ++name_end;
    }
    std::string_view tag = xml.substr(p, name_end - p);
    if (auto colon = tag.find(':'); colon != std::string_view::npos) tag = tag.substr(colon + 1);
    size_t gt = xml.find('>', name_end);
    if (gt == std::string_view::npos) return std::nullopt;
    if (tag != name) {
      pos = gt + 1;
      continue;
    }
    if (xml[gt - 1] == '/') return XmlElement{{}, gt + 1};  // <Name/>
    // Closing tag: "</Name>" or "</ns:Name>".
    size_t search = gt + 1;
    while (true) {
      size_t close = xml.find("</", search);
      if (close == std::string_view::npos) return std::nullopt;
      size_t cgt = xml.find('>', close);
      if (cgt == std::string_view::npos) return std::nullopt;
      std::string_view ctag = xml.substr(close + 2, cgt - close - 2);
      while (!ctag.empty() && (ctag.back() == ' ' || ctag.back() == '\n' || ctag.back() == '\r' ||
                               ctag.back() == '\t')) {
        ctag.remove_suffix(1);
      }
      if (auto colon = ctag.find(':'); colon != std::string_view::npos) ctag = ctag.substr(colon + 1);
      if (ctag == name) return XmlElement{xml.substr(gt + 1, close - gt - 1), cgt + 1};
      search = cgt + 1;
    }
  }
}

std::optional<std::string> xml_text(std::string_view xml, std::string_view name) {
  auto el = xml_find(xml, name);
  if (!el) return std::nullopt;
  return xml_decode(el->inner);
}

std::vector<std::string_view> xml_all(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (auto el = xml_find(xml, name, pos)) {
    out.push_back(el->inner);
    pos = el->end;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

int64_t to_unix_us(int y, int mo, int d, int h, int mi, int s, int64_t frac_us) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000000 + frac_us;
}

// "2009-10-12T17:50:30.000Z"
int64_t parse_iso8601_us(std::string_view s) {
  int y, mo, d, h, mi, sec;
  std::string str(s);
  int n = 0;
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) return 0;
  int64_t frac = 0;
  if (static_cast<size_t>(n) < str.size() && str[n] == '.') {
    int64_t scale = 100000;
    for (size_t i = n + 1; i < str.size() && std::isdigit(static_cast<unsigned char>(str[i])); ++i) {
      frac += (str[i] - '0') * scale;
      scale /= 10;
    }
  }
  return to_unix_us(y, mo, d, h, mi, sec, frac);
}

// "Wed, 21 Oct 2015 07:28:00 GMT"
int64_t parse_http_date_us(std::string_view s) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string str(s);
  char mon[4] = {0};
  int d, y, h, mi, sec;
  auto comma = str.find(',');
  const char* p = comma == std::string::npos ? str.c_str() : str.c_str() + comma + 1;
  if (std::sscanf(p, " %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &sec) != 6) return 0;
  for (int m = 0; m < 12; ++m) {
    if (std::strcmp(mon, kMonths[m]) == 0) return to_unix_us(y, m + 1, d, h, mi, sec, 0);
  }
  return 0;
}

std::string strip_quotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// ---------------------------------------------------------------------------
// Payload digests: SHA-256 for SigV4, MD5 for Content-MD5 (the server refuses a
// body that changed on the way with BadDigest), one pass over the bytes.
// ---------------------------------------------------------------------------

struct PayloadDigests {
  std::string sha256_hex, md5_base64;
};

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) != 1) throw StorageError("MD5 init failed");
  }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string base64() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    unsigned char out[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(out, md, static_cast<int>(len));
    return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  }

 private:
  EVP_MD_CTX* ctx_;
};

PayloadDigests payload_digests(std::string_view data) {
  Sha256 sha;
  Md5 md5;
  sha.update(data.data(), data.size());
  md5.update(data.data(), data.size());
  return {sha.hex(), md5.base64()};
}

PayloadDigests payload_digests(const FileRegion& region) {
  int fd = ::open(region.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw StorageError("open " + region.path.string() + ": " + std::strerror(errno));
  Sha256 sha;
  Md5 md5;
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  while (done < region.length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), region.length - done));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(region.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      throw StorageError("read " + region.path.string() + ": " +
                         (n < 0 ? std::strerror(err) : "file shorter than expected"));
    }
    sha.update(buf.data(), static_cast<size_t>(n));
    md5.update(buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return {sha.hex(), md5.base64()};
}

bool is_retryable(const HttpResult& r, const std::string& code) {
  if (r.status == 501) return false;  // NotImplemented: will not change
  if (r.status == 408 || r.status == 429 || r.status >= 500) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable";
}

std::string error_code(const HttpResult& r) {
  if (r.body.empty()) return {};
  auto err = xml_find(r.body, "Error");
  if (!err) return {};
  return xml_text(err->inner, "Code").value_or("");
}

}  // namespace

// ---------------------------------------------------------------------------
// S3Store
// ---------------------------------------------------------------------------

struct S3Store::Impl {
  StorageOptions opt;
  std::string key_prefix;  // "" or "prefix/"
  HttpClientOptions http;
  std::mutex mu;
  std::vector<std::unique_ptr<HttpClient>> idle;

  // An HTTP client (with its kept-alive connection) borrowed from the pool.
  class Lease {
   public:
    explicit Lease(Impl& impl) : impl_(impl) {
      {
        std::lock_guard lock(impl_.mu);
        if (!impl_.idle.empty()) {
          client_ = std::move(impl_.idle.back());
          impl_.idle.pop_back();
        }
      }
      if (!client_) client_ = std::make_unique<HttpClient>(impl_.http);
    }
    ~Lease() {
      std::lock_guard lock(impl_.mu);
      if (impl_.idle.size() < 64) impl_.idle.push_back(std::move(client_));
    }
    HttpClient* operator->() { return client_.get(); }

   private:
    Impl& impl_;
    std::unique_ptr<HttpClient> client_;
  };

  std::string wire_key(const std::string& key) const {
    validate_key(key);
    return key_prefix + key;
  }

  std::string where(const std::string& key) const {
    return "s3://" + opt.bucket + "/" + key_prefix + key;
  }

  // Sends a request with retries (transport errors, 5xx, 429, throttling codes).
  HttpResult call(const std::string& method, const std::string& wkey, const Query& query,
                  Headers headers, const HttpBody& body, const std::string& op,
                  const std::string& key, const RetryOn& extra_retry = {}) {
    PayloadDigests digests;
    try {
      digests = std::holds_alternative<std::string_view>(body) ? payload_digests(std::get<std::string_view>(body))
                                                               : payload_digests(std::get<FileRegion>(body));
    } catch (const StorageError& e) {
      throw StorageError("S3 " + op + " " + where(key) + ": " + e.what());
    }
    headers["x-amz-content-sha256"] = digests.sha256_hex;
    const bool has_body = std::holds_alternative<FileRegion>(body) || !std::get<std::string_view>(body).empty();
    if (has_body) headers["Content-MD5"] = digests.md5_base64;
    if (!opt.session_token.empty()) headers["x-amz-security-token"] = opt.session_token;
    const std::string url = s3_request_url(opt, wkey, canonical_query(query));
    RetryOn retry_on = [&extra_retry](const HttpResult& r) {
      if (extra_retry && extra_retry(r)) return true;
      return is_retryable(r, error_code(r));
    };
    try {
      Lease client(*this);
      return client->execute(method, url, headers, body, retry_on);
    } catch (const HttpTransportError& e) {
      throw StorageError("S3 " + op + " " + where(key) + ": " + e.what());
    }
  }

  [[noreturn]] void fail(const HttpResult& r, const std::string& op, const std::string& key) const {
    std::string code, message;
    if (auto err = xml_find(r.body, "Error")) {
      code = xml_text(err->inner, "Code").value_or("");
      message = xml_text(err->inner, "Message").value_or("");
    }
    std::string text = "S3 " + op + " " + where(key) + ": HTTP " + std::to_string(r.status);
    if (!code.empty()) text += " " + code;
    if (!message.empty()) text += ": " + message;
    if (r.attempts > 1) text += " (after " + std::to_string(r.attempts) + " attempts)";
    if (code == "NoSuchKey" || (code.empty() && r.status == 404)) throw NotFound(text);
    if (code == "AccessDenied" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
        code == "InvalidToken" || code == "ExpiredToken" || r.status == 401 ||
        (code.empty() && r.status == 403)) {
      throw AccessDenied(text);
    }
    if (code == "PreconditionFailed" || r.status == 412) throw PreconditionFailed(text);
    throw StorageError(text);
  }

  static bool ok(const HttpResult& r) { return r.status >= 200 && r.status < 300; }

  void put_body(const std::string& key, const HttpBody& body, const std::string& op) {
    const std::string wkey = wire_key(key);
    HttpResult r = call("PUT", wkey, {}, {}, body, op, key);
    if (!ok(r)) fail(r, op, key);
  }

  void put_multipart(const std::string& key, const fs::path& file, uint64_t size) {
    const std::string wkey = wire_key(key);
    uint64_t part_size = std::max<uint64_t>(opt.part_size, 5ull << 20);
    if ((size + part_size - 1) / part_size > 10000) {  // S3 allows at most 10000 parts
      part_size = ((size + 9999) / 10000 + (1ull << 20) - 1) & ~((1ull << 20) - 1);
    }
    HttpResult r = call("POST", wkey, {{"uploads", ""}}, {}, std::string_view(),
                        "CreateMultipartUpload", key);
    if (!ok(r)) fail(r, "CreateMultipartUpload", key);
    const std::string upload_id = xml_text(r.body, "UploadId").value_or("");
    if (upload_id.empty()) {
      throw StorageError("S3 CreateMultipartUpload " + where(key) + ": no UploadId in the response");
    }
    try {
      std::string complete = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
      int part = 1;
      for (uint64_t off = 0; off < size; off += part_size, ++part) {
        FileRegion region{file, off, std::min(part_size, size - off)};
        const std::string op = "UploadPart " + std::to_string(part);
        HttpResult pr = call("PUT", wkey, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                             {}, region, op, key);
        if (!ok(pr)) fail(pr, op, key);
        auto etag = pr.headers.find("ETag");
        if (etag == pr.headers.end()) throw StorageError("S3 " + op + " " + where(key) + ": no ETag in the response");
        complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" +
                    xml_escape(etag->second) + "</ETag></Part>";
      }
      complete += "</CompleteMultipartUpload>";
      Headers h{{"Content-Type", "application/xml"}};
      HttpResult cr = call("POST", wkey, {{"uploadId", upload_id}}, h, std::string_view(complete),
                           "CompleteMultipartUpload", key);
      // S3 may answer 200 and still report an error in the body.
      if (ok(cr) && error_code(cr).empty()) return;
      if (cr.attempts > 1 && error_code(cr) == "NoSuchUpload") {
        // An earlier attempt completed the upload but its response was lost.
        auto info = head(key);
        if (info && info->size == size) return;
      }
      if (ok(cr)) cr.status = 500;  // an error document inside a 200
      fail(cr, "CompleteMultipartUpload", key);
    } catch (...) {
      try {
        call("DELETE", wkey, {{"uploadId", upload_id}}, {}, std::string_view(), "AbortMultipartUpload", key);
      } catch (...) {
        // best effort: a bucket lifecycle rule should expire incomplete uploads
      }
      throw;
    }
  }

  std::optional<ObjectInfo> head(const std::string& key) {
    const std::string wkey = wire_key(key);
    HttpResult r = call("HEAD", wkey, {}, {}, std::string_view(), "HEAD", key);
    if (r.status == 404) return std::nullopt;
    if (!ok(r)) fail(r, "HEAD", key);
    ObjectInfo info;
    info.key = key;
    if (auto it = r.headers.find("Content-Length"); it != r.headers.end()) {
      info.size = std::strtoull(it->second.c_str(), nullptr, 10);
    }
    if (auto it = r.headers.find("Last-Modified"); it != r.headers.end()) {
      info.mtime_us = parse_http_date_us(it->second);
    }
    if (auto it = r.headers.find("ETag"); it != r.headers.end()) info.etag = strip_quotes(it->second);
    return info;
  }
};

S3Store::S3Store(StorageOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.bucket.empty()) throw StorageError("S3 store: bucket is required");
  impl_->opt = std::move(options);
  std::string p = impl_->opt.prefix;
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (!p.empty()) {
    validate_key(p);
    impl_->key_prefix = p + "/";
  }
  HttpClientOptions& h = impl_->http;
  const auto timeout = std::chrono::milliseconds(std::max(1, impl_->opt.timeout_ms));
  h.timeout = timeout;
  h.connect_timeout = std::min(timeout, std::chrono::milliseconds(10000));
  h.max_retries = std::max(0, impl_->opt.max_retries);
  h.backoff_base = std::chrono::milliseconds(100);
  h.backoff_max = std::chrono::milliseconds(20000);
  if (!impl_->opt.access_key.empty()) {
    h.aws_sigv4 = "aws:amz:" + impl_->opt.region + ":s3";
    h.username = impl_->opt.access_key;
    h.password = impl_->opt.secret_key;
  }
}

S3Store::~S3Store() = default;

std::string S3Store::describe() const {
  std::string d = "s3://" + impl_->opt.bucket;
  if (!impl_->key_prefix.empty()) d += "/" + impl_->key_prefix.substr(0, impl_->key_prefix.size() - 1);
  if (!impl_->opt.endpoint.empty()) d += " (" + impl_->opt.endpoint + ")";
  return d;
}

void S3Store::put(const std::string& key, std::string_view data) {
  impl_->put_body(key, HttpBody(data), "PUT");
}

void S3Store::put_file(const std::string& key, const fs::path& file) {
  validate_key(key);
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    throw StorageError("S3 put_file " + impl_->where(key) + ": cannot read " + file.string() + ": " +
                       std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw StorageError("S3 put_file " + impl_->where(key) + ": " + file.string() + " is not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > impl_->opt.multipart_threshold) {
    impl_->put_multipart(key, file, size);
  } else {
    impl_->put_body(key, HttpBody(FileRegion{file, 0, size}), "PUT");
  }
}

void S3Store::create_if_absent(const std::string& key, std::string_view data) {
  const std::string wkey = impl_->wire_key(key);
  // 1. HEAD: the only check on servers that ignore If-None-Match (not atomic there).
  if (impl_->head(key)) {
    throw PreconditionFailed("S3 create_if_absent " + impl_->where(key) + ": object already exists");
  }
  // 2. Conditional PUT: atomic where supported (AWS S3 since 2024, MinIO, Ceph RGW).
  //    AWS answers 409 ConditionalRequestConflict to a concurrent conditional write: retry.
  RetryOn conflict = [](const HttpResult& r) { return r.status == 409 && error_code(r) == "ConditionalRequestConflict"; };
  HttpResult r = impl_->call("PUT", wkey, {}, {{"If-None-Match", "*"}}, HttpBody(data),
                             "create_if_absent", key, conflict);
  if (r.status == 501) {  // the server refuses conditional writes: plain PUT after the HEAD
    r = impl_->call("PUT", wkey, {}, {}, HttpBody(data), "create_if_absent", key);
  }
  if (Impl::ok(r)) return;
  if (r.status == 412 && r.attempts > 1) {
    // An earlier attempt of ours may have created it and lost the response.
    try {
      if (get(key, std::nullopt) == data) return;
    } catch (const NotFound&) {
    }
  }
  if (r.status == 412 || r.status == 409) {
    throw PreconditionFailed("S3 create_if_absent " + impl_->where(key) + ": object already exists");
  }
  impl_->fail(r, "create_if_absent", key);
}

std::string S3Store::get(const std::string& key, std::optional<ByteRange> range) {
  const std::string wkey = impl_->wire_key(key);
  if (range && range->length == 0) {
    if (!impl_->head(key)) throw NotFound("S3 GET " + impl_->where(key) + ": no such object");
    return {};
  }
  Headers h;
  if (range) {
    uint64_t last = range->offset + range->length - 1;
    if (last < range->offset) last = UINT64_MAX - 1;  // overflow: to the end
    h["Range"] = "bytes=" + std::to_string(range->offset) + "-" + std::to_string(last);
  }
  HttpResult r = impl_->call("GET", wkey, {}, h, std::string_view(), "GET", key);
  if (r.status == 416) return {};  // offset at or past the end
  if (!Impl::ok(r)) impl_->fail(r, "GET", key);
  if (range && r.status == 200) {  // server ignored Range: cut locally
    if (range->offset >= r.body.size()) return {};
    return r.body.substr(range->offset, std::min<uint64_t>(range->length, r.body.size() - range->offset));
  }
  return std::move(r.body);
}

std::optional<ObjectInfo> S3Store::head(const std::string& key) { return impl_->head(key); }

ListPage S3Store::list(const std::string& prefix, const std::string& token, int max_keys) {
  if (max_keys <= 0 || max_keys > 1000) max_keys = 1000;
  Query q{{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  const std::string wire_prefix = impl_->key_prefix + prefix;
  if (!wire_prefix.empty()) q.emplace_back("prefix", wire_prefix);
  if (!token.empty()) q.emplace_back("continuation-token", token);
  HttpResult r = impl_->call("GET", "", q, {}, std::string_view(), "ListObjectsV2", prefix);
  if (!Impl::ok(r)) impl_->fail(r, "ListObjectsV2", prefix);
  ListPage page;
  for (std::string_view c : xml_all(r.body, "Contents")) {
    std::string key = xml_text(c, "Key").value_or("");
    if (!key.starts_with(impl_->key_prefix)) continue;
    ObjectInfo info;
    info.key = key.substr(impl_->key_prefix.size());
    if (info.key.empty()) continue;
    info.size = std::strtoull(xml_text(c, "Size").value_or("0").c_str(), nullptr, 10);
    info.mtime_us = parse_iso8601_us(xml_text(c, "LastModified").value_or(""));
    info.etag = strip_quotes(xml_text(c, "ETag").value_or(""));
    page.objects.push_back(std::move(info));
  }
  std::sort(page.objects.begin(), page.objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  const bool truncated = xml_text(r.body, "IsTruncated").value_or("false") == "true";
  if (truncated) {
    page.next_token = xml_text(r.body, "NextContinuationToken").value_or("");
    if (page.next_token.empty()) {
      throw StorageError("S3 ListObjectsV2 " + impl_->where(prefix) +
                         ": truncated listing without NextContinuationToken");
    }
  }
  return page;
}

void S3Store::remove(const std::string& key) {
  const std::string wkey = impl_->wire_key(key);
  HttpResult r = impl_->call("DELETE", wkey, {}, {}, std::string_view(), "DELETE", key);
  if (Impl::ok(r) || r.status == 404) return;
  impl_->fail(r, "DELETE", key);
}

void S3Store::ensure_bucket() {
  std::string body;
  Headers h;
  if (impl_->opt.region != "us-east-1") {
    body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
           "<LocationConstraint>" + xml_escape(impl_->opt.region) +
           "</LocationConstraint></CreateBucketConfiguration>";
    h["Content-Type"] = "application/xml";
  }
  HttpResult r = impl_->call("PUT", "", {}, h, std::string_view(body), "CreateBucket", "");
  if (Impl::ok(r)) return;
  const std::string code = error_code(r);
  if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") return;
  impl_->fail(r, "CreateBucket", "");
}

}  // namespace bf
