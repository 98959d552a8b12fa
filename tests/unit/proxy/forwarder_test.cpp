#include "proxy/forwarder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <thread>

#include "common/spool.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"
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

// Every submitted id was stored exactly once across the receivers, and nothing else was.
void expect_each_stored_once(const std::set<std::string>& ids, const std::vector<const test::ScriptedReceiver*>& rxs) {
  std::map<std::string, int> total;
  for (auto* rx : rxs)
    for (auto& [id, n] : rx->stored()) total[id] += n;
  EXPECT_EQ(total.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(total[id], 1) << id;
}

TEST(Forwarder, FailsOverToSecondReceiverWhenFirstIsDown) {
  test::TempDir dir;
  test::ScriptedReceiver second([](const auto&) { return 200; });
  const int64_t failovers0 = test::metric("bf_proxy_failovers_total");
  const std::string down = "http://127.0.0.1:" + std::to_string(test::dead_port());
  auto o = options_for(down, dir);
  o.receiver_urls = {down, second.url()};
  o.backoff_base = 2000ms;  // the dead receiver stays skipped for the whole test
  o.backoff_max = 5000ms;
  Forwarder f(o);
  f.start();
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ProxyBatch b = make("acme", "fw-failover", i * 5, 5);
    ids.insert(b.id);
    f.submit(b);
  }
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  expect_each_stored_once(ids, {&second});
  EXPECT_EQ(second.stored_events(), 100u);
  for (auto& s : second.seen()) EXPECT_TRUE(ids.count(s.batch_id)) << s.batch_id;
  EXPECT_GE(test::metric("bf_proxy_failovers_total") - failovers0, 1);
  EXPECT_EQ(test::metric("bf_proxy_receiver_healthy", {{"receiver", down}}), 0);
  EXPECT_EQ(test::metric("bf_proxy_receiver_healthy", {{"receiver", second.url()}}), 1);
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, FailsOverOn503WithTheSameBatchId) {
  test::TempDir dir;
  std::atomic<bool> first_ok{false};
  test::ScriptedReceiver first([&](const auto&) { return first_ok ? 200 : 503; }, "1");
  test::ScriptedReceiver second([](const auto&) { return 200; });
  auto o = options_for(first.url(), dir);
  o.receiver_urls = {first.url(), second.url()};
  o.concurrency = 1;
  Forwarder f(o);
  f.start();
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ProxyBatch b = make("acme", "fw-503", i, 1);
    ids.insert(b.id);
    f.submit(b);
  }
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  // The first receiver refused the first batch; that batch (same id) is at the second.
  auto refused = first.seen();
  ASSERT_GE(refused.size(), 1u);
  EXPECT_EQ(refused[0].status, 503);
  EXPECT_EQ(second.stored().count(refused[0].batch_id), 1u);
  // Retry-After: 1 keeps the first receiver skipped: far fewer attempts than batches.
  EXPECT_LT(refused.size(), 5u);
  expect_each_stored_once(ids, {&first, &second});

  // After its Retry-After the first receiver is preferred again.
  first_ok = true;
  std::this_thread::sleep_for(1100ms);
  ProxyBatch later = make("acme", "fw-503", 100, 1);
  f.submit(later);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  EXPECT_EQ(first.stored().count(later.id), 1u);
  EXPECT_EQ(second.stored().count(later.id), 0u);
}

TEST(Forwarder, NeverGivesUpAndHonoursRetryAfter) {
  test::TempDir dir;
  // a always answers 429 with Retry-After: 1; b fails three times with 500, then accepts.
  test::ScriptedReceiver a([&](const auto&) { return 429; }, "1");
  std::atomic<int> b_calls{0};
  test::ScriptedReceiver b([&](const auto&) { return ++b_calls <= 3 ? 500 : 200; });
  auto o = options_for(a.url(), dir);
  o.receiver_urls = {a.url(), b.url()};
  o.concurrency = 1;
  o.backoff_base = 20ms;
  o.backoff_max = 50ms;
  Forwarder f(o);
  f.start();
  ProxyBatch batch = make("acme", "fw-ra", 0, 3);
  f.submit(batch);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  // a was asked once and then left alone for its Retry-After (b's short backoffs
  // came round several times meanwhile).
  ASSERT_EQ(a.seen().size(), 1u);
  EXPECT_EQ(a.seen()[0].status, 429);
  auto bs = b.seen();
  ASSERT_EQ(bs.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bs[i].status, 500);
  EXPECT_EQ(bs[3].status, 200);
  for (auto& s : a.seen()) EXPECT_EQ(s.batch_id, batch.id);
  for (auto& s : bs) EXPECT_EQ(s.batch_id, batch.id);
  expect_each_stored_once({batch.id}, {&a, &b});
}

