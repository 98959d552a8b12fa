#pragma once
// HTTP client on libcurl: one easy handle per client (connection reuse), timeouts,
// and retries with exponential backoff and full jitter. Not thread-safe: use one
// client per thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

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
  // Upper bound on a server's Retry-After before a retry.
  std::chrono::milliseconds retry_after_max{60000};
  // AWS Signature V4 (CURLOPT_AWS_SIGV4), e.g. "aws:amz:us-east-1:s3"; empty: off.
  // With it, username/password are the access key and the secret key.
  std::string aws_sigv4;
  std::string username;  // CURLOPT_USERNAME / CURLOPT_PASSWORD (basic auth or SigV4 keys)
  std::string password;
  std::string user_agent = "bytefreezer";
  // When set, a transfer in progress aborts (HttpTransportError) soon after it turns
  // true: a long-poll that must end at shutdown.
  std::shared_ptr<std::atomic<bool>> cancel;
};

struct HttpResult {
  long status = 0;
  Headers headers;   // of the final response (interim 100 responses are dropped)
  std::string body;
  int attempts = 1;  // requests made, including the one that produced this result
};

// A request body streamed from a region of a local file (never loaded into memory).
struct FileRegion {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t length = 0;
};
using HttpBody = std::variant<std::string_view, FileRegion>;

// Decides from a response whether to retry it.
using RetryOn = std::function<bool(const HttpResult&)>;

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
  // One attempt with the body streamed from a file region. Throws HttpTransportError
  // (also when the file cannot be read).
  HttpResult send_file(const std::string& method, const std::string& url, const Headers& headers,
                       const FileRegion& body);

  // Retries transport errors and statuses for which `retryable(status)` is true
  // (default: 408, 429, 5xx), honouring Retry-After (seconds) when present.
  // Returns the last response; throws HttpTransportError if no attempt got one.
  HttpResult send_with_retry(const std::string& method, const std::string& url,
                             const Headers& headers, std::string_view body,
                             std::function<bool(long)> retryable = {});

  // General form: retries transport errors and responses for which `retry_on` is true
  // (an empty retry_on retries transport errors only), up to options.max_retries times,
  // sleeping Retry-After (seconds or HTTP date, capped at retry_after_max) or backoff().
  // The caller decides whether the request is safe to repeat.
  HttpResult execute(const std::string& method, const std::string& url, const Headers& headers,
                     const HttpBody& body, const RetryOn& retry_on);

  // Delay a response asks for via Retry-After (delta seconds or HTTP date), if any.
  static std::optional<std::chrono::milliseconds> retry_after(const HttpResult& result);

  const HttpClientOptions& options() const { return options_; }

  // Backoff before retry number `attempt` (1-based): random in [0, min(max, base*2^attempt)].
  std::chrono::milliseconds backoff(int attempt) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HttpClientOptions options_;
};

}  // namespace bf
