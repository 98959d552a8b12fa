// NetFlow v5 / v9 and IPFIX decoding, from packets laid out field by field after
// the Cisco v5 record format, RFC 3954 (v9), RFC 7011 (IPFIX) and RFC 5103 (biflow).
#include <gtest/gtest.h>

#include "flow_test_util.h"
#include "proxy/flow/netflow.h"

namespace bf {
namespace {

using test::Bytes;
using test::num;
using test::str;
using test::unum;
using flow::FlowError;

constexpr uint32_t kSecs = 1764676800;  // 2025-12-02T12:00:00Z
constexpr int64_t kNow = int64_t(kSecs) * 1000000;

struct Decoded {
  std::vector<Event> events;
  flow::FlowStats stats;
};

Decoded decode(flow::FlowDecoder& d, const std::string& packet, int64_t now = kNow,
               std::string_view peer = "192.0.2.1:4000") {
  Decoded r;
  std::string out;
  d.decode(packet, test::test_context(now, peer), out, r.stats);
  r.events = test::events_of(out);
  return r;
}

// ---------------------------------------------------------------------------------
// NetFlow v5

std::string v5_packet(uint32_t uptime, uint32_t first, uint32_t last, uint16_t count = 2) {
  Bytes b;
  b.u16(5).u16(count).u32(uptime).u32(kSecs).u32(0).u32(42).u8(1).u8(2).u16(0x4000 | 100);
  for (int i = 0; i < 2; ++i) {
    b.ipv4("10.0.0.1").ipv4(i ? "10.0.0.3" : "10.0.0.2").ipv4("10.0.0.254");
    b.u16(3).u16(4).u32(10 + i).u32(1500).u32(first).u32(last);
    b.u16(1234).u16(80).u8(0).u8(0x1b).u8(6).u8(0x10).u16(65001).u16(65002).u8(24).u8(16).u16(0);
  }
  return b.b;
}

TEST(NetflowV5, DecodesEveryFieldOfTheRecord) {
  flow::FlowDecoder d;
  auto r = decode(d, v5_packet(100000, 90000, 99000));
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.stats.total_errors(), 0u);
  const Event& e = r.events[0];
  EXPECT_EQ(num(e, "flow_version"), 5);
  EXPECT_EQ(str(e, "sourceIPv4Address"), "10.0.0.1");
  EXPECT_EQ(str(e, "destinationIPv4Address"), "10.0.0.2");
  EXPECT_EQ(str(r.events[1], "destinationIPv4Address"), "10.0.0.3");
  EXPECT_EQ(str(e, "ipNextHopIPv4Address"), "10.0.0.254");
  EXPECT_EQ(num(e, "ingressInterface"), 3);
  EXPECT_EQ(num(e, "egressInterface"), 4);
  EXPECT_EQ(num(e, "packetDeltaCount"), 10);
  EXPECT_EQ(num(r.events[1], "packetDeltaCount"), 11);
  EXPECT_EQ(num(e, "octetDeltaCount"), 1500);
  EXPECT_EQ(num(e, "sourceTransportPort"), 1234);
  EXPECT_EQ(num(e, "destinationTransportPort"), 80);
  EXPECT_EQ(num(e, "tcpControlBits"), 0x1b);
  EXPECT_EQ(num(e, "protocolIdentifier"), 6);
  EXPECT_EQ(num(e, "ipClassOfService"), 0x10);
  EXPECT_EQ(num(e, "bgpSourceAsNumber"), 65001);
  EXPECT_EQ(num(e, "bgpDestinationAsNumber"), 65002);
  EXPECT_EQ(num(e, "sourceIPv4PrefixLength"), 24);
  EXPECT_EQ(num(e, "destinationIPv4PrefixLength"), 16);
  EXPECT_EQ(num(e, "engineType"), 1);
  EXPECT_EQ(num(e, "engineId"), 2);
  EXPECT_EQ(num(e, "samplingAlgorithm"), 1);
  EXPECT_EQ(num(e, "samplingInterval"), 100);
  EXPECT_EQ(num(e, "flow_sequence"), 42);
  // The flow ended 1 s (100000 - 99000 ms of uptime) before the header was sent.
  EXPECT_EQ(str(e, "_time"), "2025-12-02T11:59:59.000000Z");
  EXPECT_EQ(str(e, "flow_start"), "2025-12-02T11:59:50.000000Z");
  EXPECT_EQ(str(e, "export_time"), "2025-12-02T12:00:00.000000Z");
  EXPECT_EQ(str(e, "_peer"), "192.0.2.1:4000");
  EXPECT_EQ(str(e, "_source"), "test");
}

TEST(NetflowV5, UptimeArithmeticAcrossTheWrap) {
  // The exporter's 32-bit ms uptime wrapped between the flow's end and the header:
  // 0xFFFFFF00 -> 500 is 756 ms, not 49.7 days.
  flow::FlowDecoder d;
  auto r = decode(d, v5_packet(500, 0xFFFFF000u, 0xFFFFFF00u));
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(str(r.events[0], "_time"), "2025-12-02T11:59:59.244000Z");
  EXPECT_EQ(flow::uptime_to_unix_us(kNow, 500, 0xFFFFFF00u), kNow - 756000);
  // An end stamp a little after the header (clock skew) is in the future, not 49 days back.
  EXPECT_EQ(flow::uptime_to_unix_us(kNow, 1000, 1500), kNow + 500000);
}

TEST(NetflowV5, CountPastTheDatagramIsCountedAndWhatIsThereDecoded) {
  flow::FlowDecoder d;
  auto r = decode(d, v5_packet(100000, 90000, 99000, 3));  // says 3, carries 2
  EXPECT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.stats.error(FlowError::truncated), 1u);
  auto absurd = decode(d, v5_packet(100000, 90000, 99000, 60000));
  EXPECT_EQ(absurd.events.size(), 2u);
  EXPECT_EQ(absurd.stats.error(FlowError::absurd_count), 1u);
}

