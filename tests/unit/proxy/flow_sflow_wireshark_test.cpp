// Our sFlow v5 decoding against Wireshark's, field by field. The datagrams are laid
// out here from sflow.org/sflow_version_5.txt (flow samples, compact and expanded,
// with sampled Ethernet / 802.1Q / IPv4 / IPv6 / TCP / UDP / ICMP headers, Ethernet
// frame / IPv4 / IPv6 data records, extended switch / router / gateway data; counter
// samples, compact and expanded, with generic and Ethernet interface counters),
// decoded by flow::decode_sflow and, in a pcap of UDP packets to port 6343, by
// `tshark -T json`. Every field Wireshark shows that we also decode must agree, and
// every field we write must be either compared or listed in kNotCompared with why.
// Needs Debian's tshark (scripts/setup.sh installs it); skipped without it.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "flow_test_util.h"
#include "pcap_util.h"
#include "proxy/flow/sflow.h"
#include "test_util.h"

namespace bf {
namespace {

using test::Bytes;

// --- datagrams, from the specification --------------------------------------------

// A structure (sample or record) is format, length, body: built by begin/end.
struct Xdr {
  Bytes b;
  std::vector<size_t> open;
  Xdr& begin(uint32_t format) {
    b.u32(format);
    open.push_back(b.size());
    b.u32(0);
    return *this;
  }
  Xdr& end() {
    const size_t at = open.back();
    open.pop_back();
    b.patch32(at, static_cast<uint32_t>(b.size() - at - 4));
    return *this;
  }
  Xdr& opaque(const std::string& s) {
    b.u32(static_cast<uint32_t>(s.size())).raw(s).pad_to(4);
    return *this;
  }
};

std::string ethernet(uint16_t type, std::initializer_list<uint16_t> tcis = {}) {
  Bytes h;
  h.mac({0x00, 0x11, 0x22, 0x33, 0x44, 0x55}).mac({0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb});
  for (uint16_t tci : tcis) h.u16(0x8100).u16(tci);
  h.u16(type);
  return h.b;
}
std::string ipv4(const char* src, const char* dst, uint8_t proto, uint8_t tos, uint16_t total, uint16_t frag = 0x4000) {
  Bytes h;
  h.u8(0x45).u8(tos).u16(total).u16(7).u16(frag).u8(63).u8(proto).u16(0).ipv4(src).ipv4(dst);
  return h.b;
}
std::string ipv6(const char* src, const char* dst, uint8_t next, uint32_t tclass, uint32_t label, uint16_t payload) {
  Bytes h;
  h.u32(6u << 28 | tclass << 20 | label).u16(payload).u8(next).u8(64).ipv6(src).ipv6(dst);
  return h.b;
}
std::string tcp(uint16_t sp, uint16_t dp, uint8_t flags) {
  Bytes h;
  h.u16(sp).u16(dp).u32(1000).u32(2000).u8(0x50).u8(flags).u16(8192).u16(0).u16(0);
  return h.b;
}
std::string udp(uint16_t sp, uint16_t dp, uint16_t len) {
  Bytes h;
  h.u16(sp).u16(dp).u16(len).u16(0);
  return h.b;
}
std::string icmp(uint8_t type, uint8_t code) {
  Bytes h;
  h.u8(type).u8(code).u16(0).u32(0x00010002);
  return h.b;
}

void raw_header(Xdr& x, uint32_t protocol, uint32_t frame_length, uint32_t stripped, const std::string& header) {
  x.begin(1);
  x.b.u32(protocol).u32(frame_length).u32(stripped);
  x.opaque(header);
  x.end();
}
// Compact flow sample header: sequence, source id (type << 24 | index), rate, pool,
// drops, input, output (format << 30 | value), record count.
void compact_flow(Xdr& x, uint32_t seq, uint32_t index, uint32_t rate, uint32_t in, uint32_t out, uint32_t records) {
  x.begin(1);
  x.b.u32(seq).u32(index).u32(rate).u32(rate * 1000 + seq).u32(seq % 3).u32(in).u32(out).u32(records);
}
void expanded_flow(Xdr& x, uint32_t seq, uint32_t type, uint32_t index, uint32_t in_format, uint32_t in,
                   uint32_t out_format, uint32_t out, uint32_t records) {
  x.begin(3);
  x.b.u32(seq).u32(type).u32(index).u32(256).u32(256000).u32(1).u32(in_format).u32(in).u32(out_format).u32(out).u32(records);
}
void generic_counters(Xdr& x, uint32_t if_index, uint32_t base) {
  x.begin(1);
  x.b.u32(if_index).u32(6).u64(10000000000ull).u32(1).u32(3).u64(0x1122334455ull + base);
  for (uint32_t i = 1; i <= 6; ++i) x.b.u32(base + i);
  x.b.u64(987654321ull + base);
  for (uint32_t i = 11; i <= 15; ++i) x.b.u32(base + i);
  x.b.u32(0);  // ifPromiscuousMode
  x.end();
}
void ethernet_counters(Xdr& x, uint32_t base) {
  x.begin(2);
  for (uint32_t i = 1; i <= 13; ++i) x.b.u32(base + i);
  x.end();
}

std::vector<std::string> datagrams() {
  std::vector<std::string> out;
  {  // IPv4 agent: sampled headers and extended data; counters in both forms.
    Xdr x;
    x.b.u32(5).u32(1).ipv4("192.0.2.10").u32(3).u32(100).u32(123456).u32(6);
    compact_flow(x, 77, 12, 2048, 12, 0x80000000u | 3, 4);
    raw_header(x, 1, 1518, 4, ethernet(0x0800, {0xA064}) + ipv4("10.0.0.1", "10.0.0.2", 6, 0x28, 1500) + tcp(443, 51000, 0x18));
    x.begin(1001).b.u32(100).u32(5).u32(200).u32(0);
    x.end();
    x.begin(1002).b.u32(1).ipv4("10.0.0.254").u32(24).u32(16);
    x.end();
    x.begin(1003).b.u32(1).ipv4("192.0.2.254").u32(65000).u32(65001).u32(65002);
    x.b.u32(1).u32(2).u32(3).u32(65002).u32(65100).u32(65200);  // one AS_SEQUENCE of 3
    x.b.u32(2).u32(0xFDE80001u).u32(0xFDE80002u).u32(100);
    x.end();
    x.end();
    expanded_flow(x, 78, 0, 70000, 0, 70001, 1, 258, 1);
    raw_header(x, 12, 60, 0, ipv6("2001:db8::1", "2001:db8::2", 17, 0xb8, 0x12345, 20) + udp(5353, 53, 20));
    x.end();
    compact_flow(x, 79, 13, 1, 12, 13, 1);
    raw_header(x, 11, 84, 0, ipv4("192.0.2.5", "192.0.2.6", 1, 0, 84) + icmp(8, 0));
    x.end();
    compact_flow(x, 80, 14, 10, 1, 2, 1);
    raw_header(x, 1, 1400, 4, ethernet(0x0800) + ipv4("198.51.100.1", "198.51.100.2", 17, 0, 1400, 0x00b9));
    x.end();
    x.begin(2);  // compact counters: generic + Ethernet
    x.b.u32(9).u32(5).u32(2);
    generic_counters(x, 5, 0);
    ethernet_counters(x, 100);
    x.end();
    x.begin(4);  // expanded counters
    x.b.u32(10).u32(0).u32(70000).u32(2);
    generic_counters(x, 70000, 1000);
    ethernet_counters(x, 200);
    x.end();
    out.push_back(x.b.b);
  }
  {  // IPv6 agent: data records instead of headers, QinQ, ICMPv6, IPv6 next hops.
    Xdr x;
    x.b.u32(5).u32(2).ipv6("2001:db8:ffff::1").u32(0).u32(7).u32(999).u32(5);
    compact_flow(x, 1, 1, 100, 1, 2, 3);
    x.begin(2).b.u32(1514).mac({1, 2, 3, 4, 5, 6}).u16(0).mac({7, 8, 9, 10, 11, 12}).u16(0).u32(0x0800);
    x.end();
    x.begin(3).b.u32(100).u32(6).ipv4("1.2.3.4").ipv4("5.6.7.8").u32(10).u32(20).u32(0x12).u32(0xa0);
    x.end();
    x.begin(1002).b.u32(2).ipv6("2001:db8::fe").u32(64).u32(48);
    x.end();
    x.end();
    compact_flow(x, 2, 1, 100, 1, 3, 1);
    x.begin(4).b.u32(200).u32(17).ipv6("2001:db8::10").ipv6("2001:db8::20").u32(123).u32(123).u32(0).u32(3);
    x.end();
    x.end();
    expanded_flow(x, 3, 2, 9, 0, 4, 0, 5, 2);
    raw_header(x, 1, 118, 4,
               ethernet(0x86dd, {0x2064, 0x00c8}) + ipv6("fe80::1", "ff02::1", 58, 0, 0, 64) + icmp(135, 0));
    x.begin(1003).b.u32(2).ipv6("2001:db8::ff").u32(64512).u32(64513).u32(64514);
    x.b.u32(2).u32(1).u32(2).u32(64600).u32(64601).u32(2).u32(1).u32(64700);  // AS_SET, AS_SEQUENCE
    x.b.u32(0).u32(50);
    x.end();
    x.end();
    compact_flow(x, 4, 1, 100, 0x3fffffff, 0x40000000u | 1, 1);
    raw_header(x, 1, 64, 4, ethernet(0x0800) + ipv4("10.9.8.7", "10.9.8.6", 6, 0x10, 46) + tcp(22, 60000, 0x02));
    x.end();
    compact_flow(x, 5, 1, 100, 0x40000007u, 0x80000002u, 1);  // input discarded (reason 7), output to 2 ports
    x.begin(1001).b.u32(1).u32(2).u32(3).u32(4);
    x.end();
    x.end();
    out.push_back(x.b.b);
  }
  {  // Many samples in one datagram, as a busy switch sends them.
    Xdr x;
    x.b.u32(5).u32(1).ipv4("192.0.2.20").u32(1).u32(5000).u32(4000000000u).u32(24);
    for (uint32_t i = 0; i < 24; ++i) {
      compact_flow(x, 1000 + i, 1 + i % 4, 512, 1 + i % 4, 10 + i % 5, 2);
      const char* src = i % 2 ? "172.16.0.1" : "172.16.0.2";
      const std::string l4 = i % 3 == 0 ? tcp(uint16_t(1024 + i), 80, uint8_t(0x10 | i % 8))
                             : i % 3 == 1 ? udp(uint16_t(2000 + i), 53, 40)
                                          : icmp(uint8_t(i % 2 ? 0 : 8), 0);
      const uint8_t proto = i % 3 == 0 ? 6 : i % 3 == 1 ? 17 : 1;
      // 802.1Q on every third: Wireshark stops at 20 VLAN tags in one packet ("Too many
      // nested VLAN tags"), counting those of all the samples.
      const std::string eth = i % 3 == 0 ? ethernet(0x0800, {uint16_t(i * 10)}) : ethernet(0x0800);
      raw_header(x, 1, 64 + i, 4, eth + ipv4(src, "172.16.1.1", proto, uint8_t(i * 4), uint16_t(46 + i)) + l4);
      x.begin(1001).b.u32(i * 10).u32(0).u32(i * 10 + 1).u32(1);
      x.end();
      x.end();
    }
    out.push_back(x.b.b);
  }
  return out;
}

// --- Wireshark's decoding, in units that match our events ------------------------

// One leaf of tshark's tree: the record it belongs to ("" = the sample itself), the
// tree it sits in directly (a "..._tree" or a protocol layer), its name and value.
struct Leaf {
  std::string record, parent, name, value;
};
// A flow sample (all its records) or one counter record: what one event of ours is.
struct Unit {
  bool counter = false;
  std::vector<Leaf> leaves;
};

void collect(const boost::json::value& v, const std::string& record, const std::string& parent,
             const std::string& name, std::vector<Leaf>& out) {
  if (v.is_string()) {
    out.push_back({record, parent, name, std::string(v.as_string())});
  } else if (v.is_array()) {  // --no-duplicate-keys: a repeated key's values
    for (const auto& e : v.as_array()) collect(e, record, parent, name, out);
  } else if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) collect(child, record, name, std::string(k), out);
  }
}

