// NetFlow v5 and v9 (RFC 3954), and the dispatch by version. IPFIX is in ipfix.cpp.
#include "proxy/flow/netflow.h"

namespace bf::flow {

FlowDecoder::FlowDecoder(FlowDecoderOptions options)
    : options_(options),
      cache_(options.max_templates, options.max_templates_per_exporter, options.template_timeout_us),
      held_(options.hold_us, options.max_held_bytes) {}

void FlowDecoder::decode(std::string_view datagram, const EventContext& ctx, std::string& out, FlowStats& stats) {
  held_.expire(ctx.received_us, stats);
  Reader r(datagram);
  const uint16_t version = r.u16();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  learned_ = false;
  switch (version) {
    case 5: decode_v5(r, ctx, out, stats); break;
    case 9: decode_v9(r, ctx, out, stats); break;
    case 10: decode_ipfix(r, ctx, out, stats); break;
    default: stats.count(FlowError::bad_version); return;
  }
  if (learned_ && held_.size() > 0) held_.release(cache_, ctx.received_us, ctx.source, out, stats);
}

void FlowDecoder::learn(const std::string& key, FlowTemplate t, uint16_t version, FlowStats& stats) {
  if (!finalize_template(t, version, stats)) return;
  cache_.put(key, std::move(t), stats);
  learned_ = true;
}

size_t FlowDecoder::data_set(Reader set, uint16_t template_id, const MessageInfo& info, const EventContext& ctx,
                             std::string& out, FlowStats& stats) {
  std::string key = template_key(ctx.peer, info.version, info.domain, template_id);
  if (const FlowTemplate* t = cache_.get(key, ctx.received_us)) {
    if (info.version != 10) return decode_data_set(set, template_id, *t, info, ctx, out, stats);
    std::string exporter = key.substr(0, key.size() - 2);  // (exporter, version, domain)
    MessageInfo with_init = info;
    if (auto it = system_init_.find(exporter); it != system_init_.end()) with_init.system_init_us = it->second;
    int64_t init = 0;
    const size_t n = decode_data_set(set, template_id, *t, with_init, ctx, out, stats, &init);
    if (init != 0) {
      if (system_init_.size() >= options_.max_templates && !system_init_.count(exporter)) system_init_.clear();
      system_init_[std::move(exporter)] = init;
    }
    return n;
  }
  held_.hold(std::move(key), template_id, info, ctx, set, stats);
  return kHeld;
}

// ---------------------------------------------------------------------------------
// NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records.

void FlowDecoder::decode_v5(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats) {
  constexpr size_t kRecord = 48;
  const uint16_t count = r.u16();
  const uint32_t uptime = r.u32();
  const uint32_t secs = r.u32();
  const uint32_t nsecs = r.u32();
  const uint32_t sequence = r.u32();
  const uint8_t engine_type = r.u8();
  const uint8_t engine_id = r.u8();
  const uint16_t sampling = r.u16();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  size_t n = count;
  if (count > 30) {  // the format's maximum (the Cisco v5 definition)
    stats.count(FlowError::absurd_count);
    n = std::min<size_t>(count, r.remaining() / kRecord);
  } else if (size_t(count) * kRecord > r.remaining()) {
    stats.count(FlowError::truncated);
    n = r.remaining() / kRecord;
  }
  const int64_t header_us = int64_t(secs) * 1000000 + nsecs / 1000;
  for (size_t i = 0; i < n; ++i) {
    Reader rec = r.sub(kRecord);
    const uint8_t* src = rec.bytes(4);
    const uint8_t* dst = rec.bytes(4);
    const uint8_t* nexthop = rec.bytes(4);
    const uint16_t input = rec.u16(), output = rec.u16();
    const uint32_t packets = rec.u32(), octets = rec.u32(), first = rec.u32(), last = rec.u32();
    const uint16_t sport = rec.u16(), dport = rec.u16();
    rec.u8();  // pad1
    const uint8_t flags = rec.u8(), proto = rec.u8(), tos = rec.u8();
    const uint16_t src_as = rec.u16(), dst_as = rec.u16();
    const uint8_t src_mask = rec.u8(), dst_mask = rec.u8();
    JsonObjectWriter w(out);
    w.plain_num("flow_version", 5);
    w.plain_field("record_type", "flow");
    put_ipv4(w, "sourceIPv4Address", src);
    put_ipv4(w, "destinationIPv4Address", dst);
    put_ipv4(w, "ipNextHopIPv4Address", nexthop);
    w.plain_num("ingressInterface", input);
    w.plain_num("egressInterface", output);
    w.plain_num("packetDeltaCount", packets);
    w.plain_num("octetDeltaCount", octets);
    w.plain_num("flowStartSysUpTime", first);
    w.plain_num("flowEndSysUpTime", last);
    w.plain_num("sourceTransportPort", sport);
    w.plain_num("destinationTransportPort", dport);
    w.plain_num("tcpControlBits", flags);
    w.plain_num("protocolIdentifier", proto);
    w.plain_num("ipClassOfService", tos);
    w.plain_num("bgpSourceAsNumber", src_as);
    w.plain_num("bgpDestinationAsNumber", dst_as);
    w.plain_num("sourceIPv4PrefixLength", src_mask);
    w.plain_num("destinationIPv4PrefixLength", dst_mask);
    w.plain_num("engineType", engine_type);
    w.plain_num("engineId", engine_id);
    w.plain_num("samplingAlgorithm", sampling >> 14);
    w.plain_num("samplingInterval", sampling & 0x3fff);
    w.plain_num("flow_sequence", sequence);
    w.plain_num("exporter_uptime_ms", uptime);
    put_time(w, "export_time", header_us);
    put_time(w, "flow_start", uptime_to_unix_us(header_us, uptime, first));
    put_time(w, "_time", uptime_to_unix_us(header_us, uptime, last));
    finish_event(w, ctx, stats);
  }
}

// ---------------------------------------------------------------------------------
// NetFlow v9: a 20-byte header, then FlowSets (0 templates, 1 options templates,
// >= 256 data), each padded to 4 bytes.

void FlowDecoder::decode_v9(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats) {
  MessageInfo info;
  info.version = 9;
  // count: records of all kinds in the packet. The sets' lengths frame the packet; the
  // count tells a packet cut at a set boundary from a whole one.
  const uint16_t count = r.u16();
  info.uptime_ms = r.u32();
  info.export_secs = r.u32();
  info.sequence = r.u32();
  info.domain = r.u32();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  size_t records = 0;
  bool held = false;
  const uint64_t errors_before = stats.total_errors();
  uint16_t id = 0;
  Reader set;
  while (next_set(r, id, set, stats)) {
    if (id == 0 || id == 1) {
      records += v9_templates(set, id == 1, info, ctx, stats);
    } else if (id >= 256) {
      const size_t n = data_set(set, id, info, ctx, out, stats);
      if (n == kHeld) {
        held = true;
      } else {
        records += n;
      }
    } else {
      stats.count(FlowError::unknown_format);  // reserved FlowSet id: skipped
    }
  }
  if (stats.total_errors() == errors_before && !held && records < count) stats.count(FlowError::truncated);
}

size_t FlowDecoder::v9_templates(Reader set, bool options, const MessageInfo& info, const EventContext& ctx,
                                 FlowStats& stats) {
  size_t records = 0;
  // A template record needs at least its id and a count: fewer bytes are padding.
  while (set.remaining() >= (options ? 6u : 4u)) {
    const uint16_t tid = set.u16();
    FlowTemplate t;
    t.options = options;
    t.learned_us = ctx.received_us;
    size_t fields = 0;
    if (options) {
      const uint16_t scope_len = set.u16(), option_len = set.u16();
      if (scope_len % 4 || option_len % 4) {
        stats.count(FlowError::bad_length);
        return records;
      }
      t.scope_fields = static_cast<uint16_t>(scope_len / 4);
      fields = size_t(scope_len + option_len) / 4;
    } else {
      fields = set.u16();
    }
    if (tid < 256 || fields == 0) {  // padding looks like this too; either way nothing more to read
      if (tid != 0 || fields != 0) stats.count(FlowError::bad_template);
      return records;
    }
    if (fields * 4 > set.remaining()) {
      stats.count(FlowError::absurd_count);
      return records;
    }
    t.fields.resize(fields);
    for (auto& f : t.fields) {
      f.id = set.u16();
      f.length = set.u16();
    }
    // (An options template's padding, < 6 bytes, ends the loop.)
    learn(template_key(ctx.peer, 9, info.domain, tid), std::move(t), 9, stats);
    ++records;
  }
  return records;
}

}  // namespace bf::flow
