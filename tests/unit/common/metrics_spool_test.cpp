#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/metrics.h"
#include "common/spool.h"
#include "common/ulid.h"

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