bool is_record(const std::string& key, const boost::json::value& v) {
  return v.is_object() && !key.ends_with("_tree");
}

std::vector<Unit> tshark_units(const boost::json::object& sflow, std::vector<Leaf>& datagram_leaves) {
  std::vector<Unit> units;
  for (const auto& [k, sample] : sflow) {
    const std::string key(k);
    if (!is_record(key, sample)) {
      collect(sample, "", "sflow", key, datagram_leaves);
      continue;
    }
    const auto& s = sample.as_object();
    const bool counter = s.contains("sflow.counters_sample.sequence_number");
    std::vector<Leaf> own;
    std::vector<std::vector<Leaf>> records;
    for (const auto& [rk, rv] : s) {
      const std::string rkey(rk);
      if (!is_record(rkey, rv)) {
        collect(rv, "", key, rkey, own);
        continue;
      }
      std::vector<Leaf> r;
      collect(rv, rkey, rkey, rkey, r);
      records.push_back(std::move(r));
    }
    if (counter) {
      for (auto& r : records) {
        Unit u{true, own};
        u.leaves.insert(u.leaves.end(), r.begin(), r.end());
        units.push_back(std::move(u));
      }
    } else {
      Unit u{false, own};
      for (auto& r : records) u.leaves.insert(u.leaves.end(), r.begin(), r.end());
      units.push_back(std::move(u));
    }
  }
  return units;
}

