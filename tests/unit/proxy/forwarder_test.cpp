#include "proxy/forwarder.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <set>

#include "common/spool.h"
#include "common/ulid.h"
#include "test_util.h"

namespace bf {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

ForwarderOptions options_for(const std::string& url, const test::TempDir& dir) {
  ForwarderOptions o;
  o.receiver_urls = {url};
  o.ingest_key = "k3y";
  o.spool_dir = dir.path() / "spool";
  o.spool_max_bytes = 0;
  o.concurrency = 2;
  o.http.max_retries = 0;  // let the forwarder's own retry loop do the work
  o.http.timeout = 5000ms;
  o.backoff_base = 20ms;
  o.backoff_max = 100ms;
  return o;
}

ProxyBatch make(const std::string& tenant, const std::string& dataset, int first, int n) {
  std::vector<Event> events;
  for (int i = first; i < first + n; ++i) {
    Event e;
    e["n"] = i;
    e["message"] = "hello " + std::to_string(i);
    events.push_back(std::move(e));
  }
  return Batcher::make_batch(tenant, dataset, to_ndjson(events), events.size());
}

TEST(Forwarder, PostsSpooledBatchPerProtocol) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  const int64_t sent0 = test::metric("bf_proxy_batches_sent_total");
  const int64_t events0 = test::metric("bf_proxy_events_sent_total");
  Forwarder f(options_for(rx.url() + "/", dir));  // trailing slash is tolerated
  f.start();
  ProxyBatch b = make("acme", "fw-basic", 0, 3);
  f.submit(b);
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() == 1 && f.queued() == 0; }));
  auto r = rx.accepted()[0];
  EXPECT_EQ(r.tenant, "acme");
  EXPECT_EQ(r.dataset, "fw-basic");
  EXPECT_EQ(r.authorization, "Bearer k3y");
  EXPECT_EQ(r.content_type, "application/x-ndjson");
  EXPECT_EQ(r.content_encoding, "zstd");
  EXPECT_EQ(r.batch_id, b.id);
  EXPECT_TRUE(is_valid_ulid(r.batch_id));
  ASSERT_TRUE(r.decode_error.empty()) << r.decode_error;
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[2].at("message"), "hello 2");
  f.stop();
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);  // removed after the 200
  EXPECT_EQ(test::metric("bf_proxy_batches_sent_total") - sent0, 1);
  EXPECT_EQ(test::metric("bf_proxy_events_sent_total") - events0, 3);
}

