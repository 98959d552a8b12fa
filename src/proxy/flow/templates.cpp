#include "proxy/flow/templates.h"

#include <cctype>
#include <cstring>
#include <optional>

namespace bf::flow {

std::string template_key(std::string_view exporter, uint16_t version, uint32_t domain, uint16_t template_id) {
  std::string k;
  k.reserve(exporter.size() + 9);
  k.append(exporter);
  k.push_back('\0');
  const char tail[8] = {char(version & 0xff), char(domain >> 24), char(domain >> 16), char(domain >> 8),
                        char(domain), char(template_id >> 8), char(template_id), 0};
  k.append(tail, 7);
  return k;
}

bool finalize_template(FlowTemplate& t, uint16_t version, FlowStats& stats) {
  static constexpr std::string_view kV9Scopes[] = {"scopeSystem", "scopeInterface", "scopeLineCard", "scopeCache",
                                                   "scopeTemplate"};
  size_t min = 0;
  std::unordered_map<std::string, int> seen;
  for (size_t i = 0; i < t.fields.size(); ++i) {
    TemplateField& f = t.fields[i];
    if (f.length == 0) {
      stats.count(FlowError::zero_length_field);
      return false;
    }
    min += f.length == kVarLength ? 1 : f.length;
    const bool v9_scope = version == 9 && t.options && i < t.scope_fields;
    if (v9_scope) {
      f.ie = nullptr;
      f.name = f.id >= 1 && f.id <= 5 ? std::string(kV9Scopes[f.id - 1]) : "scope_" + std::to_string(f.id);
    } else if (f.enterprise == 0 || f.enterprise == kReversePen) {
      f.ie = find_ie(f.id);
      if (f.ie && f.enterprise == kReversePen) {
        f.name = "reverse";
        f.name += f.ie->name;
        f.name[7] = static_cast<char>(std::toupper(static_cast<unsigned char>(f.name[7])));
      } else if (f.ie) {
        f.name = std::string(f.ie->name);
      } else {
        f.name = f.enterprise ? "ie_" + std::to_string(f.enterprise) + "_" + std::to_string(f.id)
                              : "ie_" + std::to_string(f.id);
      }
    } else {
      f.ie = nullptr;
      f.name = "ie_" + std::to_string(f.enterprise) + "_" + std::to_string(f.id);
    }
    const int n = ++seen[f.name];
    if (n > 1) f.name += "_" + std::to_string(n);
  }
  if (min == 0) {
    stats.count(FlowError::bad_template);
    return false;
  }
  t.min_record = min;
  return true;
}

// ---------------------------------------------------------------------------------
// TemplateCache

void TemplateCache::erase(Lru::iterator it) {
  it->exporter->erase(it->in_exporter);
  if (it->exporter->empty()) exporters_.erase(std::string(exporter_of(it->key)));
  fields_ -= it->t.fields.size();
  map_.erase(it->key);
  lru_.erase(it);
}

const FlowTemplate* TemplateCache::put(const std::string& key, FlowTemplate t, FlowStats& stats) {
  const size_t nfields = t.fields.size();
  auto it = map_.find(key);
  if (it != map_.end()) {
    Entry& e = *it->second;
    fields_ = fields_ - e.t.fields.size() + nfields;
    e.t = std::move(t);
    lru_.splice(lru_.begin(), lru_, it->second);
    e.exporter->splice(e.exporter->begin(), *e.exporter, e.in_exporter);
  } else {
    const std::string exporter(exporter_of(key));
    for (;;) {  // this exporter's oldest first, while it has its fill
      auto ex = exporters_.find(exporter);
      if (ex == exporters_.end() || ex->second.size() < max_per_exporter_) break;
      erase(ex->second.back());
      stats.count(FlowError::template_evicted);
    }
    while (map_.size() >= max_ && !lru_.empty()) {
      erase(std::prev(lru_.end()));
      stats.count(FlowError::template_evicted);
    }
    ExporterLru& ours = exporters_[exporter];  // looked up after the evictions, which may have removed it
    lru_.push_front(Entry{key, std::move(t), &ours, {}});
    ours.push_front(lru_.begin());
    lru_.front().in_exporter = ours.begin();
    map_.emplace(key, lru_.begin());
    fields_ += nfields;
  }
  // The field budget: the oldest templates go until it fits (never the one just stored).
  while (fields_ > max_fields_ && lru_.size() > 1) {
    erase(std::prev(lru_.end()));
    stats.count(FlowError::template_evicted);
  }
  return &lru_.front().t;
}

const FlowTemplate* TemplateCache::get(const std::string& key, int64_t now_us) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  Entry& e = *it->second;
  if (timeout_us_ > 0 && now_us - e.t.learned_us > timeout_us_) {
    erase(it->second);
    ++expired_;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  e.exporter->splice(e.exporter->begin(), *e.exporter, e.in_exporter);
  return &e.t;
}

bool TemplateCache::withdraw(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  erase(it->second);
  return true;
}

size_t TemplateCache::withdraw_all(std::string_view prefix, bool options) {
  size_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->t.options == options && it->key.compare(0, prefix.size(), prefix) == 0) {
      erase(it);
      ++n;
    }
    it = next;
  }
  return n;
}

