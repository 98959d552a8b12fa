#pragma once
// A durable on-disk queue of batches: one file per batch id, written to a temp file,
// fsync'ed, renamed into place and the directory fsync'ed, so an entry that put()
// returned for survives a crash. Used by the receiver (before its 200) and the proxy.
// Each entry carries its lengths and a CRC-32C: an entry whose bytes changed or
// were cut (disk fault, tampering) is detected and moved to <dir>/quarantine/
// with a note of why — never sent, never a crash loop.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bf {

struct SpoolFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SpoolCorrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Spool {
 public:
  struct Entry {
    std::string id;
    uint64_t size = 0;
  };
  struct Item {
    std::string meta;  // small caller-defined header (JSON)
    std::string data;
  };

  struct CheckReport {
    size_t entries = 0, corrupt = 0, quarantined = 0;
    uint64_t bytes = 0;
    std::vector<std::string> problems;  // "<id>: <why>"
  };

  // max_bytes == 0: unlimited. Opening removes interrupted writes and quarantines
  // entries whose size does not match their header (cut short).
  Spool(std::filesystem::path dir, uint64_t max_bytes);

  // Durable when it returns. An existing entry with the same id is replaced
  // (batch ids are idempotency keys: the same id carries the same content).
  void put(const std::string& id, std::string_view meta, std::string_view data);
  bool contains(const std::string& id) const;
  std::vector<Entry> list() const;  // oldest first (ids are ULIDs: sorted by name)
  Item read(const std::string& id) const;  // throws SpoolCorrupt
  void remove(const std::string& id);
  // Moves an entry to <dir>/quarantine/ with a .reason file; counted on /metrics.
  void quarantine(const std::string& id, const std::string& reason);
  // Reads and verifies every entry; with repair, corrupt ones are quarantined.
  CheckReport check(bool repair);
  std::filesystem::path quarantine_dir() const { return dir_ / "quarantine"; }
  uint64_t bytes() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path file_for(const std::string& id) const;
  std::filesystem::path dir_;
  uint64_t max_bytes_;
  mutable std::mutex mu_;
  uint64_t bytes_ = 0;
};

// Writes `data` to `path` atomically and durably (temp + fsync + rename + dir fsync).
void write_file_durable(const std::filesystem::path& path, std::string_view data);
std::string read_file(const std::filesystem::path& path);

}  // namespace bf