// ---------------------------------------------------------------------------------
// NetFlow v9

struct V9 {
  Bytes b;
  size_t set_start = 0;
  V9(uint16_t count, uint32_t uptime, uint32_t source_id = 33) {
    b.u16(9).u16(count).u32(uptime).u32(kSecs).u32(7).u32(source_id);
  }
  void begin_set(uint16_t id) {
    set_start = b.size();
    b.u16(id).u16(0);
  }
  void end_set() {
    b.pad_to(4);
    b.patch16(set_start + 2, static_cast<uint32_t>(b.size() - set_start));
  }
};

// Template 256: src, dst, sport, dport, proto, octets, packets, last, first, src mac, interface name.
void v9_template_256(V9& p) {
  p.begin_set(0);
  p.b.u16(256).u16(11);
  p.b.u16(8).u16(4).u16(12).u16(4).u16(7).u16(2).u16(11).u16(2).u16(4).u16(1);
  p.b.u16(1).u16(4).u16(2).u16(4).u16(21).u16(4).u16(22).u16(4).u16(56).u16(6).u16(82).u16(8);
  p.end_set();
}
void v9_data_256(V9& p, int records) {
  p.begin_set(256);
  for (int i = 0; i < records; ++i) {
    p.b.ipv4("198.51.100.7").ipv4("203.0.113.9").u16(53000 + i).u16(53).u8(17);
    p.b.u32(76).u32(1).u32(199000).u32(198000).mac({0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc}).raw(std::string("eth0\0\0\0\0", 8));
  }
  p.end_set();
}

TEST(NetflowV9, TemplateThenDataInOnePacket) {
  flow::FlowDecoder d;
  V9 p(3, 200000);
  v9_template_256(p);
  v9_data_256(p, 2);
  auto r = decode(d, p.b.b);
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 2u);
  const Event& e = r.events[1];
  EXPECT_EQ(num(e, "flow_version"), 9);
  EXPECT_EQ(str(e, "record_type"), "flow");
  EXPECT_EQ(num(e, "template_id"), 256);
  EXPECT_EQ(num(e, "observation_domain_id"), 33);
  EXPECT_EQ(str(e, "sourceIPv4Address"), "198.51.100.7");
  EXPECT_EQ(str(e, "destinationIPv4Address"), "203.0.113.9");
  EXPECT_EQ(num(e, "sourceTransportPort"), 53001);
  EXPECT_EQ(num(e, "destinationTransportPort"), 53);
  EXPECT_EQ(num(e, "protocolIdentifier"), 17);
  EXPECT_EQ(num(e, "octetDeltaCount"), 76);
  EXPECT_EQ(num(e, "packetDeltaCount"), 1);
  EXPECT_EQ(num(e, "flowEndSysUpTime"), 199000);
  EXPECT_EQ(str(e, "sourceMacAddress"), "00:1b:21:aa:bb:cc");
  EXPECT_EQ(str(e, "interfaceName"), "eth0");
  EXPECT_EQ(num(e, "exporter_uptime_ms"), 200000);
  EXPECT_EQ(str(e, "_time"), "2025-12-02T11:59:59.000000Z");  // LAST_SWITCHED, 1 s before export
  EXPECT_EQ(str(e, "flow_start"), "2025-12-02T11:59:58.000000Z");
  EXPECT_EQ(d.templates(), 1u);
}

