// LocalStore: the ObjectStore conformance suite plus local-only behaviour, and the
// storage config parsing / factory.
#include "storage/local_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/config.h"
#include "common/ulid.h"
#include "fixtures/object_store_conformance.h"
#include "storage/s3_store.h"

namespace fs = std::filesystem;

namespace bf {
namespace {

// A temp directory removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bf_local_store_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::shared_ptr<ObjectStore> make_local() {
  // One directory per test, cleaned up when the test binary exits.
  static TempDir base;
  static std::atomic<int> n{0};
  return std::make_shared<LocalStore>(base.path() / ("store" + std::to_string(n++)));
}

INSTANTIATE_TEST_SUITE_P(LocalStore, ObjectStoreConformance,
                         ::testing::Values(test::StoreFactory{"local", make_local}),
                         test::StoreFactoryName());

TEST(LocalStore, WritesPlainFilesUnderTheRoot) {
  TempDir dir;
  LocalStore store(dir.path() / "root");
  store.put("raw/a/b.ndjson.zst", "data");
  EXPECT_TRUE(fs::is_regular_file(dir.path() / "root/raw/a/b.ndjson.zst"));
  EXPECT_EQ(store.describe(), "local:" + (dir.path() / "root").string());
}

TEST(LocalStore, TempFilesNeverAppearInListings) {
  TempDir dir;
  LocalStore store(dir.path());
  store.put("d/real", "1");
  // Leftovers of a crashed writer.
  { std::ofstream(dir.path() / "d/.tmp-real-01ABC") << "partial"; }
  { std::ofstream(dir.path() / ".tmp-top-01ABC") << "partial"; }
  fs::create_directories(dir.path() / "d/.tmp-dir");
  { std::ofstream(dir.path() / "d/.tmp-dir/x") << "partial"; }
  std::vector<std::string> keys;
  for (const auto& o : store.list_all("")) keys.push_back(o.key);
  EXPECT_EQ(keys, std::vector<std::string>{"d/real"});
  EXPECT_THROW(store.put("d/.tmp-real-01ABC", "x"), InvalidKey);
  EXPECT_THROW(store.get("d/.tmp-real-01ABC"), InvalidKey);
}

TEST(LocalStore, ConcurrentWritersNeverExposePartialObjects) {
  TempDir dir;
  LocalStore store(dir.path());
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  store.put("obj", a);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) store.put("obj", i % 2 ? a : b);
    stop = true;
  });
  int reads = 0;
  while (!stop) {
    std::string got = store.get("obj");
    ASSERT_TRUE(got == a || got == b) << "torn read";
    for (const auto& o : store.list_all("")) ASSERT_EQ(o.key, "obj");
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0);
}

TEST(LocalStore, CreateIfAbsentHasExactlyOneWinner) {
  TempDir dir;
  LocalStore store(dir.path());
  for (int round = 0; round < 20; ++round) {
    const std::string key = "leases/" + std::to_string(round);
    std::atomic<int> winners{0}, losers{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        try {
          store.create_if_absent(key, "owner-" + std::to_string(t));
          ++winners;
        } catch (const PreconditionFailed&) {
          ++losers;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1);
    EXPECT_EQ(losers.load(), 7);
    EXPECT_EQ(store.get(key).rfind("owner-", 0), 0u);
  }
  // No temp files left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
  }
}

TEST(LocalStore, RemovePrunesEmptyParentsButNotTheRoot) {
  TempDir dir;
  const fs::path root = dir.path() / "root";
  LocalStore store(root);
  store.put("a/b/c/d", "x");
  store.put("a/keep", "y");
  store.remove("a/b/c/d");
  EXPECT_FALSE(fs::exists(root / "a/b"));
  EXPECT_TRUE(fs::exists(root / "a/keep"));
  store.remove("a/keep");
  EXPECT_FALSE(fs::exists(root / "a"));
  EXPECT_TRUE(fs::is_directory(root));
  store.put("top", "z");
  store.remove("top");
  EXPECT_TRUE(fs::is_directory(root));
}

TEST(LocalStore, PaginationTokenIsTheLastKey) {
  TempDir dir;
  LocalStore store(dir.path());
  for (const char* k : {"p/1", "p/2", "p/3"}) store.put(k, "x");
  ListPage page = store.list("p/", "", 2);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.next_token, "p/2");
  page = store.list("p/", page.next_token, 2);
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "p/3");
  EXPECT_TRUE(page.next_token.empty());
}

TEST(LocalStore, ListsManyKeysAcrossDirectoriesInOrder) {
  TempDir dir;
  LocalStore store(dir.path());
  std::vector<std::string> keys;
  for (int d = 0; d < 12; ++d) {
    for (int f = 0; f < 12; ++f) {
      keys.push_back("x/" + std::to_string(d) + "/" + std::to_string(f));
      keys.push_back("x/" + std::to_string(d) + "-" + std::to_string(f));
    }
  }
  for (const auto& k : keys) store.put(k, "");
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> got;
  std::string token;
  do {
    ListPage page = store.list("x/", token, 7);
    for (const auto& o : page.objects) got.push_back(o.key);
    token = page.next_token;
  } while (!token.empty());
  EXPECT_EQ(got, keys);
}

TEST(LocalStore, FileAndDirectoryConflictsAreErrorsNotCrashes) {
  TempDir dir;
  LocalStore store(dir.path());
  store.put("a/b", "x");
  EXPECT_THROW(store.put("a", "y"), StorageError);
  EXPECT_THROW(store.put("a/b/c", "y"), StorageError);
  EXPECT_THROW(store.create_if_absent("a", "y"), StorageError);
  EXPECT_EQ(store.get("a/b"), "x");
}

