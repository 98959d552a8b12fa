// S3Store against a real s3rver: the ObjectStore conformance suite plus S3-only
// behaviour (credentials, key prefix, virtual-host addressing, concurrency).
#include "storage/s3_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "fixtures/object_store_conformance.h"
#include "fixtures/s3rver.h"

namespace bf {
namespace {

// One server for the whole binary (startup takes about a second).
test::S3rver& server() {
  static std::unique_ptr<test::S3rver> s = std::make_unique<test::S3rver>();
  return *s;
}

std::string fresh_bucket(const std::string& stem) {
  static std::atomic<int> n{0};
  return stem + "-" + std::to_string(n++);
}

std::shared_ptr<ObjectStore> make_s3() {
  StorageOptions o = server().options(fresh_bucket("conformance"));
  o.multipart_threshold = test::kConformancePartSize;
  o.part_size = test::kConformancePartSize;
  auto store = std::make_shared<S3Store>(o);
  store->ensure_bucket();
  return store;
}

std::shared_ptr<ObjectStore> make_s3_prefixed() {
  StorageOptions o = server().options(fresh_bucket("conformance-prefixed"));
  o.prefix = "some/prefix";
  o.multipart_threshold = test::kConformancePartSize;
  o.part_size = test::kConformancePartSize;
  auto store = std::make_shared<S3Store>(o);
  store->ensure_bucket();
  // Objects outside the prefix must stay invisible to the store.
  StorageOptions raw = o;
  raw.prefix.clear();
  S3Store(raw).put("outside/prefix", "not mine");
  S3Store(raw).put("some/prefixed-but-not-below", "not mine either");
  return store;
}

INSTANTIATE_TEST_SUITE_P(S3Store, ObjectStoreConformance,
                         ::testing::Values(test::StoreFactory{"s3rver", make_s3, false},
                                           test::StoreFactory{"s3rver_prefixed", make_s3_prefixed, false}),
                         test::StoreFactoryName());

TEST(S3StoreS3rver, UnknownAccessKeyIsAccessDenied) {
  StorageOptions o = server().options(fresh_bucket("auth"));
  S3Store(o).ensure_bucket();
  S3Store(o).put("k", "v");
  o.access_key = "NOT-A-KEY";
  S3Store wrong(o);
  EXPECT_THROW(wrong.get("k"), AccessDenied);
  EXPECT_THROW(wrong.put("k", "x"), AccessDenied);
  EXPECT_THROW(wrong.list("", "", 10), AccessDenied);
  try {
    wrong.get("k");
  } catch (const AccessDenied& e) {
    EXPECT_NE(std::string(e.what()).find("InvalidAccessKeyId"), std::string::npos) << e.what();
  }
  // A wrong *secret* key is not detectable here: s3rver does not verify SigV4
  // signatures (its authentication middleware only checks the access key). The
  // SignatureDoesNotMatch -> AccessDenied mapping is covered by the scripted-server
  // unit test (tests/unit/storage/s3_store_unit_test.cpp).
}

TEST(S3StoreS3rver, PrefixIsolatesKeys) {
  const std::string bucket = fresh_bucket("prefix");
  StorageOptions base = server().options(bucket);
  S3Store root(base);
  root.ensure_bucket();
  base.prefix = "tenant-a";
  S3Store a(base);
  base.prefix = "tenant-b/";
  S3Store b(base);

  a.put("data/k", "from a");
  b.put("data/k", "from b");
  b.put("data/only-b", "b");
  EXPECT_EQ(a.get("data/k"), "from a");
  EXPECT_EQ(b.get("data/k"), "from b");
  EXPECT_FALSE(a.head("data/only-b"));
  ASSERT_EQ(a.list_all("").size(), 1u);
  EXPECT_EQ(a.list_all("")[0].key, "data/k");
  EXPECT_EQ(b.list_all("data/").size(), 2u);

  // On the wire the prefix is part of the key.
  std::vector<std::string> keys;
  for (const auto& o : root.list_all("")) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"tenant-a/data/k", "tenant-b/data/k", "tenant-b/data/only-b"}));
  EXPECT_EQ(root.get("tenant-a/data/k"), "from a");

  a.remove("data/k");
  EXPECT_EQ(b.get("data/k"), "from b");
  EXPECT_EQ(a.describe(), "s3://" + bucket + "/tenant-a (" + server().endpoint() + ")");
}

TEST(S3StoreS3rver, VirtualHostStyle) {
  // s3rver maps <bucket>.s3.<service-endpoint> to the bucket; *.localhost resolves to
  // loopback, so "http://s3.localhost:PORT" with virtual-host addressing sends
  // requests to http://<bucket>.s3.localhost:PORT/<key>.
  test::S3rver vhost_server({"--service-endpoint", "localhost"});
  StorageOptions o = vhost_server.options("vhost-bucket");
  S3Store(o).ensure_bucket();  // path-style
  o.endpoint = "http://s3.localhost:" + std::to_string(vhost_server.port());
  o.path_style = false;
  o.multipart_threshold = test::kConformancePartSize;
  o.part_size = test::kConformancePartSize;
  S3Store vhost(o);
  vhost.put("dir/a b", "via vhost");
  EXPECT_EQ(vhost.get("dir/a b"), "via vhost");
  EXPECT_EQ(vhost.get("dir/a b", ByteRange{4, 5}), "vhost");
  ASSERT_EQ(vhost.list_all("dir/").size(), 1u);
  vhost.create_if_absent("lease", "1");
  EXPECT_THROW(vhost.create_if_absent("lease", "2"), PreconditionFailed);
  const std::string big = test::random_bytes((6 << 20) + 7, 7);
  test::ScratchFile file(big);
  vhost.put_file("big", file.path());  // multipart through vhost URLs
  EXPECT_EQ(vhost.head("big")->size, big.size());

  // The same objects through path-style addressing.
  StorageOptions p = vhost_server.options("vhost-bucket");
  S3Store path(p);
  EXPECT_EQ(path.get("dir/a b"), "via vhost");
  EXPECT_TRUE(path.get("big") == big);
  vhost.remove("dir/a b");
  EXPECT_FALSE(path.head("dir/a b"));
}

TEST(S3StoreS3rver, EnsureBucketIsIdempotent) {
  S3Store store(server().options(fresh_bucket("idem")));
  store.ensure_bucket();
  EXPECT_NO_THROW(store.ensure_bucket());
}

TEST(S3StoreS3rver, MissingBucketIsAStorageErrorNotNotFound) {
  S3Store store(server().options("no-such-bucket-here"));
  try {
    store.put("k", "v");
    FAIL();
  } catch (const NotFound&) {
    FAIL() << "NotFound is for keys";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos) << e.what();
  }
}

TEST(S3StoreS3rver, ConcurrentUseFromManyThreads) {
  auto store = std::make_shared<S3Store>(server().options(fresh_bucket("threads")));
  store->ensure_bucket();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        try {
          store->put(key, key);
          if (store->get(key) != key) ++failures;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->list_all("").size(), 90u);
}

}  // namespace
}  // namespace bf