// ---------------------------------------------------------------------------------
// Data records

namespace {

constexpr int64_t kNtpToUnix = 2208988800LL;  // seconds from 1900-01-01 to 1970-01-01

// RFC 7011 §6.1.9/10: NTP-format timestamp (seconds since 1900, 2^-32 fractions).
int64_t ntp_to_unix_us(uint64_t v) {
  const int64_t secs = static_cast<int64_t>(v >> 32) - kNtpToUnix;
  const uint64_t frac = v & 0xffffffffull;
  return secs * 1000000 + static_cast<int64_t>((frac * 1000000) >> 32);
}

// The times a record may carry for its end, as found while decoding it.
struct RecordTimes {
  bool end_abs = false;
  int64_t end_us = 0;  // from flowEnd{Seconds,Milliseconds,Microseconds,Nanoseconds}
  bool end_uptime = false, start_uptime = false, init = false, end_delta = false;
  uint32_t end_uptime_ms = 0, start_uptime_ms = 0;
  int64_t init_us = 0;
  uint32_t end_delta_us = 0;
};

// An exporter's count of seconds or milliseconds since 1970 as unix µs; nullopt past
// the year 9999 (a hostile or broken value that would overflow the arithmetic).
std::optional<int64_t> unix_us(uint64_t count, int64_t unit_us) {
  constexpr uint64_t kMaxUs = 253402300800ULL * 1000000;  // 10000-01-01T00:00:00Z
  if (count > kMaxUs / static_cast<uint64_t>(unit_us)) return std::nullopt;
  return static_cast<int64_t>(count) * unit_us;
}

void note_time(uint16_t id, uint64_t v, RecordTimes& t) {
  switch (id) {
    case ie::flowEndSeconds:
    case ie::flowEndMilliseconds:
      if (auto us = unix_us(v, id == ie::flowEndSeconds ? 1000000 : 1000)) {
        t.end_abs = true;
        t.end_us = *us;
      }
      break;
    case ie::flowEndMicroseconds: t.end_abs = true; t.end_us = ntp_to_unix_us(v); break;
    case ie::flowEndNanoseconds: t.end_abs = true; t.end_us = ntp_to_unix_us(v); break;
    case ie::flowEndSysUpTime: t.end_uptime = true; t.end_uptime_ms = static_cast<uint32_t>(v); break;
    case ie::flowStartSysUpTime: t.start_uptime = true; t.start_uptime_ms = static_cast<uint32_t>(v); break;
    case ie::systemInitTimeMilliseconds:
      if (auto us = unix_us(v, 1000)) {
        t.init = true;
        t.init_us = *us;
      }
      break;
    case ie::flowEndDeltaMicroseconds: t.end_delta = true; t.end_delta_us = static_cast<uint32_t>(v); break;
    default: break;
  }
}

// One field's value, typed by its Information Element (unknown ones: integers up to
// 8 bytes, hex beyond).
void put_value(JsonObjectWriter& w, const TemplateField& f, const uint8_t* p, size_t n, RecordTimes& times) {
  const IeType type = f.ie ? f.ie->type : (n <= 8 && n > 0 ? IeType::unsigned_int : IeType::octets);
  switch (type) {
    case IeType::unsigned_int:
      if (n == 0 || n > 8) break;
      {
        const uint64_t v = read_be(p, n);
        if (f.enterprise == 0) note_time(f.id, v, times);
        put_u64(w, f.name, v);
      }
      return;
    case IeType::signed_int:
      if (n == 0 || n > 8) break;
      {
        uint64_t v = read_be(p, n);
        if (n < 8 && (v >> (n * 8 - 1)) & 1) v |= ~uint64_t(0) << (n * 8);  // sign-extend
        put_i64(w, f.name, static_cast<int64_t>(v));
      }
      return;
    case IeType::float_num:
      if (n == 4) {
        const uint32_t u = static_cast<uint32_t>(read_be(p, 4));
        float x;
        std::memcpy(&x, &u, 4);
        put_double(w, f.name, x);
        return;
      }
      if (n == 8) {
        const uint64_t u = read_be(p, 8);
        double x;
        std::memcpy(&x, &u, 8);
        put_double(w, f.name, x);
        return;
      }
      break;
    case IeType::boolean:
      if (n == 1 && (p[0] == 1 || p[0] == 2)) {  // RFC 7011 §6.1.5: 1 true, 2 false
        w.key(f.name);
        w.out().append(p[0] == 1 ? "true" : "false");
        return;
      }
      break;
    case IeType::mac:
      if (n == 6) return put_mac(w, f.name, p);
      break;
    case IeType::ipv4:
      if (n == 4) return put_ipv4(w, f.name, p);
      break;
    case IeType::ipv6:
      if (n == 16) return put_ipv6(w, f.name, p);
      break;
    case IeType::string:
      return put_text(w, f.name, p, n);
    case IeType::octets:
      break;
    case IeType::time_s:
      if (n == 4) {
        const uint64_t v = read_be(p, 4);
        if (f.enterprise == 0) note_time(f.id, v, times);
        return put_time(w, f.name, *unix_us(v, 1000000));  // 32 bits of seconds always fit
      }
      break;
    case IeType::time_ms:
      if (n == 8) {
        const uint64_t v = read_be(p, 8);
        if (f.enterprise == 0) note_time(f.id, v, times);
        if (auto us = unix_us(v, 1000)) return put_time(w, f.name, *us);
      }
      break;  // past the year 9999: kept as bytes
    case IeType::time_us:
    case IeType::time_ns:
      if (n == 8) {
        const uint64_t v = read_be(p, 8);
        if (f.enterprise == 0) note_time(f.id, v, times);
        return put_time(w, f.name, ntp_to_unix_us(v));
      }
      break;
  }
  put_hex(w, f.name, p, n);  // a length the type does not define: kept as bytes
}

}  // namespace

