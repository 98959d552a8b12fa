// API key format, parsing and verification; argon2id passwords; the policy; the
// token bucket.
#include <gtest/gtest.h>

#include <set>

#include "control_test_util.h"

namespace bf::control {
namespace {

TEST(ApiKeys, GeneratedKeysHaveTheDocumentedFormatAndParseBack) {
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    NewKey k = generate_api_key();
    ASSERT_EQ(k.token.size(), 4u + 16 + 1 + 64) << k.token;
    EXPECT_EQ(k.token.rfind("bfk_" + k.id + "_", 0), 0u);
    auto parts = parse_api_key(k.token);
    ASSERT_TRUE(parts);
    EXPECT_EQ(parts->id, k.id);
    EXPECT_TRUE(verify_secret(parts->secret, k.secret_hash));
    // The stored hash is not the secret, and the secret does not appear in it.
    EXPECT_EQ(k.secret_hash.find(parts->secret), std::string::npos);
    ids.insert(k.id);
  }
  EXPECT_EQ(ids.size(), 50u);
}

TEST(ApiKeys, WrongSecretsFail) {
  NewKey k = generate_api_key();
  auto parts = parse_api_key(k.token);
  ASSERT_TRUE(parts);
  std::string wrong = parts->secret;
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verify_secret(wrong, k.secret_hash));
  EXPECT_FALSE(verify_secret("", k.secret_hash));
  EXPECT_FALSE(verify_secret(parts->secret, ""));
  EXPECT_FALSE(verify_secret(parts->secret, "short"));
}

TEST(ApiKeys, MalformedTokensDoNotParse) {
  NewKey k = generate_api_key();
  for (std::string bad : {std::string(""), std::string("bfk_"), std::string("bfk__"),
                          "BFK_" + k.token.substr(4), k.token.substr(0, k.token.size() - 1), k.token + "0",
                          "bfk_" + std::string(16, 'g') + "_" + std::string(64, 'a'),   // not hex
                          "bfk_" + std::string(16, 'a') + "-" + std::string(64, 'a'),   // wrong separator
                          "bfk_" + std::string(16, 'A') + "_" + std::string(64, 'a'),   // upper case
                          "xyz_" + k.token.substr(4)}) {
    EXPECT_FALSE(parse_api_key(bad)) << bad;
  }
}

TEST(ApiKeys, ImportedKeyIdsAreStableAndNeverLookGenerated) {
  EXPECT_EQ(imported_key_id("secret-ingest-key"), imported_key_id("secret-ingest-key"));
  EXPECT_NE(imported_key_id("secret-ingest-key"), imported_key_id("secret-ingest-kez"));
  EXPECT_EQ(imported_key_id("x").size(), 16u);
  EXPECT_EQ(imported_key_id("x")[0], 'i');  // generated ids are hex: never 'i'
}

TEST(Passwords, Argon2idHashesVerifyOnlyTheRightPassword) {
  const std::string h = hash_password("correct horse battery staple");
  EXPECT_EQ(h.rfind("$argon2id$", 0), 0u) << h;
  EXPECT_TRUE(verify_password("correct horse battery staple", h));
  EXPECT_FALSE(verify_password("correct horse battery stapl", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_FALSE(verify_password("correct horse battery staple", "not-a-hash"));
  EXPECT_FALSE(verify_password("correct horse battery staple", ""));
  // Salted: the same password hashes differently.
  EXPECT_NE(h, hash_password("correct horse battery staple"));
  EXPECT_THROW(hash_password(std::string(kMaxPasswordLength + 1, 'x')), std::invalid_argument);
}

TEST(Cursors, Base64UrlRoundTripsAndRefusesJunk) {
  for (std::string s : {std::string(""), std::string("c1:acme"), std::string("\x00\xff/+", 4)}) {
    auto back = unbase64url(base64url(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(unbase64url("!!!"));
  EXPECT_FALSE(unbase64url("YWJj="));  // padding is not part of the variant
}

TEST(Policy, RolesDecideAsDocumented) {
  Principal sys{Role::system_admin, "key", "k", "", "", "", ""};
  Principal admin{Role::account_admin, "key", "k", "a", "", "", ""};
  Principal viewer{Role::account_viewer, "key", "k", "a", "", "", ""};
  Principal ingest{Role::ingest, "key", "k", "a", "t", "", ""};
  Principal piper{Role::service, "key", "k", "", "", "", "piper"};
  EXPECT_EQ(decide(sys, Action::remove, {Kind::account, "a", {}}), Decision::allow);
  EXPECT_EQ(decide(admin, Action::update, {Kind::tenant, "a", {}}), Decision::allow);
  EXPECT_EQ(decide(admin, Action::update, {Kind::tenant, "b", {}}), Decision::hidden);
  EXPECT_EQ(decide(admin, Action::create, {Kind::account, "a", {}}), Decision::forbidden);
  EXPECT_EQ(decide(admin, Action::remove, {Kind::account, "a", {}}), Decision::forbidden);
  EXPECT_EQ(decide(admin, Action::remove, {Kind::account, "b", {}}), Decision::hidden);
  EXPECT_EQ(decide(admin, Action::create, {Kind::api_key, "a", Role::ingest}), Decision::allow);
  EXPECT_EQ(decide(admin, Action::create, {Kind::api_key, "a", Role::service}), Decision::forbidden);
  EXPECT_EQ(decide(admin, Action::create, {Kind::user, "a", Role::system_admin}), Decision::forbidden);
  EXPECT_EQ(decide(admin, Action::create, {Kind::api_key, "", Role::system_admin}), Decision::forbidden);
  EXPECT_EQ(decide(admin, Action::read, {Kind::api_key, "", {}}), Decision::hidden);
  EXPECT_EQ(decide(viewer, Action::read, {Kind::dataset, "a", {}}), Decision::allow);
  EXPECT_EQ(decide(viewer, Action::update, {Kind::dataset, "a", {}}), Decision::forbidden);
  EXPECT_EQ(decide(viewer, Action::read, {Kind::dataset, "b", {}}), Decision::hidden);
  EXPECT_EQ(decide(ingest, Action::read, {Kind::dataset, "a", {}}), Decision::forbidden);
  EXPECT_EQ(decide(piper, Action::read, {Kind::dataset, "a", {}}), Decision::allow);
  EXPECT_EQ(decide(piper, Action::update, {Kind::dataset, "a", {}}), Decision::forbidden);
  EXPECT_EQ(decide(piper, Action::list, {Kind::user, "", {}}), Decision::forbidden);
}

TEST(RateLimiter, BurstThenRefusalWithRetryAfterPerKey) {
  RateLimiter rl(0.5, 3);  // a token every 2 s
  int64_t retry = 0;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.take("k", retry));
  EXPECT_FALSE(rl.take("k", retry));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 2);
  EXPECT_TRUE(rl.take("other", retry));  // buckets are per key
}

}  // namespace
}  // namespace bf::control
