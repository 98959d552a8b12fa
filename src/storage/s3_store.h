#pragma once
#include <memory>

#include "storage/object_store.h"

namespace bf {

// S3 over libcurl with AWS Signature V4 (CURLOPT_AWS_SIGV4). Works with AWS S3,
// MinIO, Ceph RGW, Garage, R2, s3rver. Path-style or virtual-host addressing;
// multipart upload above options.multipart_threshold; retries 5xx/throttling with
// exponential backoff and jitter; S3 error XML becomes typed StorageErrors.
class S3Store final : public ObjectStore {
 public:
  explicit S3Store(StorageOptions options);
  ~S3Store() override;
  void put(const std::string& key, std::string_view data) override;
  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void create_if_absent(const std::string& key, std::string_view data) override;
  std::string get(const std::string& key, std::optional<ByteRange> range) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  ListPage list(const std::string& prefix, const std::string& token, int max_keys) override;
  void remove(const std::string& key) override;
  std::string describe() const override;

  // Creates the bucket if it does not exist (tests, first start against MinIO).
  void ensure_bucket();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
