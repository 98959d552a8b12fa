#pragma once
// A durable on-disk queue of batches: one file per batch id, written to a temp file,
// fsync'ed, renamed into place and the directory fsync'ed, so an entry that put()
// returned for survives a crash. Used by the receiver (before its 200) and the proxy.
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

  // max_bytes == 0: unlimited.
  Spool(std::filesystem::path dir, uint64_t max_bytes);

  // Durable when it returns. An existing entry with the same id is replaced
  // (batch ids are idempotency keys: the same id carries the same content).
  void put(const std::string& id, std::string_view meta, std::string_view data);
  bool contains(const std::string& id) const;
  std::vector<Entry> list() const;  // oldest first (ids are ULIDs: sorted by name)
  Item read(const std::string& id) const;
  void remove(const std::string& id);
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
