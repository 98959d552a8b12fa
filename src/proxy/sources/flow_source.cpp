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

OptionTable<TemplateFlowSettings> template_flow_options(const std::string& type, const std::string& default_listen,
                                                        const std::string& default_dataset) {
  using S = TemplateFlowSettings;
  using namespace std::chrono_literals;
  const flow::FlowDecoderOptions d;
  OptionTable<S> t;
  add_source_common(t, type, default_listen, default_dataset);
  add_udp_workers_options(t, [](S& s) -> UdpWorkersOptions& { return s.udp; });
  t.integer("max_templates", &S::max_templates, static_cast<int64_t>(d.max_templates), 1, 1000000,
            "templates cached per worker, over all exporters. A full cache evicts the least recently used template "
            "(`bf_flow_errors_total{error=\"template_evicted\"}`): a flood of templates from many exporters costs "
            "memory no more than this, and an evicted exporter's data waits (template_wait) until its next template "
            "refresh. The cache also holds at most 64 x this many template fields in all (templates of thousands of "
            "fields take their room from the oldest ones)");
  t.integer("max_templates_per_exporter", &S::max_templates_per_exporter,
            static_cast<int64_t>(d.max_templates_per_exporter), 1, 1000000,
            "templates cached per worker for one exporter (address and port); a new one beyond it evicts that "
            "exporter's least recently used template (`error=\"template_evicted\"`), so one exporter's flood does not "
            "push out the others' templates");
  t.duration("template_timeout", &S::template_timeout, std::chrono::milliseconds(d.template_timeout_us / 1000), 0ms,
             24h * 365, "a template not refreshed for this long is forgotten (`0`: never)");
  t.duration("template_wait", &S::template_wait, std::chrono::milliseconds(d.hold_us / 1000), 0ms, 1h,
             "data that arrives before its template is held this long, then decoded when the template comes; held "
             "data whose template never came is dropped and counted (`error=\"no_template\"`) at the next datagram "
             "after the wait");
  t.size("max_held", &S::max_held, d.max_held_bytes, 0, 1ull << 30,
         "bytes of such data held per worker, each held data set counted with its bookkeeping (about 200 bytes), "
         "so their number is bounded too; beyond it the oldest is dropped (`error=\"held_overflow\"`)");
  return t;
}

std::unique_ptr<Source> make_template_flow_source(const TemplateFlowSettings& s, EventSink& sink) {
  flow::FlowDecoderOptions d;
  d.max_templates = static_cast<size_t>(s.max_templates);
  d.max_templates_per_exporter = static_cast<size_t>(s.max_templates_per_exporter);
  d.template_timeout_us = s.template_timeout.count() * 1000;
  d.hold_us = s.template_wait.count() * 1000;
  d.max_held_bytes = s.max_held;
  const SourceCommon common = s.common;
  auto log = std::make_shared<LogLimiter>(kBadDatagramLogInterval);  // one for all workers
  return std::make_unique<UdpWorkersSource<FlowIngest>>(common.name, s.udp.udp, s.udp.workers, [common, &sink, d, log] {
    return std::make_unique<FlowIngest>(common, sink, std::make_unique<TemplateFlowDecoder>(d), log);
  });
}

}  // namespace bf
