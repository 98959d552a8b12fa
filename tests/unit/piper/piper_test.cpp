#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/compression.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "fixtures/component_contract.h"
#include "fixtures/hooked_store.h"
#include "piper/piper.h"
#include "piper/transform.h"
#include "storage/layout.h"
#include "storage/lease_store.h"
#include "storage/local_store.h"

using namespace bf;
namespace fs = std::filesystem;

class PiperTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-piper-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir);
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef ref{"acme", "web", "logs"};
  void TearDown() override { fs::remove_all(dir); }
};

TEST_F(PiperTest, AppliesPipelineKeepsBatchIdAndRemovesRaw) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::parse(R"([{"add": {"field": "env", "value": "prod"}},
                                                              {"remove": {"field": "secret"}}])").as_array()});
  Piper piper(PiperOptions{}, catalog, store);
  std::string a = new_ulid(), b = new_ulid();
  store->put(raw_key(ref, a), encode_batch({Event{{"n", 1}, {"secret", "x"}}, Event{{"n", 2}}}));
  store->put(raw_key(ref, b), encode_batch({Event{{"n", 3}}}));
  EXPECT_EQ(piper.run_once(), 2u);
  EXPECT_TRUE(store->list_all("raw/").empty());
  auto out = decode_batch(store->get(processed_key(ref, a)));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].at("env").as_string(), "prod");
  EXPECT_FALSE(out[0].contains("secret"));
  EXPECT_EQ(decode_batch(store->get(processed_key(ref, b))).size(), 1u);
  EXPECT_EQ(piper.run_once(), 0u);  // nothing left
}

TEST_F(PiperTest, CorruptRawObjectIsQuarantinedAndOthersProceed) {
  catalog->add_dataset(DatasetInfo{ref, {}});
  PiperOptions o;
  // Wide enough for a loaded machine and a store whose mtimes are whole seconds.
  o.quarantine_after = std::chrono::milliseconds(1500);
  Piper piper(o, catalog, store);
  std::string bad = new_ulid(), good = new_ulid();
  store->put(raw_key(ref, bad), "this is not zstd");
  store->put(raw_key(ref, good), encode_batch({Event{{"n", 1}}}));
  EXPECT_EQ(piper.run_once(), 1u);
  // Young: perhaps an aborted upload its writer is about to redo — left alone.
  EXPECT_TRUE(store->head(raw_key(ref, bad)).has_value());
  EXPECT_FALSE(store->head("quarantine/" + raw_key(ref, bad)).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  EXPECT_EQ(piper.run_once(), 0u);
  EXPECT_TRUE(store->head("quarantine/" + raw_key(ref, bad)).has_value());
  EXPECT_TRUE(store->head(processed_key(ref, good)).has_value());
  EXPECT_TRUE(store->list_all("raw/").empty());
}

TEST_F(PiperTest, InvalidPipelineFailsAtStartNamingTheDataset) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::parse(R"([{"add": {"field": "x"}}])").as_array()});
  try {
    Piper piper(PiperOptions{}, catalog, store);
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_NE(std::string(e.what()).find("acme/web/logs"), std::string::npos) << e.what();
  }
}

// --- leases --------------------------------------------------------------------