TEST(NetflowV9, OptionsTemplateAndRecordWithScope) {
  flow::FlowDecoder d;
  V9 p(2, 200000);
  p.begin_set(1);
  p.b.u16(257).u16(4).u16(8);       // template id, scope length, option length (bytes)
  p.b.u16(1).u16(4);                // scope: System, 4 bytes
  p.b.u16(34).u16(4).u16(35).u16(1);  // samplingInterval, samplingAlgorithm
  p.end_set();
  p.begin_set(257);
  p.b.ipv4("192.0.2.1").u32(1000).u8(2);
  p.end_set();
  auto r = decode(d, p.b.b);
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 1u);
  const Event& e = r.events[0];
  EXPECT_EQ(str(e, "record_type"), "options");
  EXPECT_EQ(num(e, "scopeSystem"), 0xC0000201);
  EXPECT_EQ(num(e, "samplingInterval"), 1000);
  EXPECT_EQ(num(e, "samplingAlgorithm"), 2);
}

TEST(NetflowV9, DataBeforeItsTemplateIsHeldThenDecoded) {
  flow::FlowDecoder d;
  V9 data(2, 200000);
  v9_data_256(data, 2);
  auto first = decode(d, data.b.b);
  EXPECT_EQ(first.events.size(), 0u);
  EXPECT_EQ(first.stats.total_errors(), 0u);  // held, not lost
  EXPECT_EQ(d.held_sets(), 1u);
  V9 tmpl(1, 201000);
  v9_template_256(tmpl);
  auto second = decode(d, tmpl.b.b, kNow + 1000000);
  ASSERT_EQ(second.events.size(), 2u);  // the held records, decoded now
  EXPECT_EQ(d.held_sets(), 0u);
  EXPECT_EQ(str(second.events[0], "sourceIPv4Address"), "198.51.100.7");
  // With the time of their own packet.
  EXPECT_EQ(str(second.events[0], "_time"), "2025-12-02T11:59:59.000000Z");
  EXPECT_EQ(str(second.events[0], "_received"), "2025-12-02T12:00:00.000000Z");
}

TEST(NetflowV9, HeldDataWhoseTemplateNeverComesIsCountedWhenTheHoldEnds) {
  flow::FlowDecoderOptions o;
  o.hold_us = 5 * 1000000;
  flow::FlowDecoder d(o);
  V9 data(2, 200000);
  v9_data_256(data, 2);
  decode(d, data.b.b);
  EXPECT_EQ(d.held_sets(), 1u);
  flow::FlowStats stats;
  d.expire(kNow + 4 * 1000000, stats);
  EXPECT_EQ(d.held_sets(), 1u);
  d.expire(kNow + 6 * 1000000, stats);
  EXPECT_EQ(d.held_sets(), 0u);
  EXPECT_EQ(stats.error(FlowError::no_template), 1u);
}

TEST(NetflowV9, HoldIsBoundedInBytes) {
  flow::FlowDecoderOptions o;
  o.max_held_bytes = 1000;
  flow::FlowDecoder d(o);
  V9 one(2, 200000);
  v9_data_256(one, 2);  // 80 bytes of records
  decode(d, one.b.b);
  const size_t cost = d.held_bytes();  // the records and the bookkeeping of holding them
  ASSERT_GT(cost, 80u);
  ASSERT_LT(cost, 500u);
  uint64_t overflow = 0;
  for (int i = 0; i < 9; ++i) {
    V9 data(2, 200000);
    v9_data_256(data, 2);
    overflow += decode(d, data.b.b).stats.error(FlowError::held_overflow);
  }
  EXPECT_LE(d.held_bytes(), 1000u);
  EXPECT_EQ(d.held_sets(), 1000 / cost);
  EXPECT_EQ(overflow, 10 - 1000 / cost);
}

