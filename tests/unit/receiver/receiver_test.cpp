#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/metrics.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"
#include "fixtures/net_helpers.h"
#include "net/http_client.h"
#include "receiver/receiver.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"

using namespace bf;
namespace fs = std::filesystem;

namespace {

const std::string kKey = "receiver-test-key-0123456789";
const std::string kOtherTenantKey = "receiver-other-key-0123456789";

class ReceiverTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-receiver-" + new_ulid());
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  std::shared_ptr<LocalStore> store;
  std::unique_ptr<Receiver> receiver;
  HttpClient http;

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "web", "logs"}, {}});
    catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "db", "logs"}, {}});
    catalog->add_key(kKey, KeyGrant{"acme", "web"});
    catalog->add_key(kOtherTenantKey, KeyGrant{"acme", "db"});
    store = std::make_shared<LocalStore>(dir / "store");
    start();
  }
  void TearDown() override {
    receiver.reset();
    fs::remove_all(dir);
  }
  void start(uint64_t spool_max = 0, uint64_t max_body = 1 << 20) {
    ReceiverOptions o;
    o.http.listen = "127.0.0.1:0";
    o.http.max_body_bytes = max_body;
    o.max_decompressed_bytes = 4 << 20;
    o.spool_dir = (dir / "spool").string();
    o.spool_max_bytes = spool_max;
    receiver = std::make_unique<Receiver>(o, catalog, store);
    receiver->start();
  }
  std::string url(const std::string& tenant = "web", const std::string& dataset = "logs") {
    return "http://127.0.0.1:" + std::to_string(receiver->port()) + "/api/v1/ingest/" + tenant + "/" + dataset;
  }
  HttpResult post(const std::string& body, Headers headers = {}, const std::string& target = "") {
    if (!headers.count("Authorization")) headers["Authorization"] = "Bearer " + kKey;
    return http.send("POST", target.empty() ? url() : target, headers, body);
  }
  std::vector<ObjectInfo> raw_objects() { return store->list_all("raw/"); }
  // The store's root becomes a file, so uploads fail: batches stay in the spool.
  void restart_with_unreachable_store() {
    receiver.reset();
    fs::path blocked = dir / "blocked";
    fs::remove_all(blocked);  // a file already when called again
    store = std::make_shared<LocalStore>(blocked);
    fs::remove_all(blocked);
    std::ofstream(blocked) << "x";
    start();
  }
};

TEST_F(ReceiverTest, AcceptedBatchLandsInRawUnderItsBatchId) {
  std::string id = new_ulid();
  std::string body = compress(Encoding::zstd, "{\"n\":1}\n{\"n\":2,\"_time\":\"2026-01-01T00:00:00Z\"}\n");
  auto r = post(body, {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto answer = boost::json::parse(r.body);
  EXPECT_EQ(answer.at("batch_id").as_string(), id);
  EXPECT_EQ(answer.at("accepted").as_int64(), 2);
  std::string key = raw_key(DatasetRef{"acme", "web", "logs"}, id);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return store->head(key).has_value(); }));
  auto events = decode_batch(store->get(key));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].contains("_received"));
  EXPECT_EQ(events[0].at("_time"), events[0].at("_received"));  // defaulted
  EXPECT_EQ(events[1].at("_time").as_string(), "2026-01-01T00:00:00Z");  // kept
  EXPECT_EQ(events[0].at("_source").as_string(), "http-ingest");
  EXPECT_TRUE(test::eventually(std::chrono::seconds(5), [&] { return receiver->spooled_batches() == 0; }));
}

TEST_F(ReceiverTest, RetriedBatchIsStoredOnce) {
  std::string id = new_ulid();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", id}}).status, 200);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  auto objects = raw_objects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(batch_id_of(objects[0].key), id);
}

