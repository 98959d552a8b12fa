// Adversarial schema evolution through the real pipeline: events go to raw/, the
// piper processes them (computing the shapes), the packer writes Parquet into a
// local store, and the query service runs SELECT * over every committed part of
// the dataset exactly as it serves users. The same field arrives as number,
// string, object, array and null; a struct gains members and then gets a string;
// an object has 10,000 distinct keys; a syslog structured_data has thousands of
// elements; names differ only in case. Every value is checked, not just "no error".
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <map>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/ulid.h"
#include "fixtures/process.h"
#include "net/http_client.h"
#include "fixtures/packer_options.h"
#include "packer/packer.h"
#include "piper/piper.h"
#include "query/query_service.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"

namespace fs = std::filesystem;
using namespace bf;

namespace {

class SchemaEvolution : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-schema-" + new_ulid());
  std::shared_ptr<LocalStore> store = std::make_shared<LocalStore>(dir / "store");
  std::shared_ptr<Catalog> catalog = std::make_shared<Catalog>();
  DatasetRef ref{"acme", "web", "logs"};
  std::unique_ptr<Piper> piper;
  std::unique_ptr<Packer> packer;
  std::unique_ptr<QueryService> query;
  int next_id = 0;
  std::map<std::string, std::string> batch_of;  // label -> batch id

  void SetUp() override {
    catalog->add_dataset(DatasetInfo{ref, {}});
    catalog->add_dataset(DatasetInfo{DatasetRef{"acme", "other", "logs"}, {}});
    catalog->add_query_key("web-query-key-0123456789", KeyGrant{"acme", "web"});
    catalog->add_query_key("other-query-key-0123456789", KeyGrant{"acme", "other"});
    piper = std::make_unique<Piper>(PiperOptions{}, catalog, store);
    packer = std::make_unique<Packer>(bf::test::packing_at_once(), catalog, store);
    QueryOptions qo;
    qo.temp_dir = (dir / "query-tmp").string();
    qo.http.listen = "127.0.0.1:0";
    query = std::make_unique<QueryService>(qo, catalog, store);
  }
  void TearDown() override {
    query.reset();
    packer.reset();
    piper.reset();
    fs::remove_all(dir);
  }
  Event ev(const char* hour, std::initializer_list<std::pair<std::string, boost::json::value>> fields) {
    Event e{{"_time", std::string("2026-03-01T") + hour + ":00:00Z"}, {"id", next_id++}};
    for (const auto& [k, v] : fields) e[k] = v;
    return e;
  }
  // A batch as the receiver stores it in raw/.
  void ingest(const std::string& label, const std::vector<Event>& events) {
    const std::string id = new_ulid();
    batch_of[label] = id;
    store->put(raw_key(ref, id), encode_batch(events));
  }
  // The pipeline: piper, then packer; returns the parts written.
  size_t flow() {
    piper->run_once();
    return packer->run_once();
  }
  SqlResult sql(const std::string& q) { return query->run("acme/web/logs", q).result; }
  std::optional<std::string> one(const std::string& q) {
    auto r = sql(q);
    EXPECT_EQ(r.rows.size(), 1u) << q;
    return r.rows.empty() ? std::nullopt : r.rows[0].at(0);
  }
};

boost::json::object parse_object(const std::string& s) { return boost::json::parse(s).as_object(); }

}  // namespace

