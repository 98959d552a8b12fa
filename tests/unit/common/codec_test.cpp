#include <gtest/gtest.h>

#include <random>

#include "common/batch.h"
#include "common/compression.h"

using namespace bf;

TEST(Compression, RoundTripsBothCodecs) {
  std::string data;
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) data += static_cast<char>('a' + rng() % 4);
  for (Encoding e : {Encoding::zstd, Encoding::gzip, Encoding::identity}) {
    std::string c = compress(e, data);
    if (e != Encoding::identity) {
      EXPECT_LT(c.size(), data.size());
    }
    EXPECT_EQ(decompress(e, c, data.size()), data);
  }
}

TEST(Compression, LimitStopsBombs) {
  std::string zeros(10 << 20, '\0');
  for (Encoding e : {Encoding::zstd, Encoding::gzip}) {
    std::string c = compress(e, zeros);
    EXPECT_THROW(decompress(e, c, 1 << 20), DecompressTooLarge);
  }
}

TEST(Compression, GarbageAndTruncationAreErrors) {
  EXPECT_THROW(decompress(Encoding::zstd, "not zstd at all", 1000), DecompressError);
  EXPECT_THROW(decompress(Encoding::gzip, "not gzip at all", 1000), DecompressError);
  std::string c = compress(Encoding::zstd, std::string(100000, 'x') + "tail");
  EXPECT_THROW(decompress(Encoding::zstd, c.substr(0, c.size() / 2), 1 << 20), DecompressError);
  std::string g = compress(Encoding::gzip, std::string(100000, 'y'));
  EXPECT_THROW(decompress(Encoding::gzip, g.substr(0, g.size() / 2), 1 << 20), DecompressError);
}

TEST(Compression, EncodingNames) {
  EXPECT_EQ(parse_encoding("zstd"), Encoding::zstd);
  EXPECT_EQ(parse_encoding("gzip"), Encoding::gzip);
  EXPECT_EQ(parse_encoding(""), Encoding::identity);
  EXPECT_FALSE(parse_encoding("br"));
}

TEST(Batch, NdjsonRoundTrip) {
  std::vector<Event> events;
  for (int i = 0; i < 3; ++i) events.push_back(Event{{"id", i}, {"msg", "hello \"world\"\n"}});
  auto decoded = decode_batch(encode_batch(events));
  ASSERT_EQ(decoded.size(), 3u);
  EXPECT_EQ(decoded[2].at("id").as_int64(), 2);
  EXPECT_EQ(decoded[0].at("msg").as_string(), "hello \"world\"\n");
}

TEST(Batch, ParseErrorsNameTheLine) {
  try {
    parse_ndjson("{\"a\":1}\n\n{\"b\":2}\r\n{broken\n");
    FAIL();
  } catch (const BatchFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("line 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_ndjson("[1,2]\n"), BatchFormatError);
  EXPECT_THROW(parse_ndjson("{\"a\":1} {\"b\":2}\n"), BatchFormatError);
  EXPECT_THROW(parse_ndjson("{\"a\":\"\xff\xfe\"}\n"), BatchFormatError);  // invalid UTF-8
  EXPECT_EQ(parse_ndjson("{\"a\":1}\n\n  \n{\"b\":2}").size(), 2u);
}

TEST(Batch, EventTimeFromTextOrEpochNumbers) {
  const int64_t t = 1764077709000000;  // 2025-11-25T13:35:09Z
  EXPECT_EQ(parse_event_time(boost::json::value("2025-11-25T13:35:09Z")), t);
  EXPECT_EQ(parse_event_time(boost::json::value(1764077709)), t);            // seconds
  EXPECT_EQ(parse_event_time(boost::json::value(1764077709000)), t);         // ms
  EXPECT_EQ(parse_event_time(boost::json::value(1764077709000000)), t);      // µs
  EXPECT_EQ(parse_event_time(boost::json::value(1764077709000000000)), t);   // ns
  EXPECT_EQ(parse_event_time(boost::json::value(1764077709.5)), t + 500000);  // fractional seconds
  EXPECT_FALSE(parse_event_time(boost::json::value("tuesday")));
  EXPECT_FALSE(parse_event_time(boost::json::value(-5)));
  EXPECT_FALSE(parse_event_time(boost::json::value(true)));
  EXPECT_FALSE(parse_event_time(boost::json::value(nullptr)));
}

TEST(BatchCodec, AnEmptyObjectIsNotABatchOfNoEvents) {
  // A read that raced an overwrite on some S3 servers returns "": it must not pass
  // as a batch with no events (which would be committed as delivered).
  EXPECT_THROW(bf::decode_batch(""), bf::BatchFormatError);
}

TEST(BatchEnvelope, TravelsAsASkippableFrameThatPlainZstdIgnores) {
  std::vector<Event> events{Event{{"msg", "a"}}, Event{{"msg", "b"}}};
  const BatchEnvelope env{{"received", "2026-12-02T07:00:00Z"}, {"source", "http-ingest"}};
  const std::string object = encode_batch(events, env);
  // Any zstd reader sees only the NDJSON.
  EXPECT_EQ(decompress(Encoding::zstd, object, 1 << 20), "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n");
  BatchObject split = split_batch_object(object);
  EXPECT_EQ(split.envelope.at("source").as_string(), "http-ingest");
  EXPECT_EQ(decompress(Encoding::zstd, split.payload, 1 << 20).size(), 24u);
  EXPECT_EQ(decode_batch(object).size(), 2u);
  // No envelope: no frame, the object is the compressed NDJSON itself.
  const std::string plain = encode_batch(events);
  EXPECT_TRUE(split_batch_object(plain).envelope.empty());
  EXPECT_EQ(split_batch_object(plain).payload.size(), plain.size());
}

TEST(BatchEnvelope, TruncatedOrMalformedFramesAreRefused) {
  const std::string object = encode_batch({Event{{"a", 1}}}, BatchEnvelope{{"k", "v"}});
  EXPECT_THROW(split_batch_object(std::string_view(object).substr(0, 6)), BatchFormatError);
  EXPECT_THROW(split_batch_object(std::string_view(object).substr(0, 12)), BatchFormatError);
  std::string bad = object;
  bad[8] = '[';  // the JSON is no longer an object
  EXPECT_THROW(split_batch_object(bad), BatchFormatError);
  // An envelope with no events after it is not a batch.
  EXPECT_THROW(decode_batch(wrap_batch_object(BatchEnvelope{{"k", "v"}}, "")), BatchFormatError);
}
