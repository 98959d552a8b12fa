// IPFIX (RFC 7011): a 16-byte message header, then Sets (2 templates, 3 options
// templates, >= 256 data). Template withdrawal (field count 0) per RFC 7011 §8.1;
// enterprise-specific fields (§3.2) and RFC 5103 reverse elements are named by
// finalize_template; variable-length fields (§7) are read by decode_data_set.
#include "proxy/flow/netflow.h"

namespace bf::flow {

void FlowDecoder::decode_ipfix(Reader r, const EventContext& ctx, std::string& out, FlowStats& stats) {
  MessageInfo info;
  info.version = 10;
  const uint16_t length = r.u16();
  info.export_secs = r.u32();
  info.sequence = r.u32();
  info.domain = r.u32();
  if (!r.ok()) {
    stats.count(FlowError::truncated);
    return;
  }
  if (length < 16) {
    stats.count(FlowError::bad_length);
    return;
  }
  if (length - 16u > r.remaining()) {
    stats.count(FlowError::truncated);
    return;
  }
  Reader msg = r.sub(length - 16u);  // bytes after the message (none over UDP) are not ours
  const uint64_t errors_before = stats.total_errors();
  uint16_t id = 0;
  Reader set;
  while (next_set(msg, id, set, stats)) {
    if (id == 2 || id == 3) {
      ipfix_templates(set, id == 3, info, ctx, stats);
    } else if (id >= 256) {
      data_set(set, id, info, ctx, out, stats);
    } else {
      stats.count(FlowError::unknown_format);  // reserved Set id: skipped
    }
  }
  // Bytes left that cannot hold a set header: the message length does not match its sets.
  if (stats.total_errors() == errors_before && msg.remaining() != 0) stats.count(FlowError::bad_length);
}

void FlowDecoder::ipfix_templates(Reader set, bool options, const MessageInfo& info, const EventContext& ctx,
                                  FlowStats& stats) {
  while (set.remaining() >= 4) {
    const uint16_t tid = set.u16();
    const uint16_t count = set.u16();
    if (count == 0) {
      // Withdrawal: of one template, or (id 2 in a template set, 3 in an options
      // set) of all of this domain's templates of that kind. Four zero bytes are padding.
      if (tid == 0) return;
      if (tid == (options ? 3 : 2)) {
        std::string prefix = template_key(ctx.peer, 10, info.domain, 0);
        prefix.resize(prefix.size() - 2);
        cache_.withdraw_all(prefix, options);
      } else if (tid >= 256) {
        cache_.withdraw(template_key(ctx.peer, 10, info.domain, tid));
      } else {
        stats.count(FlowError::bad_template);
      }
      continue;
    }
    FlowTemplate t;
    t.options = options;
    t.learned_us = ctx.received_us;
    if (options) {
      t.scope_fields = set.u16();
      if (t.scope_fields == 0 || t.scope_fields > count) {
        stats.count(FlowError::bad_template);
        return;
      }
    }
    if (tid < 256) {
      stats.count(FlowError::bad_template);
      return;
    }
    if (size_t(count) * 4 > set.remaining()) {
      stats.count(FlowError::absurd_count);
      return;
    }
    t.fields.resize(count);
    for (auto& f : t.fields) {
      const uint16_t raw = set.u16();
      f.length = set.u16();
      f.id = raw & 0x7fff;
      if (raw & 0x8000) f.enterprise = set.u32();
    }
    if (!set.ok()) {
      stats.count(FlowError::truncated);
      return;
    }
    learn(template_key(ctx.peer, 10, info.domain, tid), std::move(t), 10, stats);
  }
}

}  // namespace bf::flow