// --- the correspondence -------------------------------------------------------

enum class Kind { text, integer, hex, plus40 };

// tshark field `name` (in `record`, "*" = any; in tree `parent` when set) is our
// `ours`; `ours_list` when tshark repeats it (VLAN tags, AS path): each tshark value
// in order against the next of our keys / array elements.
struct FieldMap {
  FieldMap(std::string r, std::string n, std::string o, Kind k = Kind::integer, std::string p = "", bool a = false,
           bool first = false)
      : record(std::move(r)), name(std::move(n)), ours(std::move(o)), kind(k), parent(std::move(p)), array(a),
        first_only(first) {}
  std::string record, name, ours;
  Kind kind;
  std::string parent;
  bool array;  // ours is a JSON array holding tshark's repeated values
  bool first_only;
};

const char* kRawHeader = "Raw packet header";
const std::vector<FieldMap>& field_maps() {
  static const std::vector<FieldMap> m{
      // the sample
      {"", "sflow.flow_sample.sequence_number", "sample_sequence"},
      {"", "sflow.counters_sample.sequence_number", "sample_sequence"},
      {"", "sflow.flow_sample.source_id_class", "source_id_type"},
      {"", "sflow.flow_sample.source_id_type", "source_id_type"},
      {"", "sflow.counters_sample.source_id_type", "source_id_type"},
      {"", "sflow.flow_sample.index", "source_id_index"},
      {"", "sflow.flow_sample.source_id_index", "source_id_index"},
      {"", "sflow.counters_sample.source_id_index", "source_id_index"},
      {"", "sflow.flow_sample.sampling_rate", "sampling_rate"},
      {"", "sflow.flow_sample.sample_pool", "sample_pool"},
      {"", "sflow.flow_sample.dropped_packets", "drops"},
      {"", "sflow.flow_sample.input_interface_value", "input"},
      {"", "sflow.flow_sample.input_interface_format", "input_format"},
      {"", "sflow.flow_sample.output_interface_value", "output"},
      {"", "sflow.flow_sample.output_interface_format", "output_format"},
      {"", "sflow.flow_sample.output_interface.format", "output_format"},
      {"", "sflow.flow_sample.multiple_outputs", "output"},
      // raw packet header record and the packet in it
      {kRawHeader, "sflow_245.header_protocol", "header_protocol"},
      {kRawHeader, "sflow_245.header.frame_length", "frame_length"},
      {kRawHeader, "sflow_245.header.payload_stripped", "stripped"},
      {kRawHeader, "sflow_245.header.sampled_header_length", "header_length"},
      {kRawHeader, "eth.dst", "dst_mac", Kind::text, "eth"},
      {kRawHeader, "eth.src", "src_mac", Kind::text, "eth"},
      {kRawHeader, "vlan.id", "vlan", Kind::integer, "vlan", false, true},
      {kRawHeader, "vlan.priority", "vlan_priority", Kind::integer, "vlan", false, true},
      {kRawHeader, "ip.version", "ip_version"},
      {kRawHeader, "ip.src", "src_ip", Kind::text, "ip"},
      {kRawHeader, "ip.dst", "dst_ip", Kind::text, "ip"},
      {kRawHeader, "ip.proto", "ip_protocol"},
      {kRawHeader, "ip.dsfield", "ip_tos", Kind::hex},
      {kRawHeader, "ip.ttl", "ip_ttl"},
      {kRawHeader, "ip.len", "ip_length"},
      {kRawHeader, "ipv6.src", "src_ip", Kind::text, "ipv6"},
      {kRawHeader, "ipv6.dst", "dst_ip", Kind::text, "ipv6"},
      {kRawHeader, "ipv6.nxt", "ip_protocol"},
      {kRawHeader, "ipv6.tclass", "ip_tos", Kind::hex},
      {kRawHeader, "ipv6.flow", "ip_flow_label", Kind::hex},
      {kRawHeader, "ipv6.hlim", "ip_ttl"},
      {kRawHeader, "ipv6.plen", "ip_length", Kind::plus40},
      {kRawHeader, "tcp.srcport", "src_port"},
      {kRawHeader, "tcp.dstport", "dst_port"},
      {kRawHeader, "tcp.flags", "tcp_flags", Kind::hex},
      {kRawHeader, "udp.srcport", "src_port"},
      {kRawHeader, "udp.dstport", "dst_port"},
      {kRawHeader, "icmp.type", "icmp_type"},
      {kRawHeader, "icmp.code", "icmp_code"},
      {kRawHeader, "icmpv6.type", "icmp_type"},
      {kRawHeader, "icmpv6.code", "icmp_code"},
      // Ethernet frame, IPv4, IPv6 data records
      {"Ethernet frame data", "sflow_245.ethernet.length", "frame_length"},
      {"Ethernet frame data", "sflow_245.ethernet.source_mac_address", "src_mac", Kind::text},
      {"Ethernet frame data", "sflow_245.ethernet.destination_mac_address", "dst_mac", Kind::text},
      {"Ethernet frame data", "sflow_245.ethernet.packet_type", "ether_type"},
      {"*", "sflow_245.ip.length", "ip_length"},
      {"*", "sflow.ip_protocol", "ip_protocol"},
      {"*", "sflow_245.ipv4_src", "src_ip", Kind::text},
      {"*", "sflow_245.ipv4_dst", "dst_ip", Kind::text},
      {"*", "sflow_245.ipv6_src", "src_ip", Kind::text},
      {"*", "sflow_245.ipv6_dst", "dst_ip", Kind::text},
      {"*", "sflow_245.ip.source_port", "src_port"},
      {"*", "sflow.ip.destination_port", "dst_port"},
      {"*", "sflow_245.ipv6_priority", "ip_priority"},
      // extended data
      {"Extended switch data", "sflow_245.vlan.in", "src_vlan"},
      {"Extended switch data", "sflow_245.pri.in", "src_priority"},
      {"Extended switch data", "sflow_245.vlan.out", "dst_vlan"},
      {"Extended switch data", "sflow_245.pri.out", "dst_priority"},
      {"Extended router data", "sflow_245.nexthop", "next_hop", Kind::text},
      {"Extended router data", "sflow_245.nexthop.v6", "next_hop", Kind::text},
      {"Extended router data", "sflow_245.nexthop.src_mask", "src_mask_len"},
      {"Extended router data", "sflow_245.nexthop.dst_mask", "dst_mask_len"},
      {"Extended gateway data", "sflow_245.nexthop", "bgp_next_hop", Kind::text},
      {"Extended gateway data", "sflow_245.nexthop.v6", "bgp_next_hop", Kind::text},
      {"Extended gateway data", "sflow_245.as", "router_as"},
      {"Extended gateway data", "sflow_245.srcAS", "src_as"},
      {"Extended gateway data", "sflow_245.peerAS", "src_peer_as"},
      {"Extended gateway data", "sflow_245.dstAS", "dst_as_path", Kind::integer, "sflow.as_type_tree", true},
      // Wireshark names the community values dstAS too; they sit in their own tree.
      {"Extended gateway data", "sflow_245.dstAS", "communities", Kind::integer, "sflow_245.communityEntries_tree", true},
      {"Extended gateway data", "sflow_245.localpref", "local_pref"},
      // counters
      {"Generic interface counters", "sflow_245.ifindex", "ifIndex"},
      {"Generic interface counters", "sflow_245.iftype", "ifType"},
      {"Generic interface counters", "sflow_245.ifspeed", "ifSpeed"},
      {"Generic interface counters", "sflow_245.ifdirection", "ifDirection"},
      {"Generic interface counters", "sflow_245.ifadmin_status", "ifAdminStatus"},
      {"Generic interface counters", "sflow_245.ifoper_status", "ifOperStatus"},
      {"Generic interface counters", "sflow_245.ifinoct", "ifInOctets"},
      {"Generic interface counters", "sflow_245.ifinpkt", "ifInUcastPkts"},
      {"Generic interface counters", "sflow_245.ifinmcast", "ifInMulticastPkts"},
      {"Generic interface counters", "sflow_245.ifinbcast", "ifInBroadcastPkts"},
      {"Generic interface counters", "sflow_245.ifindisc", "ifInDiscards"},
      {"Generic interface counters", "sflow_245.ifinerr", "ifInErrors"},
      {"Generic interface counters", "sflow_245.ifinunk", "ifInUnknownProtos"},
      {"Generic interface counters", "sflow_245.ifoutoct", "ifOutOctets"},
      {"Generic interface counters", "sflow_245.ifoutpkt", "ifOutUcastPkts"},
      {"Generic interface counters", "sflow_245.ifoutmcast", "ifOutMulticastPkts"},
      {"Generic interface counters", "sflow_245.ifoutbcast", "ifOutBroadcastPkts"},
      {"Generic interface counters", "sflow_245.ifoutdisc", "ifOutDiscards"},
      {"Generic interface counters", "sflow_245.ifouterr", "ifOutErrors"},
      {"Generic interface counters", "sflow_245.ifpromisc", "ifPromiscuousMode"},
  };
  return m;
}
const char* kDot3[] = {"dot3StatsAlignmentErrors", "dot3StatsFCSErrors", "dot3StatsSingleCollisionFrames",
                       "dot3StatsMultipleCollisionFrames", "dot3StatsSQETestErrors", "dot3StatsDeferredTransmissions",
                       "dot3StatsLateCollisions", "dot3StatsExcessiveCollisions", "dot3StatsInternalMacTransmitErrors",
                       "dot3StatsCarrierSenseErrors", "dot3StatsFrameTooLongs", "dot3StatsInternalMacReceiveErrors",
                       "dot3StatsSymbolErrors"};