size_t decode_data_set(Reader set, uint16_t template_id, const FlowTemplate& t, const MessageInfo& info,
                       const EventContext& ctx, std::string& out, FlowStats& stats, int64_t* system_init_us) {
  size_t records = 0;
  const int64_t export_us = static_cast<int64_t>(info.export_secs) * 1000000;
  // Bytes left over that cannot hold a record are padding (RFC 7011 §3.3.1).
  while (set.remaining() >= t.min_record) {
    const size_t start = out.size();
    JsonObjectWriter w(out);
    w.plain_num("flow_version", info.version);
    w.plain_field("record_type", t.options ? "options" : "flow");
    w.plain_num("template_id", template_id);
    put_u64(w, "observation_domain_id", info.domain);
    put_u64(w, "flow_sequence", info.sequence);
    RecordTimes times;
    bool ok = true;
    for (const TemplateField& f : t.fields) {
      size_t n = f.length;
      if (n == kVarLength) {
        n = set.u8();
        if (n == 255) n = set.u16();
      }
      const uint8_t* p = set.bytes(n);
      if (!set.ok()) {
        ok = false;
        break;
      }
      put_value(w, f, p, n, times);
    }
    if (!ok) {  // a variable-length field ran past the set: drop the partial record
      out.resize(start);
      stats.count(FlowError::truncated);
      return records;
    }
    // _time: the flow's end, from whichever form the record has, else the export time.
    int64_t end_us = export_us;
    if (times.end_abs) {
      end_us = times.end_us;
    } else if (times.end_uptime && info.version == 9) {
      end_us = uptime_to_unix_us(export_us, info.uptime_ms, times.end_uptime_ms);
    } else if (times.end_uptime && times.init) {
      end_us = times.init_us + int64_t(times.end_uptime_ms) * 1000;
    } else if (times.end_uptime && info.system_init_us != 0) {
      end_us = info.system_init_us + int64_t(times.end_uptime_ms) * 1000;
    } else if (times.end_delta) {
      end_us = export_us - int64_t(times.end_delta_us);
    }
    if (times.init && system_init_us) *system_init_us = times.init_us;
    if (info.version == 9 && times.start_uptime)
      put_time(w, "flow_start", uptime_to_unix_us(export_us, info.uptime_ms, times.start_uptime_ms));
    if (info.version == 9) put_u64(w, "exporter_uptime_ms", info.uptime_ms);
    put_time(w, "export_time", export_us);
    put_time(w, "_time", t.options ? export_us : end_us);
    finish_event(w, ctx, stats);
    ++records;
  }
  return records;
}

