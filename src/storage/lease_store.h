#pragma once
// Worker leases (docs/reliability.md, "Leases and fencing"): piper and packer
// workers coordinate through one lease per stage and dataset, e.g.
// "packer/acme/web/nginx". A lease has a holder, an expiry and a fencing token
// that grows on every new acquisition of the name, so a worker that lost its lease
// (paused or slow past the ttl while another worker took over) sees a changed
// token and refuses to commit. The object store is not trusted to refuse a stale
// write (s3rver ignores If-None-Match): the check is the worker's, against the
// lease store, immediately before its commit point.
//
// LeaseStore is the interface; SqliteLeaseStore shares leases between the
// processes of one host through a SQLite file. The control plane will add one
// behind its API.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace bf {

class ConfigNode;
struct DatasetRef;

namespace detail {
struct SqliteLeaseDb;
}

struct LeaseStoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Lease {
  std::string name;
  std::string holder;
  uint64_t token = 0;  // fencing token: grows on every new acquisition of `name`
  std::chrono::system_clock::time_point expires;
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  // Takes the lease when it is free, expired or already held by `holder`; every
  // success is a new acquisition with a larger token. nullopt: another holder has it.
  virtual std::optional<Lease> acquire(const std::string& name, const std::string& holder,
                                       std::chrono::milliseconds ttl) = 0;
  // Extends the lease to now + ttl (updating lease.expires) if nobody acquired it
  // since: same holder and token. A lease that expired but that no other worker
  // took is re-armed with the same token. false: the lease is lost.
  virtual bool renew(Lease& lease, std::chrono::milliseconds ttl) = 0;
  // Gives the lease up at once (if still held with this token); the token is kept,
  // so the next acquisition gets a larger one.
  virtual void release(const Lease& lease) = 0;
  // Still held by lease.holder with lease.token, and not expired.
  virtual bool validate(const Lease& lease) = 0;
};

// A SQLite file shared by the processes of one host: WAL mode, a busy timeout, and
// each read-modify-write in a BEGIN IMMEDIATE transaction. A holder that dies
// (even by SIGKILL) leaves its row behind; the lease simply expires.
class SqliteLeaseStore final : public LeaseStore {
 public:
  using Clock = std::function<int64_t()>;  // unix microseconds; tests may shift it
  // Creates the file (and its directory) if missing. Throws LeaseStoreError.
  explicit SqliteLeaseStore(const std::string& path, Clock clock = {});
  ~SqliteLeaseStore() override;
  SqliteLeaseStore(const SqliteLeaseStore&) = delete;
  SqliteLeaseStore& operator=(const SqliteLeaseStore&) = delete;

  std::optional<Lease> acquire(const std::string& name, const std::string& holder,
                               std::chrono::milliseconds ttl) override;
  bool renew(Lease& lease, std::chrono::milliseconds ttl) override;
  void release(const Lease& lease) override;
  bool validate(const Lease& lease) override;

  const std::string& path() const { return path_; }

 private:
  int64_t now() const;
  std::string path_;
  Clock clock_;
  std::mutex mu_;  // one connection per store object, used by one thread at a time
  std::unique_ptr<detail::SqliteLeaseDb> db_;
};

// The top-level `leases:` section (docs/configuration.md).
struct LeaseOptions {
  std::string path = "./data/leases.db";
  std::chrono::milliseconds ttl{30000};
};
LeaseOptions parse_lease_options(const ConfigNode& section);

// What a piper or packer is given: the store (null: no coordination, a single
// worker) and the ttl of its leases.
struct WorkerLeases {
  std::shared_ptr<LeaseStore> store;
  std::chrono::milliseconds ttl{30000};
};

// One worker's leases on datasets for one stage: "<stage>/<account>/<tenant>/<dataset>".
// The holder id is unique per keeper (host, pid, random), so a restarted process
// is a new holder and waits for its predecessor's lease to expire.
// Thread-safe: the packer's packing and compaction threads share one.
class DatasetLeases {
 public:
  DatasetLeases(std::string stage, WorkerLeases leases);
  enum class Hold {
    acquired,  // newly acquired (new token): state left by a previous holder may need recovery
    kept,      // already held and renewed
    busy,      // another worker holds it: skip the dataset this run
  };
  // Acquires the dataset's lease or renews the one held.
  Hold hold(const DatasetRef& ref);
  // Between batches: renews when a third of the ttl has passed since the last
  // renewal. false: the lease is lost (forgotten; the caller must stop the run).
  bool keep_alive(const DatasetRef& ref);
  // Before a write: asks the store whether the lease is still ours (validate),
  // renewing it when due or when it lapsed without a takeover. false: lost.
  bool check(const DatasetRef& ref);
  // The fence, immediately before a commit point: renews now (so the commit has a
  // whole ttl to land). false: lost — the caller must not commit.
  bool fence(const DatasetRef& ref);
  // The fencing token of the held lease; 0 without a lease store.
  uint64_t token(const DatasetRef& ref) const;
  // Releases every held lease (clean stop). Errors are logged, not thrown.
  void release_all();
  const std::string& holder() const { return holder_; }
  bool enabled() const { return static_cast<bool>(leases_.store); }

 private:
  struct Held {
    Lease lease;
    std::chrono::steady_clock::time_point renewed;
  };
  std::string name(const DatasetRef& ref) const;
  bool renew(const DatasetRef& ref, Held& held);
  std::string stage_;
  WorkerLeases leases_;
  std::string holder_;
  // The packing thread and the compaction thread (packer/packer.cpp) share one
  // instance: every public call holds this.
  mutable std::mutex mu_;
  std::map<std::string, Held> held_;  // lease name -> lease
};

}  // namespace bf