// Ours, not compared field by field, and why. Anything else we write must be compared.
const std::set<std::string> kNotCompared{
    "_time", "_received", "_source", "_peer",  // the proxy's, not the datagram's
    "sample_type", "counter_type",             // checked against the sample / record format below
    "ifStatus",                                // the raw word Wireshark splits into the two flags compared
    "dst_as",                                  // the last AS of dst_as_path, which is compared
    "ether_type",                              // compared below (the innermost type, after 802.1Q tags)
    "inner_vlan",                              // compared below with the second vlan.id
    "ip_fragment_offset",                      // compared below (only for a later fragment)
    "tcp_flags", "ip_tos",                     // of IPv4/IPv6 data records: compared below (Wireshark reads them differently)
};

std::string tshark_value(const std::string& s, Kind kind) {
  switch (kind) {
    case Kind::text: return s;
    case Kind::integer: return std::to_string(std::stoull(s));
    case Kind::hex: return std::to_string(std::stoull(s, nullptr, 16));
    case Kind::plus40: return std::to_string(std::stoull(s) + 40);
  }
  return s;
}
std::string our_value(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_int64()) return std::to_string(v.as_int64());
  return boost::json::serialize(v);
}

std::vector<std::string> values(const std::vector<Leaf>& leaves, const std::function<bool(const Leaf&)>& pick) {
  std::vector<std::string> out;
  for (const auto& l : leaves)
    if (pick(l)) out.push_back(l.value);
  return out;
}

