#pragma once
// The NetFlow / IPFIX decoder: NetFlow v5 (fixed records), NetFlow v9 (RFC 3954) and
// IPFIX (RFC 7011, version 10), told apart by the version in the first two bytes.
// Pure: datagram bytes in, NDJSON event lines out (one per flow or options record),
// errors counted in FlowStats. One instance per receive thread (it owns the template
// cache and the held data of the exporters that thread hears from).
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/flow/output.h"
#include "proxy/flow/templates.h"

namespace bf::flow {

struct FlowDecoderOptions {
  size_t max_templates = 4096;         // templates cached, over all exporters (LRU beyond)
  size_t max_templates_per_exporter = 1024;  // … and of one exporter (its LRU beyond)
  int64_t template_timeout_us = 1800LL * 1000000;  // a template not refreshed this long is forgotten (0 = never)
  int64_t hold_us = 60LL * 1000000;    // data waiting for its template is kept this long
  size_t max_held_bytes = 4 << 20;     // … and at most this many bytes of it
};

class FlowDecoder {
 public:
  explicit FlowDecoder(FlowDecoderOptions options = {});
  // Decodes one datagram (one NetFlow packet / IPFIX message); ctx.peer is the
  // exporter's transport address, the scope of its templates.
  void decode(std::string_view datagram, const EventContext& ctx, std::string& out, FlowStats& stats);
  // Drops held data whose hold ran out (decode does this too).
  void expire(int64_t now_us, FlowStats& stats) { held_.expire(now_us, stats); }

  size_t templates() const { return cache_.size(); }
  size_t template_exporters() const { return cache_.exporters(); }
  size_t template_fields() const { return cache_.fields(); }
  uint64_t templates_expired() const { return cache_.expired(); }
  size_t held_sets() const { return held_.size(); }
  size_t held_bytes() const { return held_.bytes(); }

 private:
  void decode_v5(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats);
  void decode_v9(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats);
  void decode_ipfix(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats);
  size_t v9_templates(Reader set, bool options, const MessageInfo& info, const EventContext& ctx, FlowStats& stats);
  void ipfix_templates(Reader set, bool options, const MessageInfo& info, const EventContext& ctx,
                       FlowStats& stats);
  // A data set: decoded with its template (returns the records), or held until the
  // template comes (returns kHeld).
  static constexpr size_t kHeld = ~size_t(0);
  size_t data_set(Reader set, uint16_t template_id, const MessageInfo& info, const EventContext& ctx,
                std::string& out, FlowStats& stats);
  void learn(const std::string& key, FlowTemplate t, uint16_t version, FlowStats& stats);

  // IPFIX systemInitTimeMilliseconds per (exporter, domain), from options records.
  std::unordered_map<std::string, int64_t> system_init_;
  FlowDecoderOptions options_;
  TemplateCache cache_;
  HeldSets held_;
  bool learned_ = false;  // a template arrived in this datagram: held data may now decode
};

}  // namespace bf::flow
