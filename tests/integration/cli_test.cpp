// The bytefreezer binary's command line: config errors name the key and the file,
// plugins and version print what they should.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "common/ulid.h"
#include "fixtures/process.h"
#include "fixtures/lake.h"
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
