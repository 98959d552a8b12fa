#include <gtest/gtest.h>

#include <random>

#include "common/batch.h"
#include "common/compression.h"
#include "common/utf8.h"

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

TEST(BatchEnvelope, DecodingAppliesTheReceiveDefaultsToEventsWithoutThem) {
  const BatchEnvelope env{{"received", "2026-12-02T07:00:00.000001Z"}, {"source", "http-ingest"}, {"peer", "10.0.0.9:4000"}};
  const std::string ndjson =
      "{\"n\":1}\n"                                                        // nothing: all defaults
      "{\"n\":2,\"_time\":\"2026-01-01T00:00:00Z\"}\n"                     // its own time kept
      "{\"n\":3,\"_received\":\"2026-12-01T00:00:00Z\"}\n"                 // _time from its own _received
      "{\"n\":4,\"_source\":\"syslog-tcp:5514\"}\n"                        // own source: no _peer added
      "{\"n\":5,\"_peer\":\"1.2.3.4:5\"}\n";                               // own peer kept
  const std::vector<Event> events = decode_batch(wrap_batch_object(env, compress(Encoding::zstd, ndjson)));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].at("_received").as_string(), "2026-12-02T07:00:00.000001Z");
  EXPECT_EQ(events[0].at("_time"), events[0].at("_received"));
  EXPECT_EQ(events[0].at("_source").as_string(), "http-ingest");
  EXPECT_EQ(events[0].at("_peer").as_string(), "10.0.0.9:4000");
  EXPECT_EQ(events[1].at("_time").as_string(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(events[2].at("_received").as_string(), "2026-12-01T00:00:00Z");
  EXPECT_EQ(events[2].at("_time").as_string(), "2026-12-01T00:00:00Z");
  EXPECT_EQ(events[3].at("_source").as_string(), "syslog-tcp:5514");
  EXPECT_FALSE(events[3].contains("_peer"));
  EXPECT_EQ(events[4].at("_peer").as_string(), "1.2.3.4:5");
  EXPECT_EQ(events[4].at("_source").as_string(), "http-ingest");

  // "complete": every event has them, nothing is added; no receive metadata, nothing either.
  BatchEnvelope complete = env;
  complete["complete"] = true;
  EXPECT_FALSE(decode_batch(wrap_batch_object(complete, compress(Encoding::zstd, "{\"n\":1}\n")))[0].contains("_source"));
  EXPECT_FALSE(decode_batch(wrap_batch_object(BatchEnvelope{{"k", "v"}}, compress(Encoding::zstd, "{\"n\":1}\n")))[0]
                   .contains("_received"));
  EXPECT_FALSE(decode_batch(compress(Encoding::zstd, "{\"n\":1}\n"))[0].contains("_time"));
}

TEST(Compression, SkippableFramesAreFoundAndStrippedLosslessly) {
  auto skippable = [](uint32_t magic, std::string_view content) {
    std::string f;
    for (int i = 0; i < 4; ++i) f += static_cast<char>((magic >> (8 * i)) & 0xff);
    const uint32_t n = static_cast<uint32_t>(content.size());
    for (int i = 0; i < 4; ++i) f += static_cast<char>((n >> (8 * i)) & 0xff);
    return f + std::string(content);
  };
  const std::string a = compress(Encoding::zstd, "{\"n\":1}\n"), b = compress(Encoding::zstd, "{\"n\":2}\n");
  EXPECT_FALSE(has_zstd_skippable_frames(a + b));
  const std::string mixed = skippable(0x184D2A5B, "{\"received\":\"x\"}") + a + skippable(0x184D2A50, "abcd") + b;
  EXPECT_TRUE(has_zstd_skippable_frames(mixed));
  EXPECT_EQ(strip_zstd_skippable_frames(mixed), a + b);
  EXPECT_EQ(decompress(Encoding::zstd, mixed, 1 << 20), "{\"n\":1}\n{\"n\":2}\n");
  EXPECT_THROW(has_zstd_skippable_frames(a + "garbage"), DecompressError);
  EXPECT_THROW(has_zstd_skippable_frames(a.substr(0, a.size() - 1)), DecompressError);
}

TEST(Compression, DecompressIntoReusesTheBuffer) {
  std::string buffer;
  const std::string big(3 << 20, 'x');
  EXPECT_EQ(decompress_into(Encoding::zstd, compress(Encoding::zstd, big), 4 << 20, buffer), big);
  const char* kept = buffer.data();
  EXPECT_EQ(decompress_into(Encoding::zstd, compress(Encoding::zstd, "small"), 4 << 20, buffer), "small");
  EXPECT_EQ(buffer.data(), kept);  // no new allocation for a smaller body
  EXPECT_THROW(decompress_into(Encoding::zstd, compress(Encoding::zstd, big), 1 << 20, buffer), DecompressTooLarge);
  const std::string identity = "{\"a\":1}\n";
  EXPECT_EQ(decompress_into(Encoding::identity, identity, 100, buffer).data(), identity.data());  // no copy
  EXPECT_EQ(decompress_into(Encoding::gzip, compress(Encoding::gzip, "gz"), 100, buffer), "gz");
  // Concatenated frames decompress whole (the first frame's size is only where the buffer starts).
  std::string empty_buffer;
  EXPECT_EQ(decompress_into(Encoding::zstd, compress(Encoding::zstd, big) + compress(Encoding::zstd, "tail"), 4 << 20,
                            empty_buffer).size(), big.size() + 4);
}

// RFC 4648 §10's test vectors, and bytes that are not text (what `_raw_b64` holds).
TEST(Base64, MatchesRfc4648VectorsAndKeepsAnyByte) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) EXPECT_EQ(bf::base64(in), out) << in;
  EXPECT_EQ(bf::base64(std::string("\0\xff\xfe", 3)), "AP/+");
}
