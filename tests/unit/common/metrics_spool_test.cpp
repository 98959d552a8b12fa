#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include "common/metrics.h"
#include "common/crc32c.h"
#include "common/spool.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"

using namespace bf;
namespace fs = std::filesystem;

TEST(Metrics, PrometheusText) {
  MetricsRegistry r;
  r.counter("bf_x_total", "X things", {{"source", "a\"b"}}).inc(3);
  r.counter("bf_x_total", "X things", {{"source", "a\"b"}}).inc();
  r.gauge("bf_y", "Y level").set(-2);
  std::string text = r.prometheus_text();
  EXPECT_NE(text.find("# TYPE bf_x_total counter"), std::string::npos);
  EXPECT_NE(text.find("bf_x_total{source=\"a\\\"b\"} 4"), std::string::npos) << text;
  EXPECT_NE(text.find("bf_y -2"), std::string::npos);
  EXPECT_EQ(r.value("bf_x_total", {{"source", "a\"b"}}), 4);
}

TEST(Metrics, SumOverSeriesWithALabelSubset) {
  MetricsRegistry r;
  r.counter("bf_s_total", "", {{"kind", "a"}, {"ds", "x"}}).inc(2);
  r.counter("bf_s_total", "", {{"kind", "a"}, {"ds", "y"}}).inc(3);
  r.counter("bf_s_total", "", {{"kind", "ab"}, {"ds", "x"}}).inc(100);  // "a" must not match "ab"
  EXPECT_EQ(r.sum("bf_s_total", {{"kind", "a"}}), 5);
  EXPECT_EQ(r.sum("bf_s_total", {{"ds", "x"}, {"kind", "a"}}), 2);  // any order
  EXPECT_EQ(r.sum("bf_s_total", {{"kind", "b"}}), std::nullopt);
  EXPECT_EQ(r.sum("bf_missing_total", {}), std::nullopt);
  EXPECT_EQ(r.sum("bf_s_total", {}), 105);
}

TEST(ComponentContract, CoreSeriesExistAtZeroAndTheHelperFailsAComponentThatCountsNothing) {
  ComponentMetrics m("stage", "t_contract_stage", "one", {{"dataset", "d"}});
  EXPECT_EQ(metrics().sum("bf_component_received_events_total", {{"component_type", "t_contract_stage"}}), 0);
  // Nothing counted yet: the helper must fail it.
  EXPECT_NONFATAL_FAILURE(test::expect_component_contract("stage", "t_contract_stage"), "counted nothing");
  m.received_events.inc(10);
  m.received_bytes.inc(100);
  m.sent_events.inc(9);
  m.sent_bytes.inc(90);
  m.discarded(Discard::unintentional, "malformed").inc();
  m.error("decode", "malformed").inc();
  test::expect_component_contract("stage", "t_contract_stage", {true, true, true, false});
  EXPECT_NONFATAL_FAILURE(test::expect_component_contract("stage", "t_contract_stage", {true, false, false, true}),
                          "intentional discards");
  EXPECT_EQ(metrics().value("bf_component_discarded_events_total",
                            {{"component_kind", "stage"}, {"component_type", "t_contract_stage"}, {"component_id", "one"},
                             {"dataset", "d"}, {"intentional", "false"}, {"reason", "malformed"}}),
            1);
}

class SpoolTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-spool-" + new_ulid());
  void TearDown() override { fs::remove_all(dir); }
};

TEST_F(SpoolTest, PutListReadRemoveSurvivesReopen) {
  std::string a = new_ulid(), b = new_ulid();
  {
    Spool s(dir, 0);
    s.put(b, "{\"m\":2}", "second");
    s.put(a, "{\"m\":1}", std::string("bin\0ary", 7));
    EXPECT_TRUE(s.contains(a));
  }
  Spool s(dir, 0);  // a restart
  auto entries = s.list();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].id, a);  // oldest first
  auto item = s.read(a);
  EXPECT_EQ(item.meta, "{\"m\":1}");
  EXPECT_EQ(item.data, std::string("bin\0ary", 7));
  s.remove(a);
  EXPECT_EQ(s.list().size(), 1u);
  EXPECT_FALSE(s.contains(a));
}

TEST_F(SpoolTest, FullSpoolRejectsAndInterruptedWritesAreIgnored) {
  fs::create_directories(dir);
  {
    std::ofstream junk(dir / ".tmp-left-over");
    junk << "partial";
  }
  Spool s(dir, 100);
  EXPECT_FALSE(fs::exists(dir / ".tmp-left-over"));
  s.put(new_ulid(), "{}", std::string(60, 'x'));
  EXPECT_THROW(s.put(new_ulid(), "{}", std::string(60, 'x')), SpoolFull);
  EXPECT_EQ(s.list().size(), 1u);
  EXPECT_THROW(s.put("../escape", "{}", "x"), std::invalid_argument);
}

TEST_F(SpoolTest, FileErrorsCarryErrnoSoCallersCanTellEmfileFromCorruption) {
  Spool s(dir, 0);
  try {
    s.read(new_ulid());
    FAIL() << "read of a missing entry succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << e.what();
  }
  // A write whose parent is a regular file fails with a system_error too.
  std::ofstream(dir / "blocker") << "x";
  try {
    write_file_durable(dir / "blocker" / "x", "data");
    FAIL() << "write below a regular file succeeded";
  } catch (const std::system_error& e) {
    EXPECT_NE(e.code().value(), 0) << e.what();
  }
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) B.4 test vectors and the usual "123456789" check value.
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  // Chaining equals one pass.
  EXPECT_EQ(crc32c("6789", crc32c("12345")), crc32c("123456789"));
}