TEST_F(PiperTest, TwoPipersOnOneDatasetProcessEachRawBatchOnce) {
  catalog->add_dataset(DatasetInfo{ref, {}});
  const std::string lease_file = (dir / "leases.db").string();
  auto make = [&] {
    return std::make_unique<Piper>(PiperOptions{}, catalog, store,
                                   WorkerLeases{std::make_shared<SqliteLeaseStore>(lease_file), std::chrono::seconds(5)});
  };
  auto a = make(), b = make();
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t busy_before = metrics().value("bf_piper_lease_busy_total", labels);
  constexpr int kBatches = 200;
  std::atomic<bool> producing{true};
  std::thread producer([&] {
    for (int i = 0; i < kBatches; ++i) {
      store->put(raw_key(ref, new_ulid()), encode_batch({Event{{"n", i}}}));
      if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    producing = false;
  });
  // Both run concurrently; each now and then stops (releasing its lease), so the
  // dataset changes hands while raw batches keep arriving.
  std::atomic<size_t> processed{0};
  auto worker = [&](Piper& p) {
    for (int i = 0; producing || !store->list_all(raw_prefix(ref)).empty(); ++i) {
      processed += p.run_once();
      if (i % 3 == 2) p.stop();
    }
  };
  std::thread ta(worker, std::ref(*a)), tb(worker, std::ref(*b));
  producer.join();
  ta.join();
  tb.join();
  EXPECT_EQ(processed.load(), static_cast<size_t>(kBatches)) << "a raw batch was processed twice (or lost)";
  EXPECT_EQ(store->list_all(processed_prefix(ref)).size(), static_cast<size_t>(kBatches));
  EXPECT_TRUE(store->list_all(raw_prefix(ref)).empty());
  EXPECT_GT(metrics().value("bf_piper_lease_busy_total", labels), busy_before) << "the pipers never contended";
}

TEST_F(PiperTest, PiperThatLostItsLeaseLeavesTheRawInputToTheNewHolder) {
  catalog->add_dataset(DatasetInfo{ref, {}});
  const std::string lease_file = (dir / "leases.db").string();
  auto hooked = std::make_shared<bf::test::HookedStore>(store);
  Piper piper(PiperOptions{}, catalog, hooked,
              WorkerLeases{std::make_shared<SqliteLeaseStore>(lease_file), std::chrono::seconds(30)});
  // A piper an hour ahead takes the lease right after the first processed/ write.
  SqliteLeaseStore intruder_store(lease_file, [] { return now_us() + 3600LL * 1000000; });
  std::optional<Lease> intruder;
  hooked->after_put = [&](const std::string& key) {
    if (!intruder && key.rfind("processed/", 0) == 0)
      intruder = intruder_store.acquire("piper/acme/web/logs", "intruder", std::chrono::seconds(30));
  };
  const std::string first = new_ulid(), second = new_ulid();
  store->put(raw_key(ref, first), encode_batch({Event{{"n", 1}}}));
  store->put(raw_key(ref, second), encode_batch({Event{{"n", 2}}}));
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  const int64_t fenced_before = metrics().value("bf_piper_fenced_total", labels);
  EXPECT_EQ(piper.run_once(), 0u);
  ASSERT_TRUE(intruder);
  EXPECT_EQ(metrics().value("bf_piper_fenced_total", labels), fenced_before + 1);
  // The raw input was not deleted, the second batch not touched: the new holder
  // processes both (the first into the same processed/ key).
  EXPECT_TRUE(store->head(raw_key(ref, first)));
  EXPECT_TRUE(store->head(raw_key(ref, second)));
  EXPECT_FALSE(store->head(processed_key(ref, second)));
  EXPECT_EQ(piper.run_once(), 0u);  // busy
  intruder_store.release(*intruder);
  EXPECT_EQ(piper.run_once(), 2u);
  EXPECT_TRUE(store->list_all(raw_prefix(ref)).empty());
}

TEST_F(PiperTest, ProcessedObjectsCarryTheBatchShapeInTheirEnvelope) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::parse(R"([{"add": {"field": "env", "value": "prod"}}])").as_array()});
  Piper piper(PiperOptions{}, catalog, store);
  const std::string id = new_ulid();
  store->put(raw_key(ref, id), encode_batch({Event{{"_time", "2026-03-01T10:00:00Z"}, {"n", 1}},
                                            Event{{"_time", "yesterday"}, {"n", 2.5}, {"o", boost::json::object{{"a", 1}}}}}));
  ASSERT_EQ(piper.run_once(), 1u);
  const std::string object = store->get(processed_key(ref, id));
  auto shape = BatchShape::from_json(split_batch_object(object).envelope.at("shape"));
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->events, 2u);
  const FieldShape* n = shape->root.member("n");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->kinds, kKindInt | kKindFloat);
  EXPECT_EQ(shape->root.member("env")->count, 2u);  // after the pipeline
  EXPECT_EQ(shape->root.member("_time")->bad_time, 1u);
  EXPECT_EQ(shape->root.member("o")->member("a")->kinds, kKindInt);
  EXPECT_EQ(decode_batch(object).size(), 2u);  // plain zstd readers still see the events
}

// No pipeline steps and a complete batch (the receiver's envelope says every event has
// its receive fields): the processed object keeps the raw object's compressed bytes and
// only gains the shape. A batch that needs the envelope's defaults still gets them.
TEST_F(PiperTest, EmptyPipelinePassesCompleteBatchesThroughByteForByte) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::array{}});
  Piper piper(PiperOptions{}, catalog, store);
  const std::string complete = new_ulid(), partial = new_ulid();
  const std::string payload = compress(Encoding::zstd,
      "{\"_time\":\"2026-03-01T10:00:00Z\",\"_received\":\"2026-03-01T10:00:01Z\",\"_source\":\"s\",\"n\":1.50}\n"
      "{\"_time\":\"2026-03-01T10:00:02Z\",\"_received\":\"2026-03-01T10:00:03Z\",\"_source\":\"s\",\"n\":\"x\"}\n");
  store->put(raw_key(ref, complete), wrap_batch_object(BatchEnvelope{{"complete", true}, {"received", "2026-01-01T00:00:00Z"}}, payload));
  store->put(raw_key(ref, partial),
             wrap_batch_object(BatchEnvelope{{"received", "2026-03-01T11:00:00Z"}, {"source", "http"}},
                               compress(Encoding::zstd, "{\"n\":2}\n")));
  ASSERT_EQ(piper.run_once(), 2u);

  const std::string object = store->get(processed_key(ref, complete));
  const BatchObject out = split_batch_object(object);
  EXPECT_EQ(out.payload, payload);  // not decoded and encoded again ("1.50" stays as sent)
  auto shape = BatchShape::from_json(out.envelope.at("shape"));
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->events, 2u);
  EXPECT_EQ(shape->root.member("n")->kinds, kKindFloat | kKindString);

  auto events = decode_batch(store->get(processed_key(ref, partial)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("_received").as_string(), "2026-03-01T11:00:00Z");
  EXPECT_EQ(events[0].at("_source").as_string(), "http");
}

