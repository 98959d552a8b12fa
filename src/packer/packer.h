#pragma once
// The packer: has DuckDB read processed/ objects per dataset and write Parquet (zstd)
// partitioned by event time (_time, UTC) as in DESIGN.md §3, records the dataset's
// columns in the schema registry (_meta/.../schema.json), and commits each run
// through a manifest (storage/ledger.h) before deleting its inputs, so a batch
// reaches Parquet exactly once through crashes at any point. Beside packing, on its
// own thread (bf-compact; inline after a run when run_once() is called without
// start()), it merges the small parts of an hour partition (packer/compaction.h)
// under the same lease.
// Several packers may run: each packs a dataset only while it holds the dataset's
// lease "packer/<account>/<tenant>/<dataset>", and checks the lease (fencing)
// immediately before its commit point; a packer that lost it deletes its parts
// and commits nothing (docs/reliability.md, "Leases and fencing").
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "packer/compaction.h"
#include "packer/schema_types.h"
#include "storage/lease_store.h"

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;

struct PackerOptions {
  std::chrono::milliseconds interval{10000};
  size_t max_batches_per_part = 1000;    // processed objects read per run and dataset
  uint64_t max_part_bytes = 32ull << 20;  // stop reading inputs once they hold this much NDJSON (bounds the work a kill loses)
  std::string memory_limit = "512MB";    // DuckDB's limit for the conversion
  std::string temp_dir;                  // empty: the system temp dir
  // How long the batch ledger remembers a batch id (a retry later than this may be stored again).
  std::chrono::milliseconds dedup_window{7LL * 24 * 3600 * 1000};
  // A conversion still running after this is cancelled and retried with fewer
  // batches; a single batch that still cannot be converted is quarantined.
  std::chrono::milliseconds conversion_timeout{120000};
  // An undecodable processed object younger than this is left for its writer's
  // retry to replace; older, it is quarantined.
  std::chrono::milliseconds quarantine_after{120000};
  int compression_level = 3;        // zstd level of the Parquet files (the lake's hop)
  // Rows per Parquet row group. DuckDB holds a row group in memory while it writes one:
  // at its default of 122,880 a 32 MiB run peaked at about 150 MiB more RSS, at
  // 32,768 at 60–80 MiB, for files 0.3% larger (docs/performance.md, peak RSS).
  uint64_t row_group_size = 32768;
  // A run's rows of one event hour are written as files of about this size; runs are
  // bounded by max_part_bytes of NDJSON, so in practice one file per hour and run.
  uint64_t target_file_size = 128ull << 20;
  // Events whose _time is outside [earliest_time_us, now + max_future] go to the
  // dataset's quarantine partition (parquet/.../_quarantine/), counted, not into an hour.
  int64_t earliest_time_us = 946684800LL * 1000000;  // 2000-01-01T00:00:00Z
  std::chrono::milliseconds max_future{24LL * 3600 * 1000};
  // DuckDB threads per conversion. More let a backlog use more cores while the other
  // stages idle, but each holds its own buffers: at 2 a run's peak memory doubled
  // (docs/performance.md, peak RSS), against the 300 MB of the whole of `bytefreezer run`.
  int threads = 1;
  SchemaLimits schema;              // packer.schema.*: how nested fields become columns
  // A dataset's inputs wait in processed/ until they hold flush_bytes (as stored) or
  // the oldest has waited flush_age (packer.flush.*): a trickle becomes queryable
  // within flush_age (plus one interval) without a tiny file every interval.
  // flush_age 0: every run packs what is there.
  std::chrono::milliseconds flush_age{5LL * 60 * 1000};
  uint64_t flush_bytes = 4ull << 20;
  CompactionOptions compaction;     // packer.compaction.*: small parts merged (packer/compaction.h)
};
PackerOptions parse_packer_options(const ConfigNode& section);

class Packer {
 public:
  // leases.store null: no coordination (only for a single packer per store).
  Packer(PackerOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
         WorkerLeases leases = {});
  ~Packer();
  // Packs what is in processed/ now; returns the number of Parquet files written.
  size_t run_once();
  void start();
  // Stops the worker and releases the leases held.
  void stop();
  // Runs again at once instead of at the next interval (a part's worth of input waits).
  // A new catalog (from control): the next run packs its datasets.
  void set_catalog(std::shared_ptr<const Catalog> catalog);
  void wake();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