bool next_set(Reader& msg, uint16_t& id, Reader& body, FlowStats& stats) {
  if (msg.remaining() < 4) return false;  // (fewer bytes are padding)
  id = msg.u16();
  const uint16_t length = msg.u16();
  if (length < 4) {  // would never advance
    stats.count(FlowError::bad_length);
    return false;
  }
  if (length - 4u > msg.remaining()) {
    stats.count(FlowError::truncated);
    return false;
  }
  body = msg.sub(length - 4u);
  return true;
}

// ---------------------------------------------------------------------------------
// HeldSets

// What a held set costs: its bytes and its bookkeeping, so that sets of few or no
// bytes (a flood of empty data sets) are bounded in number too.
size_t HeldSets::cost(const Held& h) { return sizeof(Held) + h.key.size() + h.peer.size() + h.body.size(); }

void HeldSets::hold(std::string key, uint16_t template_id, const MessageInfo& info, const EventContext& ctx,
                    Reader body, FlowStats& stats) {
  const size_t n = body.remaining();
  if (n == 0) return;  // no records: nothing to wait for
  Held h{std::move(key), template_id, info, ctx.received_us, std::string(ctx.peer),
         std::string(reinterpret_cast<const char*>(body.here()), n)};
  const size_t c = cost(h);
  if (c > max_bytes_) {
    stats.count(FlowError::held_overflow);
    return;
  }
  while (bytes_ + c > max_bytes_ && !sets_.empty()) {
    bytes_ -= cost(sets_.front());
    sets_.pop_front();
    stats.count(FlowError::held_overflow);
  }
  bytes_ += c;
  sets_.push_back(std::move(h));
}

void HeldSets::expire(int64_t now_us, FlowStats& stats) {
  while (!sets_.empty() && now_us - sets_.front().received_us > hold_us_) {
    bytes_ -= cost(sets_.front());
    sets_.pop_front();
    stats.count(FlowError::no_template);
  }
}

void HeldSets::release(TemplateCache& cache, int64_t now_us, std::string_view source, std::string& out,
                       FlowStats& stats) {
  Rfc3339Formatter received;
  for (auto it = sets_.begin(); it != sets_.end();) {
    const FlowTemplate* t = cache.get(it->key, now_us);
    if (!t) {
      ++it;
      continue;
    }
    EventContext ctx;
    ctx.received_us = it->received_us;
    ctx.received = received.format(it->received_us);
    ctx.source = source;
    ctx.peer = it->peer;
    decode_data_set(Reader(it->body), it->template_id, *t, it->info, ctx, out, stats);
    bytes_ -= cost(*it);
    it = sets_.erase(it);
  }
}

}  // namespace bf::flow
