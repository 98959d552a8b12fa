// Scenario 4 (docs/reliability.md): the disk fills up under load. Everything the
// pipeline writes — both spools, the local object store, the packer's temp files, the
// lease database — is on one small tmpfs; a ballast file takes the rest of its space
// for a while and is then removed. Meanwhile writes fail with ENOSPC: the receiver
// answers 503 (never 200 for a batch it could not store), no process exits, nothing
// is quarantined or dead-lettered; once space returns, the backlog drains and every
// acknowledged event is in Parquet exactly once.
#include <fcntl.h>
#include <unistd.h>

#include "fault/harness.h"

namespace bf::fault {
namespace {

// Writes `path` until the file system is full; returns the bytes written.
size_t fill_disk(const fs::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  const std::string chunk(1 << 20, 'x');
  size_t written = 0;
  while (true) {
    ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  return written;
}

TEST(FullDisk, WritesFailWithEnospcThenEverythingAcknowledgedDrainsOnce) {
  PipelineOptions options{"local", false, "", ""};
  options.disk_bytes = 96u << 20;
  FaultPipeline p(options);
  if (!p.mounted) GTEST_SKIP() << "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)";
  p.start_all();
  ASSERT_TRUE(p.wait_all_up()) << p.logs();
  const int seconds = load_seconds();
  const int full_for = std::max(5, seconds / 2);

  Load load(p);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const fs::path ballast = p.dir / "ballast";
  const int64_t backpressured_before = load.backpressured.load();
  const size_t ballast_bytes = fill_disk(ballast);
  ASSERT_GT(ballast_bytes, 0u);
  // Keep it full: whatever the pipeline frees meanwhile (deleted inputs), the ballast takes.
  const auto full_until = std::chrono::steady_clock::now() + std::chrono::seconds(full_for);
  size_t topped_up = 0;
  while (std::chrono::steady_clock::now() < full_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    topped_up += fill_disk(p.dir / ("ballast-" + std::to_string(topped_up)));
  }
  const int64_t backpressured_while_full = load.backpressured.load() - backpressured_before;
  for (const auto& e : fs::directory_iterator(p.dir))
    if (e.path().filename().string().rfind("ballast", 0) == 0) fs::remove(e.path());
  std::this_thread::sleep_for(std::chrono::seconds(std::max(2, seconds - full_for - 2)));
  load.stop();

  Lake lake(p);
  const bool drained = lake.drain(load.http_acked, std::chrono::seconds(180));
  // A full disk is not a crash: TCP syslog is flow-controlled (the proxy stops reading
  // while it cannot spool), so every line sent arrives — give the last ones time to pass.
  eventually(std::chrono::seconds(60), [&] { return lake.count().syslog_distinct >= load.syslog_sent.load(); },
             std::chrono::seconds(1));
  const Stored stored = lake.count();
  report("full disk local/all-in-one", load, stored,
         "; disk full " + std::to_string(full_for) + " s, " + std::to_string(backpressured_while_full) +
             " 503/429 meanwhile");
  ASSERT_TRUE(drained) << "not drained after space returned\n" << lake.leftovers() << p.logs().substr(0, 6000);
  expect_exactly_once(load, stored);
  EXPECT_EQ(stored.syslog_distinct, load.syslog_sent.load()) << "TCP syslog lines lost while the disk was full";
  EXPECT_GT(backpressured_while_full, 0) << "the receiver acknowledged batches while the disk was full";
  EXPECT_TRUE(lake.store().list("quarantine/", "", 1).objects.empty()) << lake.leftovers();
  EXPECT_FALSE(fs::exists(p.dir / "proxy-spool" / "dead"));
  EXPECT_EQ(lake.uncommitted_parts(), 0u);
  for (auto& [component, proc] : p.procs) EXPECT_TRUE(proc->running()) << component << " exited\n" << p.logs();
}

}  // namespace
}  // namespace bf::fault
