// SqliteLeaseStore: one holder at a time, tokens that grow with every
// acquisition, renewals only by the holder, and the same behaviour between
// processes sharing the file (including a holder killed by SIGKILL).
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
#include "storage/lease_store.h"

using namespace bf;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand (unix microseconds).
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> us = std::make_shared<std::atomic<int64_t>>(1'800'000'000'000'000);
  SqliteLeaseStore::Clock fn() const {
    auto p = us;
    return [p] { return p->load(); };
  }
  void advance(std::chrono::milliseconds d) { *us += d.count() * 1000; }
};

class LeaseStoreTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-leases-" + new_ulid());
  std::string path = (dir / "sub" / "leases.db").string();  // the directory is created
  FakeClock clock;
  void TearDown() override { fs::remove_all(dir); }
};

}  // namespace

TEST_F(LeaseStoreTest, OnlyOneOfTwoHoldersGetsTheLease) {
  SqliteLeaseStore store(path, clock.fn());
  auto a = store.acquire("packer/acme/web/logs", "a", 10s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->holder, "a");
  EXPECT_EQ(a->token, 1u);
  EXPECT_FALSE(store.acquire("packer/acme/web/logs", "b", 10s));
  EXPECT_TRUE(store.validate(*a));
  // Another name is another lease.
  auto other = store.acquire("piper/acme/web/logs", "b", 10s);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->token, 1u);
}

TEST_F(LeaseStoreTest, TokenGrowsOnReacquisitionAfterExpiryAndAfterRelease) {
  SqliteLeaseStore store(path, clock.fn());
  auto a = store.acquire("x", "a", 10s);
  ASSERT_TRUE(a);
  clock.advance(9s);
  EXPECT_FALSE(store.acquire("x", "b", 10s));  // not expired yet
  clock.advance(2s);
  EXPECT_FALSE(store.validate(*a));  // expired
  auto b = store.acquire("x", "b", 10s);
  ASSERT_TRUE(b);
  EXPECT_GT(b->token, a->token);
  store.release(*b);
  auto c = store.acquire("x", "c", 10s);  // free at once after a release
  ASSERT_TRUE(c);
  EXPECT_GT(c->token, b->token);
  // The same holder acquiring again is a new acquisition too: its old lease is fenced.
  auto c2 = store.acquire("x", "c", 10s);
  ASSERT_TRUE(c2);
  EXPECT_GT(c2->token, c->token);
  EXPECT_FALSE(store.validate(*c));
  EXPECT_TRUE(store.validate(*c2));
}

TEST_F(LeaseStoreTest, TokensSurviveReopeningTheFile) {
  uint64_t first = 0;
  {
    SqliteLeaseStore store(path, clock.fn());
    auto a = store.acquire("x", "a", 10s);
    ASSERT_TRUE(a);
    first = a->token;
    store.release(*a);
  }
  SqliteLeaseStore store(path, clock.fn());
  auto b = store.acquire("x", "b", 10s);
  ASSERT_TRUE(b);
  EXPECT_GT(b->token, first);
}

TEST_F(LeaseStoreTest, RenewByANonHolderFailsAndByTheHolderExtends) {
  SqliteLeaseStore store(path, clock.fn());
  auto a = store.acquire("x", "a", 10s);
  ASSERT_TRUE(a);
  Lease forged = *a;
  forged.holder = "b";
  EXPECT_FALSE(store.renew(forged, 10s));
  Lease wrong_token = *a;
  wrong_token.token += 1;
  EXPECT_FALSE(store.renew(wrong_token, 10s));
  EXPECT_FALSE(store.validate(forged));
  EXPECT_FALSE(store.validate(wrong_token));

  clock.advance(8s);
  const auto before = a->expires;
  EXPECT_TRUE(store.renew(*a, 10s));
  EXPECT_GT(a->expires, before);
  clock.advance(8s);  // 16 s after acquisition, 8 s after the renewal
  EXPECT_TRUE(store.validate(*a));
  EXPECT_FALSE(store.acquire("x", "b", 10s));
}

TEST_F(LeaseStoreTest, ExpiredLeaseNobodyTookIsRearmedWithTheSameToken) {
  SqliteLeaseStore store(path, clock.fn());
  auto a = store.acquire("x", "a", 1s);
  ASSERT_TRUE(a);
  clock.advance(5s);
  EXPECT_FALSE(store.validate(*a));
  EXPECT_TRUE(store.renew(*a, 10s));  // no other worker acquired it meanwhile
  EXPECT_TRUE(store.validate(*a));
  EXPECT_EQ(a->token, 1u);
}

TEST_F(LeaseStoreTest, ValidateAndRenewFailAfterAnotherHolderTookOver) {
  SqliteLeaseStore store_a(path, clock.fn());  // two connections, as two workers have
  SqliteLeaseStore store_b(path, clock.fn());
  auto a = store_a.acquire("x", "a", 1s);
  ASSERT_TRUE(a);
  clock.advance(2s);
  auto b = store_b.acquire("x", "b", 10s);
  ASSERT_TRUE(b);
  EXPECT_GT(b->token, a->token);
  EXPECT_FALSE(store_a.validate(*a));
  EXPECT_FALSE(store_a.renew(*a, 10s));
  store_a.release(*a);  // a stale release does not free b's lease
  EXPECT_TRUE(store_b.validate(*b));
  EXPECT_FALSE(store_a.acquire("x", "a", 10s));
}

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

TEST_F(LeaseStoreTest, DatasetLeasesHoldKeepFenceAndRelease) {
  auto shared = std::make_shared<SqliteLeaseStore>(path, clock.fn());
  DatasetLeases a("packer", WorkerLeases{shared, 10s});
  DatasetLeases b("packer", WorkerLeases{std::make_shared<SqliteLeaseStore>(path, clock.fn()), 10s});
  EXPECT_NE(a.holder(), b.holder());
  DatasetRef ref{"acme", "web", "logs"};
  EXPECT_EQ(a.hold(ref), DatasetLeases::Hold::acquired);
  EXPECT_EQ(a.hold(ref), DatasetLeases::Hold::kept);
  EXPECT_EQ(b.hold(ref), DatasetLeases::Hold::busy);
  const uint64_t token = a.token(ref);
  EXPECT_GT(token, 0u);
  EXPECT_TRUE(a.fence(ref));
  EXPECT_TRUE(a.keep_alive(ref));
  // a stalls past its ttl and b takes over: a's fence fails.
  clock.advance(11s);
  EXPECT_EQ(b.hold(ref), DatasetLeases::Hold::acquired);
  EXPECT_GT(b.token(ref), token);
  EXPECT_FALSE(a.fence(ref));
  EXPECT_EQ(a.token(ref), 0u);  // forgotten
  EXPECT_EQ(a.hold(ref), DatasetLeases::Hold::busy);
  b.release_all();
  EXPECT_EQ(a.hold(ref), DatasetLeases::Hold::acquired);

  DatasetLeases none("piper", WorkerLeases{});  // no store: a single worker, always holds
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