TEST_F(ReceiverTest, JsonArrayAndGzipAreAccepted) {
  auto r = post(compress(Encoding::gzip, "[{\"a\":1},{\"a\":2},{\"a\":3}]"), {{"Content-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("accepted").as_int64(), 3);
}

TEST_F(ReceiverTest, RejectionsHaveTheDocumentedStatusesAndStoreNothing) {
  auto& malformed = metrics().counter("bf_receiver_rejected_total", "", {{"reason", "malformed"}});
  uint64_t malformed_before = malformed.value();

  EXPECT_EQ(post("{\"a\":1}\n", {{"Authorization", "Bearer wrong-key-0123456789"}}).status, 401);
  EXPECT_EQ(http.send("POST", url(), {}, "{\"a\":1}\n").status, 401);
  EXPECT_EQ(post("{\"a\":1}\n", {{"Authorization", "Bearer " + kOtherTenantKey}}).status, 403);
  EXPECT_EQ(post("{\"a\":1}\n", {}, url("web", "nope")).status, 404);
  EXPECT_EQ(post("{\"a\":1}\n", {}, url("Web", "logs")).status, 400);
  auto bad_line = post("{\"a\":1}\n{\"a\":\n", {});
  EXPECT_EQ(bad_line.status, 400);
  EXPECT_NE(bad_line.body.find("line 2"), std::string::npos) << bad_line.body;
  EXPECT_EQ(post("{\"a\":\"\xc3\x28\"}\n").status, 400);  // invalid UTF-8
  EXPECT_EQ(post("[1, 2]").status, 400);
  EXPECT_EQ(post("{\"a\":1}\n", {{"X-Batch-Id", "not-a-ulid"}}).status, 400);
  EXPECT_EQ(post("garbage", {{"Content-Encoding", "zstd"}}).status, 400);
  EXPECT_EQ(post("{\"a\":1}\n", {{"Content-Encoding", "br"}}).status, 415);
  EXPECT_EQ(post(std::string(2 << 20, ' ')).status, 413);  // body over max_body
  std::string bomb = compress(Encoding::zstd, std::string(16 << 20, ' '));
  EXPECT_EQ(post(bomb, {{"Content-Encoding", "zstd"}}).status, 413);  // decompressed over the limit

  EXPECT_GE(malformed.value(), malformed_before + 3);
  EXPECT_EQ(receiver->spooled_batches(), 0u);
  EXPECT_TRUE(raw_objects().empty());
}

TEST_F(ReceiverTest, FullSpoolAnswers503WithRetryAfter) {
  receiver.reset();
  start(/*spool_max=*/64);
  auto r = post("{\"message\":\"" + std::string(200, 'x') + "\"}\n");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(r.headers.count("Retry-After"));
}

TEST_F(ReceiverTest, RestartResumesUploadsLeftInTheSpool) {
  receiver.reset();
  // The store's root becomes a file, so uploads fail: batches stay in the spool.
  fs::path blocked = dir / "blocked";
  store = std::make_shared<LocalStore>(blocked);
  fs::remove_all(blocked);
  std::ofstream(blocked) << "x";
  start();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post("{\"n\":" + std::to_string(i) + "}\n").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(receiver->spooled_batches(), 3u);
  receiver.reset();

  store = std::make_shared<LocalStore>(dir / "store");
  start();
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_EQ(raw_objects().size(), 3u);
}

TEST_F(ReceiverTest, LagIsTheAgeOfTheOldestBatchNotYetUploadedAcrossRestarts) {
  EXPECT_EQ(receiver->lag_ms(), 0);  // nothing spooled
  restart_with_unreachable_store();
  ASSERT_EQ(post("{\"n\":1}\n").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_EQ(post("{\"n\":2}\n").status, 200);  // younger: the oldest decides
  const int64_t before_restart = receiver->lag_ms();
  EXPECT_GE(before_restart, 400);
  EXPECT_LT(before_restart, 60000);
  EXPECT_EQ(metrics().value("bf_receiver_lag_milliseconds"), before_restart);
  // After a restart the batches still count from when they were accepted, not from the start.
  restart_with_unreachable_store();
  EXPECT_GE(receiver->lag_ms(), before_restart);
  receiver.reset();
  store = std::make_shared<LocalStore>(dir / "store");
  start();
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_EQ(receiver->lag_ms(), 0);
}

TEST_F(ReceiverTest, ServesHealthAndMetrics) {
  std::string base = "http://127.0.0.1:" + std::to_string(receiver->port());
  EXPECT_EQ(http.send("GET", base + "/healthz", {}, "").status, 200);
  EXPECT_EQ(http.send("GET", base + "/readyz", {}, "").status, 200);
  ASSERT_EQ(post("{\"n\":1}\n").status, 200);
  auto m = http.send("GET", base + "/metrics", {}, "");
  EXPECT_NE(m.body.find("bf_receiver_events_total{tenant=\"web\",dataset=\"logs\"}"), std::string::npos) << m.body;
}

}  // namespace

// --- idempotency key and per-event limits -------------------------------------

namespace {
std::string ulid_at_ms(int64_t ms) {
  // A ULID whose time is `ms`, random part taken from a fresh ULID.
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string id = new_ulid();
  for (int i = 9; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  return id;
}
}  // namespace

TEST_F(ReceiverTest, SameBatchIdFromTwoTenantsIsTwoBatches) {
  const std::string id = new_ulid();
  auto a = post("{\"who\":\"web\"}\n", {{"X-Batch-Id", id}});
  auto b = post("{\"who\":\"db\"}\n", {{"X-Batch-Id", id}, {"Authorization", "Bearer " + kOtherTenantKey}}, url("db", "logs"));
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(b.status, 200) << b.body;
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  auto web = decode_batch(store->get(raw_key(DatasetRef{"acme", "web", "logs"}, id)));
  auto db = decode_batch(store->get(raw_key(DatasetRef{"acme", "db", "logs"}, id)));
  ASSERT_EQ(web.size(), 1u);
  ASSERT_EQ(db.size(), 1u);
  EXPECT_EQ(web[0].at("who"), "web");
  EXPECT_EQ(db[0].at("who"), "db");
}

TEST_F(ReceiverTest, ReusedBatchIdWithOtherContentIsRefusedNeverOverwrites) {
  const std::string id = new_ulid();
  auto& conflicts = metrics().counter("bf_receiver_rejected_total", "", {{"reason", "batch_id_conflict"}});
  const uint64_t before = conflicts.value();
  ASSERT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", id}}).status, 200);
  // While the first is still in the spool, and again after it reached the store.
  auto spooled = post("{\"n\":2}\n", {{"X-Batch-Id", id}});
  EXPECT_EQ(spooled.status, 409) << spooled.body;
  EXPECT_NE(spooled.body.find("different content"), std::string::npos) << spooled.body;
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_EQ(post("{\"n\":3}\n", {{"X-Batch-Id", id}}).status, 409);
  auto events = decode_batch(store->get(raw_key(DatasetRef{"acme", "web", "logs"}, id)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("n"), 1);
  EXPECT_EQ(conflicts.value(), before + 2);
}

TEST_F(ReceiverTest, RetryAfterUploadIsAnsweredDuplicateAndNotStoredAgain) {
  const std::string id = new_ulid();
  auto first = post("{\"n\":1}\n", {{"X-Batch-Id", id}});
  ASSERT_EQ(first.status, 200);
  EXPECT_FALSE(boost::json::parse(first.body).at("duplicate").as_bool());
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  // The batch moved on (piper took it from raw/): only the ledger remembers it.
  store->remove(raw_key(DatasetRef{"acme", "web", "logs"}, id));
  auto again = post("{\"n\":1}\n", {{"X-Batch-Id", id}});
  ASSERT_EQ(again.status, 200) << again.body;
  auto body = boost::json::parse(again.body);
  EXPECT_TRUE(body.at("duplicate").as_bool());
  EXPECT_EQ(body.at("accepted").as_int64(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(receiver->spooled_batches(), 0u);
  EXPECT_TRUE(raw_objects().empty());
}

TEST_F(ReceiverTest, CommittedBatchLeftInTheSpoolIsNotUploadedAgain) {
  // Killed after the packer committed the batch but before the spool entry was removed.
  restart_with_unreachable_store();
  const std::string id = new_ulid();
  ASSERT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", id}}).status, 200);
  receiver.reset();
  store = std::make_shared<LocalStore>(dir / "store");
  put_batch_record(*store, DatasetRef{"acme", "web", "logs"}, id, BatchRecord{"", new_ulid()});
  start();
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_TRUE(raw_objects().empty());
}

TEST_F(ReceiverTest, BatchIdsWithAbsurdTimesAreRefused) {
  auto future = post("{\"n\":1}\n", {{"X-Batch-Id", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"}});
  EXPECT_EQ(future.status, 400);
  EXPECT_NE(future.body.find("max_batch_id_skew"), std::string::npos) << future.body;
  EXPECT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", "00000000000000000000000000"}}).status, 400);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", ulid_at_ms(now_ms + 2 * 3600 * 1000)}}).status, 400);
  EXPECT_EQ(post("{\"n\":1}\n", {{"X-Batch-Id", ulid_at_ms(now_ms - 30LL * 24 * 3600 * 1000)}}).status, 200);
}

TEST_F(ReceiverTest, OversizedEventsAreRefusedWithTheLimitNamed) {
  receiver.reset();
  start(0, 16 << 20);
  // One object with far too many keys (the event that once stalled the packer).
  std::string wide = "{";
  for (int i = 0; i < 20000; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  wide += "}\n";
  auto r = post("{\"ok\":1}\n" + wide);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("event 2"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("max_event_fields"), std::string::npos) << r.body;
  auto big = post("{\"m\":\"" + std::string(2 << 20, 'x') + "\"}\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("max_event_bytes"), std::string::npos) << big.body;
  auto big_array = post("[{\"m\":\"" + std::string(2 << 20, 'x') + "\"}]");
  EXPECT_EQ(big_array.status, 413);
  std::string deep(40, '[');
  deep = "{\"d\":" + deep + std::string(40, ']') + "}\n";
  EXPECT_EQ(post(deep).status, 400);
  EXPECT_EQ(receiver->spooled_batches(), 0u);
  EXPECT_TRUE(raw_objects().empty());
}

TEST_F(ReceiverTest, CorruptSpoolEntriesAreQuarantinedTheRestDelivered) {
  restart_with_unreachable_store();
  for (int i = 0; i < 4; ++i) ASSERT_EQ(post("{\"n\":" + std::to_string(i) + "}\n").status, 200);
  receiver.reset();
  // While stopped: one entry gets a flipped byte, one is cut short.
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir / "spool"))
    if (e.path().extension() == ".batch") entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 4u);
  std::string bytes = read_file(entries[0]);
  bytes[bytes.size() - 3] ^= 0x01;
  std::ofstream(entries[0], std::ios::binary | std::ios::trunc) << bytes;
  fs::resize_file(entries[1], fs::file_size(entries[1]) - 5);

  store = std::make_shared<LocalStore>(dir / "store");
  start();
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_EQ(raw_objects().size(), 2u);
  size_t quarantined = 0;
  for (const auto& e : fs::directory_iterator(dir / "spool" / "quarantine")) quarantined += e.path().extension() == ".batch";
  EXPECT_EQ(quarantined, 2u);
  EXPECT_EQ(post("{\"n\":9}\n").status, 200);  // and it keeps serving
}

// --- stored as sent -------------------------------------------------------------

namespace {
std::string skippable_frame(uint32_t magic, std::string_view content) {
  std::string f;
  for (int i = 0; i < 4; ++i) f += static_cast<char>((magic >> (8 * i)) & 0xff);
  const uint32_t n = static_cast<uint32_t>(content.size());
  for (int i = 0; i < 4; ++i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  return f + std::string(content);
}
}  // namespace

TEST_F(ReceiverTest, AZstdBodyIsStoredByteForByteAsSentWithTheReceiveMetadataBeside) {
  const std::string id = new_ulid();
  const std::string ndjson =
      "{\"_time\":\"2026-01-01T00:00:00Z\",\"_received\":\"2026-01-01T00:00:01Z\",\"_source\":\"syslog-tcp:5514\",\"m\":1}\n";
  const std::string body = compress(Encoding::zstd, ndjson, 19);  // a level the receiver never uses
  ASSERT_EQ(post(body, {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}}).status, 200);
  const std::string key = raw_key(DatasetRef{"acme", "web", "logs"}, id);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return store->head(key).has_value(); }));
  const std::string object = store->get(key);
  BatchObject split = split_batch_object(object);
  EXPECT_EQ(split.payload, body);  // not recompressed
  EXPECT_EQ(split.envelope.at("source").as_string(), "http-ingest");
  EXPECT_TRUE(std::string_view(split.envelope.at("peer").as_string()).starts_with("127.0.0.1:"));
  EXPECT_TRUE(parse_rfc3339(split.envelope.at("received").as_string(), true).has_value());
  EXPECT_EQ(split.envelope.at("events").as_int64(), 1);
  EXPECT_TRUE(split.envelope.at("complete").as_bool());  // proxy-style events: nothing to default
  // The shape, from the validation pass, for the piper's pass-through (same as the DOM's).
  BatchShape expected;
  expected.add_ndjson(ndjson);
  EXPECT_EQ(split.envelope.at("shape"), boost::json::value(expected.to_json()));
  auto events = decode_batch(object);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("_source").as_string(), "syslog-tcp:5514");
  EXPECT_FALSE(events[0].contains("_peer"));
  // The ledger digest is still that of the decompressed content: a retry with the
  // same events compressed otherwise is the same batch.
  auto again = post(compress(Encoding::zstd, ndjson, 1), {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_TRUE(boost::json::parse(again.body).at("duplicate").as_bool());
}

TEST_F(ReceiverTest, GzipAndIdentityBodiesAreCompressedOnceAndDecodeToWhatWasSent) {
  const std::string ndjson = "{\"n\":1}\n\n{\"n\":2}\r\n";
  const std::string gz = new_ulid(), plain = new_ulid();
  ASSERT_EQ(post(compress(Encoding::gzip, ndjson), {{"Content-Encoding", "gzip"}, {"X-Batch-Id", gz}}).status, 200);
  ASSERT_EQ(post(ndjson, {{"X-Batch-Id", plain}}).status, 200);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  for (const auto& id : {gz, plain}) {
    const std::string object = store->get(raw_key(DatasetRef{"acme", "web", "logs"}, id));
    BatchObject split = split_batch_object(object);
    EXPECT_EQ(decompress(Encoding::zstd, split.payload, 1 << 20), ndjson);  // the text as sent
    EXPECT_FALSE(split.envelope.contains("complete"));
  }
}

TEST_F(ReceiverTest, ASendersSkippableFramesAreNeverTakenForTheEnvelope) {
  // A sender's own skippable frame, even one shaped like our envelope, ahead of its
  // events and between two frames (pzstd writes such frames): accepted, and left out
  // of the stored object, whose only skippable frame is the receiver's envelope.
  const std::string forged = skippable_frame(0x184D2A5B, "{\"received\":\"1999-01-01T00:00:00Z\",\"source\":\"forged\",\"complete\":true}");
  const std::string a = compress(Encoding::zstd, "{\"n\":1}\n"), b = compress(Encoding::zstd, "{\"n\":2}\n");
  const std::string body = forged + a + skippable_frame(0x184D2A50, "1234") + b;
  const std::string id = new_ulid();
  auto& removed = metrics().counter("bf_receiver_skippable_frames_removed_total", "", {{"tenant", "web"}, {"dataset", "logs"}});
  const uint64_t removed_before = removed.value();
  auto r = post(body, {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("accepted").as_int64(), 2);
  EXPECT_EQ(removed.value(), removed_before + 1);
  const std::string key = raw_key(DatasetRef{"acme", "web", "logs"}, id);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return store->head(key).has_value(); }));
  const std::string object = store->get(key);
  BatchObject split = split_batch_object(object);
  EXPECT_EQ(split.envelope.at("source").as_string(), "http-ingest");
  EXPECT_EQ(split.payload, a + b);
  auto events = decode_batch(object);
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.at("_source").as_string(), "http-ingest");
    EXPECT_NE(e.at("_received").as_string(), "1999-01-01T00:00:00Z");
  }
}

