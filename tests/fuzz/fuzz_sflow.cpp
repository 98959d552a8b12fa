// libFuzzer target: flow::decode_sflow on arbitrary datagrams.
#include "fuzz_check.h"
#include "proxy/flow/sflow.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bf::flow::EventContext ctx;
  ctx.received_us = 1764676800000000LL;
  ctx.received = "2025-12-02T12:00:00.000000Z";
  ctx.source = "fuzz";
  ctx.peer = "192.0.2.1:6343";
  std::string out;
  bf::flow::FlowStats stats;
  bf::flow::decode_sflow(std::string_view(reinterpret_cast<const char*>(data), size), ctx, out, stats);
  check_ndjson(out);
  return 0;
}
