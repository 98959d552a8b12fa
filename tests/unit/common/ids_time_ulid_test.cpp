#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "common/ids.h"
#include "common/time.h"
#include "common/ulid.h"

using namespace bf;

TEST(Ids, AcceptsDesignRule) {
  EXPECT_TRUE(is_valid_id("a"));
  EXPECT_TRUE(is_valid_id("acme-prod_01"));
  EXPECT_TRUE(is_valid_id(std::string(63, 'a')));
  EXPECT_FALSE(is_valid_id(""));
  EXPECT_FALSE(is_valid_id(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_id("Acme"));
  EXPECT_FALSE(is_valid_id("-acme"));
  EXPECT_FALSE(is_valid_id("_acme"));
  EXPECT_FALSE(is_valid_id("a/b"));
  EXPECT_FALSE(is_valid_id(".."));
  EXPECT_FALSE(is_valid_id("a b"));
}

TEST(Ids, RequireIdNamesWhatAndValue) {
  try {
    require_id("tenant", "../etc");
    FAIL();
  } catch (const InvalidId& e) {
    EXPECT_NE(std::string(e.what()).find("tenant"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("../etc"), std::string::npos);
  }
}

TEST(Ulid, FormatTimeAndOrder) {
  std::string a = new_ulid();
  std::string b = new_ulid();
  EXPECT_EQ(a.size(), 26u);
  EXPECT_TRUE(is_valid_ulid(a));
  EXPECT_LT(a, b);  // monotonic within a process
  auto ms = ulid_time_ms(a);
  ASSERT_TRUE(ms);
  EXPECT_NEAR(static_cast<double>(*ms), static_cast<double>(now_ms()), 5000);
  EXPECT_EQ(*ulid_time_ms(ulid_at(1700000000123)), 1700000000123);
  EXPECT_FALSE(is_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FA"));   // 25 chars
  EXPECT_FALSE(is_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));  // U is not Crockford
  EXPECT_FALSE(is_valid_ulid("81ARZ3NDEKTSV4RRFFQ69G5FAV"));  // overflows 48 bits
  std::set<std::string> many;
  for (int i = 0; i < 10000; ++i) many.insert(new_ulid());
  EXPECT_EQ(many.size(), 10000u);
}

TEST(Time, FormatAndParseRoundTrip) {
  int64_t t = 1764077709123456;  // 2025-11-25T13:35:09.123456Z
  EXPECT_EQ(format_rfc3339(t), "2025-11-25T13:35:09.123456Z");
  EXPECT_EQ(parse_rfc3339("2025-11-25T13:35:09.123456Z"), t);
  EXPECT_EQ(parse_rfc3339("2025-11-25T14:35:09.123456+01:00"), t);
  EXPECT_EQ(parse_rfc3339("2025-11-25T08:35:09.123456-0500"), t);
  EXPECT_EQ(parse_rfc3339("2025-11-25T13:35:09Z"), t - 123456);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), int64_t(1709164800) * 1000000);
  EXPECT_FALSE(parse_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-11-25T13:35:09Zjunk"));
  EXPECT_FALSE(parse_rfc3339("yesterday"));
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(Time, FormatRfc3339DigitByDigitMatchesPrintf) {
  // The hand-written formatter against printf over random instants from year 0 to
  // 9999, the day and second edges, and years outside (which take printf's path),
  // both forms (std::string, and into a caller's buffer).
  std::mt19937_64 rng(7);
  const int64_t lo = civil_to_us(0, 1, 1, 0, 0, 0, 0), hi = civil_to_us(10000, 1, 1, 0, 0, 0, 0);
  std::vector<int64_t> ts = {0, -1, lo, lo - 1, hi - 1, hi, civil_to_us(2024, 2, 29, 23, 59, 59, 999999)};
  for (int i = 0; i < 20000; ++i) ts.push_back(lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo)));
  for (int64_t t : ts) {
    const CivilTime c = to_civil(t);
    char want[40];
    std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", c.year, c.month, c.day, c.hour, c.minute,
                  c.second, c.micros);
    ASSERT_EQ(format_rfc3339(t), want) << t;
    char buf[40];  // the allocation-free form date_parse uses: the same text, its length
    std::memset(buf, 'x', sizeof buf);
    ASSERT_EQ(std::string_view(buf, format_rfc3339(t, buf)), want) << t;
    if (c.year >= 1 && c.year <= 9999) {
      EXPECT_EQ(parse_rfc3339(want), t) << want;
    }
  }
}

TEST(Time, PartitionPaths) {
  int64_t t = *parse_rfc3339("2026-03-07T05:59:59.999Z");
  EXPECT_EQ(hour_path(t), "2026/03/07/05");
  EXPECT_EQ(hive_hour_path(t), "year=2026/month=03/day=07/hour=05");
}
