#pragma once
// A durable on-disk queue of batches: one file per batch id, written to a temp file,
// fsync'ed, renamed into place and the directory fsync'ed, so an entry that put()
// returned for survives a crash. Used by the receiver (before its 200) and the proxy.
// Each entry carries its lengths and a CRC-32C: an entry whose bytes changed or
// were cut (disk fault, tampering) is detected and moved to <dir>/quarantine/
// with a note of why — never sent, never a crash loop.
//
// Fsync policy (SpoolOptions::fsync): `always` (the default, and the only policy the
// receiver uses) makes every put() durable before it returns. `interval` lets callers
// ask for a deferred commit per put (PutOptions::commit = Commit::deferred): the entry
// is written and renamed into place without waiting for the disk, and a background
// thread fsyncs every such entry and the directory once per fsync_interval (group
// commit). A crash can then lose, or leave cut short, the deferred entries of the last
// interval; opening the spool (and reading an entry) detects and quarantines the cut
// ones. Only for best-effort data (the proxy's UDP path). Puts that do not ask for a
// deferred commit stay durable on return under either policy.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bf {

struct SpoolFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SpoolCorrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class SpoolFsync { always, interval };

struct SpoolOptions {
  uint64_t max_bytes = 0;  // 0: unlimited
  SpoolFsync fsync = SpoolFsync::always;
  std::chrono::milliseconds fsync_interval{200};  // for SpoolFsync::interval
};

enum class SpoolCommit {
  now,       // durable when put() returns
  deferred,  // durable within fsync_interval (SpoolFsync::interval); `now` under `always`
};

struct SpoolPutOptions {
  SpoolCommit commit = SpoolCommit::now;
  bool ignore_limit = false;  // store even over max_bytes (the caller bounds the overshoot)
};

class Spool {
 public:
  using Commit = SpoolCommit;
  using PutOptions = SpoolPutOptions;
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
  Spool(std::filesystem::path dir, SpoolOptions options);
  ~Spool();  // commits deferred entries
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Durable when it returns (unless put.commit is deferred, see above). An existing
  // entry with the same id is replaced (batch ids are idempotency keys: the same id
  // carries the same content). Throws SpoolFull when the entry would take the spool
  // over max_bytes.
  void put(const std::string& id, std::string_view meta, std::string_view data, PutOptions put = {});
  // Makes every deferred entry durable now.
  void sync();
  size_t unsynced() const;  // deferred entries not yet fsync'ed
  bool contains(const std::string& id) const;
  std::vector<Entry> list() const;  // oldest first (ids are ULIDs: sorted by name)
  Item read(const std::string& id) const;  // throws SpoolCorrupt
  // Only the meta header of an entry (cheap: the data is not read or verified).
  std::string read_meta(const std::string& id) const;  // throws SpoolCorrupt
  void remove(const std::string& id);
  // Moves an entry to <dir>/quarantine/ with a .reason file; counted on /metrics.
  void quarantine(const std::string& id, const std::string& reason);
  // Reads and verifies every entry; with repair, corrupt ones are quarantined.
  CheckReport check(bool repair);
  std::filesystem::path quarantine_dir() const { return dir_ / "quarantine"; }
  uint64_t bytes() const;
  uint64_t max_bytes() const { return options_.max_bytes; }
  const SpoolOptions& options() const { return options_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path file_for(const std::string& id) const;
  void sync_loop();
  std::filesystem::path dir_;
  SpoolOptions options_;
  mutable std::mutex mu_;
  uint64_t bytes_ = 0;
  // Group commit (SpoolFsync::interval).
  mutable std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<std::string> unsynced_;  // ids written without fsync, oldest first
  bool sync_stop_ = false;
  std::thread sync_thread_;
};

// Writes `data` to `path` atomically and durably (temp + fsync + rename + dir fsync).
void write_file_durable(const std::filesystem::path& path, std::string_view data);
// Atomically (temp + rename) but without waiting for the disk; fsync later.
void write_file_atomic(const std::filesystem::path& path, std::string_view data);
std::string read_file(const std::filesystem::path& path);

}  // namespace bf