// Compares one event with its unit; returns the fields compared.
size_t compare_unit(const Event& e, const Unit& u, const std::string& where) {
  std::set<std::string> compared;
  size_t n = 0;
  auto check = [&](const std::string& ours, const std::string& theirs, const std::string& what) {
    const auto* v = e.if_contains(ours);
    EXPECT_TRUE(v != nullptr) << where << ": we have no " << ours << " (Wireshark's " << what << " = " << theirs << ")";
    if (v) {
      EXPECT_EQ(our_value(*v), theirs) << where << ": " << ours << " vs Wireshark's " << what;
    }
    compared.insert(ours);
    ++n;
  };
  for (const auto& m : field_maps()) {
    const auto theirs = values(u.leaves, [&](const Leaf& l) {
      return l.name == m.name && (m.record == "*" ? !l.record.empty() : l.record == m.record) &&
             (m.parent.empty() || l.parent == m.parent);
    });
    if (theirs.empty()) {
      // An empty list (no AS path segments, no communities): Wireshark shows no values.
      const auto* v = m.array ? e.if_contains(m.ours) : nullptr;
      if (v && v->is_array() && v->as_array().empty()) compared.insert(m.ours);
      continue;
    }
    if (m.array) {
      const auto* v = e.if_contains(m.ours);
      EXPECT_TRUE(v && v->is_array()) << where << ": no array " << m.ours;
      std::vector<std::string> mine, expect;
      if (v && v->is_array())
        for (const auto& x : v->as_array()) mine.push_back(our_value(x));
      for (const auto& t : theirs) expect.push_back(tshark_value(t, m.kind));
      EXPECT_EQ(mine, expect) << where << ": " << m.ours << " vs Wireshark's " << m.name;
      compared.insert(m.ours);
      n += expect.size();
      continue;
    }
    if (!m.first_only) {
      EXPECT_EQ(theirs.size(), 1u) << where << ": Wireshark repeats " << m.name;
    }
    // A format / multiple-outputs field of 0 is the default we leave out.
    if ((m.ours == "input_format" || m.ours == "output_format") && theirs[0] == "0") {
      EXPECT_FALSE(e.contains(m.ours)) << where;
      continue;
    }
    check(m.ours, tshark_value(theirs[0], m.kind), m.name);
  }
  // Wireshark's sample type / counter record format against ours.
  const auto type = values(u.leaves, [](const Leaf& l) { return l.name == "sflow_245.sampletype"; });
  EXPECT_EQ(test::str(e, "sample_type"), u.counter ? "counter" : "flow") << where;
  EXPECT_EQ(type.size(), 1u);
  if (!type.empty()) {
    EXPECT_EQ(type[0] == "2" || type[0] == "4", u.counter) << where;
  }
  if (u.counter) {
    const auto format = values(u.leaves, [](const Leaf& l) { return l.name == "sflow_245.counters_record_format"; });
    EXPECT_EQ(format, std::vector<std::string>{test::str(e, "counter_type") == "generic_interface" ? "1" : "2"}) << where;
    for (const char* k : kDot3) {
      const auto theirs = values(u.leaves, [&](const Leaf& l) { return l.name == std::string("sflow_245.") + k; });
      if (!theirs.empty()) check(k, theirs[0], k);
    }
  }
  // The innermost EtherType: after 802.1Q tags Wireshark has it as vlan.etype.
  const auto etype = values(u.leaves, [](const Leaf& l) { return l.record == kRawHeader && l.name == "vlan.etype"; });
  const auto eth_type = values(u.leaves, [](const Leaf& l) { return l.record == kRawHeader && l.name == "eth.type"; });
  if (!etype.empty()) {
    check("ether_type", tshark_value(etype.back(), Kind::hex), "vlan.etype");
  } else if (!eth_type.empty()) {
    check("ether_type", tshark_value(eth_type[0], Kind::hex), "eth.type");
  }
  const auto vlans = values(u.leaves, [](const Leaf& l) { return l.record == kRawHeader && l.name == "vlan.id"; });
  if (vlans.size() > 1) check("inner_vlan", vlans[1], "second vlan.id");
  if (vlans.size() > 2) ADD_FAILURE() << where << ": more tags than we decode";
  // The compact form's input: Wireshark shows the whole word; we split it as the
  // spec's `interface` type says (format in the top 2 bits, as for the output).
  const auto in = values(u.leaves, [](const Leaf& l) { return l.name == "sflow.flow_sample.input_interface"; });
  if (!in.empty()) {
    const uint64_t format = e.contains("input_format") ? test::unum(e, "input_format") : 0;
    check("input", std::to_string(std::stoull(in[0]) & 0x3fffffff), "sflow.flow_sample.input_interface & 0x3fffffff");
    EXPECT_EQ(format, std::stoull(in[0]) >> 30) << where << ": input_format";
    compared.insert("input_format");
  }
  // A fragment's offset (8-byte units); we write it only for a later fragment.
  const auto frag = values(u.leaves, [](const Leaf& l) { return l.record == kRawHeader && l.name == "ip.frag_offset"; });
  if (!frag.empty() && frag[0] != "0") check("ip_fragment_offset", frag[0], "ip.frag_offset");
  // IPv4 / IPv6 data records: the record's format is the IP version.
  for (const auto& [record, version] : {std::pair{"IPv4 data", "4"}, std::pair{"IPv6 data", "6"}}) {
    const std::string rec = record;
    if (!values(u.leaves, [&](const Leaf& l) { return l.record == rec; }).empty()) check("ip_version", version, rec);
  }
  // IPv4 / IPv6 data records: tcp_flags and tos are 32-bit words whose value is in the
  // low byte (XDR unsigned int); Wireshark 4.0 reads its flag bits and the IPv4
  // precedence from the word's first (high) byte. We follow the specification; the
  // check is that Wireshark's bits are those of the high byte of our value.
  const auto syn = values(u.leaves, [](const Leaf& l) { return l.name == "sflow_245.ip.tcp_flag.syn"; });
  if (!syn.empty()) {
    const uint64_t flags = test::unum(e, "tcp_flags");
    EXPECT_EQ(syn[0], std::to_string((flags >> 24) >> 1 & 1)) << where;
    compared.insert("tcp_flags");
    const auto prec = values(u.leaves, [](const Leaf& l) { return l.name == "sflow_245.ipv4_precedence_type"; });
    if (!prec.empty()) {
      EXPECT_EQ(prec[0], std::to_string((test::unum(e, "ip_tos") >> 24) >> 5)) << where;
      compared.insert("ip_tos");
    }
  }
  for (const auto& [k, v] : e) {
    const std::string key(k);
    EXPECT_TRUE(compared.count(key) || kNotCompared.count(key) || key == "sflow_version" || key == "agent" ||
                key == "sub_agent_id" || key == "datagram_sequence" || key == "agent_uptime_ms")
        << where << ": our field " << key << " was not compared with Wireshark";
  }
  return n;
}

