// The bytefreezer binary's command line: config errors name the key and the file,
// plugins and version print what they should.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "common/ulid.h"
#include "fixtures/process.h"
#include "fixtures/lake.h"
#include "fixtures/net_helpers.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/local_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;
using bf::test::run_command;

namespace {

class Cli : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("bf-cli-" + bf::new_ulid());
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  std::string config(const std::string& yaml) {
    fs::path p = dir / "bf.yaml";
    std::ofstream(p) << yaml;
    return p.string();
  }
  std::pair<int, std::string> bf(const std::string& args) { return run_command(std::string(BF_BINARY) + " " + args); }
};

TEST_F(Cli, UnknownConfigKeyIsAnErrorNamingKeyAndFile) {
  std::string path = config("storage: {type: local, path: " + (dir / "s").string() +
                            "}\nreceiver:\n  listen: 127.0.0.1:0\n  spol: {dir: x}\n");
  auto [code, out] = bf("receiver --config " + path);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("receiver.spol"), std::string::npos) << out;
  EXPECT_NE(out.find(path), std::string::npos) << out;
}

TEST_F(Cli, InvalidIdIsAnError) {
  auto [code, out] = bf("piper --config " + config("accounts: [{id: Bad_Account}]\n"));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("Bad_Account"), std::string::npos) << out;
}

TEST_F(Cli, BadPipelineStopsTheStartNamingTheDataset) {
  auto [code, out] = bf("piper --config " + config("storage: {type: local, path: " + (dir / "s").string() +
                                                   "}\naccounts: [{id: a, tenants: [{id: t, datasets: [{id: d, "
                                                   "pipeline: [{ad: {field: x, value: 1}}]}]}]}]\n"));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("a/t/d"), std::string::npos) << out;
  EXPECT_NE(out.find("unknown step kind 'ad'"), std::string::npos) << out;
}

TEST_F(Cli, EnvironmentOverridesTheFile) {
  // An override that makes the config invalid proves it was applied.
  auto [code, out] = run_command("BYTEFREEZER_STORAGE__TYPE=floppy " + std::string(BF_BINARY) + " query --config " +
                                 config("storage: {type: local, path: x}\n") + " --dataset t/d 'SELECT 1'");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("floppy"), std::string::npos) << out;
}

TEST_F(Cli, PluginsListsBuiltInSourcesAndSteps) {
  auto [code, out] = bf("plugins");
  EXPECT_EQ(code, 0);
  for (const char* name : {"syslog_udp", "syslog_tcp", "http", "add", "remove", "rename"})
    EXPECT_NE(out.find(name), std::string::npos) << name << " missing in:\n" << out;
}

