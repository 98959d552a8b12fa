#pragma once
// Retention: the committed Parquet parts of a dataset older than its `retention:
// {days: N}` (DatasetInfo::retention_days). The packer applies it (Packer: once an
// hour per dataset, under the dataset's lease); `bytefreezer retention --dry-run`
// lists what the next pass would delete (docs/storage.md#retention).
#include <cstdint>
#include <vector>

#include "common/catalog.h"
#include "storage/ledger.h"

namespace bf {

class ObjectStore;

// The parts that are expired at now_us: an hour partition once its whole hour is
// older than the cutoff (now - days); a quarantine part (no event hour) by the time
// it was written (its ULID). days <= 0 expires nothing.
std::vector<CommitPart> expired_parts(const std::vector<CommitPart>& parts, int days, int64_t now_us);

// Drops the expired parts from the dataset's part list (parts.json), then deletes
// their objects; returns them. Readers go through the part list, so they stop seeing
// an expired part before it is deleted; a kill between the two leaves objects no
// commit names, which the packer's orphan sweep removes. Call only with no commit
// manifest pending (the packer folds them first) and while holding the lease.
std::vector<CommitPart> apply_retention(ObjectStore& store, const DatasetRef& ref, int days, int64_t now_us);

}  // namespace bf