TEST_F(SchemaEvolution, EveryPartReadsTogetherWithSelectStarWhateverTheEventsWere) {
  // id 0..: one batch per run first, so parts were written with different types.
  ingest("first", {ev("10", {{"v", 1},
                             {"o", parse_object(R"({"a": 1})")},
                             {"Host", "H1"},
                             {"sd", parse_object(R"({"exampleSDID@32473": {"iut": "3", "eventSource": "Application"}})")}})});
  ASSERT_EQ(flow(), 1u);
  ingest("gains", {ev("10", {{"v", "text"}, {"o", parse_object(R"({"a": 2, "b": "x"})")}, {"host", "lower"}})});
  ASSERT_EQ(flow(), 1u);
  ingest("mixed", {ev("10", {{"v", parse_object(R"({"k": 1})")}, {"o", "now a string"}}),
                   ev("10", {{"v", boost::json::array{1, 2}}, {"o", nullptr}}), ev("10", {{"v", nullptr}})});
  ASSERT_EQ(flow(), 1u);
  boost::json::object wide;
  for (int k = 0; k < 10000; ++k) wide["key" + std::to_string(k)] = k;
  boost::json::object sd;
  for (int k = 0; k < 3000; ++k) sd["origin" + std::to_string(k) + "@32473"] = boost::json::object{{"ip", "10.0.0." + std::to_string(k % 250)}};
  ingest("wide", {ev("10", {{"wide", wide}, {"sd", sd}}), ev("10", {{"wide", parse_object(R"({"other": "x"})")}})});
  ASSERT_EQ(flow(), 1u);
  ingest("case", {ev("10", {{"Host", "A"}, {"host", "b"}, {"o", parse_object(R"({"a": 3, "B": "upper"})")}})});
  ASSERT_EQ(flow(), 1u);
  // Two batches in one run, over two event hours: two parts from one conversion.
  ingest("run-a", {ev("10", {{"v", 3.5}, {"o", boost::json::array{1}}}), ev("11", {{"v", 7}, {"o", parse_object(R"({"a": 4})")}})});
  ingest("run-b", {ev("11", {{"v", true}, {"arr", boost::json::array{1, 2}}}), ev("11", {{"arr", boost::json::array{"a", nullptr}}})});
  ASSERT_EQ(flow(), 2u);
  const int total = next_id;
  ASSERT_EQ(committed_parts(*store, ref).size(), 7u);
  EXPECT_TRUE(store->list_all("quarantine/").empty());

  // SELECT * as the query service serves it, over every committed part.
  auto all = sql("SELECT * FROM events ORDER BY id");
  ASSERT_EQ(all.rows.size(), static_cast<size_t>(total));

  // v: BIGINT, then VARCHAR (text, objects and arrays as JSON text), DOUBLE and BOOLEAN values as text.
  auto v = sql("SELECT id, v FROM events ORDER BY id");
  std::vector<std::optional<std::string>> want_v = {"1", "text", R"({"k":1})", "[1,2]", std::nullopt, std::nullopt,
                                                    std::nullopt, std::nullopt, "3.5", "7", "true", std::nullopt};
  ASSERT_EQ(v.rows.size(), want_v.size());
  for (size_t i = 0; i < want_v.size(); ++i) EXPECT_EQ(v.rows[i][1], want_v[i]) << "id " << i;
  EXPECT_EQ(one("SELECT typeof(v) FROM events LIMIT 1"), "VARCHAR");

  // o: a STRUCT that gained members; values it cannot hold are in o__json, as JSON text.
  auto o = sql("SELECT id, o.a, o.b, o.B__2, o__json FROM events WHERE o IS NOT NULL OR o__json IS NOT NULL ORDER BY id");
  ASSERT_EQ(o.rows.size(), 6u);
  EXPECT_EQ(o.rows[0], (SqlRow{"0", "1", std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(o.rows[1], (SqlRow{"1", "2", "x", std::nullopt, std::nullopt}));
  EXPECT_EQ(o.rows[2], (SqlRow{"2", std::nullopt, std::nullopt, std::nullopt, R"("now a string")"}));
  EXPECT_EQ(o.rows[3], (SqlRow{"7", "3", std::nullopt, "upper", std::nullopt}));
  EXPECT_EQ(o.rows[4], (SqlRow{"8", std::nullopt, std::nullopt, std::nullopt, "[1]"}));
  EXPECT_EQ(o.rows[5], (SqlRow{"9", "4", std::nullopt, std::nullopt, std::nullopt}));

  // Host and host: the later one is host__2, in the same event and in different ones.
  auto h = sql("SELECT id, \"Host\", host__2 FROM events WHERE \"Host\" IS NOT NULL OR host__2 IS NOT NULL ORDER BY id");
  ASSERT_EQ(h.rows.size(), 3u);
  EXPECT_EQ(h.rows[0], (SqlRow{"0", "H1", std::nullopt}));
  EXPECT_EQ(h.rows[1], (SqlRow{"1", std::nullopt, "lower"}));
  EXPECT_EQ(h.rows[2], (SqlRow{"7", "A", "b"}));

  // 10,000 distinct keys: a MAP, every key there.
  EXPECT_EQ(one("SELECT typeof(wide) FROM events LIMIT 1"), "MAP(VARCHAR, VARCHAR)");
  EXPECT_EQ(one("SELECT cardinality(wide) FROM events WHERE id = 5"), "10000");
  EXPECT_EQ(one("SELECT wide['key9999'] FROM events WHERE id = 5"), "9999");
  EXPECT_EQ(one("SELECT wide['other'] FROM events WHERE id = 6"), "x");

  // structured_data: a STRUCT from the first message; the one with 3,000 elements
  // is whole in sd__json.
  EXPECT_EQ(one("SELECT sd.\"exampleSDID@32473\".iut FROM events WHERE id = 0"), "3");
  EXPECT_EQ(one("SELECT sd IS NULL FROM events WHERE id = 5"), "true");
  EXPECT_EQ(one("SELECT len(json_keys(sd__json::JSON)) FROM events WHERE id = 5"), "3000");
  EXPECT_EQ(one("SELECT sd__json::JSON -> '$.\"origin2999@32473\"' ->> 'ip' FROM events WHERE id = 5"), "10.0.0.249");

  // A list whose elements widened to text.
  auto a = sql("SELECT id, CAST(arr AS VARCHAR) FROM events WHERE arr IS NOT NULL ORDER BY id");
  ASSERT_EQ(a.rows.size(), 2u);
  EXPECT_EQ(a.rows[0][1], "[1, 2]");
  EXPECT_EQ(a.rows[1][1], "[a, NULL]");
  EXPECT_EQ(one("SELECT typeof(_time) FROM events LIMIT 1"), "TIMESTAMP");
  EXPECT_EQ(one("SELECT count(*) FROM events WHERE hour = 11"), "3");

  // The history names each change with its version and the batch that caused it.
  auto schema = boost::json::parse(store->get(schema_key(ref))).as_object();
  auto find_change = [&](const std::string& path, const std::string& change) -> const boost::json::object* {
    for (const auto& h : schema.at("history").as_array())
      for (const auto& c : h.at("changes").as_array())
        if (c.at("path") == path.c_str() && c.at("change") == change.c_str()) return &h.as_object();
    return nullptr;
  };
  const auto* gained = find_change("o.b", "member_added");
  ASSERT_TRUE(gained);
  EXPECT_EQ(gained->at("batch").as_string(), batch_of["gains"]);
  EXPECT_EQ(gained->at("version").as_int64(), 2);
  const auto* overflow = find_change("o__json", "overflow_added");
  ASSERT_TRUE(overflow);
  EXPECT_EQ(overflow->at("batch").as_string(), batch_of["mixed"]);
  const auto* renamed = find_change("host__2", "renamed");
  ASSERT_TRUE(renamed);
  EXPECT_EQ(renamed->at("batch").as_string(), batch_of["gains"]);
  const auto* widened = find_change("v", "json_text");
  ASSERT_TRUE(widened);
  EXPECT_EQ(widened->at("batch").as_string(), batch_of["gains"]);
  EXPECT_EQ(schema.at("version").as_int64(), static_cast<int64_t>(schema.at("history").as_array().size()));
}

TEST_F(SchemaEvolution, SchemaAndHistoryThroughTheCliAndTheQueryApi) {
  ingest("first", {ev("10", {{"n", 1}, {"o", parse_object(R"({"a": 1})")}})});
  ASSERT_EQ(flow(), 1u);
  ingest("second", {ev("10", {{"n", 2.5}, {"o", parse_object(R"({"a": 2, "b": "x"})")}})});
  ASSERT_EQ(flow(), 1u);

  // The CLI, reading the store the config names.
  const fs::path cfg = dir / "bf.yaml";
  std::ofstream(cfg) << "storage: {type: local, path: " << (dir / "store").string()
                     << "}\nquery: {temp_dir: " << (dir / "cli-tmp").string()
                     << "}\naccounts: [{id: acme, tenants: [{id: web, datasets: [{id: logs}]}]}]\n";
  auto [code, out] = bf::test::run_command(std::string(BF_BINARY) + " schema web/logs --config " + cfg.string());
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("schema version 2"), std::string::npos) << out;
  EXPECT_NE(out.find(R"(STRUCT("a" BIGINT, "b" VARCHAR))"), std::string::npos) << out;
  EXPECT_NE(out.find("widened n DOUBLE (was BIGINT)"), std::string::npos) << out;
  EXPECT_NE(out.find("batch " + batch_of["second"]), std::string::npos) << out;
  auto [jcode, jout] = bf::test::run_command(std::string(BF_BINARY) + " schema acme/web/logs --json --config " + cfg.string());
  ASSERT_EQ(jcode, 0) << jout;
  EXPECT_EQ(boost::json::parse(jout), boost::json::parse(store->get(schema_key(ref))));
  auto [ucode, uout] = bf::test::run_command(std::string(BF_BINARY) + " schema web/nope --config " + cfg.string());
  EXPECT_NE(ucode, 0);
  EXPECT_NE(uout.find("unknown dataset 'web/nope'"), std::string::npos) << uout;

  // The query API, scoped by the key's tenant.
  query->start();
  const std::string base = "http://127.0.0.1:" + std::to_string(query->port());
  HttpClient client;
  auto r = client.send("GET", base + "/api/v1/datasets/logs/schema", {{"Authorization", "Bearer web-query-key-0123456789"}}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  auto doc = boost::json::parse(r.body).as_object();
  EXPECT_EQ(doc.at("version").as_int64(), 2);
  EXPECT_EQ(doc.at("history").as_array().at(1).at("batch").as_string(), batch_of["second"]);
  // Another tenant's key sees its own dataset of that name (nothing packed), never this one.
  r = client.send("GET", base + "/api/v1/datasets/logs/schema", {{"Authorization", "Bearer other-query-key-0123456789"}}, "");
  EXPECT_EQ(r.status, 404) << r.body;
  r = client.send("GET", base + "/api/v1/datasets/nope/schema", {{"Authorization", "Bearer web-query-key-0123456789"}}, "");
  EXPECT_EQ(r.status, 404) << r.body;
  r = client.send("GET", base + "/api/v1/datasets/logs/schema", {}, "");
  EXPECT_EQ(r.status, 401) << r.body;
  query->stop();
}
