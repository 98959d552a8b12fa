// libFuzzer target: flow::FlowDecoder (NetFlow v5 / v9, IPFIX). The input is split
// into datagrams at a 4-byte marker so that templates learned from one datagram are
// used by the next (the stateful paths: template cache, held data, withdrawal), and
// each datagram comes from one of a few exporters.
#include <cstring>

#include "fuzz_check.h"
#include "proxy/flow/netflow.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bf::flow::FlowDecoderOptions o;
  o.max_templates = 8;
  o.max_templates_per_exporter = 4;  // three exporters: the per-exporter bound is reached too
  o.max_held_bytes = 4096;
  o.hold_us = 1000000;
  bf::flow::FlowDecoder decoder(o);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const char* kPeers[] = {"192.0.2.1:2055", "192.0.2.2:2055", "[2001:db8::1]:4739"};
  int64_t now = 1764676800000000LL;
  for (int i = 0; !in.empty() && i < 64; ++i) {
    const size_t cut = in.find("FUZZ");
    const std::string_view datagram = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 4);
    bf::flow::EventContext ctx;
    ctx.received_us = now;
    ctx.received = "2025-12-02T12:00:00.000000Z";
    ctx.source = "fuzz";
    ctx.peer = kPeers[datagram.empty() ? 0 : static_cast<uint8_t>(datagram.back()) % 3];
    std::string out;
    bf::flow::FlowStats stats;
    decoder.decode(datagram, ctx, out, stats);
    check_ndjson(out);
    if (decoder.templates() > o.max_templates || decoder.held_bytes() > o.max_held_bytes) std::abort();
    // The field budget (a single template larger than it is kept alone).
    if (decoder.templates() > 1 && decoder.template_fields() > o.max_templates * 64) std::abort();
    now += 400000;
  }
  return 0;
}