TEST(SflowWireshark, DatagramsFromTheSpecificationMatchTshark) {
  if (test::find_program("tshark").empty())
    GTEST_SKIP() << "tshark is needed (Debian package tshark; scripts/setup.sh installs it)";
  const auto dgs = datagrams();
  test::TempDir dir;
  const std::string pcap = dir.str() + "/sflow.pcap";
  test::write_file(pcap, test::udp_pcap(dgs, 6343));
  if (const char* keep = std::getenv("BF_SFLOW_PCAP")) test::write_file(keep, test::udp_pcap(dgs, 6343));  // to look at
  const auto packets = test::run_tshark_json(dir, pcap, "--no-duplicate-keys -d udp.port==6343,sflow");
  ASSERT_EQ(packets.size(), dgs.size());

  size_t compared = 0, events = 0;
  for (size_t p = 0; p < dgs.size(); ++p) {
    std::string out;
    flow::FlowStats stats;
    flow::decode_sflow(dgs[p], test::test_context(), out, stats);
    EXPECT_EQ(stats.total_errors(), 0u) << "datagram " << p;
    const auto ours = test::events_of(out);
    const auto& layers = packets[p].at("_source").at("layers").as_object();
    ASSERT_TRUE(layers.contains("sflow")) << "tshark did not decode datagram " << p << " as sFlow";
    std::vector<Leaf> head;
    const auto units = tshark_units(layers.at("sflow").as_object(), head);
    ASSERT_EQ(ours.size(), units.size()) << "datagram " << p << ": our events vs Wireshark's samples / counter records";
    auto datagram_field = [&](const char* name) {
      const auto v = values(head, [&](const Leaf& l) { return l.name == name; });
      return v.empty() ? std::string("<none>") : v[0];
    };
    for (size_t i = 0; i < ours.size(); ++i) {
      const std::string where = "datagram " + std::to_string(p) + " event " + std::to_string(i);
      const Event& e = ours[i];
      EXPECT_EQ(std::to_string(test::unum(e, "sflow_version")), datagram_field("sflow_245.version")) << where;
      const std::string agent = datagram_field("sflow_245.agent");
      EXPECT_EQ(test::str(e, "agent"), agent != "<none>" ? agent : datagram_field("sflow_245.agent.v6")) << where;
      EXPECT_EQ(std::to_string(test::unum(e, "sub_agent_id")), datagram_field("sflow_245.sub_agent_id")) << where;
      EXPECT_EQ(std::to_string(test::unum(e, "datagram_sequence")), datagram_field("sflow_245.sequence_number")) << where;
      EXPECT_EQ(std::to_string(test::unum(e, "agent_uptime_ms")), datagram_field("sflow_245.sysuptime")) << where;
      compared += 5 + compare_unit(e, units[i], where);
    }
    events += ours.size();
  }
  EXPECT_EQ(events, 8u + 5u + 24u);  // 4 flow samples + 4 counter records, 5, 24
  EXPECT_GT(compared, 600u);
}

}  // namespace
}  // namespace bf
