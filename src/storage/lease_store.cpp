#include "storage/lease_store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"

namespace bf {

namespace {

constexpr int kBusyTimeoutMs = 10000;

int64_t ttl_us(std::chrono::milliseconds ttl) { return static_cast<int64_t>(ttl.count()) * 1000; }

std::chrono::system_clock::time_point to_time_point(int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

}  // namespace

struct detail::SqliteLeaseDb {
  sqlite3* handle = nullptr;
  std::string path;

  ~SqliteLeaseDb() {
    if (handle) sqlite3_close_v2(handle);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw LeaseStoreError("lease store " + path + ": " + what + ": " + (handle ? sqlite3_errmsg(handle) : "no handle"));
  }

  // Runs SQL without results. The busy handler covers lock waits; a few setup
  // statements (switching to WAL) can still report SQLITE_BUSY at once while
  // another process initialises the file, so those are retried for a while.
  void exec(const char* sql) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    while (true) {
      int rc = sqlite3_exec(handle, sql, nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      fail(sql);
    }
  }
};

namespace {

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    if (sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT) != SQLITE_OK) fail("bind");
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) fail("bind");
    return *this;
  }
  // true: a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("step");
  }
  std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw LeaseStoreError("lease store " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back if not committed (an exception).
class Transaction {
 public:
  explicit Transaction(detail::SqliteLeaseDb& db);
  ~Transaction();
  void commit();

 private:
  detail::SqliteLeaseDb& db_;
  bool done_ = false;
};

}  // namespace

Transaction::Transaction(detail::SqliteLeaseDb& db) : db_(db) {
  // Takes the write lock up front, so two processes never both read "free" and
  // then both write: the second waits (busy timeout) and then sees the first's row.
  if (sqlite3_exec(db_.handle, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) db_.fail("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.handle, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  if (sqlite3_exec(db_.handle, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) db_.fail("COMMIT");
  done_ = true;
}

SqliteLeaseStore::SqliteLeaseStore(const std::string& path, Clock clock)
    : path_(path), clock_(std::move(clock)), db_(std::make_unique<detail::SqliteLeaseDb>()) {
  db_->path = path;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw LeaseStoreError("lease store " + path + ": cannot create " + parent.string() + ": " + ec.message());
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_->handle,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) db_->fail("open");
  sqlite3_busy_timeout(db_->handle, kBusyTimeoutMs);
  db_->exec("PRAGMA journal_mode=WAL");
  // FULL: an acquisition survives a power loss, so a token is never handed out twice.
  db_->exec("PRAGMA synchronous=FULL");
  db_->exec(
      "CREATE TABLE IF NOT EXISTS leases ("
      " name TEXT PRIMARY KEY,"
      " holder TEXT NOT NULL,"       // '' once released
      " token INTEGER NOT NULL,"     // fencing token of the latest acquisition; never decreases
      " expires_us INTEGER NOT NULL"  // unix microseconds
      ") WITHOUT ROWID");
}

SqliteLeaseStore::~SqliteLeaseStore() = default;

int64_t SqliteLeaseStore::now() const { return clock_ ? clock_() : now_us(); }

std::optional<Lease> SqliteLeaseStore::acquire(const std::string& name, const std::string& holder,
                                               std::chrono::milliseconds ttl) {
  if (holder.empty()) throw LeaseStoreError("lease store " + path_ + ": empty holder for lease " + name);
  std::lock_guard lock(mu_);
  Transaction tx(*db_);
  const int64_t now_value = now();
  uint64_t token = 1;
  {
    Stmt read(db_->handle, "SELECT holder, token, expires_us FROM leases WHERE name = ?1", path_);
    read.bind(1, name);
    if (read.step()) {
      const std::string current = read.text(0);
      if (!current.empty() && current != holder && read.integer(2) > now_value) return std::nullopt;
      token = static_cast<uint64_t>(read.integer(1)) + 1;
    }
  }
  const int64_t expires = now_value + ttl_us(ttl);
  Stmt write(db_->handle,
             "INSERT INTO leases (name, holder, token, expires_us) VALUES (?1, ?2, ?3, ?4) "
             "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, "
             "expires_us = excluded.expires_us",
             path_);
  write.bind(1, name).bind(2, holder).bind(3, static_cast<int64_t>(token)).bind(4, expires);
  write.step();
  tx.commit();
  return Lease{name, holder, token, to_time_point(expires)};
}

bool SqliteLeaseStore::renew(Lease& lease, std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  const int64_t expires = now() + ttl_us(ttl);
  // One statement: atomic, and it takes the write lock itself.
  Stmt update(db_->handle,
              "UPDATE leases SET expires_us = ?1 WHERE name = ?2 AND holder = ?3 AND token = ?4", path_);
  update.bind(1, expires).bind(2, lease.name).bind(3, lease.holder).bind(4, static_cast<int64_t>(lease.token));
  update.step();
  if (sqlite3_changes(db_->handle) != 1) return false;
  lease.expires = to_time_point(expires);
  return true;
}

void SqliteLeaseStore::release(const Lease& lease) {
  std::lock_guard lock(mu_);
  Stmt update(db_->handle,
              "UPDATE leases SET holder = '', expires_us = 0 WHERE name = ?1 AND holder = ?2 AND token = ?3", path_);
  update.bind(1, lease.name).bind(2, lease.holder).bind(3, static_cast<int64_t>(lease.token));
  update.step();
}

bool SqliteLeaseStore::validate(const Lease& lease) {
  std::lock_guard lock(mu_);
  Stmt read(db_->handle,
            "SELECT 1 FROM leases WHERE name = ?1 AND holder = ?2 AND token = ?3 AND expires_us > ?4", path_);
  read.bind(1, lease.name).bind(2, lease.holder).bind(3, static_cast<int64_t>(lease.token)).bind(4, now());
  return read.step();
}

LeaseOptions parse_lease_options(const ConfigNode& section) {
  LeaseOptions o;
  o.path = section.str("path", o.path);
  if (o.path.empty()) section.fail("path", "must not be empty");
  o.ttl = section.duration("ttl", o.ttl);
  if (o.ttl < std::chrono::seconds(1)) section.fail("ttl", "must be at least 1s (longer than one run's work)");
  return o;
}

// --- DatasetLeases -------------------------------------------------------------

namespace {

std::string make_holder(const std::string& stage) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return stage + "@" + (host[0] ? host : "localhost") + ":" + std::to_string(::getpid()) + ":" + new_ulid();
}

}  // namespace