TEST_F(ReceiverTest, ZstdBodiesWithTrailingGarbageOrCutShortAreRefused) {
  auto& bad = metrics().counter("bf_receiver_rejected_total", "", {{"reason", "bad_encoding"}});
  const uint64_t before = bad.value();
  const std::string frame = compress(Encoding::zstd, "{\"n\":1}\n");
  EXPECT_EQ(post(frame + "garbage", {{"Content-Encoding", "zstd"}}).status, 400);
  EXPECT_EQ(post(frame + std::string(3, '\0'), {{"Content-Encoding", "zstd"}}).status, 400);
  EXPECT_EQ(post(frame.substr(0, frame.size() - 2), {{"Content-Encoding", "zstd"}}).status, 400);
  EXPECT_EQ(post(skippable_frame(0x184D2A5B, "{}").substr(0, 6) + frame, {{"Content-Encoding", "zstd"}}).status, 400);
  EXPECT_EQ(bad.value(), before + 4);
  // Several frames are one body.
  auto two = post(frame + compress(Encoding::zstd, "{\"n\":2}\n"), {{"Content-Encoding", "zstd"}});
  ASSERT_EQ(two.status, 200) << two.body;
  EXPECT_EQ(boost::json::parse(two.body).at("accepted").as_int64(), 2);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return receiver->spooled_batches() == 0; }));
  EXPECT_EQ(raw_objects().size(), 1u);
}