// Data sets of a few bytes (or none) for templates that never come: bounded in
// number by what holding each costs, not only by their bytes.
TEST(NetflowV9, HoldOfTinySetsIsBoundedInNumber) {
  flow::FlowDecoderOptions o;
  o.max_held_bytes = 64 * 1024;
  flow::FlowDecoder d(o);
  for (int i = 0; i < 2000; ++i) {
    V9 p(200, 200000);
    for (int s = 0; s < 100; ++s) {
      p.begin_set(static_cast<uint16_t>(300 + s));
      if (s % 2) p.b.u32(1);  // 4 bytes; the other half carry no record at all
      p.end_set();
    }
    decode(d, p.b.b, kNow, "198.18." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":2055");
  }
  EXPECT_LE(d.held_bytes(), 64u * 1024);
  EXPECT_LT(d.held_sets(), 64u * 1024 / 64);  // at least 64 bytes of bookkeeping each
  EXPECT_GT(d.held_sets(), 0u);
}

TEST(NetflowV9, TemplatesAreScopedByExporterAndSourceId) {
  flow::FlowDecoder d;
  V9 t(1, 200000, 1);
  v9_template_256(t);
  decode(d, t.b.b, kNow, "192.0.2.1:4000");
  V9 other_domain(2, 200000, 2);
  v9_data_256(other_domain, 2);
  EXPECT_EQ(decode(d, other_domain.b.b, kNow, "192.0.2.1:4000").events.size(), 0u);
  V9 other_exporter(2, 200000, 1);
  v9_data_256(other_exporter, 2);
  EXPECT_EQ(decode(d, other_exporter.b.b, kNow, "192.0.2.2:4000").events.size(), 0u);
  V9 same(2, 200000, 1);
  v9_data_256(same, 2);
  EXPECT_EQ(decode(d, same.b.b, kNow, "192.0.2.1:4000").events.size(), 2u);
}

TEST(NetflowV9, TemplatesExpire) {
  flow::FlowDecoderOptions o;
  o.template_timeout_us = 60 * 1000000LL;
  flow::FlowDecoder d(o);
  V9 t(1, 200000);
  v9_template_256(t);
  decode(d, t.b.b);
  V9 data(2, 200000);
  v9_data_256(data, 2);
  EXPECT_EQ(decode(d, data.b.b, kNow + 59 * 1000000LL).events.size(), 2u);
  EXPECT_EQ(decode(d, data.b.b, kNow + 61 * 1000000LL).events.size(), 0u);  // held now
  EXPECT_EQ(d.templates_expired(), 1u);
  EXPECT_EQ(d.held_sets(), 1u);
}

TEST(NetflowV9, HostileTemplatesAreCountedNotLooped) {
  flow::FlowDecoder d;
  {  // a field of length 0: records of it would take no bytes
    V9 p(1, 1);
    p.begin_set(0);
    p.b.u16(300).u16(1).u16(8).u16(0);
    p.end_set();
    auto r = decode(d, p.b.b);
    EXPECT_EQ(r.stats.error(FlowError::zero_length_field), 1u);
    EXPECT_EQ(d.templates(), 0u);
  }
  {  // a field count far past the set
    V9 p(1, 1);
    p.begin_set(0);
    p.b.u16(300).u16(5000).u16(8).u16(4);
    p.end_set();
    EXPECT_EQ(decode(d, p.b.b).stats.error(FlowError::absurd_count), 1u);
  }
  {  // a set length below its own header: nothing after it can be framed
    Bytes b;
    b.u16(9).u16(1).u32(1).u32(kSecs).u32(1).u32(1).u16(256).u16(2).u32(0);
    EXPECT_EQ(decode(d, b.b).stats.error(FlowError::bad_length), 1u);
  }
  {  // a set length past the end
    Bytes b;
    b.u16(9).u16(1).u32(1).u32(kSecs).u32(1).u32(1).u16(256).u16(400).u32(0);
    EXPECT_EQ(decode(d, b.b).stats.error(FlowError::truncated), 1u);
  }
}