TEST(Forwarder, RetryAfterDelaysTheNextAttempt) {
  test::TempDir dir;
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> at;
  test::ScriptedReceiver rx(
      [&](const auto&) {
        std::lock_guard lock(mu);
        at.push_back(std::chrono::steady_clock::now());
        return at.size() == 1 ? 429 : 200;
      },
      "1");
  auto o = options_for(rx.url(), dir);
  o.backoff_base = 10ms;
  o.backoff_max = 20ms;  // Retry-After is honoured even when longer than backoff_max
  Forwarder f(o);
  f.start();
  f.submit(make("acme", "fw-ra2", 0, 1));
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  std::lock_guard lock(mu);
  ASSERT_EQ(at.size(), 2u);
  EXPECT_GE(at[1] - at[0], 950ms);
}

TEST(Forwarder, DuplicateAnswerCountsAsDelivered) {
  test::TempDir dir;
  test::ScriptedReceiver rx([](const auto&) { return 200; });
  ProxyBatch b = make("acme", "fw-dup", 0, 2);
  auto o = options_for(rx.url(), dir);
  {
    Forwarder first(o);
    first.start();
    first.submit(b);
    ASSERT_TRUE(test::wait_until([&] { return first.queued() == 0; }));
  }
  // The same batch spooled again (e.g. the proxy crashed before removing it).
  const int64_t dup0 = test::metric("bf_proxy_batches_duplicate_total");
  Forwarder f(o);
  f.start();
  f.submit(b);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  EXPECT_EQ(test::metric("bf_proxy_batches_duplicate_total") - dup0, 1);
  EXPECT_EQ(rx.seen().size(), 2u);
  EXPECT_EQ(rx.stored().at(b.id), 1);
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, PausesDatasetOn401WhileOthersFlow) {
  test::TempDir dir;
  std::atomic<bool> accept_a{false};
  test::ScriptedReceiver rx([&](const test::ScriptedReceiver::Seen& s) {
    return s.dataset == "fw-pause-a" && !accept_a ? 401 : 200;
  });
  const Labels a_labels{{"tenant", "acme"}, {"dataset", "fw-pause-a"}};
  const int64_t paused0 = test::metric("bf_proxy_paused_datasets");
  const int64_t pauses0 = test::metric("bf_proxy_dataset_pauses_total", {{"code", "401"}});
  const int64_t dead0 = test::metric("bf_proxy_batches_dead_total", {{"code", "401"}});
  auto o = options_for(rx.url(), dir);
  o.permanent_error_retry = 200ms;
  Forwarder f(o);
  f.start();
  std::set<std::string> a_ids, b_ids;
  for (int i = 0; i < 3; ++i) {
    ProxyBatch a = make("acme", "fw-pause-a", i, 1);
    a_ids.insert(a.id);
    f.submit(a);
    ProxyBatch b = make("acme", "fw-pause-b", i, 1);
    b_ids.insert(b.id);
    f.submit(b);
  }
  // B flows although A is refused.
  ASSERT_TRUE(test::wait_until([&] { return rx.stored().size() == 3; }));
  ASSERT_TRUE(test::wait_until([&] { return test::metric("bf_proxy_dataset_paused", a_labels) == 1; }));
  for (auto& [id, n] : rx.stored()) EXPECT_TRUE(b_ids.count(id)) << id;
  EXPECT_EQ(test::metric("bf_proxy_paused_datasets") - paused0, 1);
  EXPECT_EQ(f.paused(), (std::vector<std::pair<std::string, std::string>>{{"acme", "fw-pause-a"}}));
  // Later B batches are not held up by A either.
  ProxyBatch b_late = make("acme", "fw-pause-b", 50, 1);
  f.submit(b_late);
  ASSERT_TRUE(test::wait_until([&] { return rx.stored().count(b_late.id) == 1; }));

  // A's batches stay in the spool; only one probe per permanent_error_retry.
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(f.queued(), 3u);
  size_t a_requests = 0;
  for (auto& s : rx.seen())
    if (s.dataset == "fw-pause-a") {
      ++a_requests;
      EXPECT_EQ(s.status, 401);
      EXPECT_TRUE(a_ids.count(s.batch_id));
    }
  EXPECT_GE(a_requests, 2u);   // the first refusal(s) and at least one probe
  EXPECT_LE(a_requests, 8u);   // ~2 in flight at pause + ~4 probes in 700ms, not a busy loop
  EXPECT_EQ(test::metric("bf_proxy_dataset_pauses_total", {{"code", "401"}}) - pauses0, 1);  // logged once
  EXPECT_EQ(test::metric("bf_proxy_batches_dead_total", {{"code", "401"}}) - dead0, 0);
  EXPECT_EQ(test::count_files(f.dead_dir(), ".json"), 0u);
  Spool spool(dir.path() / "spool", 0);
  for (const auto& id : a_ids) EXPECT_TRUE(spool.contains(id)) << id;

  // The operator fixes it: the next probe succeeds and the held batches go out.
  accept_a = true;
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }, 5000ms));
  f.stop();
  for (const auto& id : a_ids) EXPECT_EQ(rx.stored().count(id), 1u) << id;
  EXPECT_EQ(test::metric("bf_proxy_dataset_paused", a_labels), 0);
  EXPECT_EQ(test::metric("bf_proxy_paused_datasets") - paused0, 0);
  EXPECT_TRUE(f.paused().empty());
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, ForbiddenAndUnknownDatasetAlsoPause) {
  for (int status : {403, 404}) {
    test::TempDir dir;
    std::atomic<bool> ok{false};
    test::ScriptedReceiver rx([&](const auto&) { return ok ? 200 : status; });
    auto o = options_for(rx.url(), dir);
    o.permanent_error_retry = 100ms;
    Forwarder f(o);
    f.start();
    ProxyBatch b = make("acme", "fw-pause-" + std::to_string(status), 0, 1);
    f.submit(b);
    ASSERT_TRUE(test::wait_until([&] { return !f.paused().empty(); })) << status;
    EXPECT_EQ(f.queued(), 1u);
    EXPECT_EQ(test::count_files(f.dead_dir(), ".json"), 0u);
    ok = true;
    ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; })) << status;
    EXPECT_TRUE(f.paused().empty());
    EXPECT_EQ(rx.stored().count(b.id), 1u);
  }
}