// --- the component contract (docs/metrics.md) --------------------------------------

TEST_F(ReceiverTest, ContractCountsBatchesInUploadsOutRefusalsAsErrorsAndRetriesAsIntentionalDiscards) {
  const auto before = test::ContractCounts::of("stage", "receiver", "receiver");
  const std::string id = new_ulid();
  const std::string good = compress(Encoding::zstd, "{\"n\":1}\n{\"n\":2}\n");
  const std::string bad = "{\"n\":1}\n{\"n\":\n";
  const std::string intruder = "{\"n\":3}\n";
  ASSERT_EQ(post(good, {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}}).status, 200);
  ASSERT_EQ(post(good, {{"Content-Encoding", "zstd"}, {"X-Batch-Id", id}}).status, 200);  // a retry: not stored again
  ASSERT_EQ(post(bad).status, 400);
  ASSERT_EQ(post(intruder, {{"Authorization", "Bearer wrong-key-0123456789"}}).status, 401);
  const std::string key = raw_key(DatasetRef{"acme", "web", "logs"}, id);
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] { return store->head(key).has_value(); }));
  ASSERT_TRUE(test::eventually(std::chrono::seconds(10), [&] {
    return (test::ContractCounts::of("stage", "receiver", "receiver") - before).sent_events == 2;
  }));
  const auto c = test::ContractCounts::of("stage", "receiver", "receiver") - before;
  EXPECT_EQ(c.received_events, 4);  // both copies of the batch; the refused bodies' events are the senders'
  EXPECT_EQ(c.received_bytes, int64_t(2 * good.size() + bad.size() + intruder.size()));
  EXPECT_EQ(c.sent_events, 2);
  EXPECT_EQ(c.sent_bytes, int64_t(store->head(key)->size));
  EXPECT_EQ(c.intentional, 2);  // the retry's events
  EXPECT_EQ(c.unintentional, 0);
  EXPECT_EQ(c.errors, 2);
  test::expect_component_contract("stage", "receiver", {.errors = true, .intentional_discards = true});
}