// ---------------------------------------------------------------------------------
// IPFIX

struct Ipfix {
  Bytes b;
  size_t set_start = 0;
  explicit Ipfix(uint32_t domain = 5, uint32_t export_secs = kSecs) {
    b.u16(10).u16(0).u32(export_secs).u32(1000).u32(domain);
  }
  void begin_set(uint16_t id) {
    set_start = b.size();
    b.u16(id).u16(0);
  }
  void end_set() { b.patch16(set_start + 2, static_cast<uint32_t>(b.size() - set_start)); }
  std::string done() {
    b.patch16(2, static_cast<uint32_t>(b.size()));
    return b.b;
  }
};

void ipfix_template_400(Ipfix& p) {
  p.begin_set(2);
  p.b.u16(400).u16(9);
  p.b.u16(8).u16(4).u16(12).u16(4).u16(1).u16(8).u16(152).u16(8).u16(153).u16(8);
  p.b.u16(96).u16(65535);                          // applicationName, variable length
  p.b.u16(0x8000 | 100).u16(4).u32(9);             // enterprise 9, element 100
  p.b.u16(0x8000 | 1).u16(8).u32(29305);           // RFC 5103 reverse octetDeltaCount
  p.b.u16(239).u16(1);                             // biflowDirection
  p.end_set();
}

void ipfix_data_400(Ipfix& p, const std::string& app) {
  p.begin_set(400);
  p.b.ipv4("10.1.1.1").ipv4("10.2.2.2").u64(123456789012ull);
  p.b.u64(uint64_t(kSecs - 10) * 1000 + 250).u64(uint64_t(kSecs - 2) * 1000 + 500);
  if (app.size() < 255) {
    p.b.u8(static_cast<uint32_t>(app.size()));
  } else {
    p.b.u8(255).u16(static_cast<uint32_t>(app.size()));
  }
  p.b.raw(app).u32(0xdeadbeef).u64(987654321ull).u8(1);
  p.end_set();
}

TEST(Ipfix, VariableLengthEnterpriseAndReverseFields) {
  flow::FlowDecoder d;
  Ipfix p;
  ipfix_template_400(p);
  ipfix_data_400(p, "https");
  auto r = decode(d, p.done());
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 1u);
  const Event& e = r.events[0];
  EXPECT_EQ(num(e, "flow_version"), 10);
  EXPECT_EQ(num(e, "observation_domain_id"), 5);
  EXPECT_EQ(num(e, "flow_sequence"), 1000);
  EXPECT_EQ(str(e, "sourceIPv4Address"), "10.1.1.1");
  EXPECT_EQ(unum(e, "octetDeltaCount"), 123456789012ull);
  EXPECT_EQ(str(e, "applicationName"), "https");
  EXPECT_EQ(num(e, "ie_9_100"), 0xdeadbeef);
  EXPECT_EQ(num(e, "reverseOctetDeltaCount"), 987654321);
  EXPECT_EQ(num(e, "biflowDirection"), 1);
  EXPECT_EQ(str(e, "flowStartMilliseconds"), "2025-12-02T11:59:50.250000Z");
  EXPECT_EQ(str(e, "_time"), "2025-12-02T11:59:58.500000Z");  // flowEndMilliseconds
}

// Millisecond times past the year 9999 (a hostile exporter): kept as bytes, and the
// record's time falls back to the export time, with no arithmetic overflow.
TEST(Ipfix, AbsurdMillisecondTimesAreKeptAsBytesNotOverflowed) {
  flow::FlowDecoder d;
  Ipfix p;
  ipfix_template_400(p);
  p.begin_set(400);
  p.b.ipv4("10.1.1.1").ipv4("10.2.2.2").u64(1);
  p.b.u64(0xFFFFFFFFFFFFFFFFull).u64(0x8000000000000000ull);
  p.b.u8(1).raw("x").u32(1).u64(1).u8(1);
  p.end_set();
  auto r = decode(d, p.done());
  ASSERT_EQ(r.events.size(), 1u);
  const Event& e = r.events[0];
  EXPECT_EQ(str(e, "flowStartMilliseconds"), "ffffffffffffffff");
  EXPECT_EQ(str(e, "flowEndMilliseconds"), "8000000000000000");
  EXPECT_EQ(str(e, "_time"), str(e, "export_time"));
}

