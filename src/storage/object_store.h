#pragma once
// ObjectStore: the one interface to object storage (DESIGN.md §4).
// Implementations: LocalStore (a directory) and S3Store (SigV4 over libcurl).
// Keys are '/'-separated relative paths without "..", never starting with '/'.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bf {

struct StorageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct NotFound : StorageError {
  using StorageError::StorageError;
};
struct AccessDenied : StorageError {
  using StorageError::StorageError;
};
struct PreconditionFailed : StorageError {  // conditional create lost the race
  using StorageError::StorageError;
};
struct InvalidKey : StorageError {
  using StorageError::StorageError;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_us = 0;
  std::string etag;
};

struct ListPage {
  std::vector<ObjectInfo> objects;   // sorted by key
  std::string next_token;            // empty: no more pages
};

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;  // bytes to read from offset
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual void put(const std::string& key, std::string_view data) = 0;
  // Streams a local file (multipart upload on S3 for large files).
  virtual void put_file(const std::string& key, const std::filesystem::path& file) = 0;
  // Creates the object only if no object has the key; throws PreconditionFailed otherwise.
  virtual void create_if_absent(const std::string& key, std::string_view data) = 0;
  // Throws NotFound.
  virtual std::string get(const std::string& key, std::optional<ByteRange> range = std::nullopt) = 0;
  virtual std::optional<ObjectInfo> head(const std::string& key) = 0;
  // Keys starting with prefix, sorted; page size at most max_keys.
  virtual ListPage list(const std::string& prefix, const std::string& token = "",
                        int max_keys = 1000) = 0;
  // Deleting a missing key is not an error.
  virtual void remove(const std::string& key) = 0;
  // A short description for logs: "local:/var/lib/bf" or "s3://bucket/prefix".
  virtual std::string describe() const = 0;

  // Every key under prefix, following pagination.
  std::vector<ObjectInfo> list_all(const std::string& prefix);
};

// Throws InvalidKey for empty keys, absolute keys, "." / ".." segments, NUL or
// backslash characters.
void validate_key(std::string_view key);

struct StorageOptions {
  std::string type = "local";  // local | s3
  // local
  std::string path = "./data/store";
  // s3
  std::string endpoint;        // e.g. http://127.0.0.1:9000; empty -> AWS
  std::string bucket;
  std::string region = "us-east-1";
  std::string prefix;          // key prefix inside the bucket
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  bool path_style = true;
  uint64_t multipart_threshold = 64ull << 20;
  uint64_t part_size = 16ull << 20;
  int max_retries = 5;
  int timeout_ms = 30000;
};

class ConfigNode;
StorageOptions parse_storage_options(const ConfigNode& node);
std::shared_ptr<ObjectStore> make_object_store(const StorageOptions& options);

}  // namespace bf