// The receiver's envelope carries the shape from its validation pass: the piper takes
// it as it is and only copies the bytes (the NDJSON is not even decompressed). A
// payload that is not whole zstd frames (an upload cut short) is still refused.
TEST_F(PiperTest, ACompleteBatchWithTheReceiversShapeIsPassedOnWithThatShape) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::array{}});
  PiperOptions options;
  options.quarantine_after = std::chrono::milliseconds(0);
  Piper piper(options, catalog, store);
  const std::string ndjson = "{\"_time\":\"2026-03-01T10:00:00Z\",\"_received\":\"2026-03-01T10:00:01Z\",\"_source\":\"s\",\"n\":1}\n";
  BatchShape declared;
  declared.add_ndjson(ndjson);
  declared.root.member("n")->kinds |= kKindString;  // not what the text holds: proves it is not recomputed
  const std::string payload = compress(Encoding::zstd, ndjson);
  const std::string id = new_ulid(), cut = new_ulid();
  store->put(raw_key(ref, id), wrap_batch_object(BatchEnvelope{{"complete", true}, {"shape", declared.to_json()}}, payload));
  store->put(raw_key(ref, cut), wrap_batch_object(BatchEnvelope{{"complete", true}, {"shape", declared.to_json()}},
                                                  payload.substr(0, payload.size() - 3)));
  EXPECT_EQ(piper.run_once(), 1u);
  const std::string object = store->get(processed_key(ref, id));
  const BatchObject out = split_batch_object(object);
  EXPECT_EQ(out.payload, payload);
  auto shape = BatchShape::from_json(out.envelope.at("shape"));
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->events, 1u);
  EXPECT_EQ(shape->root.member("n")->kinds, kKindInt | kKindString);
  EXPECT_FALSE(store->head(processed_key(ref, cut)));
  EXPECT_EQ(store->list_all("quarantine/").size(), 1u);
}

// A complete batch whose NDJSON is corrupt is quarantined like any undecodable batch.
TEST_F(PiperTest, CorruptCompleteBatchIsQuarantinedByThePassThroughPath) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::array{}});
  PiperOptions options;
  options.quarantine_after = std::chrono::milliseconds(0);
  Piper piper(options, catalog, store);
  const std::string id = new_ulid();
  store->put(raw_key(ref, id), wrap_batch_object(BatchEnvelope{{"complete", true}},
                                                 compress(Encoding::zstd, "{\"a\":1}\nnot json\n")));
  EXPECT_EQ(piper.run_once(), 0u);
  EXPECT_FALSE(store->head(processed_key(ref, id)));
  EXPECT_EQ(store->list_all("quarantine/").size(), 1u);
}

// --- the component contract (docs/metrics.md) --------------------------------------