TEST(Forwarder, Retries503WithoutLossOrDuplicates) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  rx.fail_next(503, 3);
  Forwarder f(options_for(rx.url(), dir));
  f.start();
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ProxyBatch b = make("acme", "fw-retry", i * 10, 10);
    ids.insert(b.id);
    f.submit(b);
  }
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() >= 5 && f.queued() == 0; }));
  f.stop();
  auto all = rx.requests();
  EXPECT_EQ(all.size(), 8u);  // 3 refused + 5 accepted
  int refused = 0;
  std::map<std::string, int> accepted_per_id;
  std::set<int64_t> numbers;
  for (auto& r : all) {
    EXPECT_TRUE(ids.count(r.batch_id)) << r.batch_id;  // only our batch ids, retried as-is
    if (r.status == 503) ++refused;
    if (r.status == 200) {
      ++accepted_per_id[r.batch_id];
      for (auto& e : r.events) numbers.insert(e.at("n").as_int64());
    }
  }
  EXPECT_EQ(refused, 3);
  EXPECT_EQ(accepted_per_id.size(), 5u);
  for (auto& [id, n] : accepted_per_id) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(numbers.size(), 50u);
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, Permanent400MovesBatchToDeadLetters) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  rx.fail_next(400, 1);
  const int64_t dead0 = test::metric("bf_proxy_batches_dead_total", {{"code", "400"}});
  auto o = options_for(rx.url(), dir);
  o.concurrency = 1;
  Forwarder f(o);
  f.start();
  ProxyBatch bad = make("acme", "fw-dead", 0, 2);
  f.submit(bad);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  ProxyBatch good = make("acme", "fw-dead", 100, 1);
  f.submit(good);
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() == 1 && f.queued() == 0; }));
  f.stop();
  auto all = rx.requests();
  ASSERT_EQ(all.size(), 2u);  // the 400 was not retried
  EXPECT_EQ(all[0].batch_id, bad.id);
  EXPECT_EQ(all[0].status, 400);
  EXPECT_EQ(all[1].batch_id, good.id);
  EXPECT_EQ(test::metric("bf_proxy_batches_dead_total", {{"code", "400"}}) - dead0, 1);
  // Kept for the operator, out of the queue.
  const auto dead = f.dead_dir();
  EXPECT_EQ(dead, dir.path() / "spool" / "dead");
  ASSERT_TRUE(std::filesystem::exists(dead / (bad.id + ".ndjson.zst")));
  EXPECT_EQ(read_file(dead / (bad.id + ".ndjson.zst")), bad.data);
  auto info = json::parse(read_file(dead / (bad.id + ".json"))).as_object();
  EXPECT_EQ(info.at("status"), "400");
  EXPECT_EQ(info.at("meta").at("tenant"), "acme");
  EXPECT_EQ(info.at("meta").at("dataset"), "fw-dead");
  EXPECT_NE(std::string(info.at("response").as_string()).find("scripted failure 400"), std::string::npos);
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, TransportErrorKeepsBatchInSpool) {
  test::TempDir dir;
  const int64_t retries0 = test::metric("bf_proxy_send_retries_total", {{"reason", "transport"}});
  Forwarder f(options_for("http://127.0.0.1:" + std::to_string(test::dead_port()), dir));
  f.start();
  ProxyBatch b = make("acme", "fw-down", 0, 1);
  f.submit(b);
  ASSERT_TRUE(test::wait_until(
      [&] { return test::metric("bf_proxy_send_retries_total", {{"reason", "transport"}}) - retries0 >= 2; }));
  f.stop();
  EXPECT_EQ(f.queued(), 1u);
  Spool spool(dir.path() / "spool", 0);
  ASSERT_TRUE(spool.contains(b.id));
  auto item = spool.read(b.id);
  EXPECT_EQ(item.data, b.data);
  auto meta = json::parse(item.meta).as_object();
  EXPECT_EQ(meta.at("tenant"), "acme");
  EXPECT_EQ(meta.at("dataset"), "fw-down");
}

TEST(Forwarder, SendsLeftoverBatchesOldestFirstOnStart) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  std::vector<std::string> ids;
  {
    auto o = options_for(rx.url(), dir);
    Forwarder previous(o);  // never started: batches stay in the spool
    for (int i = 0; i < 3; ++i) {
      ProxyBatch b = make("acme", "fw-order", i, 1);
      ids.push_back(b.id);
      previous.submit(b);
    }
  }
  auto o = options_for(rx.url(), dir);
  o.concurrency = 1;
  Forwarder f(o);
  EXPECT_EQ(f.queued(), 3u);
  f.start();
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() == 3; }));
  f.stop();
  auto got = rx.accepted();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i].batch_id, ids[i]);
}

TEST(Forwarder, SpoolFullDropsBatcherBatchesAndCounts) {
  test::TempDir dir;
  auto o = options_for("http://127.0.0.1:1", dir);
  o.spool_max_bytes = 64;  // smaller than any batch
  Forwarder f(o);
  ProxyBatch b = make("acme", "fw-full", 0, 20);
  EXPECT_THROW(f.submit(b), SpoolFull);
  const int64_t dropped0 = test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}});
  f.submit_or_drop(b);
  EXPECT_EQ(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 20);
  EXPECT_EQ(f.queued(), 0u);
}

}  // namespace
}  // namespace bf
