#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <filesystem>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/ulid.h"
#include "piper/piper.h"
#include "piper/transform.h"
#include "storage/layout.h"
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
  Piper piper(PiperOptions{}, catalog, store);
  std::string bad = new_ulid(), good = new_ulid();
  store->put(raw_key(ref, bad), "this is not zstd");
  store->put(raw_key(ref, good), encode_batch({Event{{"n", 1}}}));
  EXPECT_EQ(piper.run_once(), 1u);
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