TEST_F(PiperTest, ContractCountsEventsPerDatasetAndUndecodableObjectsAsUnintentionalDiscards) {
  const DatasetRef contract_ref{"acme", "contract", "piper"};
  catalog->add_dataset(DatasetInfo{contract_ref, boost::json::parse(R"([{"add": {"field": "env", "value": "prod"}}])").as_array()});
  const DatasetRef other{"acme", "contract", "other"};
  catalog->add_dataset(DatasetInfo{other, {}});  // another dataset: its own series
  PiperOptions o;
  o.quarantine_after = std::chrono::milliseconds(0);  // undecodable objects are quarantined at once
  Piper piper(o, catalog, store);
  const Labels labels{{"tenant", "contract"}, {"dataset", "piper"}};
  EXPECT_TRUE(metrics().sum("bf_component_received_events_total", labels).has_value());  // before any event
  const std::string a = encode_batch({Event{{"n", 1}}, Event{{"n", 2}}});
  const std::string b = encode_batch({Event{{"n", 3}}});
  // The envelope still says how many events the broken payload held.
  const std::string broken = wrap_batch_object(BatchEnvelope{{"events", 5}}, "not zstd at all");
  store->put(raw_key(contract_ref, new_ulid()), a);
  store->put(raw_key(contract_ref, new_ulid()), b);
  store->put(raw_key(contract_ref, new_ulid()), broken);
  store->put(raw_key(other, new_ulid()), encode_batch({Event{{"n", 9}}}));
  EXPECT_EQ(piper.run_once(), 3u);
  const auto c = test::ContractCounts::of("stage", "piper", "piper", labels);
  EXPECT_EQ(c.received_events, 3);
  EXPECT_EQ(c.received_bytes, int64_t(a.size() + b.size()));
  EXPECT_EQ(c.sent_events, 3);
  uint64_t written = 0;
  for (const auto& obj : store->list_all(processed_prefix(contract_ref))) written += obj.size;
  EXPECT_EQ(c.sent_bytes, int64_t(written));
  EXPECT_EQ(c.unintentional, 5);
  EXPECT_EQ(c.intentional, 0);  // add removes nothing
  EXPECT_EQ(test::contract_count("errors", "stage", "piper", "piper",
                                 {{"tenant", "contract"}, {"dataset", "piper"}, {"stage", "decode"}}),
            1);
  test::expect_component_contract("stage", "piper", {.errors = true, .unintentional_discards = true});
  // The other dataset's event is counted under its own labels only.
  EXPECT_EQ(test::ContractCounts::of("stage", "piper", "piper", {{"tenant", "contract"}, {"dataset", "other"}}).received_events, 1);
}

// --- pipeline outcomes through the real piper -----------------------------------

TEST_F(PiperTest, FailedEventsGoToDeadLetterDroppedAreCountedNothingVanishes) {
  catalog->add_dataset(DatasetInfo{ref, boost::json::parse(R"j([
      {"json_parse": {"field": "message", "merge": true}},
      {"drop": {"if": "level == \"debug\""}},
      {"coerce": {"field": "status", "type": "int"}},
      {"set": {"field": "class", "value": "error", "if": "status >= 500"}}])j").as_array()});
  Piper piper(PiperOptions{}, catalog, store);
  const Labels labels{{"tenant", "web"}, {"dataset", "logs"}};
  auto step = [&](const char* n, const char* kind) {
    Labels l = labels;
    l.emplace_back("step", n);
    l.emplace_back("kind", kind);
    return l;
  };
  const int64_t dead_before = metrics().value("bf_piper_dead_letter_events_total", labels);
  const int64_t dropped_before = metrics().value("bf_piper_step_dropped_events_total", step("2", "drop"));
  const int64_t failed_before = metrics().value("bf_piper_step_failed_events_total", step("1", "json_parse"));
  const std::string mixed = new_ulid(), all_dropped = new_ulid();
  store->put(raw_key(ref, mixed), encode_batch({
      Event{{"message", R"({"level": "info", "status": "503"})"}},
      Event{{"message", "{broken"}, {"n", 2}},
      Event{{"message", R"({"level": "debug"})"}},
      Event{{"message", R"({"status": "teapot"})"}},
  }));
  store->put(raw_key(ref, all_dropped), encode_batch({Event{{"message", R"({"level": "debug"})"}}}));
  ASSERT_EQ(piper.run_once(), 2u);
  EXPECT_TRUE(store->list_all(raw_prefix(ref)).empty());

  auto out = decode_batch(store->get(processed_key(ref, mixed)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].at("status").as_int64(), 503);
  EXPECT_EQ(out[0].at("class").as_string(), "error");

  auto dead = decode_batch(store->get(dead_letter_key(ref, mixed)));
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].at("n").as_int64(), 2);  // kept as the failing step found it
  EXPECT_EQ(dead[0].at("message").as_string(), "{broken");
  EXPECT_EQ(std::string(dead[0].at("_error").as_string()).rfind("step 1 (json_parse): field 'message' is not JSON", 0), 0u)
      << dead[0].at("_error");
  EXPECT_EQ(dead[1].at("_error").as_string(), "step 3 (coerce): field 'status': \"teapot\" is not a valid int");
  EXPECT_EQ(dead_letter_key(ref, mixed).rfind("dead-letter/acme/web/logs/", 0), 0u);

  // A batch the pipeline emptied leaves no processed/ object, and no dead letters.
  EXPECT_FALSE(store->head(processed_key(ref, all_dropped)));
  EXPECT_FALSE(store->head(dead_letter_key(ref, all_dropped)));

  EXPECT_EQ(metrics().value("bf_piper_dead_letter_events_total", labels), dead_before + 2);
  EXPECT_EQ(metrics().value("bf_piper_step_dropped_events_total", step("2", "drop")), dropped_before + 2);
  EXPECT_EQ(metrics().value("bf_piper_step_failed_events_total", step("1", "json_parse")), failed_before + 1);
  EXPECT_EQ(metrics().value("bf_piper_step_failed_events_total", step("3", "coerce")), 1);
  // The component contract: drops are intentional discards named by the step kind;
  // failed events are errors (they live on in dead-letter/), not discards.
  EXPECT_EQ(test::contract_count("discarded_events", "stage", "piper", "piper",
                                 {{"tenant", "web"}, {"dataset", "logs"}, {"intentional", "true"}, {"reason", "drop"}}),
            2);
  EXPECT_EQ(test::contract_count("errors", "stage", "piper", "piper",
                                 {{"tenant", "web"}, {"dataset", "logs"}, {"stage", "transform"}, {"error_type", "step_failed"}}),
            2);
  test::expect_component_contract("stage", "piper", {.errors = true, .intentional_discards = true});
}

