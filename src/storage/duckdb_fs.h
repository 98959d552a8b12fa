#pragma once
// Internal to src/storage: the DuckDB FileSystem adapter that serves "bf://<key>"
// paths from an ObjectStore (DESIGN.md §4). Include only from storage/*.cpp and
// tests; it forward-declares DuckDB types so that it stays cheap to include.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace duckdb {
class DatabaseInstance;
}

namespace bf {

class ObjectStore;

inline constexpr const char* kObjectFsScheme = "bf://";

// Counters of the calls the adapter made to the store (for tests and benchmarks).
struct ObjectFsStats {
  std::atomic<uint64_t> opens{0};
  std::atomic<uint64_t> heads{0};
  std::atomic<uint64_t> gets{0};        // ranged GETs issued
  std::atomic<uint64_t> get_bytes{0};   // bytes fetched by those GETs
  std::atomic<uint64_t> cache_hits{0};  // reads served from the read-ahead buffer
  std::atomic<uint64_t> lists{0};       // list pages requested
  std::atomic<uint64_t> puts{0};
};

struct ObjectFsOptions {
  // Writes, deletes and moves are refused with a PermissionException.
  bool read_only = false;
  // A read smaller than this fetches this much and keeps it for the next reads
  // (the window ends at EOF when near it). DuckDB 1.4's Parquet reader already
  // reads a 16 KiB footer and whole column chunks; 64 KiB covers footers with
  // larger metadata in the same GET and costs little. 0 disables it.
  size_t read_ahead = 64u << 10;
  // Where write handles buffer an object before uploading it; empty = system temp dir.
  std::string temp_dir;
  std::shared_ptr<ObjectFsStats> stats;  // optional
};

// Registers the bf:// file system with the database's VirtualFileSystem.
void register_object_fs(duckdb::DatabaseInstance& db, std::shared_ptr<ObjectStore> store,
                        ObjectFsOptions options = {});

// Glob matching as the adapter does it, exposed for tests: '/'-separated
// segments; '*' and '?' and '[...]' ('[!...]' negates) within one segment; a
// "**" segment matches any number of segments (zero or more).
bool object_glob_match(const std::string& pattern, const std::string& key);

}  // namespace bf
