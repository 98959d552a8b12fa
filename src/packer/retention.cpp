#include "packer/retention.h"

#include <set>

#include "common/ulid.h"
#include "storage/layout.h"
#include "storage/object_store.h"

namespace bf {
namespace {

constexpr int64_t kHourUs = 3600LL * 1000000;
constexpr int64_t kDayUs = 24 * kHourUs;

// When a part's data ends: the end of its event hour, or for a quarantine part the
// time it was written.
std::optional<int64_t> part_end_us(const std::string& key) {
  if (auto hour = parquet_part_hour_us(key)) return *hour + kHourUs;
  const size_t at = key.rfind("/part-");
  if (at == std::string::npos || key.size() < at + 6 + 26) return std::nullopt;
  if (auto ms = ulid_time_ms(key.substr(at + 6, 26))) return *ms * 1000;
  return std::nullopt;
}

}  // namespace

std::vector<CommitPart> expired_parts(const std::vector<CommitPart>& parts, int days, int64_t now_us) {
  std::vector<CommitPart> out;
  if (days <= 0) return out;
  const int64_t cutoff = now_us - static_cast<int64_t>(days) * kDayUs;
  for (const auto& p : parts) {
    auto end = part_end_us(p.key);
    if (end && *end <= cutoff) out.push_back(p);  // a key of unknown shape is never deleted
  }
  return out;
}

std::vector<CommitPart> apply_retention(ObjectStore& store, const DatasetRef& ref, int days, int64_t now_us) {
  const std::vector<CommitPart> parts = committed_parts(store, ref);
  std::vector<CommitPart> expired = expired_parts(parts, days, now_us);
  if (expired.empty()) return expired;
  std::set<std::string> gone;
  for (const auto& p : expired) gone.insert(p.key);
  std::vector<CommitPart> kept;
  for (const auto& p : parts)
    if (!gone.count(p.key)) kept.push_back(p);
  write_committed_parts(store, ref, kept);
  for (const auto& p : expired) store.remove(p.key);
  return expired;
}

}  // namespace bf
