#pragma once
// HTTP client on libcurl: one easy handle per client (connection reuse), timeouts,
// and retries with exponential backoff and full jitter. Not thread-safe: use one
// client per thread.
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "net/http.h"

namespace bf {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};
  int max_retries = 3;                          // retries after the first attempt
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{10000};
  bool verify_tls = true;
  std::string ca_file;
};

struct HttpResult {
  long status = 0;
  Headers headers;
  std::string body;
};

// Transport failure (connect refused, timeout, TLS) after all retries.
struct HttpTransportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One attempt. Throws HttpTransportError on transport failure.
  HttpResult send(const std::string& method, const std::string& url, const Headers& headers,
                  std::string_view body);

  // Retries transport errors and statuses for which `retryable(status)` is true
  // (default: 408, 429, 5xx), honouring Retry-After (seconds) when present.
  // Returns the last response; throws HttpTransportError if no attempt got one.
  HttpResult send_with_retry(const std::string& method, const std::string& url,
                             const Headers& headers, std::string_view body,
                             std::function<bool(long)> retryable = {});

  // Backoff before retry number `attempt` (1-based): random in [0, min(max, base*2^attempt)].
  std::chrono::milliseconds backoff(int attempt) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HttpClientOptions options_;
};

}  // namespace bf