// The schema the UI's forms come from, as the binary prints it; and the generated
// tables of docs/pipelines.md are what --update-docs makes of a copy.
TEST_F(Cli, PluginsSchemaDescribesEveryStepsOptionsAndUpdatesTheDocs) {
  auto [code, out] = bf("plugins --schema 2>/dev/null");
  ASSERT_EQ(code, 0) << out;
  const boost::json::object steps = boost::json::parse(out).at("steps").as_object();
  const boost::json::object& truncate = steps.at("truncate").as_object();
  EXPECT_EQ(truncate.at("required"), (boost::json::array{"max_bytes"}));
  EXPECT_EQ(truncate.at("properties").at("max_bytes").at("minimum"), 1);
  EXPECT_EQ(truncate.at("properties").at("if").at("type"), "string");
  EXPECT_EQ(steps.at("hash").at("properties").at("algorithm").at("enum"), (boost::json::array{"sha256", "xxhash64", "xxh3"}));
  for (const auto& [kind, schema] : steps) EXPECT_TRUE(schema.as_object().contains("properties")) << kind;

  std::filesystem::copy_file(std::string(BF_SOURCE_DIR) + "/docs/pipelines.md", dir / "pipelines.md");
  auto [same, said] = bf("plugins --update-docs " + (dir / "pipelines.md").string());
  EXPECT_EQ(same, 0);
  EXPECT_NE(said.find("pipelines.md: up to date"), std::string::npos) << said;
  std::ofstream(dir / "stale.md") << "<!-- options: kv -->\n| old |\n<!-- /options -->\n";
  auto [updated, msg] = bf("plugins --update-docs " + (dir / "stale.md").string());
  EXPECT_EQ(updated, 0);
  EXPECT_NE(msg.find("option tables updated"), std::string::npos) << msg;
  std::ifstream in(dir / "stale.md");
  const std::string table((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("| `field_split` | string | ` ` | the text between pairs |"), std::string::npos) << table;
}

TEST_F(Cli, PipelineTestReadsStdinAndPrintsStepsOutputAndErrors) {
  std::ofstream(dir / "steps.yaml") << "- kv: {}\n- coerce: {field: n, type: int}\n";
  std::ofstream(dir / "events.ndjson") << "{\"message\": \"n=7\"}\n{\"message\": \"n=x\"}\n";
  auto [code, out] = bf("pipeline test --config " + (dir / "steps.yaml").string() + " < " + (dir / "events.ndjson").string());
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("step 1 (kv): changed — added n"), std::string::npos) << out;
  EXPECT_NE(out.find("{\"message\":\"n=7\",\"n\":7}"), std::string::npos) << out;
  EXPECT_NE(out.find("step 2 (coerce): failed"), std::string::npos) << out;
  EXPECT_NE(out.find("dead letters (1 event):"), std::string::npos) << out;
  std::ofstream(dir / "bad.yaml") << "- kv: {field_spilt: x}\n";
  auto [bad, msg] = bf("pipeline test --config " + (dir / "bad.yaml").string() + " < /dev/null");
  EXPECT_EQ(bad, 1);
  EXPECT_NE(msg.find("pipeline: pipeline step 1 (kv): unknown option 'field_spilt'"), std::string::npos) << msg;
}

TEST_F(Cli, RetentionDryRunListsExpiredPartsAndDeletesNothing) {
  auto store = std::make_shared<bf::LocalStore>(dir / "s");
  const bf::DatasetRef ref{"a", "t", "d"};
  const std::string old_part = bf::test::write_part(store, ref, "SELECT 1 AS n", 1, true, "year=2020/month=01/day=01/hour=00");
  const std::string new_part = bf::test::write_part(store, ref, "SELECT 2 AS n", 1, true, "year=2999/month=01/day=01/hour=00");
  const std::string path = config("storage: {type: local, path: " + (dir / "s").string() +
                                  "}\naccounts: [{id: a, tenants: [{id: t, datasets: [{id: d, retention: {days: 30}}, {id: e}]}]}]\n");
  auto [code, out] = bf("retention --dry-run --config " + path);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("a/t/d: retention 30 days: 1 of 2 parts would be deleted (1 events)"), std::string::npos) << out;
  EXPECT_NE(out.find(old_part), std::string::npos) << out;
  EXPECT_EQ(out.find(new_part), std::string::npos) << out;
  EXPECT_NE(out.find("a/t/e: no retention (kept forever)"), std::string::npos) << out;
  EXPECT_TRUE(store->head(old_part).has_value());
  EXPECT_EQ(bf::committed_parts(*store, ref).size(), 2u);
  // Without --dry-run it refuses: deleting is the packer's, under the dataset's lease.
  auto [refused, message] = bf("retention --config " + path);
  EXPECT_NE(refused, 0);
  EXPECT_NE(message.find("--dry-run"), std::string::npos) << message;
}

TEST_F(Cli, QueryOfUnknownDatasetFails) {
  auto [code, out] = bf("query --config " + config("storage: {type: local, path: " + (dir / "s").string() + "}\n") +
                        " --dataset t/nope 'SELECT 1'");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("unknown dataset 't/nope'"), std::string::npos) << out;
}

