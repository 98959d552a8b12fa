#pragma once
// Compaction (docs/storage.md#compaction): the small Parquet parts of one hour
// partition are merged into files of about packer.compaction.target_bytes, written
// with the dataset's registered columns and types and sorted by _time. The packer
// runs it under the dataset's lease on its own thread (bf-compact), beside packing
// (after a run instead when run_once() is called without start()). One commit makes the swap:
//   1. the merged file is uploaded (no reader sees it: nothing names it);
//   2. the lease is fenced, then a commit manifest is stored naming the new part
//      and the parts it replaces — from here on committed_parts() returns the new
//      set and never the old one (storage/ledger.h);
//   3. the manifest is folded into parts.json, the replaced parts recorded under
//      _meta/…/replaced/; after packer.compaction.grace (readers that listed the old
//      set before the commit are done) they are deleted, then the record.
// A kill after 1 leaves an uncommitted part the orphan sweep removes; after 2 the
// next run folds the manifest; after 3 the next run deletes what is due. Batch ids
// carry over: the ledger's records of the merged batches stay committed.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/catalog.h"
#include "storage/ledger.h"

namespace bf {

class ConfigNode;
class ObjectStore;
class SqlEngine;
struct SchemaColumn;

struct CompactionOptions {
  bool enabled = true;
  size_t min_files = 4;                  // a partition is merged once it holds this many small parts
  uint64_t target_bytes = 128ull << 20;  // merged files of about this size; a part of half this size is not small
  std::chrono::milliseconds interval{10LL * 60 * 1000};  // per dataset
  // Replaced parts stay this long after the commit, for queries that listed them before.
  std::chrono::milliseconds grace{5LL * 60 * 1000};
  size_t max_files_per_merge = 1000;  // bounds one merge's work (and what a kill loses)
  // A merge sorts at most about this much column data (the parts' uncompressed size,
  // from their footers) at once: a larger merge is sorted in _time windows of this
  // size, each into a temp file, then the windows are concatenated in order. Bounds
  // the merge's memory, which would otherwise grow with target_bytes.
  uint64_t sort_bytes = 16ull << 20;
  // Merges per compaction pass and dataset: on the bf-compact thread the next pass
  // starts at once; inline (run_once() without start()) the packer packs between them.
  size_t merges_per_run = 1;
};
CompactionOptions parse_compaction_options(const ConfigNode& section);  // packer.compaction

// One merge: parts of one hour partition, oldest first.
struct CompactionJob {
  int64_t hour_us = 0;
  std::vector<CommitPart> parts;
  std::vector<uint64_t> part_bytes;  // each part's size in the store
  uint64_t bytes = 0;  // their size in the store
};

// The merges worth doing: in each hour partition with at least min_files parts
// smaller than half target_bytes, those parts (oldest first, by their ULID names) in
// groups of about target_bytes, each of at least two parts. Quarantine parts and
// parts of unknown size (not in `sizes`) are left alone.
std::vector<CompactionJob> plan_compaction(const std::vector<CommitPart>& parts,
                                           const std::map<std::string, uint64_t>& sizes,
                                           const CompactionOptions& options);

// What one compaction pass did.
struct CompactionResult {
  size_t merges = 0;          // commits written
  size_t parts_replaced = 0;  // parts they replaced
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t rows = 0;
  // Sorts run: none for a merge whose parts' _time ranges do not overlap (concatenated
  // in order), else one per merge, or one per _time window of a large merge.
  size_t sort_passes = 0;
  // Merges of disjoint parts with the registered columns whose row groups were copied
  // as bytes (packer/parquet_splice.h), not decoded and written again.
  size_t spliced = 0;
  size_t abandoned = 0;    // merges not committed: a part they replace changed meanwhile
  bool more = false;       // merges were left for the next run (merges_per_run)
  bool fenced = false;  // stopped because the lease was lost
};

class Compactor {
 public:
  struct WriteOptions {
    int compression_level = 3;
    uint64_t row_group_size = 122880;
    std::chrono::milliseconds timeout{120000};  // a merge running longer is interrupted (not committed)
  };
  // commit_mutex is held for each commit step (fence, manifest, fold into parts.json);
  // whoever else rewrites the dataset's parts.json in this process (the packer's folds
  // and retention) holds it too. *stopping (if given) true: no further merge starts.
  Compactor(CompactionOptions options, WriteOptions write, std::shared_ptr<ObjectStore> store, SqlEngine& engine,
            std::filesystem::path temp_dir, std::mutex& commit_mutex, const std::atomic<bool>* stopping = nullptr);

  // Merges what plan_compaction picks for the dataset, each with its own commit, at
  // most options().merges_per_run of them (`more` says whether any were left).
  // Only parts parts.json names are merged (a pending commit's are left for later);
  // `columns` (the schema registry's) is read once, after the part list.
  // `fence` is called before each merge and again right before each commit point;
  // false (the lease is lost) stops the pass with nothing more committed. A merge
  // whose parts are no longer all in parts.json at its commit point (retention), or
  // that a pending manifest names, is abandoned (counted in `abandoned`).
  // Throws on a store or DuckDB error, with the merge's upload removed.
  CompactionResult compact(const DatasetRef& ref, const std::function<std::vector<SchemaColumn>()>& columns,
                           const std::function<bool()>& fence, uint64_t fencing_token);

  // Deletes the replaced parts whose grace has passed at now_us; returns how many parts.
  size_t delete_replaced(const DatasetRef& ref, int64_t now_us);

  const CompactionOptions& options() const { return options_; }

 private:
  // One file a merge wrote: where, its part (key to be, rows), its size and the parts it replaces.
  struct MergedFile {
    std::filesystem::path path;
    CommitPart part;
    uint64_t bytes = 0;
    std::vector<std::string> replaces;
  };
  // Writes the job's parts as one or more sorted files at out_base.* (each path and any
  // temp file also in temp_paths, for the caller to remove); the parts no file
  // replaces stay as they are.
  std::vector<MergedFile> merge(const DatasetRef& ref, const CompactionJob& job, const std::vector<SchemaColumn>& columns,
                                const std::filesystem::path& out_base, std::vector<std::filesystem::path>& temp_paths,
                                CompactionResult& result);
  // The parts sorted by _time into `out` (in windows of about sort_bytes of column data);
  // returns the rows written.
  uint64_t sorted_merge(const std::vector<const CommitPart*>& parts, const std::string& projection, uint64_t column_bytes,
                        const std::filesystem::path& out, std::vector<std::filesystem::path>& temp_paths,
                        CompactionResult& result);
  // The parts (in this order) spliced into `out` when they share the registered
  // columns' layout; their rows, or nullopt (nothing written) when they cannot be.
  std::optional<uint64_t> splice(const CompactionJob& job, const std::vector<std::string>& ordered_keys,
                                 const std::string& projection, const std::filesystem::path& out);
  // COPY (SELECT `select` ...) TO `out` with the lake's write options; returns the rows written.
  uint64_t copy_to(const std::string& select, const std::filesystem::path& out, int compression_level);
  // The first of `keys` that parts.json no longer names or a pending manifest names; empty: none.
  std::string replaced_not_committed(const DatasetRef& ref, const std::vector<std::string>& keys);

  CompactionOptions options_;
  WriteOptions write_;
  std::shared_ptr<ObjectStore> store_;
  SqlEngine& engine_;
  std::filesystem::path temp_dir_;
  std::mutex& commit_mutex_;
  const std::atomic<bool>* stopping_;
};

}  // namespace bf
