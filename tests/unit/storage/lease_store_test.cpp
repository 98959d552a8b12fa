// SqliteLeaseStore: the LeaseStore contract (fixtures/lease_store_conformance.h:
// one holder at a time, tokens that grow with every acquisition, renewals only by
// the holder), and the same behaviour between processes sharing the file
// (including a holder killed by SIGKILL).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <filesystem>
#include <thread>

#include "common/catalog.h"
#include "common/config.h"
#include "common/ulid.h"
#include "fixtures/lease_store_conformance.h"
#include "storage/lease_store.h"

using namespace bf;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using bf::test::LeaseStoreConformance;

namespace {

class LeaseStoreTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-leases-" + new_ulid());
  std::string path = (dir / "sub" / "leases.db").string();  // the directory is created
  void TearDown() override { fs::remove_all(dir); }
};

// A fresh SQLite file (in a directory the store creates); removed with the last opener.
test::LeaseOpener sqlite_leases() {
  struct TempDir {
    fs::path path = fs::temp_directory_path() / ("bf-leases-" + new_ulid());
    ~TempDir() { fs::remove_all(path); }
  };
  auto dir = std::make_shared<TempDir>();
  const std::string path = (dir->path / "sub" / "leases.db").string();
  return [dir, path](test::LeaseClock clock) { return std::make_shared<SqliteLeaseStore>(path, std::move(clock)); };
}

}  // namespace

// The contract every LeaseStore keeps (the PostgreSQL one runs it in unit_control).
INSTANTIATE_TEST_SUITE_P(Sqlite, LeaseStoreConformance, ::testing::Values(test::LeaseBackend{"sqlite", sqlite_leases}),
                         test::LeaseBackendName());

namespace {

// Forks a child that runs `body` with its own store and exits with its result.
pid_t fork_child(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (...) {
      rc = 99;
    }
    ::_exit(rc);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_F(LeaseStoreTest, TwoProcessesContendAndExactlyOneWins) {
  { SqliteLeaseStore init(path); }  // the file exists before the race (both may also create it)
  constexpr int kRounds = 20;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  // Child: waits for the start signal, then tries every name; exit code = names won.
  pid_t child = fork_child([&] {
    ::close(go[1]);
    char c;
    if (::read(go[0], &c, 1) != 1) return 98;
    SqliteLeaseStore store(path);
    int won = 0;
    // Opposite order to the parent's, so the two meet on the same names.
    for (int i = kRounds - 1; i >= 0; --i) won += store.acquire("name-" + std::to_string(i), "child", 30s) ? 1 : 0;
    return won;
  });
  ASSERT_GT(child, 0);
  ::close(go[0]);
  SqliteLeaseStore store(path);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  int parent_won = 0;
  for (int i = 0; i < kRounds; ++i) parent_won += store.acquire("name-" + std::to_string(i), "parent", 30s) ? 1 : 0;
  const int child_won = wait_exit(child);
  ASSERT_LE(child_won, kRounds) << "child failed";
  EXPECT_EQ(parent_won + child_won, kRounds) << "each name has exactly one winner";
  // And each name shows exactly one holder with token 1.
  for (int i = 0; i < kRounds; ++i) {
    const std::string name = "name-" + std::to_string(i);
    Lease p{name, "parent", 1, {}}, c{name, "child", 1, {}};
    EXPECT_NE(store.validate(p), store.validate(c)) << name;
  }
}

TEST_F(LeaseStoreTest, HolderKilledMidLeaseTheOtherAcquiresAfterTheTtl) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = fork_child([&] {
    ::close(ready[0]);
    SqliteLeaseStore store(path);
    auto lease = store.acquire("x", "doomed", 1500ms);
    if (!lease) return 1;
    if (::write(ready[1], "y", 1) != 1) return 2;
    while (true) ::pause();  // holds the lease (and the open database) until killed
  });
  ASSERT_GT(child, 0);
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  const auto acquired_by_child = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ::waitpid(child, nullptr, 0);

  SqliteLeaseStore store(path);
  EXPECT_FALSE(store.acquire("x", "survivor", 10s));  // still within its ttl
  std::optional<Lease> lease;
  while (!lease && std::chrono::steady_clock::now() - acquired_by_child < 10s) {
    std::this_thread::sleep_for(50ms);
    lease = store.acquire("x", "survivor", 10s);
  }
  ASSERT_TRUE(lease);
  EXPECT_GE(std::chrono::steady_clock::now() - acquired_by_child, 1400ms);
  EXPECT_EQ(lease->token, 2u);
}

TEST(DatasetLeases, WithoutAStoreASingleWorkerAlwaysHolds) {
  DatasetLeases none("piper", WorkerLeases{});
  DatasetRef ref{"acme", "web", "logs"};
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.hold(ref), DatasetLeases::Hold::acquired);
  EXPECT_EQ(none.hold(ref), DatasetLeases::Hold::kept);
  EXPECT_TRUE(none.fence(ref));
}

TEST(LeaseOptions, ParsesTheLeasesSection) {
  auto root = ConfigNode::parse("leases: {path: /var/lib/bf/leases.db, ttl: 45s}\n", "test.yaml");
  LeaseOptions o = parse_lease_options(root.child("leases"));
  EXPECT_EQ(o.path, "/var/lib/bf/leases.db");
  EXPECT_EQ(o.ttl, 45s);
  auto defaults = ConfigNode::parse("{}\n", "test.yaml");
  EXPECT_EQ(parse_lease_options(defaults.child("leases")).path, "./data/leases.db");
  EXPECT_EQ(parse_lease_options(defaults.child("leases")).ttl, 30s);
  auto tiny = ConfigNode::parse("leases: {ttl: 100ms}\n", "test.yaml");
  EXPECT_THROW(parse_lease_options(tiny.child("leases")), ConfigError);
}
