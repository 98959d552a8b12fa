#include "storage/object_store.h"

#include "common/config.h"
#include "storage/local_store.h"
#include "storage/s3_store.h"

namespace bf {

namespace {

// S3's limit on a key's length (UTF-8 bytes); keys stay portable across stores.
constexpr size_t kMaxKeyBytes = 1024;

std::string printable(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  return out;
}

[[noreturn]] void bad_key(std::string_view key, const std::string& why) {
  throw InvalidKey("invalid object key '" + printable(key) + "': " + why);
}

}  // namespace

void validate_key(std::string_view key) {
  if (key.empty()) bad_key(key, "empty");
  if (key.size() > kMaxKeyBytes) bad_key(key, "longer than 1024 bytes");
  if (key.front() == '/') bad_key(key, "absolute (starts with '/')");
  for (char c : key) {
    if (c == '\0') bad_key(key, "contains a NUL character");
    if (c == '\\') bad_key(key, "contains a backslash");
  }
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    std::string_view segment =
        key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty()) bad_key(key, "empty path segment ('//' or trailing '/')");
    if (segment == "." || segment == "..") bad_key(key, "'.' or '..' segment");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

std::vector<ObjectInfo> ObjectStore::list_all(const std::string& prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    ListPage page = list(prefix, token, 1000);
    for (auto& o : page.objects) out.push_back(std::move(o));
    if (!page.next_token.empty() && page.next_token == token) {
      throw StorageError("list " + describe() + " prefix '" + prefix +
                         "': continuation token did not advance");
    }
    token = std::move(page.next_token);
  } while (!token.empty());
  return out;
}

StorageOptions parse_storage_options(const ConfigNode& node) {
  StorageOptions o;
  o.type = node.str("type", o.type);
  if (o.type != "local" && o.type != "s3") {
    node.fail("type", "unknown storage type '" + o.type + "' (expected local or s3)");
  }
  o.path = node.str("path", o.path);
  o.endpoint = node.str("endpoint", o.endpoint);
  o.bucket = node.str("bucket", o.bucket);
  o.region = node.str("region", o.region);
  o.prefix = node.str("prefix", o.prefix);
  o.access_key = node.str("access_key", o.access_key);
  o.secret_key = node.str("secret_key", o.secret_key);
  o.session_token = node.str("session_token", o.session_token);
  o.path_style = node.boolean("path_style", o.path_style);
  o.multipart_threshold = node.bytes("multipart_threshold", o.multipart_threshold);
  o.part_size = node.bytes("part_size", o.part_size);
  int64_t retries = node.integer("max_retries", o.max_retries);
  auto timeout = node.duration("timeout", std::chrono::milliseconds(o.timeout_ms));

  if (o.type == "local" && o.path.empty()) node.fail("path", "must not be empty");
  if (o.type == "s3") {
    if (o.bucket.empty()) node.fail("bucket", "required when type is s3");
    if (o.region.empty()) node.fail("region", "must not be empty");
    if (!o.endpoint.empty() && o.endpoint.find("://") == std::string::npos) {
      node.fail("endpoint", "must start with http:// or https:// (got '" + o.endpoint + "')");
    }
    if (o.access_key.empty() != o.secret_key.empty()) {
      node.fail(o.access_key.empty() ? "access_key" : "secret_key",
                "access_key and secret_key must be set together");
    }
  }
  if (!o.prefix.empty()) {
    std::string p = o.prefix;
    while (!p.empty() && p.back() == '/') p.pop_back();
    try {
      validate_key(p);
    } catch (const InvalidKey& e) {
      node.fail("prefix", e.what());
    }
  }
  // S3 rejects parts below 5 MiB (except the last) and allows at most 10000 parts.
  if (o.part_size < (5ull << 20)) node.fail("part_size", "must be at least 5MiB");
  if (o.part_size > (5ull << 30)) node.fail("part_size", "must be at most 5GiB");
  if (o.multipart_threshold < (5ull << 20)) node.fail("multipart_threshold", "must be at least 5MiB");
  if (retries < 0 || retries > 100) node.fail("max_retries", "must be between 0 and 100");
  o.max_retries = static_cast<int>(retries);
  if (timeout.count() <= 0) node.fail("timeout", "must be positive");
  o.timeout_ms = static_cast<int>(std::min<int64_t>(timeout.count(), INT32_MAX));
  return o;
}

std::shared_ptr<ObjectStore> make_object_store(const StorageOptions& options) {
  if (options.type == "local") return std::make_shared<LocalStore>(options.path);
  if (options.type == "s3") return std::make_shared<S3Store>(options);
  throw StorageError("unknown storage type '" + options.type + "' (expected local or s3)");
}

}  // namespace bf