TEST_F(PiperTest, SampleDropsAreIntentionalDiscardsAndRoutedEventsCountAsSent) {
  const DatasetRef src{"acme", "sampling", "src"}, target{"acme", "sampling", "kept"};
  catalog->add_dataset(DatasetInfo{src, boost::json::parse(R"([
      {"route": {"to": "kept", "mode": "move", "if": "n < 10"}},
      {"sample": {"rate": 4, "key": "n"}}])").as_array()});
  catalog->add_dataset(DatasetInfo{target, {}});
  Piper piper(PiperOptions{}, catalog, store);
  std::vector<Event> events;
  for (int n = 0; n < 200; ++n) events.push_back(Event{{"n", n}});
  const std::string id = new_ulid();
  store->put(raw_key(src, id), encode_batch(events));
  ASSERT_EQ(piper.run_once(), 1u);
  const Labels labels{{"tenant", "sampling"}, {"dataset", "src"}};
  const auto c = test::ContractCounts::of("stage", "piper", "piper", labels);
  const auto kept = decode_batch(store->get(processed_key(src, id)));
  EXPECT_EQ(c.received_events, 200);
  EXPECT_EQ(c.intentional, 190 - static_cast<int64_t>(kept.size()));
  EXPECT_EQ(c.sent_events, static_cast<int64_t>(kept.size()) + 10);  // own output plus the routed events
  EXPECT_EQ(c.received_events, c.sent_events + c.intentional);
  EXPECT_EQ(test::contract_count("discarded_events", "stage", "piper", "piper",
                                 {{"tenant", "sampling"}, {"dataset", "src"}, {"intentional", "true"}, {"reason", "sample"}}),
            c.intentional);
  EXPECT_EQ(metrics().value("bf_piper_routed_events_total", {{"tenant", "sampling"}, {"dataset", "src"}, {"target", "kept"}}), 10);
  EXPECT_EQ(store->list_all(processed_prefix(target)).size(), 1u);
}

// Enrichment through the real piper: the step runs on the decoded raw batch and its
// series carry the dataset's labels (count_as from the piper's compile).
TEST_F(PiperTest, LookupStepEnrichesRawBatchesAndCountsPerDatasetAndStep) {
  fs::create_directories(dir);
  const std::string table = (dir / "owners.csv").string();
  { std::ofstream(table) << "net,owner\n10.0.0.0/8,corp\n"; }
  DatasetRef enriched{"acme", "web", "enriched"};
  catalog->add_dataset(DatasetInfo{
      enriched, boost::json::parse(R"([{"add": {"field": "env", "value": "prod"}},
                                       {"lookup": {"file": ")" + table + R"(", "field": "ip", "match": "cidr", "target": "asset"}}])")
                    .as_array()});
  Piper piper(PiperOptions{}, catalog, store);
  std::string id = new_ulid();
  store->put(raw_key(enriched, id), encode_batch({Event{{"ip", "10.1.2.3"}}, Event{{"ip", "192.0.2.1"}}, Event{{"ip", "x"}}}));
  EXPECT_EQ(piper.run_once(), 1u);
  auto out = decode_batch(store->get(processed_key(enriched, id)));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].at("asset").at("owner").as_string(), "corp");
  EXPECT_EQ(out[0].at("env").as_string(), "prod");
  EXPECT_FALSE(out[1].contains("asset"));
  const Labels step{{"tenant", "web"}, {"dataset", "enriched"}, {"step", "2"}, {"kind", "lookup"}};
  auto with = [&](const char* result) {
    Labels l = step;
    l.emplace_back("result", result);
    return metrics().value("bf_piper_enrich_lookups_total", l);
  };
  EXPECT_EQ(with("hit"), 1);
  EXPECT_EQ(with("miss"), 1);
  EXPECT_EQ(with("invalid"), 1);
}

// --- new pipelines while running (set_catalog) ---------------------------------

