#include "storage/layout.h"

#include <charconv>
#include <stdexcept>
#include <string_view>

#include "common/ids.h"
#include "common/time.h"
#include "common/ulid.h"

namespace bf {
namespace {

constexpr const char* kBatchSuffix = ".ndjson.zst";

std::string dataset_path(const DatasetRef& ref) {
  return require_id("account", ref.account) + "/" + require_id("tenant", ref.tenant) + "/" +
         require_id("dataset", ref.dataset) + "/";
}

std::string batch_hour_path(const std::string& batch_id) {
  auto ms = ulid_time_ms(batch_id);
  if (!ms) throw std::invalid_argument("invalid batch id '" + batch_id + "': must be a ULID");
  return hour_path(*ms * 1000);
}

std::string batch_key(const char* stage, const DatasetRef& ref, const std::string& batch_id) {
  return std::string(stage) + "/" + dataset_path(ref) + batch_hour_path(batch_id) + "/" + batch_id + kBatchSuffix;
}

}  // namespace

std::string raw_key(const DatasetRef& ref, const std::string& batch_id) { return batch_key("raw", ref, batch_id); }
std::string processed_key(const DatasetRef& ref, const std::string& batch_id) {
  return batch_key("processed", ref, batch_id);
}
std::string dead_letter_key(const DatasetRef& ref, const std::string& batch_id) {
  return batch_key("dead-letter", ref, batch_id);
}
std::string raw_prefix(const DatasetRef& ref) { return "raw/" + dataset_path(ref); }
std::string dead_letter_prefix(const DatasetRef& ref) { return "dead-letter/" + dataset_path(ref); }
std::string processed_prefix(const DatasetRef& ref) { return "processed/" + dataset_path(ref); }

std::string parquet_prefix(const DatasetRef& ref) {
  return "parquet/account=" + require_id("account", ref.account) + "/tenant=" + require_id("tenant", ref.tenant) +
         "/dataset=" + require_id("dataset", ref.dataset) + "/";
}

std::string parquet_part_key(const DatasetRef& ref, int64_t hour_us, const std::string& part_id) {
  return parquet_prefix(ref) + hive_hour_path(hour_us) + "/part-" + part_id + ".parquet";
}

constexpr const char* kQuarantineDir = "_quarantine/";

std::string parquet_quarantine_part_key(const DatasetRef& ref, const std::string& part_id) {
  return parquet_prefix(ref) + kQuarantineDir + "part-" + part_id + ".parquet";
}

bool is_quarantine_part(const std::string& key) { return key.find(std::string("/") + kQuarantineDir) != std::string::npos; }

std::optional<int64_t> parquet_part_hour_us(const std::string& key) {
  int fields[4] = {-1, -1, -1, -1};
  static constexpr std::string_view names[4] = {"year=", "month=", "day=", "hour="};
  size_t pos = 0;
  while (pos <= key.size()) {
    size_t end = key.find('/', pos);
    if (end == std::string::npos) end = key.size();
    std::string_view seg(key.data() + pos, end - pos);
    for (int i = 0; i < 4; ++i) {
      if (seg.substr(0, names[i].size()) != names[i]) continue;
      std::string_view digits = seg.substr(names[i].size());
      int v = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec == std::errc() && ptr == digits.data() + digits.size() && !digits.empty()) fields[i] = v;
    }
    pos = end + 1;
  }
  const int y = fields[0], mo = fields[1], d = fields[2], h = fields[3];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23) return std::nullopt;
  return civil_to_us(y, mo, d, h, 0, 0, 0);
}

std::string schema_key(const DatasetRef& ref) { return "_meta/" + dataset_path(ref) + "schema.json"; }

std::string batch_records_prefix(const DatasetRef& ref) { return "_meta/" + dataset_path(ref) + "batches/"; }
std::string batch_record_key(const DatasetRef& ref, const std::string& batch_id) {
  return batch_records_prefix(ref) + batch_hour_path(batch_id) + "/" + batch_id + ".json";
}

std::string commit_manifests_prefix(const DatasetRef& ref) { return "_meta/" + dataset_path(ref) + "commits/"; }
std::string commit_manifest_key(const DatasetRef& ref, const std::string& commit_id) {
  if (!is_valid_ulid(commit_id)) throw std::invalid_argument("invalid commit id '" + commit_id + "'");
  return commit_manifests_prefix(ref) + commit_id + ".json";
}
std::string committed_parts_key(const DatasetRef& ref) { return "_meta/" + dataset_path(ref) + "parts.json"; }
std::string replaced_parts_prefix(const DatasetRef& ref) { return "_meta/" + dataset_path(ref) + "replaced/"; }
std::string replaced_parts_key(const DatasetRef& ref, const std::string& commit_id) {
  if (!is_valid_ulid(commit_id)) throw std::invalid_argument("invalid commit id '" + commit_id + "'");
  return replaced_parts_prefix(ref) + commit_id + ".json";
}

std::optional<std::string> batch_id_of(const std::string& key) {
  size_t slash = key.rfind('/');
  std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
  const std::string suffix = kBatchSuffix;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  std::string id = name.substr(0, name.size() - suffix.size());
  if (!is_valid_ulid(id)) return std::nullopt;
  return id;
}

}  // namespace bf