TEST(Ipfix, LongVariableLengthFieldUsesTheThreeByteForm) {
  flow::FlowDecoder d;
  Ipfix p;
  ipfix_template_400(p);
  const std::string app(300, 'x');
  ipfix_data_400(p, app);
  ipfix_data_400(p, "dns");
  auto r = decode(d, p.done());
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(str(r.events[0], "applicationName"), app);
  EXPECT_EQ(str(r.events[1], "applicationName"), "dns");
  EXPECT_EQ(num(r.events[1], "reverseOctetDeltaCount"), 987654321);
}

TEST(Ipfix, VariableLengthPastTheSetDropsOnlyThatRecord) {
  flow::FlowDecoder d;
  Ipfix p;
  ipfix_template_400(p);
  p.begin_set(400);
  p.b.ipv4("10.1.1.1").ipv4("10.2.2.2").u64(1).u64(1).u64(1).u8(200).raw("short");  // says 200 bytes, has 5
  p.b.raw(std::string(17, '\0'));
  p.end_set();
  auto r = decode(d, p.done());
  EXPECT_EQ(r.events.size(), 0u);
  EXPECT_EQ(r.stats.error(FlowError::truncated), 1u);
}

TEST(Ipfix, WithdrawalForgetsTheTemplate) {
  flow::FlowDecoder d;
  Ipfix p;
  ipfix_template_400(p);
  decode(d, p.done());
  EXPECT_EQ(d.templates(), 1u);
  Ipfix w;
  w.begin_set(2);
  w.b.u16(400).u16(0);
  w.end_set();
  decode(d, w.done());
  EXPECT_EQ(d.templates(), 0u);
  Ipfix data;
  ipfix_data_400(data, "x");
  EXPECT_EQ(decode(d, data.done()).events.size(), 0u);  // held until a new template
  EXPECT_EQ(d.held_sets(), 1u);
  // "All templates" withdrawal (template id 2 in a template set).
  Ipfix p2;
  ipfix_template_400(p2);
  decode(d, p2.done());
  EXPECT_EQ(d.held_sets(), 0u);
  Ipfix all;
  all.begin_set(2);
  all.b.u16(2).u16(0);
  all.end_set();
  decode(d, all.done());
  EXPECT_EQ(d.templates(), 0u);
}

TEST(Ipfix, OptionsTemplateAndUptimeTimesRelativeToSystemInit) {
  flow::FlowDecoder d;
  Ipfix p;
  p.begin_set(3);
  p.b.u16(500).u16(2).u16(1);  // id, field count, scope field count
  p.b.u16(149).u16(4).u16(160).u16(8);
  p.end_set();
  p.begin_set(2);
  p.b.u16(401).u16(2).u16(21).u16(4).u16(160).u16(8);  // flowEndSysUpTime, systemInitTimeMilliseconds
  p.end_set();
  p.begin_set(500);
  p.b.u32(5).u64(uint64_t(kSecs - 3600) * 1000);
  p.end_set();
  p.begin_set(401);
  p.b.u32(1800500).u64(uint64_t(kSecs - 3600) * 1000);
  p.end_set();
  auto r = decode(d, p.done());
  EXPECT_EQ(r.stats.total_errors(), 0u);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(str(r.events[0], "record_type"), "options");
  EXPECT_EQ(num(r.events[0], "observationDomainId"), 5);
  EXPECT_EQ(str(r.events[0], "systemInitTimeMilliseconds"), "2025-12-02T11:00:00.000000Z");
  EXPECT_EQ(str(r.events[1], "_time"), "2025-12-02T11:30:00.500000Z");
}