// A result cut at query.max_rows is never silent: every format says so (stderr note,
// exit code 3), and --max-rows / --no-limit lift the cap for a local query.
class CliQueryLimit : public Cli {
 protected:
  std::string cfg;
  void SetUp() override {
    Cli::SetUp();
    auto store = std::make_shared<bf::LocalStore>(dir / "s");
    bf::test::write_part(store, bf::DatasetRef{"acme", "web", "logs"}, "SELECT range AS n FROM range(25)", 25);
    cfg = config("storage: {type: local, path: " + (dir / "s").string() +
                 "}\naccounts: [{id: acme, tenants: [{id: web, datasets: [{id: logs}]}]}]\nquery: {max_rows: 10}\n");
  }
  struct Run {
    int code;
    std::string out, err;
  };
  // stdout and stderr apart.
  Run query(const std::string& args) {
    const std::string err_file = (dir / "stderr.txt").string();
    auto [code, out] = run_command("( " + std::string(BF_BINARY) + " query --config " + cfg + " --dataset web/logs " +
                                   args + " 2>" + err_file + " )");
    std::ifstream in(err_file);
    std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return {code, out, err};
  }
  static size_t rows_in(const std::string& json_array) {
    size_t n = 0;
    for (size_t at = json_array.find("{\"n\":"); at != std::string::npos; at = json_array.find("{\"n\":", at + 1)) ++n;
    return n;
  }
};

TEST_F(CliQueryLimit, JsonResultCutAtMaxRowsIsReportedOnStderrAndInTheExitCode) {
  auto r = query("--format json 'SELECT n FROM events ORDER BY n'");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_EQ(rows_in(r.out), 10u) << r.out;
  EXPECT_EQ(r.out.front(), '[') << "stdout stays a plain JSON array: " << r.out;
  EXPECT_NE(r.err.find("truncated at 10 rows"), std::string::npos) << r.err;
}

