#include "proxy/flow/sflow.h"

#include <array>

#include "proxy/flow/reader.h"

namespace bf::flow {
namespace {

// Structure formats (enterprise 0), sFlow v5 §5.
enum : uint32_t {
  kFlowSample = 1, kCounterSample = 2, kFlowSampleExpanded = 3, kCounterSampleExpanded = 4,
  kRawHeader = 1, kEthernetFrame = 2, kIpv4Data = 3, kIpv6Data = 4,
  kExtSwitch = 1001, kExtRouter = 1002, kExtGateway = 1003,
  kGenericInterface = 1, kEthernetInterface = 2,
};
constexpr size_t kMaxRecords = 64;  // per sample; more is an absurd count

// The agent-level fields every event of the datagram starts with.
struct Datagram {
  const uint8_t* agent = nullptr;
  bool agent_v6 = false;
  uint32_t sub_agent = 0, sequence = 0, uptime = 0;
};

// A sample's sequence number and source id: type and index in one word (compact) or two (expanded).
struct SampleHeader {
  uint32_t sequence, source_type, source_index;
};
SampleHeader read_sample_header(Reader& s, bool expanded) {
  SampleHeader h{};
  h.sequence = s.u32();
  if (expanded) {
    h.source_type = s.u32();
    h.source_index = s.u32();
  } else {
    const uint32_t id = s.u32();
    h.source_type = id >> 24;
    h.source_index = id & 0xffffff;
  }
  return h;
}

void put_header(JsonObjectWriter& w, const Datagram& d, const char* sample_type, const SampleHeader& h) {
  w.plain_num("sflow_version", 5);
  if (d.agent_v6) {
    put_ipv6(w, "agent", d.agent);
  } else {
    put_ipv4(w, "agent", d.agent);
  }
  w.plain_num("sub_agent_id", d.sub_agent);
  w.plain_num("datagram_sequence", d.sequence);
  w.plain_num("agent_uptime_ms", d.uptime);
  w.plain_field("sample_type", sample_type);
  w.plain_num("sample_sequence", h.sequence);
  w.plain_num("source_id_type", h.source_type);
  w.plain_num("source_id_index", h.source_index);
}

// An XDR "address": type (1 IPv4, 2 IPv6) and the bytes. false when unreadable.
bool put_address(JsonObjectWriter& w, std::string_view key, Reader& r) {
  const uint32_t type = r.u32();
  if (type == 1) {
    const uint8_t* a = r.bytes(4);
    if (a) put_ipv4(w, key, a);
    return a != nullptr;
  }
  if (type == 2) {
    const uint8_t* a = r.bytes(16);
    if (a) put_ipv6(w, key, a);
    return a != nullptr;
  }
  return type == 0 && r.ok();  // UNKNOWN: no address bytes follow
}

// Compact interface: top 2 bits format (0 ifIndex, 1 discarded (reason), 2 multiple (count)).
void put_interface(JsonObjectWriter& w, std::string_view key, uint32_t format, uint32_t value) {
  w.plain_num(key, value);
  if (format != 0) {
    std::string k(key);
    k += "_format";
    w.plain_num(k, format);
  }
}

// The sampled packet header: what fits of Ethernet / 802.1Q / IPv4 / IPv6 / L4. A
// header cut short (it is a snapshot of the first bytes) decodes as far as it goes.
void decode_packet(JsonObjectWriter& w, uint32_t protocol, Reader h) {
  uint16_t ether_type = 0;
  if (protocol == 1) {  // ISO 8802-3 Ethernet
    const uint8_t* dst = h.bytes(6);
    const uint8_t* src = h.bytes(6);
    if (!dst || !src) return;
    put_mac(w, "dst_mac", dst);
    put_mac(w, "src_mac", src);
    ether_type = h.u16();
    for (int tags = 0; h.ok() && (ether_type == 0x8100 || ether_type == 0x88a8) && tags < 2; ++tags) {
      const uint16_t tci = h.u16();
      if (!h.ok()) return;
      w.plain_num(tags == 0 ? "vlan" : "inner_vlan", tci & 0x0fff);
      if (tags == 0) w.plain_num("vlan_priority", tci >> 13);
      ether_type = h.u16();
    }
    if (!h.ok()) return;
    w.plain_num("ether_type", ether_type);
  } else if (protocol == 11) {
    ether_type = 0x0800;
  } else if (protocol == 12) {
    ether_type = 0x86dd;
  } else {
    return;
  }
  uint8_t l4 = 0;
  if (ether_type == 0x0800) {
    const uint8_t vihl = h.u8();
    if (!h.ok() || (vihl >> 4) != 4) return;
    const uint8_t tos = h.u8();
    const uint16_t total = h.u16();
    h.u16();  // identification
    const uint16_t frag = h.u16();
    const uint8_t ttl = h.u8();
    l4 = h.u8();
    h.u16();  // checksum
    const uint8_t* src = h.bytes(4);
    const uint8_t* dst = h.bytes(4);
    if (!src || !dst) return;
    w.plain_num("ip_version", 4);
    put_ipv4(w, "src_ip", src);
    put_ipv4(w, "dst_ip", dst);
    w.plain_num("ip_protocol", l4);
    w.plain_num("ip_tos", tos);
    w.plain_num("ip_ttl", ttl);
    w.plain_num("ip_length", total);
    const size_t ihl = size_t(vihl & 15) * 4;
    if (ihl < 20 || !h.skip(ihl - 20)) return;
    if ((frag & 0x1fff) != 0) {  // a later fragment carries no L4 header
      w.plain_num("ip_fragment_offset", frag & 0x1fff);
      return;
    }
  } else if (ether_type == 0x86dd) {
    const uint32_t vtf = h.u32();
    const uint16_t payload = h.u16();
    uint8_t next = h.u8();
    const uint8_t hops = h.u8();
    const uint8_t* src = h.bytes(16);
    const uint8_t* dst = h.bytes(16);
    if (!src || !dst || (vtf >> 28) != 6) return;
    w.plain_num("ip_version", 6);
    put_ipv6(w, "src_ip", src);
    put_ipv6(w, "dst_ip", dst);
    w.plain_num("ip_tos", (vtf >> 20) & 0xff);
    w.plain_num("ip_flow_label", vtf & 0xfffff);
    w.plain_num("ip_ttl", hops);
    w.plain_num("ip_length", payload + 40);
    // Extension headers (hop-by-hop, routing, fragment, destination options), a few at most.
    for (int i = 0; i < 8 && (next == 0 || next == 43 || next == 44 || next == 60); ++i) {
      const uint8_t following = h.u8();
      const uint8_t len = h.u8();
      if (!h.ok()) return;
      if (next == 44) {
        const uint16_t off = h.u16();  // offset (13 bits), flags; then a 4-byte id
        if (!h.skip(4)) return;
        if ((off >> 3) != 0) {
          w.plain_num("ip_protocol", following);
          return;
        }
      } else if (!h.skip(size_t(len) * 8 + 6)) {
        return;
      }
      next = following;
    }
    l4 = next;
    w.plain_num("ip_protocol", l4);
  } else {
    return;
  }
  if (l4 == 6) {  // TCP
    const uint16_t sport = h.u16(), dport = h.u16();
    if (!h.ok()) return;
    w.plain_num("src_port", sport);
    w.plain_num("dst_port", dport);
    h.skip(8);  // sequence, acknowledgement
    const uint8_t off = h.u8(), flags = h.u8();
    if (h.ok()) w.plain_num("tcp_flags", (off & 1) << 8 | flags);
  } else if (l4 == 17) {  // UDP
    const uint16_t sport = h.u16(), dport = h.u16();
    if (!h.ok()) return;
    w.plain_num("src_port", sport);
    w.plain_num("dst_port", dport);
  } else if (l4 == 1 || l4 == 58) {  // ICMP, ICMPv6
    const uint8_t type = h.u8(), code = h.u8();
    if (!h.ok()) return;
    w.plain_num("icmp_type", type);
    w.plain_num("icmp_code", code);
  }
}

// Appends the members written to a scratch object (a record decoded in full before
// it is kept) to the event being written.
void splice(JsonObjectWriter& w, const std::string& scratch) {
  if (scratch.size() <= 1) return;  // "{" only: nothing was written
  w.out().push_back(',');
  w.out().append(scratch, 1, std::string::npos);
}

// Reads `count` records (format, length, body) of a sample. false (counted) when
// the count or a length does not fit.
struct Record {
  uint32_t format;
  Reader body;
};
bool read_records(Reader& s, uint32_t count, std::array<Record, kMaxRecords>& records, size_t& n,
                  FlowStats& stats) {
  n = 0;
  if (count > kMaxRecords || size_t(count) * 8 > s.remaining()) {
    stats.count(FlowError::absurd_count);
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t format = s.u32();
    const uint32_t length = s.u32();
    if (!s.ok() || length > s.remaining()) {
      stats.count(FlowError::truncated);
      return false;
    }
    records[n++] = {format, s.sub(length)};
  }
  return true;
}

void flow_sample(Reader s, bool expanded, const Datagram& d, const EventContext& ctx, std::string& out,
                 FlowStats& stats) {
  const SampleHeader h = read_sample_header(s, expanded);
  const uint32_t rate = s.u32(), pool = s.u32(), drops = s.u32();
  uint32_t in_format, in_value, out_format, out_value;
  if (expanded) {
    in_format = s.u32();
    in_value = s.u32();
    out_format = s.u32();
    out_value = s.u32();
  } else {
    const uint32_t in = s.u32(), o = s.u32();
    in_format = in >> 30;
    in_value = in & 0x3fffffff;
    out_format = o >> 30;
    out_value = o & 0x3fffffff;
  }
  const uint32_t count = s.u32();
  if (!s.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  std::array<Record, kMaxRecords> records;
  size_t n = 0;
  if (!read_records(s, count, records, n, stats)) return;

  JsonObjectWriter w(out);
  put_header(w, d, "flow", h);
  w.plain_num("sampling_rate", rate);
  w.plain_num("sample_pool", pool);
  w.plain_num("drops", drops);
  put_interface(w, "input", in_format, in_value);
  put_interface(w, "output", out_format, out_value);
  bool have_header = false;
  for (size_t i = 0; i < n; ++i) have_header |= records[i].format == kRawHeader;
  uint32_t seen = 0;  // one record of each kind per sample: a second would repeat keys
  auto first = [&](uint32_t bit) {
    if (seen & bit) return false;
    seen |= bit;
    return true;
  };
  for (size_t i = 0; i < n; ++i) {
    Reader r = records[i].body;
    switch (records[i].format) {
      case kRawHeader: {
        if (!first(1)) break;
        const uint32_t protocol = r.u32(), frame_length = r.u32(), stripped = r.u32();
        Reader header = r.xdr_opaque(r.remaining());
        if (!r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        w.plain_num("header_protocol", protocol);
        w.plain_num("frame_length", frame_length);
        w.plain_num("stripped", stripped);
        w.plain_num("header_length", static_cast<int64_t>(header.remaining()));
        decode_packet(w, protocol, header);
        break;
      }
      case kEthernetFrame: {
        if (have_header || !first(2)) break;
        const uint32_t length = r.u32();
        const uint8_t* src = r.bytes(8);  // mac<6> padded to 8
        const uint8_t* dst = r.bytes(8);
        const uint32_t type = r.u32();
        if (!r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        w.plain_num("frame_length", length);
        put_mac(w, "src_mac", src);
        put_mac(w, "dst_mac", dst);
        w.plain_num("ether_type", type);
        break;
      }
      case kIpv4Data:
      case kIpv6Data: {
        if (have_header || !first(4)) break;
        const bool v6 = records[i].format == kIpv6Data;
        const uint32_t length = r.u32(), protocol = r.u32();
        const uint8_t* src = r.bytes(v6 ? 16 : 4);
        const uint8_t* dst = r.bytes(v6 ? 16 : 4);
        const uint32_t sport = r.u32(), dport = r.u32(), flags = r.u32(), tos = r.u32();
        if (!r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        w.plain_num("ip_version", v6 ? 6 : 4);
        w.plain_num("ip_length", length);
        w.plain_num("ip_protocol", protocol);
        if (v6) {
          put_ipv6(w, "src_ip", src);
          put_ipv6(w, "dst_ip", dst);
        } else {
          put_ipv4(w, "src_ip", src);
          put_ipv4(w, "dst_ip", dst);
        }
        w.plain_num("src_port", sport);
        w.plain_num("dst_port", dport);
        w.plain_num("tcp_flags", flags);
        w.plain_num(v6 ? "ip_priority" : "ip_tos", tos);
        break;
      }
      case kExtSwitch: {
        if (!first(8)) break;
        const uint32_t sv = r.u32(), sp = r.u32(), dv = r.u32(), dp = r.u32();
        if (!r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        w.plain_num("src_vlan", sv);
        w.plain_num("src_priority", sp);
        w.plain_num("dst_vlan", dv);
        w.plain_num("dst_priority", dp);
        break;
      }
      case kExtRouter: {
        if (!first(16)) break;
        // Written to a scratch buffer first: a record cut short adds nothing.
        std::string tmp;
        JsonObjectWriter t(tmp);
        const bool ok = put_address(t, "next_hop", r);
        const uint32_t sm = r.u32(), dm = r.u32();
        if (!ok || !r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        splice(w, tmp);
        w.plain_num("src_mask_len", sm);
        w.plain_num("dst_mask_len", dm);
        break;
      }
      case kExtGateway: {
        if (!first(32)) break;
        std::string tmp;
        JsonObjectWriter t(tmp);
        if (!put_address(t, "bgp_next_hop", r)) {
          stats.count(FlowError::truncated);
          break;
        }
        t.plain_num("router_as", r.u32());
        t.plain_num("src_as", r.u32());
        t.plain_num("src_peer_as", r.u32());
        const uint32_t segments = r.u32();
        if (!r.ok() || size_t(segments) * 8 > r.remaining()) {
          stats.count(r.ok() ? FlowError::absurd_count : FlowError::truncated);
          break;
        }
        t.key("dst_as_path");
        tmp.push_back('[');
        uint32_t last_as = 0;
        bool any = false, bad = false;
        for (uint32_t seg = 0; seg < segments && !bad; ++seg) {
          r.u32();  // segment type (set / sequence)
          const uint32_t len = r.u32();
          if (!r.ok() || size_t(len) * 4 > r.remaining()) {
            bad = true;
            break;
          }
          for (uint32_t k = 0; k < len; ++k) {
            if (any) tmp.push_back(',');
            any = true;
            last_as = r.u32();
            tmp += std::to_string(last_as);
          }
        }
        tmp.push_back(']');
        const uint32_t ncomm = r.u32();
        if (bad || !r.ok() || size_t(ncomm) * 4 > r.remaining()) {
          stats.count(FlowError::absurd_count);
          break;
        }
        if (any) t.plain_num("dst_as", last_as);
        t.key("communities");
        tmp.push_back('[');
        for (uint32_t k = 0; k < ncomm; ++k) {
          if (k) tmp.push_back(',');
          tmp += std::to_string(r.u32());
        }
        tmp.push_back(']');
        const uint32_t localpref = r.u32();
        if (!r.ok()) {
          stats.count(FlowError::truncated);
          break;
        }
        t.plain_num("local_pref", localpref);
        splice(w, tmp);
        break;
      }
      default:
        stats.count(FlowError::unknown_format);  // a record we do not decode: skipped
    }
  }
  put_time(w, "_time", ctx.received_us);
  finish_event(w, ctx, stats);
}

void counter_sample(Reader s, bool expanded, const Datagram& d, const EventContext& ctx, std::string& out,
                    FlowStats& stats) {
  const SampleHeader h = read_sample_header(s, expanded);
  const uint32_t count = s.u32();
  if (!s.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  std::array<Record, kMaxRecords> records;
  size_t n = 0;
  if (!read_records(s, count, records, n, stats)) return;
  for (size_t i = 0; i < n; ++i) {
    Reader r = records[i].body;
    const uint32_t format = records[i].format;
    if (format != kGenericInterface && format != kEthernetInterface) {
      stats.count(FlowError::unknown_format);
      continue;
    }
    if (r.remaining() < (format == kGenericInterface ? 88u : 52u)) {
      stats.count(FlowError::truncated);
      continue;
    }
    JsonObjectWriter w(out);
    put_header(w, d, "counter", h);
    if (format == kGenericInterface) {
      w.plain_field("counter_type", "generic_interface");
      w.plain_num("ifIndex", r.u32());
      w.plain_num("ifType", r.u32());
      put_u64(w, "ifSpeed", r.u64());
      w.plain_num("ifDirection", r.u32());
      const uint32_t status = r.u32();
      w.plain_num("ifStatus", status);
      w.plain_num("ifAdminStatus", status & 1);
      w.plain_num("ifOperStatus", (status >> 1) & 1);
      put_u64(w, "ifInOctets", r.u64());
      static constexpr const char* kIn[] = {"ifInUcastPkts", "ifInMulticastPkts", "ifInBroadcastPkts",
                                            "ifInDiscards", "ifInErrors", "ifInUnknownProtos"};
      for (const char* k : kIn) w.plain_num(k, r.u32());
      put_u64(w, "ifOutOctets", r.u64());
      static constexpr const char* kOut[] = {"ifOutUcastPkts", "ifOutMulticastPkts", "ifOutBroadcastPkts",
                                             "ifOutDiscards", "ifOutErrors", "ifPromiscuousMode"};
      for (const char* k : kOut) w.plain_num(k, r.u32());
    } else {
      w.plain_field("counter_type", "ethernet_interface");
      static constexpr const char* kEth[] = {
          "dot3StatsAlignmentErrors", "dot3StatsFCSErrors", "dot3StatsSingleCollisionFrames",
          "dot3StatsMultipleCollisionFrames", "dot3StatsSQETestErrors", "dot3StatsDeferredTransmissions",
          "dot3StatsLateCollisions", "dot3StatsExcessiveCollisions", "dot3StatsInternalMacTransmitErrors",
          "dot3StatsCarrierSenseErrors", "dot3StatsFrameTooLongs", "dot3StatsInternalMacReceiveErrors",
          "dot3StatsSymbolErrors"};
      for (const char* k : kEth) w.plain_num(k, r.u32());
    }
    put_time(w, "_time", ctx.received_us);
    finish_event(w, ctx, stats);
  }
}

}  // namespace

void decode_sflow(std::string_view datagram, const EventContext& ctx, std::string& out, FlowStats& stats) {
  Reader r(datagram);
  const uint32_t version = r.u32();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  if (version != 5) {
    stats.count(FlowError::bad_version);
    return;
  }
  Datagram d;
  const uint32_t agent_type = r.u32();
  if (agent_type != 1 && agent_type != 2) {
    stats.count(r.ok() ? FlowError::unknown_format : FlowError::truncated);
    return;
  }
  d.agent_v6 = agent_type == 2;
  d.agent = r.bytes(d.agent_v6 ? 16 : 4);
  d.sub_agent = r.u32();
  d.sequence = r.u32();
  d.uptime = r.u32();
  const uint32_t samples = r.u32();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  if (size_t(samples) * 8 > r.remaining()) {
    stats.count(FlowError::absurd_count);
    return;
  }
  for (uint32_t i = 0; i < samples; ++i) {
    const uint32_t format = r.u32();
    const uint32_t length = r.u32();
    if (!r.ok() || length > r.remaining()) {
      stats.count(FlowError::truncated);
      return;
    }
    Reader s = r.sub(length);
    switch (format) {  // enterprise 0; others are skipped by their length
      case kFlowSample: flow_sample(s, false, d, ctx, out, stats); break;
      case kFlowSampleExpanded: flow_sample(s, true, d, ctx, out, stats); break;
      case kCounterSample: counter_sample(s, false, d, ctx, out, stats); break;
      case kCounterSampleExpanded: counter_sample(s, true, d, ctx, out, stats); break;
      default: stats.count(FlowError::unknown_format);
    }
  }
}

}  // namespace bf::flow
