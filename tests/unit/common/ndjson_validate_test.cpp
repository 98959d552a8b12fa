#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <string>
#include <vector>

#include "common/batch.h"
#include "common/ndjson_validate.h"
#include "common/batch_shape.h"

using namespace bf;

namespace {

const NdjsonLimits kLimits{};

// The validator must accept exactly what the decoder (parse_ndjson) accepts: a batch
// stored as sent after it validated must always decode.
void expect_agrees_with_decoder(const std::string& text) {
  bool validated = true, decoded = true;
  std::string why;
  try {
    validate_ndjson(text, kLimits);
  } catch (const BatchFormatError& e) {
    validated = false;
    why = e.what();
  }
  try {
    parse_ndjson(text);
  } catch (const BatchFormatError&) {
    decoded = false;
  }
  EXPECT_EQ(validated, decoded) << "input: " << testing::PrintToString(text) << " validator: " << why;
}

std::string malformed_message(const std::string& text, const NdjsonLimits& limits = kLimits) {
  try {
    validate_ndjson(text, limits);
  } catch (const BatchFormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << testing::PrintToString(text);
  return {};
}

std::string too_large_message(const std::string& text, const NdjsonLimits& limits) {
  try {
    validate_ndjson(text, limits);
  } catch (const EventTooLarge& e) {
    return e.what();
  }
  ADD_FAILURE() << "not refused as too large";
  return {};
}

}  // namespace

TEST(NdjsonValidate, CountsEventsAndSkipsBlankLines) {
  auto s = validate_ndjson("{\"a\":1}\n\n   \n\t\n{\"b\":[1,2]}\r\n{}\n", kLimits);
  EXPECT_EQ(s.events, 3u);
  EXPECT_FALSE(s.complete);
  EXPECT_EQ(validate_ndjson("", kLimits).events, 0u);
  EXPECT_EQ(validate_ndjson("{\"a\":1}", kLimits).events, 1u);  // no final newline
}

TEST(NdjsonValidate, ReportsWhetherEveryEventIsComplete) {
  const std::string full = "{\"_time\":1,\"_received\":\"x\",\"_source\":\"s\",\"m\":1}\n";
  EXPECT_TRUE(validate_ndjson(full + full, kLimits).complete);
  EXPECT_FALSE(validate_ndjson(full + "{\"_time\":1,\"_received\":\"x\"}\n", kLimits).complete);
  // Only top-level members count; a nested _source is a field like any other.
  EXPECT_FALSE(validate_ndjson("{\"_time\":1,\"_received\":\"x\",\"n\":{\"_source\":\"s\"}}\n", kLimits).complete);
  // Keys are compared decoded: an escaped key is the same member the decoder sees.
  EXPECT_TRUE(validate_ndjson("{\"_t\\u0069me\":1,\"_received\":\"x\",\"_source\":\"s\"}\n", kLimits).complete);
  EXPECT_FALSE(validate_ndjson("{\"_time_\":1,\"_received\":\"x\",\"_source\":\"s\"}\n", kLimits).complete);
  EXPECT_FALSE(validate_ndjson("{\"_receivedx\":1,\"_time\":\"x\",\"_source\":\"s\"}\n", kLimits).complete);
}

TEST(NdjsonValidate, ErrorsNameTheLine) {
  EXPECT_EQ(malformed_message("{\"a\":1}\n\n[1,2]\n"), "line 3: not a JSON object");
  EXPECT_EQ(malformed_message("{\"a\":1}\n\"text\"\n"), "line 2: not a JSON object");
  EXPECT_EQ(malformed_message("42\n"), "line 1: not a JSON object");
  EXPECT_EQ(malformed_message("null\n"), "line 1: not a JSON object");
  EXPECT_EQ(malformed_message("{\"a\":1}\n{\"a\":\n").rfind("line 2: invalid JSON: ", 0), 0u);
  EXPECT_EQ(malformed_message("{\"a\":1} {\"b\":2}\n").rfind("line 1: invalid JSON: ", 0), 0u);  // two on one line
  EXPECT_EQ(malformed_message("{\"a\":1,}\n").rfind("line 1: invalid JSON", 0), 0u);  // trailing comma
  EXPECT_EQ(malformed_message("{\"a\":1} // note\n").rfind("line 1: invalid JSON", 0), 0u);  // comments
}

TEST(NdjsonValidate, LimitsNameTheLineAndTheLimit) {
  NdjsonLimits small{100, 5};
  auto big = too_large_message("{\"a\":1}\n{\"m\":\"" + std::string(200, 'x') + "\"}\n", small);
  EXPECT_NE(big.find("line 2"), std::string::npos) << big;
  EXPECT_NE(big.find("max_event_bytes (100 bytes)"), std::string::npos) << big;
  // Fields: members and array elements at every depth, as the receiver always counted.
  EXPECT_EQ(validate_ndjson("{\"a\":[1,2],\"b\":{\"c\":1}}\n", small).events, 1u);  // a, 1, 2, b, c = 5
  auto wide = too_large_message("{\"a\":1}\n\n{\"a\":[1,2],\"b\":{\"c\":1,\"d\":2}}\n", small);
  EXPECT_NE(wide.find("line 3 (event 2)"), std::string::npos) << wide;
  EXPECT_NE(wide.find("max_event_fields (5)"), std::string::npos) << wide;
  EXPECT_THROW(validate_ndjson("{\"a\":[[[[[[1]]]]]]}\n", small), EventTooLarge);
}

TEST(NdjsonValidate, AnEventOfExactlyTheLimitPassesOneByteMoreDoesNot) {
  const uint64_t mib = 1 << 20;
  auto event_of = [](size_t bytes) {  // {"m":"xxx..."} of `bytes` bytes
    return "{\"m\":\"" + std::string(bytes - 8, 'x') + "\"}";
  };
  EXPECT_EQ(validate_ndjson(event_of(mib) + "\n", kLimits).events, 1u);
  EXPECT_THROW(validate_ndjson(event_of(mib + 1) + "\n", kLimits), EventTooLarge);
  // The line end ('\n', "\r\n") is not part of the event.
  EXPECT_EQ(validate_ndjson(event_of(mib) + "\r\n", kLimits).events, 1u);
  // A huge string inside the limit is fine (no per-string limit of its own).
  NdjsonLimits roomy{64 << 20, 10000};
  EXPECT_EQ(validate_ndjson(event_of(20 << 20) + "\n", roomy).events, 1u);
}

TEST(NdjsonValidate, DeepNestingIsRefusedAt32Levels) {
  auto nested = [](int depth) {  // the event object itself is level 1
    return "{\"d\":" + std::string(static_cast<size_t>(depth - 1), '[') + std::string(static_cast<size_t>(depth - 1), ']') + "}\n";
  };
  EXPECT_EQ(validate_ndjson(nested(32), kLimits).events, 1u);
  EXPECT_THROW(validate_ndjson(nested(33), kLimits), BatchFormatError);
  EXPECT_THROW(validate_ndjson(nested(100000), NdjsonLimits{16 << 20, 1 << 30}), BatchFormatError);  // no stack overflow
  expect_agrees_with_decoder(nested(32));
  expect_agrees_with_decoder(nested(33));
}

TEST(NdjsonValidate, AdversarialInputAgreesWithTheDecoder) {
  const std::vector<std::string> inputs = {
      "{\"a\":\"\xc3\x28\"}\n",                     // invalid UTF-8
      "{\"a\":\"\xc3\n\xa9\"}\n",                   // a UTF-8 sequence split across lines
      "{\"a\":\"\xe2\x82\"}\n",                     // truncated sequence at the string's end
      "{\"a\":\"\xed\xa0\x80\"}\n",                 // an encoded surrogate (invalid UTF-8)
      "{\"a\":\"\xf4\x90\x80\x80\"}\n",             // above U+10FFFF
      "{\"a\":\"\xc0\xaf\"}\n",                     // overlong
      "{\"a\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}\n",  // valid multibyte
      "{\"a\":\"\\u0000\"}\n",                      // NUL as an escape: valid JSON
      std::string("{\"a\":\"\0\"}\n", 10),          // a raw NUL in a string
      std::string("{\"a\":1}\0\n", 9),              // a raw NUL after the object
      "{\"a\":\"\\ud800\"}\n",                      // lone high surrogate
      "{\"a\":\"\\udc00\"}\n",                      // lone low surrogate
      "{\"a\":\"\\ud83d\\ude00\"}\n",               // a valid pair
      "{\"a\":\"\\ud800\\u0041\"}\n",               // high surrogate then not a low one
      "{\"a\":1e400}\n",                            // out of double range
      "{\"a\":-1e400}\n",
      "{\"a\":1e-400}\n",
      "{\"a\":123456789012345678901234567890}\n",   // beyond 64 bits
      "{\"a\":18446744073709551615}\n",             // uint64 max
      "{\"a\":-9223372036854775809}\n",             // below int64
      "{\"a\":01}\n", "{\"a\":1.}\n", "{\"a\":.5}\n", "{\"a\":+1}\n", "{\"a\":NaN}\n", "{\"a\":Infinity}\n",
      "\xef\xbb\xbf{\"a\":1}\n",                    // a UTF-8 BOM
      "{\"a\":1}\r\n{\"b\":2}\r\n",                 // CRLF
      "{\"a\":1}\r\r\n",                            // a stray CR
      "\r\n",                                       // an empty CRLF line
      " \t \n",                                     // only whitespace
      "\f\n",                                       // form feed is not JSON whitespace
      "{\"a\":1,\"a\":2}\n",                        // duplicate keys
      "{\"a\":{\"b\":1,\"b\":[1]}}\n",
      "{\"a\":\"\t\"}\n",                           // raw control character in a string
      "{\"a\":\"\\x41\"}\n",                        // invalid escape
      "{'a':1}\n", "{a:1}\n", "{\"a\":1\n", "{\"a\":1}}\n", "}\n", "{\n",
      "{\"a\":tru}\n", "{\"a\":nul}\n", "{\"a\":true}\n", "{\"a\":null}\n",
      "   {\"a\":1}   \n",                          // surrounding whitespace
  };
  for (const auto& input : inputs) expect_agrees_with_decoder(input);
}

TEST(NdjsonValidate, AcceptedBatchesDecodeToTheSameEventCount) {
  const std::string text =
      "{\"a\":1,\"a\":2}\n\r\n{\"s\":\"\\u0000\\ud83d\\ude00\"}\r\n  \n{\"n\":{\"x\":[1,{\"y\":null}]}}";
  EXPECT_EQ(validate_ndjson(text, kLimits).events, parse_ndjson(text).size());
}

// The shape built in the validation pass is the one BatchShape::add computes from
// each event's DOM: kinds, counts, nesting, arrays of arrays, keys and times with
// escapes (they arrive in parts), bad times of every kind, and the bounds.
TEST(NdjsonValidate, ShapeFromTheSaxPassEqualsTheShapeOfTheDom) {
  std::string text =
      "{\"_time\":\"2026-03-01T10:00:00Z\",\"_received\":1767225600123,\"a\":1,\"b\":\"x\",\"o\":{\"k\":true,\"n\":null},\"l\":[1,2.5,[\"s\",{\"z\":1}]]}\n"
      "\n"
      "{\"b\":null,\"a\":18446744073709551615,\"o\":{\"k\":1,\"j\":[]},\"_time\":-5,\"_received\":\"later\"}\n"
      "{\"_time\":{\"x\":1},\"_received\":[1],\"a\":-3,\"o\":[1],\"l\":\"no\"}\n"
      "{\"_time\":true,\"_received\":null,\"k\\u0065y\":\"esc\",\"o\":{\"k\":\"\\u00e9\"}}\n"
      "{\"_t\\u0069me\":\"2026-03-01T10:00:00\\u002b02:00\",\"_received\":1e300,\"deep\":{\"a\":{\"b\":{\"c\":[[[1]]]}}}}\n"
      "{\"_time\":\"2026-03-01 nope\",\"_received\":9.3e18,\"a\":0.5}\n";
  // An object with more keys than a nested object may have: `many`, members dropped.
  std::string wide = "{\"_time\":\"2026-03-01T10:00:00Z\",\"w\":{";
  for (size_t i = 0; i <= BatchShape::kMaxObjectKeys; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  text += wide + "},\"after\":1}\n";
  text += "{\"w\":{\"again\":1},\"after\":\"s\"}\n";
  BatchShape dom, sax;
  dom.add_ndjson(text);
  NdjsonLimits limits;
  limits.max_event_fields = 100000;
  const NdjsonSummary summary = validate_ndjson(text, limits, &sax);
  EXPECT_EQ(summary.events, 8u);
  EXPECT_EQ(sax.events, 8u);
  EXPECT_EQ(boost::json::serialize(sax.to_json()), boost::json::serialize(dom.to_json()));
  EXPECT_TRUE(sax.root.member("w")->many);
  EXPECT_EQ(sax.root.member("_time")->bad_time, 4u);      // -5, an object, true, "nope"
  EXPECT_EQ(sax.root.member("_received")->bad_time, 4u);  // "later", [1], null, 1e300 µs out of range
}