TEST_F(CliQueryLimit, TableResultCutAtMaxRowsIsReportedToo) {
  auto r = query("'SELECT n FROM events ORDER BY n'");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("(result cut at 10 rows)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("truncated at 10 rows"), std::string::npos) << r.err;
}

TEST_F(CliQueryLimit, MaxRowsZeroAndNoLimitReturnEveryRow) {
  for (const char* flag : {"--max-rows 0", "--no-limit"}) {
    auto r = query(std::string(flag) + " --format json 'SELECT n FROM events ORDER BY n'");
    EXPECT_EQ(r.code, 0) << flag << ": " << r.out << r.err;
    EXPECT_EQ(rows_in(r.out), 25u) << flag << ": " << r.out;
    EXPECT_EQ(r.err.find("truncated"), std::string::npos) << r.err;
  }
  auto five = query("--max-rows 5 --format json 'SELECT n FROM events ORDER BY n'");
  EXPECT_EQ(five.code, 3);
  EXPECT_EQ(rows_in(five.out), 5u) << five.out;
  // A result within the cap is not flagged.
  auto small = query("--format json 'SELECT n FROM events ORDER BY n LIMIT 10'");
  EXPECT_EQ(small.code, 0) << small.out << small.err;
  EXPECT_EQ(rows_in(small.out), 10u);
  EXPECT_TRUE(small.err.empty()) << small.err;
}

TEST_F(CliQueryLimit, NdjsonAndCsvReportTheCutToo) {
  auto nd = query("--format ndjson 'SELECT n FROM events ORDER BY n'");
  EXPECT_EQ(nd.code, 3) << nd.out << nd.err;
  EXPECT_EQ(rows_in(nd.out), 10u) << nd.out;
  EXPECT_NE(nd.out.find("{\"_meta\":{\"row_count\":10,\"truncated\":true,\"truncated_reason\":\"max_rows\""),
            std::string::npos)
      << nd.out;
  EXPECT_NE(nd.err.find("truncated at 10 rows"), std::string::npos) << nd.err;

  auto csv = query("--format csv 'SELECT n FROM events ORDER BY n'");
  EXPECT_EQ(csv.code, 3) << csv.out << csv.err;
  EXPECT_EQ(csv.out.rfind("n\r\n0\r\n1\r\n", 0), 0u) << csv.out;
  EXPECT_NE(csv.out.find("\r\n9\r\n"), std::string::npos) << csv.out;
  EXPECT_EQ(csv.out.find("\r\n10\r\n"), std::string::npos) << csv.out;
  EXPECT_NE(csv.err.find("truncated at 10 rows"), std::string::npos) << csv.err;

  auto whole = query("--no-limit --format ndjson 'SELECT n FROM events'");
  EXPECT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(rows_in(whole.out), 25u);
  EXPECT_NE(whole.out.find("\"truncated\":false,\"truncated_reason\":null"), std::string::npos) << whole.out;
}

// --no-limit prints a result of any size: the buffered cap (query.max_response_bytes)
// does not apply, and rows are printed while DuckDB is still producing them.
TEST_F(CliQueryLimit, NoLimitStreamsTheWholeResult) {
  const std::string env = "BYTEFREEZER_QUERY__MAX_RESPONSE_BYTES=1KiB ";
  const std::string err_file = (dir / "stream-stderr.txt").string();
  auto [code, out] = run_command("( " + env + BF_BINARY + " query --config " + cfg +
                                 " --dataset web/logs --no-limit --format csv 'SELECT range AS n FROM range(300000)' 2>" +
                                 err_file + " )");
  EXPECT_EQ(code, 0) << out.substr(0, 300);
  size_t lines = 0;
  for (size_t at = out.find("\r\n"); at != std::string::npos; at = out.find("\r\n", at + 2)) ++lines;
  EXPECT_EQ(lines, 300001u);  // header + every row, far beyond 1KiB
  EXPECT_NE(out.find("\r\n299999\r\n"), std::string::npos);

  // Rows leave as DuckDB produces them: a reader that takes the first few KB of an
  // endless result (10^12 rows) gets them at once, and the CLI stops when stdout closes
  // instead of running to query.timeout (60s here).
  const std::string code_file = (dir / "code.txt").string();
  const auto start = std::chrono::steady_clock::now();
  auto [hcode, head] = run_command("( ( BYTEFREEZER_QUERY__TIMEOUT=60s " + std::string(BF_BINARY) + " query --config " +
                                   cfg + " --dataset web/logs --no-limit --format csv "
                                   "'SELECT range AS n FROM range(1000000000000)' 2>" + err_file + "; echo $? >" +
                                   code_file + " ) | head -c 5000 )");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(hcode, 0);
  EXPECT_EQ(head.size(), 5000u);
  EXPECT_EQ(head.rfind("n\r\n0\r\n1\r\n2\r\n", 0), 0u) << head.substr(0, 100);
  std::ifstream code_in(code_file);
  int bf_code = -1;
  code_in >> bf_code;
  EXPECT_EQ(bf_code, 1);
  std::ifstream in(err_file);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(err.find("writing the result to stdout failed"), std::string::npos) << err;
}

TEST_F(CliQueryLimit, FromAndToRestrictTheTimeRange) {
  auto store = std::make_shared<bf::LocalStore>(dir / "s");
  const bf::DatasetRef timed{"acme", "web", "timed"};
  for (const char* hh : {"00", "01", "02"})
    bf::test::write_part(store, timed,
                         std::string("SELECT TIMESTAMP '2026-01-01 ") + hh + ":30:00' AS _time, 'h" + hh + "' AS label", 1,
                         true, std::string("year=2026/month=01/day=01/hour=") + hh);
  cfg = config("storage: {type: local, path: " + (dir / "s").string() +
               "}\naccounts: [{id: acme, tenants: [{id: web, datasets: [{id: logs}, {id: timed}]}]}]\n");
  auto r = run_command(std::string(BF_BINARY) + " query --config " + cfg +
                       " --dataset web/timed --format csv --from 2026-01-01T01:00:00Z --to 2026-01-01T03:00:00Z "
                       "'SELECT label FROM events ORDER BY label'");
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_EQ(r.second, "label\r\nh01\r\nh02\r\n");
  auto bad = run_command(std::string(BF_BINARY) + " query --config " + cfg +
                         " --dataset web/timed --from yesterday 'SELECT 1'");
  EXPECT_NE(bad.first, 0);
  EXPECT_NE(bad.second.find("RFC 3339"), std::string::npos) << bad.second;
}

// --url: each format asks the server for it, and a cut is reported the same way.
TEST_F(CliQueryLimit, RemoteFormatsReportTheCut) {
  const uint16_t port = bf::test::free_port();
  const std::string server_cfg = (dir / "server.yaml").string();
  std::ofstream(server_cfg) << "storage: {type: local, path: " << (dir / "s").string()
                            << "}\naccounts: [{id: acme, tenants: [{id: web, query_keys: [cli-test-query-key-0123], "
                               "datasets: [{id: logs}]}]}]\nquery: {listen: 127.0.0.1:"
                            << port << ", max_rows: 10, temp_dir: " << (dir / "qtmp").string()
                            << "}\nadmin: {enabled: false}\n";
  bf::test::ChildOptions child_options;
  child_options.log_file = (dir / "server.log").string();
  bf::test::ChildProcess server({BF_BINARY, "query-server", "--config", server_cfg}, child_options);
  ASSERT_TRUE(bf::test::wait_for_port(port, std::chrono::seconds(20)));
  const std::string base = std::string(BF_BINARY) + " query --url http://127.0.0.1:" + std::to_string(port) +
                           " --key cli-test-query-key-0123 --dataset web/logs ";
  const std::string err_file = (dir / "remote-stderr.txt").string();
  auto run = [&](const std::string& args) {
    auto [code, out] = run_command("( " + base + args + " 2>" + err_file + " )");
    std::ifstream in(err_file);
    std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return Run{code, out, err};
  };
  for (const char* format : {"table", "json", "ndjson", "csv"}) {
    auto r = run(std::string("--format ") + format + " 'SELECT n FROM events ORDER BY n'");
    EXPECT_EQ(r.code, 3) << format << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("truncated at 10 rows"), std::string::npos) << format << ": " << r.err;
  }
  auto csv = run("--format csv 'SELECT n FROM events ORDER BY n LIMIT 2'");
  EXPECT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out, "n\r\n0\r\n1\r\n");
  auto nd = run("--format ndjson 'SELECT n FROM events ORDER BY n LIMIT 2'");
  EXPECT_EQ(nd.code, 0) << nd.err;
  EXPECT_EQ(nd.out.rfind("{\"n\":0}\n{\"n\":1}\n{\"_meta\":", 0), 0u) << nd.out;
}