DatasetLeases::DatasetLeases(std::string stage, WorkerLeases leases)
    : stage_(std::move(stage)), leases_(std::move(leases)), holder_(make_holder(stage_)) {}

std::string DatasetLeases::name(const DatasetRef& ref) const { return stage_ + "/" + ref.str(); }

bool DatasetLeases::renew(const DatasetRef& ref, Held& held) {
  if (leases_.store->renew(held.lease, leases_.ttl)) {
    held.renewed = std::chrono::steady_clock::now();
    return true;
  }
  spdlog::warn("{}: dataset {}: lease lost (token {}): another worker took it over", stage_, ref.str(),
               held.lease.token);
  metrics().counter("bf_lease_lost_total", "Leases a worker found taken over by another worker",
                    {{"stage", stage_}, {"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
  held_.erase(name(ref));
  return false;
}

DatasetLeases::Hold DatasetLeases::hold(const DatasetRef& ref) {
  std::lock_guard lock(mu_);
  const std::string key = name(ref);
  auto it = held_.find(key);
  if (!leases_.store) {
    if (it != held_.end()) return Hold::kept;
    held_.emplace(key, Held{Lease{key, holder_, 0, {}}, std::chrono::steady_clock::now()});
    return Hold::acquired;
  }
  if (it != held_.end() && renew(ref, it->second)) return Hold::kept;
  auto lease = leases_.store->acquire(key, holder_, leases_.ttl);
  if (!lease) return Hold::busy;
  spdlog::info("{}: dataset {}: acquired lease (token {})", stage_, ref.str(), lease->token);
  metrics().counter("bf_lease_acquired_total", "Dataset leases acquired (each with a new fencing token)",
                    {{"stage", stage_}, {"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
  held_[key] = Held{std::move(*lease), std::chrono::steady_clock::now()};
  return Hold::acquired;
}

bool DatasetLeases::keep_alive(const DatasetRef& ref) {
  std::lock_guard lock(mu_);
  if (!leases_.store) return true;
  auto it = held_.find(name(ref));
  if (it == held_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second.renewed < leases_.ttl / 3) return true;
  return renew(ref, it->second);
}

bool DatasetLeases::check(const DatasetRef& ref) {
  std::lock_guard lock(mu_);
  if (!leases_.store) return true;
  auto it = held_.find(name(ref));
  if (it == held_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second.renewed < leases_.ttl / 3 && leases_.store->validate(it->second.lease))
    return true;
  return renew(ref, it->second);
}

bool DatasetLeases::fence(const DatasetRef& ref) {
  std::lock_guard lock(mu_);
  if (!leases_.store) return true;
  auto it = held_.find(name(ref));
  if (it == held_.end()) return false;
  return renew(ref, it->second);
}

uint64_t DatasetLeases::token(const DatasetRef& ref) const {
  std::lock_guard lock(mu_);
  auto it = held_.find(name(ref));
  return it == held_.end() ? 0 : it->second.lease.token;
}

void DatasetLeases::release_all() {
  std::lock_guard lock(mu_);
  if (leases_.store) {
    for (const auto& [key, held] : held_) {
      try {
        leases_.store->release(held.lease);
        spdlog::info("{}: released lease {} (token {})", stage_, key, held.lease.token);
      } catch (const std::exception& e) {
        spdlog::warn("{}: releasing lease {}: {} (it expires by itself)", stage_, key, e.what());
      }
    }
  }
  held_.clear();
}

}  // namespace bf