TEST_F(SpoolTest, CorruptAndCutEntriesAreQuarantinedTheRestIsRead) {
  const std::string good = new_ulid(), flipped = new_ulid(), cut = new_ulid();
  {
    Spool s(dir, 0);
    s.put(good, "{\"m\":1}", std::string(1000, 'g'));
    s.put(flipped, "{\"m\":2}", std::string(1000, 'f'));
    s.put(cut, "{\"m\":3}", std::string(1000, 'c'));
  }
  auto file = [&](const std::string& id) { return dir / (id + ".batch"); };
  {  // one byte changed in the data, one entry truncated, while stopped
    std::string bytes = read_file(file(flipped));
    bytes[bytes.size() - 10] ^= 0x20;
    std::ofstream(file(flipped), std::ios::binary | std::ios::trunc) << bytes;
    fs::resize_file(file(cut), fs::file_size(file(cut)) - 100);
  }
  auto& quarantined = metrics().counter("bf_spool_quarantined_total", "", {{"spool", dir.filename().string()}});
  const uint64_t before = quarantined.value();
  Spool s(dir, 0);  // the cut entry is found at open
  EXPECT_EQ(quarantined.value(), before + 1);
  EXPECT_TRUE(fs::exists(s.quarantine_dir() / (cut + ".batch")));
  EXPECT_NE(read_file(s.quarantine_dir() / (cut + ".reason")).find("size"), std::string::npos);
  ASSERT_EQ(s.list().size(), 2u);
  EXPECT_EQ(s.read(good).data, std::string(1000, 'g'));
  EXPECT_THROW(s.read(flipped), SpoolCorrupt);  // the flipped one on read
  auto report = s.check(/*repair=*/false);
  EXPECT_EQ(report.entries, 2u);
  EXPECT_EQ(report.corrupt, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checksum"), std::string::npos);
  report = s.check(/*repair=*/true);
  EXPECT_EQ(report.quarantined, 1u);
  EXPECT_EQ(s.list().size(), 1u);
  EXPECT_EQ(quarantined.value(), before + 2);
  EXPECT_EQ(s.bytes(), fs::file_size(file(good)));
}

TEST_F(SpoolTest, EntriesOfTheFirstFormatAreStillRead) {
  const std::string id = new_ulid();
  fs::create_directories(dir);
  std::ofstream(dir / (id + ".batch"), std::ios::binary) << "7\n{\"m\":1}payload";
  Spool s(dir, 0);
  auto item = s.read(id);
  EXPECT_EQ(item.meta, "{\"m\":1}");
  EXPECT_EQ(item.data, "payload");
}

TEST_F(SpoolTest, IntervalFsyncCommitsDeferredEntriesInGroups) {
  SpoolOptions o;
  o.fsync = SpoolFsync::interval;
  o.fsync_interval = std::chrono::hours(1);  // only sync() commits in the first part
  {
    Spool s(dir, o);
    for (int i = 0; i < 5; ++i) s.put("d" + std::to_string(i), "{}", "data " + std::to_string(i), {SpoolCommit::deferred});
    EXPECT_EQ(s.unsynced(), 5u);  // written, not yet fsync'ed
    s.put("now", "{}", "durable", {SpoolCommit::now});
    EXPECT_EQ(s.unsynced(), 5u);  // a `now` put is durable on return under `interval` too
    EXPECT_EQ(s.list().size(), 6u);
    EXPECT_EQ(s.read("d3").data, "data 3");  // readable (and sendable) at once
    s.remove("d0");                          // removed before its commit: skipped
    s.sync();
    EXPECT_EQ(s.unsynced(), 0u);
    s.put("late", "{}", "late", {SpoolCommit::deferred});
  }  // the destructor commits what is left
  {
    o.fsync_interval = std::chrono::milliseconds(20);
    Spool s(dir, o);
    EXPECT_EQ(s.list().size(), 6u);
    EXPECT_EQ(s.read("late").data, "late");
    s.put("bg", "{}", "x", {SpoolCommit::deferred});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (s.unsynced() != 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(s.unsynced(), 0u);  // the background group commit ran
  }
  // Under `always` (the receiver's policy) a deferred request is still durable at once.
  Spool always(dir / "always", 0);
  always.put("x", "{}", "y", {SpoolCommit::deferred});
  EXPECT_EQ(always.unsynced(), 0u);
}

TEST_F(SpoolTest, ReadMetaAndIgnoreLimit) {
  Spool s(dir, 64);
  s.put("a", R"({"tenant":"t"})", "0123456789");
  EXPECT_EQ(s.read_meta("a"), R"({"tenant":"t"})");
  const std::string big(200, 'x');
  EXPECT_THROW(s.put("b", "{}", big), SpoolFull);
  s.put("b", "{}", big, {SpoolCommit::now, true});
  EXPECT_TRUE(s.contains("b"));
  EXPECT_GT(s.bytes(), 64u);
  EXPECT_THROW(s.put("c", "{}", "z"), SpoolFull);  // still over the limit for others
}