TEST_F(Cli, MaxRowsIsRefusedWithUrl) {
  auto [code, out] = bf("query --url http://127.0.0.1:1 --key k --dataset t/d --max-rows 0 'SELECT 1'");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("only with --config"), std::string::npos) << out;
}

}  // namespace

namespace {

// Every example config in config/ is valid for the subcommand it is written for.
TEST(ShippedConfigs, PassDryRun) {
  const std::pair<const char*, const char*> configs[] = {
      {"run", "all-in-one.yaml"}, {"proxy", "proxy.yaml"},   {"receiver", "receiver.yaml"},
      {"piper", "piper.yaml"},    {"packer", "packer.yaml"}, {"query-server", "query.yaml"}};
  for (const auto& [command, file] : configs) {
    std::string path = std::string(BF_SOURCE_DIR) + "/config/" + file;
    auto [code, out] = run_command(std::string(BF_BINARY) + " " + command + " --dry-run --config " + path);
    EXPECT_EQ(code, 0) << command << " " << file << ":\n" << out;
    EXPECT_NE(out.find(path + ": ok"), std::string::npos) << out;
  }
  // And the dry run does find errors.
  auto [code, out] = run_command(std::string(BF_BINARY) + " piper --dry-run --config " + std::string(BF_SOURCE_DIR) +
                                 "/config/proxy.yaml");
  EXPECT_EQ(code, 0) << out;  // a piper ignores the proxy section
  auto [bad_code, bad_out] = run_command(std::string(BF_BINARY) + " proxy --dry-run --config " +
                                         std::string(BF_SOURCE_DIR) + "/config/query.yaml");
  EXPECT_NE(bad_code, 0);  // no proxy section: the ingest key is required
  EXPECT_NE(bad_out.find("ingest_key"), std::string::npos) << bad_out;
}

}  // namespace