TEST(Forwarder, PermanentRejectionsGoToDeadLetters) {
  test::TempDir dir;
  std::map<std::string, int> answer;  // dataset -> status
  answer["fw-dead-400"] = 400;
  answer["fw-dead-413"] = 413;
  answer["fw-dead-409"] = 409;
  test::ScriptedReceiver rx([&](const test::ScriptedReceiver::Seen& s) {
    auto it = answer.find(s.dataset);
    return it == answer.end() ? 200 : it->second;
  });
  std::map<int, int64_t> dead0;
  for (int code : {400, 413, 409})
    dead0[code] = test::metric("bf_proxy_batches_dead_total", {{"code", std::to_string(code)}});
  Forwarder f(options_for(rx.url(), dir));
  f.start();
  std::map<int, ProxyBatch> bad;
  for (int code : {400, 413, 409}) {
    bad[code] = make("acme", "fw-dead-" + std::to_string(code), 0, 1);
    f.submit(bad[code]);
  }
  ProxyBatch good = make("acme", "fw-dead-ok", 0, 1);
  f.submit(good);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  EXPECT_EQ(rx.seen().size(), 4u);  // none of the rejected ones was retried
  EXPECT_EQ(rx.stored().count(good.id), 1u);
  EXPECT_TRUE(f.paused().empty());
  for (auto& [code, b] : bad) {
    EXPECT_EQ(test::metric("bf_proxy_batches_dead_total", {{"code", std::to_string(code)}}) - dead0[code], 1);
    ASSERT_TRUE(std::filesystem::exists(f.dead_dir() / (b.id + ".ndjson.zst"))) << code;
    EXPECT_EQ(read_file(f.dead_dir() / (b.id + ".ndjson.zst")), b.data);
    auto info = json::parse(read_file(f.dead_dir() / (b.id + ".json"))).as_object();
    EXPECT_EQ(info.at("status").as_string(), std::to_string(code));
  }
  EXPECT_EQ(test::count_files(dir.path() / "spool", ".batch"), 0u);
}

TEST(Forwarder, SubmitOrWaitBlocksUntilTheSpoolHasRoom) {
  test::TempDir dir;
  std::atomic<bool> up{false};
  test::ScriptedReceiver rx([&](const auto&) { return up ? 200 : 503; });
  auto o = options_for(rx.url(), dir);
  o.spool_max_bytes = 1;  // set below, once a batch's size is known
  ProxyBatch first = make("acme", "fw-wait", 0, 20);
  ProxyBatch second = make("acme", "fw-wait", 20, 20);
  {
    // Size of one entry: store it in a throwaway spool.
    test::TempDir probe;
    Forwarder sizing(options_for(rx.url(), probe));
    sizing.submit(first);
    o.spool_max_bytes = sizing.spool().bytes() + 10;  // room for exactly one batch
  }
  Forwarder f(o);
  f.start();
  f.submit_or_wait(first);  // fits
  std::atomic<bool> returned{false};
  std::thread t([&] {
    f.submit_or_wait(second);
    returned = true;
  });
  ASSERT_TRUE(test::wait_until([&] { return f.blocked_submitters() == 1; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(returned);
  EXPECT_EQ(f.queued(), 1u);
  up = true;  // the first batch is delivered, which frees room
  ASSERT_TRUE(test::wait_until([&] { return returned.load(); }));
  t.join();
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  expect_each_stored_once({first.id, second.id}, {&rx});
  EXPECT_EQ(f.blocked_submitters(), 0u);
}

TEST(Forwarder, ReleaseStoresWaitingBatchesOverTheLimit) {
  test::TempDir dir;
  auto o = options_for("http://127.0.0.1:" + std::to_string(test::dead_port()), dir);
  ProxyBatch first = make("acme", "fw-release", 0, 20);
  ProxyBatch second = make("acme", "fw-release", 20, 20);
  o.spool_max_bytes = 100;
  Forwarder f(o);
  f.submit_or_wait(first);  // bigger than the limit, but the spool is empty: stored
  EXPECT_EQ(f.queued(), 1u);
  std::atomic<bool> returned{false};
  std::thread t([&] {
    f.submit_or_wait(second);
    returned = true;
  });
  ASSERT_TRUE(test::wait_until([&] { return f.blocked_submitters() == 1; }));
  const int64_t dropped0 = test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}});
  f.release_waiters();  // shutdown
  ASSERT_TRUE(test::wait_until([&] { return returned.load(); }));
  t.join();
  EXPECT_EQ(f.queued(), 2u);  // kept, not dropped
  EXPECT_EQ(test::metric("bf_proxy_dropped_total", {{"reason", "spool_full"}}) - dropped0, 0);
}