TEST(Ipfix, TemplateFloodFromManyExportersStaysBounded) {
  flow::FlowDecoderOptions o;
  o.max_templates = 8;
  flow::FlowDecoder d(o);
  uint64_t evicted = 0;
  for (int i = 0; i < 100; ++i) {
    Ipfix p;
    ipfix_template_400(p);
    evicted += decode(d, p.done(), kNow, "198.18.0." + std::to_string(i) + ":9999").stats.error(
        FlowError::template_evicted);
  }
  EXPECT_EQ(d.templates(), 8u);
  EXPECT_EQ(evicted, 92u);
  // The most recent exporters' templates are the ones kept.
  Ipfix data;
  ipfix_data_400(data, "x");
  EXPECT_EQ(decode(d, data.done(), kNow, "198.18.0.99:9999").events.size(), 1u);
}

// Template record `id` of `fields` fields (octetDeltaCount each, 8 bytes).
void ipfix_template(Ipfix& p, uint16_t id, uint16_t fields) {
  p.begin_set(2);
  p.b.u16(id).u16(fields);
  for (uint16_t f = 0; f < fields; ++f) p.b.u16(1).u16(8);
  p.end_set();
}

// Issue 7's flood: 100,000 templates from 1,000 exporter addresses. The cache stays
// at its bound (default 4096 per worker) and every template it let go is counted.
TEST(Ipfix, FloodOf100000TemplatesFrom1000ExportersKeepsTheCacheAtItsBound) {
  flow::FlowDecoder d;  // the defaults a source runs with
  uint64_t evicted = 0;
  size_t peak = 0;
  for (int e = 0; e < 1000; ++e) {
    const std::string peer = "198.18." + std::to_string(e / 250) + "." + std::to_string(e % 250 + 1) + ":4739";
    for (int m = 0; m < 10; ++m) {  // 10 messages of 10 templates each
      Ipfix p;
      for (int t = 0; t < 10; ++t) ipfix_template(p, static_cast<uint16_t>(256 + m * 10 + t), 4);
      const auto r = decode(d, p.done(), kNow, peer);
      EXPECT_EQ(r.stats.total_errors(), r.stats.error(FlowError::template_evicted));
      evicted += r.stats.error(FlowError::template_evicted);
      peak = std::max(peak, d.templates());
    }
  }
  const size_t bound = flow::FlowDecoderOptions{}.max_templates;
  EXPECT_EQ(peak, bound);
  EXPECT_EQ(d.templates(), bound);
  EXPECT_EQ(evicted, 100000u - bound);
  EXPECT_LE(d.template_exporters(), bound / 100 + 1);  // the most recent exporters' templates
  EXPECT_EQ(d.template_fields(), bound * 4);
  // The latest exporter's templates are there: its data decodes at once.
  Ipfix data;
  data.begin_set(355);
  data.b.u64(1).u64(2).u64(3).u64(4);
  data.end_set();
  EXPECT_EQ(decode(d, data.done(), kNow, "198.18.3.250:4739").events.size(), 1u);
}

// One exporter's flood evicts its own templates, not the other exporters'.
TEST(Ipfix, OneExportersFloodStaysWithinItsShare) {
  flow::FlowDecoderOptions o;
  o.max_templates = 100;
  o.max_templates_per_exporter = 20;
  flow::FlowDecoder d(o);
  for (int e = 0; e < 3; ++e) {
    Ipfix p;
    ipfix_template_400(p);
    decode(d, p.done(), kNow, "192.0.2." + std::to_string(e + 1) + ":4739");
  }
  uint64_t evicted = 0;
  for (int m = 0; m < 100; ++m) {
    Ipfix p;
    for (int t = 0; t < 10; ++t) ipfix_template(p, static_cast<uint16_t>(1000 + m * 10 + t), 2);
    evicted += decode(d, p.done(), kNow, "203.0.113.66:4739").stats.error(FlowError::template_evicted);
  }
  EXPECT_EQ(d.templates(), 3u + 20u);
  EXPECT_EQ(evicted, 1000u - 20u);
  for (int e = 0; e < 3; ++e) {
    Ipfix data;
    ipfix_data_400(data, "ok");
    EXPECT_EQ(decode(d, data.done(), kNow, "192.0.2." + std::to_string(e + 1) + ":4739").events.size(), 1u)
        << "exporter " << e << " lost its template to another's flood";
  }
}

