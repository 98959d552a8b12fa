// Scenarios 2 and 3 (docs/reliability.md): the object store goes away under load
// (s3rver frozen or crashed, back after a while); with small spool caps the outage also
// fills the receiver's and the proxy's spools, so senders see backpressure (503 +
// Retry-After for HTTP). Nothing acknowledged is lost or stored twice, nothing is
// dead-lettered, and the backlog drains once the store is back.
#include "fault/harness.h"

namespace bf::fault {
namespace {

void run_outage(const std::string& name, PipelineOptions options, bool crash, bool expect_backpressure) {
  FaultPipeline p(std::move(options));
  p.start_all();
  ASSERT_TRUE(p.wait_all_up()) << p.logs();
  const int seconds = load_seconds();
  const int outage = std::max(5, seconds / 2);
  Load load(p);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  p.s3->begin_outage(crash);
  std::this_thread::sleep_for(std::chrono::seconds(outage));
  const int64_t backpressure_during_outage = load.backpressured.load();
  p.s3->end_outage();
  std::this_thread::sleep_for(std::chrono::seconds(std::max(2, seconds - outage - 2)));
  load.stop();

  Lake lake(p);
  const bool drained = lake.drain(load.http_acked, std::chrono::seconds(180));
  const Stored stored = lake.count();
  report(name, load, stored, "; store down " + std::to_string(outage) + " s");
  ASSERT_TRUE(drained) << "not drained after the outage\n" << lake.leftovers() << p.logs().substr(0, 4000);
  expect_exactly_once(load, stored);
  if (expect_backpressure) {
    EXPECT_GT(backpressure_during_outage, 0) << "the full spool did not push back";
  }
  // No dead letters, nothing quarantined: an outage is a transient error.
  EXPECT_TRUE(lake.store().list("quarantine/", "", 1).objects.empty());
  EXPECT_FALSE(fs::exists(p.dir / "proxy-spool" / "dead"));
  for (auto& [component, proc] : p.procs) EXPECT_TRUE(proc->running()) << component << " exited\n" << p.logs();
}

// The store stops answering (a network partition: requests hang until they time out).
TEST(StoreOutage, NothingLostNothingDuplicatedBacklogDrains) {
  run_outage("store frozen s3/all-in-one", PipelineOptions{"s3", false, "", ""}, false, false);
}

// The store crashes and restarts (connections refused meanwhile).
TEST(StoreOutage, StoreCrashAndRestartLosesNothing) {
  run_outage("store crashed s3/split", PipelineOptions{"s3", true, "", ""}, true, false);
}

TEST(StoreOutage, FullSpoolsPushBackAndRecoverWhenSpaceReturns) {
  run_outage("full spool s3/all-in-one", PipelineOptions{"s3", false, ", max_bytes: 256KiB", ", max_bytes: 256KiB"}, false,
             true);
}

}  // namespace
}  // namespace bf::fault
