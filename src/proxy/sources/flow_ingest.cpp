#include "proxy/sources/flow_ingest.h"

#include "common/config.h"
#include "common/time.h"

namespace bf {

FlowIngest::FlowIngest(const SourceCommon& common, EventSink& sink, std::unique_ptr<DatagramDecoder> decoder,
                       std::shared_ptr<LogLimiter> bad_datagram_log)
    : common_(common),
      sink_(sink),
      decoder_(std::move(decoder)),
      bad_datagram_log_(bad_datagram_log ? std::move(bad_datagram_log)
                                         : std::make_shared<LogLimiter>(kBadDatagramLogInterval)),
      metrics_(common),
      templates_gauge_(metrics().gauge("bf_flow_templates", "NetFlow v9 / IPFIX templates cached by a source",
                                       {{"source", common.name}})),
      held_gauge_(metrics().gauge("bf_flow_held_sets",
                                  "Data sets held by a source until their template arrives",
                                  {{"source", common.name}})) {
  for (size_t i = 0; i < flow::kFlowErrorCount; ++i)
    errors_[i] = &metrics().counter("bf_flow_errors_total",
                                    "Flow datagrams (or parts of them) a source could not decode, by error",
                                    {{"source", common.name}, {"error", flow::flow_error_name(flow::FlowError(i))}});
}

void FlowIngest::handle(std::string_view datagram, const std::string& peer) {
  flow::EventContext ctx;
  ctx.received_us = now_us();
  ctx.received = received_format_.format(ctx.received_us);
  ctx.source = common_.name;
  ctx.peer = peer;
  pending_bytes_ += datagram.size();
  const flow::FlowStats before = stats_;
  decoder_->decode(datagram, ctx, pending_, stats_);
  if (stats_.total_errors() != before.total_errors()) {
    metrics_.parse_errors.inc();
    metrics_.parse_error_contract.inc();
    uint64_t suppressed = 0;
    if (bad_datagram_log_->allow(suppressed)) {
      std::string errors;
      for (size_t i = 0; i < flow::kFlowErrorCount; ++i)
        if (stats_.errors[i] != before.errors[i])
          errors += (errors.empty() ? "" : ", ") + std::string(flow::flow_error_name(flow::FlowError(i)));
      spdlog::warn("{} source '{}': a datagram of {} bytes from {} could not be decoded in full ({}); counted in "
                   "bf_flow_errors_total; {} more such datagrams since the last line were not logged",
                   common_.type, common_.name, datagram.size(), peer, errors, suppressed);
    }
  }
  if (pending_.size() >= kFlushBytes) flush();
}

void FlowIngest::flush() {
  for (size_t i = 0; i < flow::kFlowErrorCount; ++i)
    if (stats_.errors[i] != reported_.errors[i]) errors_[i]->inc(stats_.errors[i] - reported_.errors[i]);
  size_t events = static_cast<size_t>(stats_.events - reported_.events);
  reported_ = stats_;
  const auto templates = static_cast<int64_t>(decoder_->templates());
  const auto held = static_cast<int64_t>(decoder_->held_sets());
  templates_gauge_.add(templates - templates_reported_);  // workers add up to the source's total
  held_gauge_.add(held - held_reported_);
  templates_reported_ = templates;
  held_reported_ = held;
  hand_over_lines(sink_, common_, metrics_, Delivery::best_effort, pending_, events, pending_bytes_, events);
}

}  // namespace bf
