#pragma once
// Exactly-once bookkeeping in the object store (docs/reliability.md):
// - the batch ledger: one small record per (account, tenant, dataset, batch id)
//   holding the digest of the batch's content and, once the batch is in Parquet,
//   the id of the commit that holds it. The receiver writes it before a batch
//   reaches raw/; the packer marks it committed. A batch id is refused (409) if
//   it comes back with other content, answered as a duplicate if it comes back
//   with the same content, and never packed twice.
// - the commit log: a packer run uploads its Parquet parts, then writes a commit
//   manifest naming the parts and the batch ids they hold, marks the batches
//   committed, deletes its inputs, and folds the manifest into parts.json.
//   A part is visible to readers only once a manifest or parts.json names it.
//   The manifest records the fencing token of the lease the packer held when it
//   committed (docs/reliability.md, "Leases and fencing").
// - compaction commits (packer/compaction.h): a manifest that adds merged parts and
//   names the parts they replace; once it is stored, readers see the new set, never
//   both and never neither. Folding it drops the replaced parts from parts.json and
//   records them under _meta/a/t/d/replaced/ until they are deleted.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/catalog.h"

namespace bf {

class ObjectStore;

struct BatchRecord {
  std::string digest;  // SHA-256 of the batch content as first accepted; empty: unknown
  std::string commit;  // the commit holding the batch in Parquet; empty while in flight
  bool committed() const { return !commit.empty(); }
};

std::optional<BatchRecord> get_batch_record(ObjectStore& store, const DatasetRef& ref, const std::string& batch_id);
void put_batch_record(ObjectStore& store, const DatasetRef& ref, const std::string& batch_id, const BatchRecord& record);
// Deletes the records of batch ids whose ULID time is before cutoff_us; returns how many.
size_t expire_batch_records(ObjectStore& store, const DatasetRef& ref, int64_t cutoff_us);

struct CommitPart {
  std::string key;
  uint64_t rows = 0;
};

struct CommitManifest {
  std::string id;  // ULID
  std::vector<CommitPart> parts;
  struct Batch {
    std::string id, digest;
  };
  std::vector<Batch> batches;
  // The committing worker's lease token (storage/lease_store.h); 0: written
  // without a lease (a single worker, or a manifest from before leases).
  uint64_t fencing_token = 0;
  // Parts this commit replaces (a compaction: `parts` hold the same rows); empty for
  // a packer run. Readers stop seeing them the moment the manifest is stored.
  std::vector<std::string> replaces{};
};

void write_manifest(ObjectStore& store, const DatasetRef& ref, const CommitManifest& manifest);
// Manifests not yet folded into parts.json, oldest first. A manifest that cannot be
// read is skipped with an error log (it is kept for an operator to look at).
std::vector<CommitManifest> pending_manifests(ObjectStore& store, const DatasetRef& ref);
// Adds the manifest's parts to parts.json and drops the parts it replaces (idempotent),
// records the replaced parts (replaced_parts below), then deletes the manifest.
void fold_manifest(ObjectStore& store, const DatasetRef& ref, const CommitManifest& manifest);
// Every committed part of the dataset (parts.json plus pending manifests, less the
// parts pending manifests replace), sorted by key.
std::vector<CommitPart> committed_parts(ObjectStore& store, const DatasetRef& ref);
// Only the parts parts.json names (folded commits), in its order: what compaction may
// merge while another thread's commit is still pending (packer/compaction.h).
std::vector<CommitPart> folded_parts(ObjectStore& store, const DatasetRef& ref);

// Parts a folded compaction commit replaced: no reader that starts now sees them,
// but one that started before the commit may still be reading them.
struct ReplacedParts {
  std::string commit;  // the compaction commit's id (its ULID time is when it was made)
  std::vector<std::string> keys;
};
// The records of replaced parts not yet deleted, oldest commit first.
std::vector<ReplacedParts> replaced_parts(ObjectStore& store, const DatasetRef& ref);
// Deletes the replaced objects, then the record (idempotent).
void delete_replaced_parts(ObjectStore& store, const DatasetRef& ref, const ReplacedParts& replaced);
// Replaces parts.json (compaction and retention rewrite the part list through this).
void write_committed_parts(ObjectStore& store, const DatasetRef& ref, const std::vector<CommitPart>& parts);

}  // namespace bf