namespace {
std::shared_ptr<Catalog> catalog_of(std::vector<DatasetInfo> datasets) {
  auto c = std::make_shared<Catalog>();
  for (auto& d : datasets) c->add_dataset(std::move(d));
  return c;
}
boost::json::array steps(const std::string& json) { return boost::json::parse(json).as_array(); }
}  // namespace

TEST_F(PiperTest, ANewPipelineThatDoesNotCompileHoldsBackOnlyItsOwnDataset) {
  DatasetRef other{"acme", "web", "other"}, fresh{"acme", "web", "fresh"};
  Piper piper(PiperOptions{}, catalog_of({{ref, steps(R"([{"add": {"field": "v", "value": 1}}])")},
                                          {other, steps(R"([{"add": {"field": "v", "value": 1}}])")}}),
              store);
  // The next catalog: `logs` gets a lookup whose table is not on this host, `other` a
  // good new pipeline, and a new dataset `fresh` an invalid one.
  const std::string missing = (dir / "no-such-table.csv").string();
  const std::string lookup = R"([{"lookup": {"file": ")" + missing + R"(", "field": "ip", "target": "asset"}}])";
  const double held_before = metrics().value("bf_piper_pipeline_held_total", {{"tenant", "web"}, {"dataset", "logs"}});
  const auto errors = piper.set_catalog(catalog_of({{ref, steps(lookup)},
                                                    {other, steps(R"([{"add": {"field": "v", "value": 2}}])")},
                                                    {fresh, steps(R"([{"add": {"field": "v"}}])")}}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("acme/web/logs: pipeline step 1 (lookup): option 'file'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("held"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("acme/web/fresh"), std::string::npos) << errors[1];
  EXPECT_EQ(metrics().value("bf_piper_pipeline_rejected_total", {{"tenant", "web"}, {"dataset", "logs"}}), 0);
  EXPECT_EQ(metrics().value("bf_piper_pipeline_rejected_total", {{"tenant", "web"}, {"dataset", "fresh"}}), 1);

  const std::string a = new_ulid(), b = new_ulid(), c = new_ulid();
  store->put(raw_key(ref, a), encode_batch({Event{{"ip", "10.0.0.1"}}}));
  store->put(raw_key(other, b), encode_batch({Event{{"n", 1}}}));
  store->put(raw_key(fresh, c), encode_batch({Event{{"n", 1}}}));
  EXPECT_EQ(piper.run_once(), 1u);
  EXPECT_EQ(decode_batch(store->get(processed_key(other, b)))[0].at("v").as_int64(), 2) << "takes its new pipeline";
  // Held: neither run by the old pipeline nor passed on unprocessed, and not dropped.
  EXPECT_TRUE(store->head(raw_key(ref, a)).has_value());
  EXPECT_FALSE(store->head(processed_key(ref, a)).has_value());
  EXPECT_EQ(metrics().value("bf_piper_pipeline_held_total", {{"tenant", "web"}, {"dataset", "logs"}}), held_before + 1);
  EXPECT_TRUE(store->head(raw_key(fresh, c)).has_value()) << "a dataset without a pipeline leaves its raw data alone";
  EXPECT_FALSE(store->head(processed_key(fresh, c)).has_value());

  // The table arrives: `logs` resumes at the next run with no new catalog.
  fs::create_directories(dir);
  { std::ofstream(missing) << "ip,owner\n10.0.0.1,corp\n"; }
  EXPECT_EQ(piper.run_once(), 1u);
  EXPECT_EQ(decode_batch(store->get(processed_key(ref, a)))[0].at("asset").at("owner").as_string(), "corp");
  EXPECT_FALSE(store->head(raw_key(ref, a)).has_value());

  // Once the new dataset is fixed it moves on too.
  EXPECT_TRUE(piper.set_catalog(catalog_of({{ref, steps(lookup)},
                                            {other, steps(R"([{"add": {"field": "v", "value": 2}}])")},
                                            {fresh, steps(R"([{"add": {"field": "v", "value": 3}}])")}}))
                  .empty());
  const std::string d = new_ulid();
  store->put(raw_key(ref, d), encode_batch({Event{{"ip", "10.0.0.1"}}}));
  EXPECT_EQ(piper.run_once(), 2u);
  EXPECT_EQ(decode_batch(store->get(processed_key(ref, d)))[0].at("asset").at("owner").as_string(), "corp");
  EXPECT_EQ(decode_batch(store->get(processed_key(fresh, c)))[0].at("v").as_int64(), 3);
}

// A missing enrichment file at start-up holds only its dataset (no failed start):
// its objects wait, counted, and flow enriched once the file appears.
TEST_F(PiperTest, ADatasetWhosePipelineFileIsMissingIsHeldAndResumesWhenItAppears) {
  DatasetRef geo{"acme", "web", "geo"};
  const std::string table = (dir / "later" / "owners.csv").string();
  const std::string mmdb = (dir / "later" / "city.mmdb").string();
  Piper piper(PiperOptions{}, catalog_of({{ref, steps(R"([{"lookup": {"file": ")" + table + R"(", "field": "ip", "target": "asset"}}])")},
                                          {geo, steps(R"([{"geoip": {"database": ")" + mmdb + R"(", "field": "ip", "target": "geo"}}])")},
                                          {DatasetRef{"acme", "web", "plain"}, steps(R"([{"add": {"field": "v", "value": 1}}])")}}),
              store);
  const Labels logs_labels{{"tenant", "web"}, {"dataset", "logs"}}, geo_labels{{"tenant", "web"}, {"dataset", "geo"}};
  const double logs_before = metrics().value("bf_piper_pipeline_held_total", logs_labels);
  const double geo_before = metrics().value("bf_piper_pipeline_held_total", geo_labels);
  const std::string a = new_ulid(), b = new_ulid(), c = new_ulid();
  store->put(raw_key(ref, a), encode_batch({Event{{"ip", "10.0.0.1"}}, Event{{"ip", "10.9.9.9"}}}));
  store->put(raw_key(geo, b), encode_batch({Event{{"ip", "10.0.0.1"}}}));
  store->put(raw_key(DatasetRef{"acme", "web", "plain"}, c), encode_batch({Event{{"n", 1}}}));
  for (int run = 0; run < 3; ++run) EXPECT_EQ(piper.run_once(), run == 0 ? 1u : 0u);  // only `plain` flows
  EXPECT_TRUE(store->head(processed_key(DatasetRef{"acme", "web", "plain"}, c)).has_value());
  EXPECT_TRUE(store->head(raw_key(ref, a)).has_value());
  EXPECT_TRUE(store->head(raw_key(geo, b)).has_value());
  EXPECT_TRUE(store->list_all("processed/acme/web/logs/").empty());
  EXPECT_TRUE(store->list_all("dead-letter/").empty());
  EXPECT_EQ(metrics().value("bf_piper_pipeline_held_total", logs_labels), logs_before + 3);
  EXPECT_EQ(metrics().value("bf_piper_pipeline_held_total", geo_labels), geo_before + 3);
  EXPECT_EQ(metrics().value("bf_piper_datasets_held"), 2);

  fs::create_directories(dir / "later");
  { std::ofstream(table) << "ip,owner\n10.0.0.1,corp\n"; }
  EXPECT_EQ(piper.run_once(), 1u);  // logs resumes; geo is still held
  auto out = decode_batch(store->get(processed_key(ref, a)));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].at("asset").at("owner").as_string(), "corp");
  EXPECT_FALSE(out[1].contains("asset"));
  EXPECT_FALSE(store->head(raw_key(ref, a)).has_value());
  EXPECT_EQ(metrics().value("bf_piper_pipeline_held_total", logs_labels), logs_before + 3);
  EXPECT_EQ(metrics().value("bf_piper_pipeline_held_total", geo_labels), geo_before + 4);
  EXPECT_EQ(metrics().value("bf_piper_datasets_held"), 1);
  EXPECT_TRUE(store->head(raw_key(geo, b)).has_value());
}

// The lag the piper reports to control: how long the oldest raw/ object a run found
// had waited; 0 once nothing waits.
TEST_F(PiperTest, TheLastRunsLagIsTheAgeOfTheOldestWaitingObject) {
  catalog->add_dataset(DatasetInfo{ref, {}});
  Piper piper(PiperOptions{}, catalog, store);
  const std::string id = new_ulid();
  store->put(raw_key(ref, id), encode_batch({Event{{"n", 1}}}));
  fs::path file;
  for (const auto& e : fs::recursive_directory_iterator(dir / "raw"))
    if (e.is_regular_file()) file = e.path();
  ASSERT_FALSE(file.empty());
  fs::last_write_time(file, fs::file_time_type::clock::now() - std::chrono::seconds(30));
  EXPECT_EQ(piper.run_once(), 1u);
  const int64_t lag = metrics().value("bf_piper_lag_milliseconds");
  EXPECT_GE(lag, 29000);
  EXPECT_LT(lag, 60000);
  EXPECT_EQ(piper.run_once(), 0u);
  EXPECT_EQ(metrics().value("bf_piper_lag_milliseconds"), 0);
}

// The error kinds a file step raises, and control's validate-only compile.
TEST(PipelineFiles, AMissingFileIsAPipelineFileErrorAndValidateOnlyOpensNothing) {
  const fs::path dir = fs::temp_directory_path() / ("bf-pipeline-files-" + new_ulid());
  fs::create_directories(dir);
  const std::string missing = (dir / "none.csv").string(), bad = (dir / "bad.csv").string();
  { std::ofstream(bad) << "ip,owner\n10.0.0.1\n"; }
  auto compile = [](const std::string& json, const PipelineContext* context) {
    return Pipeline::compile(boost::json::parse(json).as_array(), "dataset a/t/d", context);
  };
  const std::string on_missing = R"([{"add": {"field": "x", "value": 1}}, {"lookup": {"file": ")" + missing + R"(", "field": "ip"}}])";
  try {
    compile(on_missing, nullptr);
    ADD_FAILURE() << "compiled without its file";
  } catch (const PipelineFileError& e) {
    EXPECT_NE(std::string(e.what()).find("dataset a/t/d: pipeline step 2 (lookup): option 'file': " + missing), std::string::npos)
        << e.what();
  }
  // A file that is there but wrong is a plain PipelineError, not a missing file.
  const std::string on_bad = R"([{"lookup": {"file": ")" + bad + R"(", "field": "ip"}}])";
  try {
    compile(on_bad, nullptr);
    ADD_FAILURE() << "compiled a bad table";
  } catch (const PipelineFileError& e) {
    ADD_FAILURE() << "a bad file is not a missing one: " << e.what();
  } catch (const PipelineError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  // Validate only: neither file is opened, the options are still checked.
  PipelineContext validate{"d", {}};
  validate.open_files = false;
  EXPECT_NO_THROW(compile(on_missing, &validate));
  EXPECT_NO_THROW(compile(on_bad, &validate));
  EXPECT_NO_THROW(compile(R"([{"geoip": {"database": "/nowhere/city.mmdb", "field": "ip", "target": "geo", "fields": ["country_code"]}}])", &validate));
  EXPECT_THROW(compile(R"([{"lookup": {"file": ")" + missing + R"(", "field": "ip", "colour": 1}}])", &validate), PipelineError);
  EXPECT_THROW(compile(R"([{"geoip": {"database": "/x.mmdb", "field": "ip", "target": "geo", "fields": ["shoe_size"]}}])", &validate),
               PipelineError);
  EXPECT_THROW(compile(R"([{"lookup": {"file": "", "field": "ip"}}])", &validate), PipelineError);
  fs::remove_all(dir);
}

// Issue 8: a pipeline swapped while batches flow: no restart, no batch lost or
// processed twice, and each batch wholly under one pipeline version.
TEST_F(PiperTest, HotSwapUnderLoadLosesAndDuplicatesNothing) {
  auto version = [&](int v) {
    return catalog_of({{ref, steps(R"([{"add": {"field": "version", "value": )" + std::to_string(v) + "}}]")}});
  };
  PiperOptions options;
  options.interval = std::chrono::milliseconds(5);
  Piper piper(options, version(1), store);
  piper.start();
  constexpr int kBatches = 150, kEvents = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < kBatches; ++i) {
    std::vector<Event> events;
    for (int e = 0; e < kEvents; ++e) events.push_back(Event{{"n", i * kEvents + e}});
    ids.push_back(new_ulid());
    store->put(raw_key(ref, ids.back()), encode_batch(events));
    piper.wake();
    if (i == kBatches / 3) ASSERT_TRUE(piper.set_catalog(version(2)).empty());
    if (i == 2 * kBatches / 3) ASSERT_TRUE(piper.set_catalog(version(3)).empty());
  }
  auto drain = [&] {
    for (int i = 0; i < 3000 && !store->list_all(raw_prefix(ref)).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  drain();
  // A batch written once the swaps are long done is processed by the last version.
  ids.push_back(new_ulid());
  store->put(raw_key(ref, ids.back()), encode_batch({Event{{"n", kBatches * kEvents}}}));
  piper.wake();
  drain();
  piper.stop();
  ASSERT_TRUE(store->list_all(raw_prefix(ref)).empty());
  EXPECT_EQ(store->list_all(processed_prefix(ref)).size(), static_cast<size_t>(kBatches + 1));
  std::set<int64_t> seen;
  for (size_t b = 0; b < kBatches; ++b) {
    const auto out = decode_batch(store->get(processed_key(ref, ids[b])));
    ASSERT_EQ(out.size(), static_cast<size_t>(kEvents));
    const int64_t v = out[0].at("version").as_int64();
    EXPECT_TRUE(v >= 1 && v <= 3) << v;
    for (const auto& e : out) {
      EXPECT_EQ(e.at("version").as_int64(), v) << "a batch mixed two pipeline versions";
      EXPECT_TRUE(seen.insert(e.at("n").as_int64()).second) << "an event appears twice";
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kBatches * kEvents));
  EXPECT_EQ(decode_batch(store->get(processed_key(ref, ids.back())))[0].at("version").as_int64(), 3);
}
