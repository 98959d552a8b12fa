// sflow: sFlow version 5 datagrams (flow and counter samples), decoded by
// proxy/flow/sflow.cpp; one event per flow sample and per counter record.
//
//   - type: sflow
//     listen: 0.0.0.0:6343
//     workers: 1              # receive threads, one SO_REUSEPORT socket each
//     receive_buffer: 8MiB    # SO_RCVBUF request (a warning when the kernel caps it)
//     max_datagram: 65535
#include "common/config.h"
#include "proxy/flow/sflow.h"
#include "proxy/sources/flow_ingest.h"
#include "proxy/sources/udp_workers.h"

namespace bf {
namespace {

class SflowDecoder final : public DatagramDecoder {
 public:
  void decode(std::string_view datagram, const flow::EventContext& ctx, std::string& out,
              flow::FlowStats& stats) override {
    flow::decode_sflow(datagram, ctx, out, stats);
  }
};

struct SflowSettings {
  SourceCommon common;
  UdpWorkersOptions udp;
};

const OptionTable<SflowSettings>& sflow_options() {
  static const OptionTable<SflowSettings> table = [] {
    OptionTable<SflowSettings> t;
    add_source_common(t, "sflow", "0.0.0.0:6343", "sflow");
    add_udp_workers_options(t, [](SflowSettings& s) -> UdpWorkersOptions& { return s.udp; });
    return t;
  }();
  return table;
}

}  // namespace

SourceFactory sflow_source_factory() {
  return {"sflow", "sFlow v5 flow and counter samples over UDP",
          [](const ConfigNode& node, EventSink& sink) -> std::unique_ptr<Source> {
            const SflowSettings s = sflow_options().read(node, source_context(node, "sflow"));
            const SourceCommon common = s.common;
            auto log = std::make_shared<LogLimiter>(kBadDatagramLogInterval);  // one for all workers
            return std::make_unique<UdpWorkersSource<FlowIngest>>(
                common.name, s.udp.udp, s.udp.workers, [common, &sink, log] {
                  return std::make_unique<FlowIngest>(common, sink, std::make_unique<SflowDecoder>(), log);
                });
          },
          sflow_options().specs()};
}

}  // namespace bf
