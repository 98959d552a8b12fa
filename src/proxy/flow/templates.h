#pragma once
// Template-based flow records (NetFlow v9, RFC 3954; IPFIX, RFC 7011): the template
// cache, data waiting for its template, and the decoding of one data record with a
// template into an event. Used by netflow.cpp and ipfix.cpp; not thread-safe (one
// FlowDecoder per receive thread).
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/flow/ipfix_fields.h"
#include "proxy/flow/output.h"
#include "proxy/flow/reader.h"

namespace bf::flow {

constexpr uint16_t kVarLength = 65535;  // RFC 7011 §7: variable-length field

struct TemplateField {
  uint16_t id = 0;
  uint16_t length = 0;  // kVarLength for variable length
  uint32_t enterprise = 0;
  const InfoElement* ie = nullptr;  // type and IANA name, when known
  std::string name;                 // as written in events (unique within the template)
};

struct FlowTemplate {
  std::vector<TemplateField> fields;
  uint16_t scope_fields = 0;  // options templates: the first scope_fields fields are the scope
  bool options = false;
  size_t min_record = 0;      // bytes the shortest record of this template takes (> 0)
  int64_t learned_us = 0;
};

// Names the fields (IANA name; "reverse"+Name for RFC 5103 reverse elements;
// ie_<id> / ie_<enterprise>_<id> for elements not in our table; a repeated name gets
// _2, _3, …; NetFlow v9 option scopes are scopeSystem, scopeInterface, …) and computes
// min_record. Returns false for a template no record could use (counted).
bool finalize_template(FlowTemplate& t, uint16_t version, FlowStats& stats);

// Which template: (exporter transport address, protocol version, observation domain
// / source id, template id). The exporter is the datagram's "ip:port" (RFC 7011 §10.3:
// templates are scoped to the transport session).
std::string template_key(std::string_view exporter, uint16_t version, uint32_t domain, uint16_t template_id);

// A bounded LRU cache of templates with a lifetime. Three bounds, each evicting the
// least recently used template it concerns (counted template_evicted): templates in
// all, templates of one exporter (the transport address that starts the key: one
// exporter's flood cannot push out the others'), and template fields in all
// (kFieldsPerTemplate x max_templates: a flood of templates of thousands of fields
// each costs memory no more than one of ordinary templates). An evicted exporter
// costs a re-learn on its next template refresh, never memory.
class TemplateCache {
 public:
  static constexpr size_t kFieldsPerTemplate = 64;
  TemplateCache(size_t max_templates, size_t max_per_exporter, int64_t timeout_us)
      : max_(max_templates), max_per_exporter_(max_per_exporter), max_fields_(max_templates * kFieldsPerTemplate),
        timeout_us_(timeout_us) {}
  // Adds or replaces; returns the stored template.
  const FlowTemplate* put(const std::string& key, FlowTemplate t, FlowStats& stats);
  // The live template, or nullptr; an expired one is removed (counted in expired()).
  const FlowTemplate* get(const std::string& key, int64_t now_us);
  bool withdraw(const std::string& key);
  // Withdraws every template whose key starts with `prefix` and whose options flag is `options`.
  size_t withdraw_all(std::string_view prefix, bool options);
  size_t size() const { return map_.size(); }
  size_t exporters() const { return exporters_.size(); }
  size_t fields() const { return fields_; }
  uint64_t expired() const { return expired_; }

 private:
  struct Entry;
  using Lru = std::list<Entry>;
  using ExporterLru = std::list<Lru::iterator>;  // front = most recently used
  struct Entry {
    std::string key;
    FlowTemplate t;
    ExporterLru* exporter = nullptr;       // its exporter's LRU (a node of exporters_: stable)
    ExporterLru::iterator in_exporter;     // its place there
  };
  static std::string_view exporter_of(std::string_view key) { return key.substr(0, key.find('\0')); }
  void erase(Lru::iterator it);
  size_t max_, max_per_exporter_, max_fields_;
  int64_t timeout_us_;
  Lru lru_;  // front = most recently used
  std::unordered_map<std::string, Lru::iterator> map_;
  std::unordered_map<std::string, ExporterLru> exporters_;
  size_t fields_ = 0;
  uint64_t expired_ = 0;
};

// What a record's event carries from its message header.
struct MessageInfo {
  uint16_t version = 0;        // 9 or 10
  uint32_t domain = 0;         // v9 source id / IPFIX observation domain id
  uint32_t sequence = 0;
  uint32_t export_secs = 0;    // header Unix seconds
  uint32_t uptime_ms = 0;      // v9 only: sysUptime
  // IPFIX: the exporter's systemInitTimeMilliseconds (µs) as last reported in an
  // options record, for records timed by flowEndSysUpTime; 0 = not known.
  int64_t system_init_us = 0;
};

// Decodes the records of one data set body with template `t`, one event each;
// returns how many. A systemInitTimeMilliseconds seen in a record is stored in
// *system_init_us (when not null).
size_t decode_data_set(Reader set, uint16_t template_id, const FlowTemplate& t, const MessageInfo& info,
                       const EventContext& ctx, std::string& out, FlowStats& stats,
                       int64_t* system_init_us = nullptr);

// Frames the next (Flow)Set of a v9 packet / IPFIX message: its id and body. false
// at the end, or (counted) when the set length is below its header or past the end,
// after which nothing more of the message can be framed.
bool next_set(Reader& msg, uint16_t& id, Reader& body, FlowStats& stats);

// Data sets that arrived before their template, held for a bounded time and size
// (each set counted with its bookkeeping, so the number held is bounded too).
// When the template arrives, the held sets are decoded as if they had just come
// (with their own receive time and peer); when their hold runs out, or room is
// needed, they are dropped and counted (no_template / held_overflow).
class HeldSets {
 public:
  HeldSets(int64_t hold_us, size_t max_bytes) : hold_us_(hold_us), max_bytes_(max_bytes) {}
  void hold(std::string key, uint16_t template_id, const MessageInfo& info, const EventContext& ctx,
            Reader body, FlowStats& stats);
  void expire(int64_t now_us, FlowStats& stats);
  // Decodes and drops every held set whose template `cache` now has.
  void release(TemplateCache& cache, int64_t now_us, std::string_view source, std::string& out, FlowStats& stats);
  size_t size() const { return sets_.size(); }
  size_t bytes() const { return bytes_; }  // bodies and bookkeeping (what max_bytes bounds)

 private:
  struct Held {
    std::string key;
    uint16_t template_id;
    MessageInfo info;
    int64_t received_us;
    std::string peer;
    std::string body;
  };
  static size_t cost(const Held& h);
  int64_t hold_us_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::deque<Held> sets_;  // oldest first
};

}  // namespace bf::flow