// --- the component contract (docs/metrics.md) --------------------------------------

TEST(ForwarderContract, CountsBatchesInAcknowledgedOutRetriesAsErrorsAndDeadLettersAsDiscards) {
  test::TempDir dir;
  test::RecordingReceiver rx;
  auto o = options_for(rx.url(), dir);
  o.component_id = "contract-fwd";
  o.concurrency = 1;
  Forwarder f(o);
  EXPECT_TRUE(metrics().sum("bf_component_received_events_total", {{"component_id", "contract-fwd"}}).has_value());
  f.start();
  rx.fail_next(503, 1);  // retried: an error, then delivered
  ProxyBatch good = make("acme", "fw-contract", 0, 3);
  f.submit(good);
  ASSERT_TRUE(test::wait_until([&] { return rx.accepted().size() == 1 && f.queued() == 0; }));
  rx.fail_next(400, 1);  // never acceptable: to dead/, its events discarded
  ProxyBatch bad = make("acme", "fw-contract", 3, 2);
  f.submit(bad);
  ASSERT_TRUE(test::wait_until([&] { return f.queued() == 0; }));
  f.stop();
  const auto c = test::ContractCounts::of("sink", "forwarder", "contract-fwd");
  EXPECT_EQ(c.received_events, 5);
  EXPECT_EQ(c.received_bytes, int64_t(good.ndjson_bytes + bad.ndjson_bytes));
  EXPECT_EQ(c.sent_events, 3);
  EXPECT_EQ(c.sent_bytes, int64_t(good.data.size()));  // the wire bytes of the one acknowledged batch
  EXPECT_EQ(c.unintentional, 2);
  EXPECT_EQ(test::contract_count("discarded_events", "sink", "forwarder", "contract-fwd", {{"reason", "dead_letter"}}), 2);
  EXPECT_EQ(test::contract_count("errors", "sink", "forwarder", "contract-fwd", {{"stage", "send"}, {"error_type", "http_503"}}), 1);
  EXPECT_EQ(test::contract_count("errors", "sink", "forwarder", "contract-fwd", {{"stage", "send"}, {"error_type", "http_400"}}), 1);
  test::expect_component_contract("sink", "forwarder", {.errors = true, .unintentional_discards = true}, "contract-fwd");
}

TEST(ForwarderContract, ABestEffortBatchThatFindsTheSpoolFullIsADiscard) {
  test::TempDir dir;
  auto o = options_for("http://127.0.0.1:" + std::to_string(test::dead_port()), dir);
  o.component_id = "contract-fwd-full";
  o.spool_max_bytes = 10;
  Forwarder f(o);
  f.submit_or_drop(make("acme", "fw-contract-full", 0, 4));
  EXPECT_EQ(f.queued(), 0u);
  const auto c = test::ContractCounts::of("sink", "forwarder", "contract-fwd-full");
  EXPECT_EQ(c.received_events, 4);
  EXPECT_EQ(c.sent_events, 0);
  EXPECT_EQ(test::contract_count("discarded_events", "sink", "forwarder", "contract-fwd-full",
                                 {{"intentional", "false"}, {"reason", "spool_full"}}),
            4);
  EXPECT_EQ(test::contract_count("errors", "sink", "forwarder", "contract-fwd-full", {{"stage", "spool"}}), 1);
  test::expect_component_contract("sink", "forwarder", {.sends = false, .errors = true, .unintentional_discards = true},
                                  "contract-fwd-full");
}

}  // namespace
}  // namespace bf
