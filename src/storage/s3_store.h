#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "storage/object_store.h"

namespace bf {

// S3 over libcurl with AWS Signature V4 (CURLOPT_AWS_SIGV4). Works with AWS S3,
// MinIO, Ceph RGW, Garage, R2, s3rver. Path-style or virtual-host addressing;
// multipart upload above options.multipart_threshold; retries 5xx/throttling with
// exponential backoff and jitter; S3 error XML becomes typed StorageErrors.
// Thread-safe: requests borrow an HTTP client (a kept-alive connection) from a pool.
//
// create_if_absent sends `If-None-Match: *` (atomic on AWS S3 and MinIO) after a HEAD
// check; on servers that ignore the header (s3rver, older gateways) only the HEAD
// check applies, which is NOT atomic against a concurrent writer.
class S3Store final : public ObjectStore {
 public:
  explicit S3Store(StorageOptions options);
  ~S3Store() override;
  void put(const std::string& key, std::string_view data) override;
  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void create_if_absent(const std::string& key, std::string_view data) override;
  std::string get(const std::string& key, std::optional<ByteRange> range = std::nullopt) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  // Same defaults as ObjectStore's, so calls through the concrete type read the same.
  ListPage list(const std::string& prefix, const std::string& token = "",
                int max_keys = 1000) override;
  void remove(const std::string& key) override;
  std::string describe() const override;

  // Creates the bucket if it does not exist (tests, first start against MinIO).
  void ensure_bucket();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Exposed for tests. SigV4 URI encoding: RFC 3986 unreserved characters
// (A-Z a-z 0-9 - _ . ~) kept, every other byte %XX (upper-case hex); '/' kept when
// keep_slash (object paths), encoded otherwise (query keys and values).
std::string s3_uri_encode(std::string_view s, bool keep_slash);

// Exposed for tests. The URL of `wire_key` (the full key in the bucket, options.prefix
// already applied; empty: the bucket itself) in path-style
// (endpoint/bucket/key) or virtual-host style (bucket.endpoint-host/key) addressing;
// an empty endpoint means https://s3.<region>.amazonaws.com. `canonical_query` is
// appended after '?' as given (already encoded and sorted).
std::string s3_request_url(const StorageOptions& options, std::string_view wire_key,
                           std::string_view canonical_query = {});

}  // namespace bf
