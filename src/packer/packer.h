#pragma once
// The packer: collects processed/ objects per dataset, writes Parquet (zstd)
// partitioned by event time (_time, UTC) as in DESIGN.md §3, records the dataset's
// columns in the schema registry (_meta/.../schema.json), and commits each run
// through a manifest (storage/ledger.h) before deleting its inputs, so a batch
// reaches Parquet exactly once through crashes at any point.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;

struct PackerOptions {
  std::chrono::milliseconds interval{10000};
  size_t max_batches_per_part = 1000;    // processed objects read per run and dataset
  uint64_t max_part_bytes = 32ull << 20;  // stop reading inputs once this much NDJSON is buffered (bounds the work a kill loses)
  std::string memory_limit = "512MB";    // DuckDB's limit for the conversion
  std::string temp_dir;                  // empty: the system temp dir
  // How long the batch ledger remembers a batch id (a retry later than this may be stored again).
  std::chrono::milliseconds dedup_window{7LL * 24 * 3600 * 1000};
};
PackerOptions parse_packer_options(const ConfigNode& section);

class Packer {
 public:
  Packer(PackerOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store);
  ~Packer();
  // Packs what is in processed/ now; returns the number of Parquet files written.
  size_t run_once();
  void start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
