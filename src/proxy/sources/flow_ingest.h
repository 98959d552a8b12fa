#pragma once
// Datagram -> flow decoder -> NDJSON -> sink, shared by the sflow, netflow and ipfix
// sources (one FlowIngest per receive thread, see udp_workers.h). Not a public interface.
#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/metrics.h"
#include "proxy/flow/output.h"
#include "proxy/ndjson_writer.h"
#include "proxy/sources/common.h"

namespace bf {

class ConfigNode;

// One receive thread's decoder (stateful for NetFlow v9 / IPFIX templates).
class DatagramDecoder {
 public:
  virtual ~DatagramDecoder() = default;
  virtual void decode(std::string_view datagram, const flow::EventContext& ctx, std::string& out,
                      flow::FlowStats& stats) = 0;
  virtual size_t templates() const { return 0; }
  virtual size_t held_sets() const { return 0; }
};

// How often a source logs a datagram it could not decode (each is counted anyway).
inline constexpr std::chrono::seconds kBadDatagramLogInterval{10};

class FlowIngest {
 public:
  // `bad_datagram_log`: shared by the workers of one source, so that the source logs
  // at most one bad datagram per kBadDatagramLogInterval (null: one of its own).
  FlowIngest(const SourceCommon& common, EventSink& sink, std::unique_ptr<DatagramDecoder> decoder,
             std::shared_ptr<LogLimiter> bad_datagram_log = nullptr);
  void handle(std::string_view datagram, const std::string& peer);
  void flush();

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  const SourceCommon common_;
  EventSink& sink_;
  std::unique_ptr<DatagramDecoder> decoder_;
  std::shared_ptr<LogLimiter> bad_datagram_log_;
  SourceMetrics metrics_;
  std::array<Counter*, flow::kFlowErrorCount> errors_{};
  Gauge& templates_gauge_;
  Gauge& held_gauge_;
  int64_t templates_reported_ = 0, held_reported_ = 0;
  flow::FlowStats stats_, reported_;
  Rfc3339Formatter received_format_;
  std::string pending_;
  uint64_t pending_bytes_ = 0;
};

}  // namespace bf
