#include "proxy/sources/flow_source.h"

#include "common/config.h"
#include "proxy/flow/netflow.h"
#include "proxy/sources/flow_ingest.h"
#include "proxy/sources/udp_workers.h"

namespace bf {
namespace {

class TemplateFlowDecoder final : public DatagramDecoder {
 public:
  explicit TemplateFlowDecoder(flow::FlowDecoderOptions o) : decoder_(o) {}
  void decode(std::string_view datagram, const flow::EventContext& ctx, std::string& out,
              flow::FlowStats& stats) override {
    decoder_.decode(datagram, ctx, out, stats);
  }
  size_t templates() const override { return decoder_.templates(); }
  size_t held_sets() const override { return decoder_.held_sets(); }

 private:
  flow::FlowDecoder decoder_;
};

}  // namespace

std::unique_ptr<Source> make_template_flow_source(const ConfigNode& node, EventSink& sink, const std::string& type,
                                                  const std::string& default_listen,
                                                  const std::string& default_dataset) {
  SourceCommon common = read_source_common(node, type, default_listen, default_dataset);
  UdpWorkersOptions opt = read_udp_workers_options(node, common);
  flow::FlowDecoderOptions d;
  const int64_t max_templates = node.integer("max_templates", static_cast<int64_t>(d.max_templates));
  if (max_templates < 1 || max_templates > 1000000) node.fail("max_templates", "must be between 1 and 1000000");
  d.max_templates = static_cast<size_t>(max_templates);
  const auto timeout = node.duration("template_timeout", std::chrono::milliseconds(d.template_timeout_us / 1000));
  if (timeout.count() < 0) node.fail("template_timeout", "must not be negative");
  d.template_timeout_us = timeout.count() * 1000;
  const auto wait = node.duration("template_wait", std::chrono::milliseconds(d.hold_us / 1000));
  if (wait.count() < 0 || wait > std::chrono::hours(1)) node.fail("template_wait", "must be between 0 and 1h");
  d.hold_us = wait.count() * 1000;
  d.max_held_bytes = node.bytes("max_held", d.max_held_bytes);
  if (d.max_held_bytes > (1ull << 30)) node.fail("max_held", "must be at most 1GiB");
  return std::make_unique<UdpWorkersSource<FlowIngest>>(common.name, opt.udp, opt.workers, [common, &sink, d] {
    return std::make_unique<FlowIngest>(common, sink, std::make_unique<TemplateFlowDecoder>(d));
  });
}

}  // namespace bf