// Templates of thousands of fields: the cache holds at most 64 fields per template
// slot in all, so their memory is bounded as that of ordinary templates.
TEST(Ipfix, TemplatesOfThousandsOfFieldsAreBoundedByTheFieldBudget) {
  flow::FlowDecoderOptions o;
  o.max_templates = 16;  // 1024 fields in all
  flow::FlowDecoder d(o);
  uint64_t evicted = 0;
  for (int i = 0; i < 50; ++i) {
    Ipfix p;
    ipfix_template(p, static_cast<uint16_t>(256 + i), 400);
    evicted += decode(d, p.done(), kNow, "198.18.0." + std::to_string(i + 1) + ":4739")
                   .stats.error(FlowError::template_evicted);
    EXPECT_LE(d.template_fields(), 16u * 64);
  }
  EXPECT_EQ(d.templates(), 2u);  // 2 x 400 fields fit in 1024
  EXPECT_EQ(evicted, 48u);
  {  // one larger than the whole budget is still kept (alone): its exporter can use it
    Ipfix p;
    ipfix_template(p, 999, 2000);
    decode(d, p.done(), kNow, "198.18.9.9:4739");
    EXPECT_EQ(d.templates(), 1u);
  }
}

TEST(Ipfix, HostileHeadersAndTemplates) {
  flow::FlowDecoder d;
  {  // message length below the header
    Bytes b;
    b.u16(10).u16(8).u32(kSecs).u32(0).u32(0);
    EXPECT_EQ(decode(d, b.b).stats.error(FlowError::bad_length), 1u);
  }
  {  // options template with no scope
    Ipfix p;
    p.begin_set(3);
    p.b.u16(500).u16(1).u16(0).u16(149).u16(4);
    p.end_set();
    EXPECT_EQ(decode(d, p.done()).stats.error(FlowError::bad_template), 1u);
  }
  {  // template id in the reserved range
    Ipfix p;
    p.begin_set(2);
    p.b.u16(17).u16(1).u16(8).u16(4);
    p.end_set();
    EXPECT_EQ(decode(d, p.done()).stats.error(FlowError::bad_template), 1u);
  }
  {  // a set length of 0
    Ipfix p;
    p.b.u16(2).u16(0).u32(0);
    EXPECT_EQ(decode(d, p.done()).stats.error(FlowError::bad_length), 1u);
  }
  {  // unknown version
    EXPECT_EQ(decode(d, std::string("\x00\x07\x00\x00", 4)).stats.error(FlowError::bad_version), 1u);
  }
  EXPECT_EQ(d.templates(), 0u);
}

}  // namespace
}  // namespace bf

namespace bf {
namespace {

std::vector<std::string> valid_flow_packets() {
  std::vector<std::string> v;
  v.push_back(v5_packet(100000, 90000, 99000));
  V9 p(4, 200000);
  v9_template_256(p);
  v9_data_256(p, 2);
  p.begin_set(1);
  p.b.u16(257).u16(4).u16(8).u16(1).u16(4).u16(34).u16(4).u16(35).u16(1);
  p.end_set();
  v.push_back(p.b.b);
  Ipfix x;
  ipfix_template_400(x);
  ipfix_data_400(x, "https");
  ipfix_data_400(x, std::string(300, 'y'));
  v.push_back(x.done());
  return v;
}

test::DecodeFn decoder_fn(std::shared_ptr<flow::FlowDecoder> d) {
  return [d](const std::string& dg, std::string& out, flow::FlowStats& s) {
    d->decode(dg, test::test_context(), out, s);
  };
}

TEST(NetflowHostile, EveryTruncationIsCountedNeverACrash) {
  for (const std::string& packet : valid_flow_packets())
    test::check_truncations(packet, [] { return decoder_fn(std::make_shared<flow::FlowDecoder>()); });
}

TEST(NetflowHostile, RandomMutationsKeepTheCachesBounded) {
  flow::FlowDecoderOptions o;
  o.max_templates = 16;
  o.max_held_bytes = 4096;
  auto d = std::make_shared<flow::FlowDecoder>(o);
  const uint64_t tried = test::mutate_for_a_while(valid_flow_packets(), decoder_fn(d));
  EXPECT_GT(tried, 1000u);
  EXPECT_LE(d->templates(), 16u);
  EXPECT_LE(d->held_bytes(), 4096u);
}

}  // namespace
}  // namespace bf