TEST(ValidateKey, AcceptsAndRejects) {
  EXPECT_NO_THROW(validate_key("raw/a/t/d/2024/01/01/00/01HZ.ndjson.zst"));
  EXPECT_NO_THROW(validate_key("parquet/account=a/x.parquet"));
  EXPECT_NO_THROW(validate_key("a..b/.hidden/..."));
  for (std::string bad : {"", "/a", "a/../b", "..", ".", "a//b", "a/", "a\\b"}) {
    EXPECT_THROW(validate_key(bad), InvalidKey) << bad;
  }
  EXPECT_THROW(validate_key(std::string("a\0b", 3)), InvalidKey);
  EXPECT_THROW(validate_key(std::string(1025, 'k')), InvalidKey);
  try {
    validate_key("x/../y");
    FAIL();
  } catch (const InvalidKey& e) {
    EXPECT_NE(std::string(e.what()).find("x/../y"), std::string::npos) << e.what();
  }
}

ConfigNode storage_section(const std::string& yaml) {
  static std::vector<ConfigNode> keep;  // the child refers to the root's shared state
  keep.push_back(ConfigNode::parse(yaml, "test.yaml"));
  return keep.back().child("storage");
}

TEST(StorageOptions, Defaults) {
  StorageOptions o = parse_storage_options(storage_section("storage: {}\n"));
  EXPECT_EQ(o.type, "local");
  EXPECT_EQ(o.path, "./data/store");
  EXPECT_EQ(o.region, "us-east-1");
  EXPECT_TRUE(o.path_style);
  EXPECT_EQ(o.multipart_threshold, 64ull << 20);
  EXPECT_EQ(o.part_size, 16ull << 20);
  EXPECT_EQ(o.max_retries, 5);
  EXPECT_EQ(o.timeout_ms, 30000);
}

TEST(StorageOptions, ParsesS3Section) {
  StorageOptions o = parse_storage_options(storage_section(R"(
storage:
  type: s3
  endpoint: http://127.0.0.1:9000
  bucket: telemetry
  region: eu-west-1
  prefix: prod/
  access_key: AK
  secret_key: SK
  session_token: TOK
  path_style: false
  multipart_threshold: 128MiB
  part_size: 32MiB
  max_retries: 7
  timeout: 2m
)"));
  EXPECT_EQ(o.type, "s3");
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(o.bucket, "telemetry");
  EXPECT_EQ(o.region, "eu-west-1");
  EXPECT_EQ(o.prefix, "prod/");
  EXPECT_EQ(o.access_key, "AK");
  EXPECT_EQ(o.secret_key, "SK");
  EXPECT_EQ(o.session_token, "TOK");
  EXPECT_FALSE(o.path_style);
  EXPECT_EQ(o.multipart_threshold, 128ull << 20);
  EXPECT_EQ(o.part_size, 32ull << 20);
  EXPECT_EQ(o.max_retries, 7);
  EXPECT_EQ(o.timeout_ms, 120000);
}

void expect_config_error(const std::string& yaml, const std::string& needle) {
  try {
    parse_storage_options(storage_section(yaml));
    ADD_FAILURE() << "expected ConfigError for: " << yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(StorageOptions, RejectsBadValues) {
  expect_config_error("storage:\n  type: ftp\n", "storage.type");
  expect_config_error("storage:\n  type: ftp\n", "ftp");
  expect_config_error("storage:\n  type: s3\n", "storage.bucket");
  expect_config_error("storage:\n  type: s3\n  bucket: b\n  access_key: x\n", "storage.secret_key");
  expect_config_error("storage:\n  type: s3\n  bucket: b\n  endpoint: minio:9000\n", "storage.endpoint");
  expect_config_error("storage:\n  part_size: 1MiB\n", "storage.part_size");
  expect_config_error("storage:\n  max_retries: -1\n", "storage.max_retries");
  expect_config_error("storage:\n  prefix: a/../b\n", "storage.prefix");
}

TEST(StorageOptions, MakeObjectStore) {
  TempDir dir;
  StorageOptions o;
  o.path = (dir.path() / "s").string();
  auto local = make_object_store(o);
  EXPECT_NE(dynamic_cast<LocalStore*>(local.get()), nullptr);
  EXPECT_EQ(local->describe(), "local:" + o.path);

  StorageOptions s3;
  s3.type = "s3";
  s3.bucket = "bkt";
  s3.prefix = "pre";
  s3.endpoint = "http://127.0.0.1:1";
  auto remote = make_object_store(s3);
  EXPECT_NE(dynamic_cast<S3Store*>(remote.get()), nullptr);
  EXPECT_EQ(remote->describe(), "s3://bkt/pre (http://127.0.0.1:1)");

  StorageOptions bad;
  bad.type = "nfs";
  EXPECT_THROW(make_object_store(bad), StorageError);
}

TEST(LocalStoreHygiene, TempFilesOfInterruptedWritesAreRemovedOnlyWhenOld) {
  TempDir dir;
  const fs::path root = dir.path();
  LocalStore store(root);
  store.put("raw/a/b.ndjson.zst", "x");
  // As a killed process leaves them: ".tmp-<name>-<ulid of when the write started>".
  const fs::path stale = root / "raw/a/.tmp-c.ndjson.zst-01ARZ3NDEKTSV4RRFFQ69G5FAV";  // 2016
  const fs::path fresh = root / ("raw/a/.tmp-d.ndjson.zst-" + new_ulid());
  std::ofstream(stale) << "partial";
  std::ofstream(fresh) << "in progress";
  EXPECT_EQ(store.remove_stale_temp_files(std::chrono::minutes(15)), 1u);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));  // a write in progress elsewhere is left alone
  EXPECT_EQ(store.get("raw/a/b.ndjson.zst"), "x");
}

}  // namespace
}  // namespace bf
