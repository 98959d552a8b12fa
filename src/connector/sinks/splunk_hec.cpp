// Splunk's HTTP Event Collector: /services/collector/event, one JSON object per event.
#include "connector/sinks.h"
#include "connector/sinks/common.h"

namespace bf {

namespace {

struct SplunkHecSettings {
  SinkCommon common;
  std::string token_env, index, sourcetype, source, host_field;
  bool ack = false;
};

const OptionTable<SplunkHecSettings>& table() {
  static const auto t = [] {
    using S = SplunkHecSettings;
    OptionTable<S> t;
    add_sink_common(t, "https://splunk.example.com:8088");
    t.string("token_env", &S::token_env, "",
             "environment variable on the connector's host holding the HEC token (`Authorization: Splunk …`)", {},
             [](const std::string& v) { return v.empty() ? std::string("must be set") : check_env_name(v); });
    t.mark_required("token_env");
    t.string("index", &S::index, "", "the Splunk index (the token's default when empty)");
    t.string("sourcetype", &S::sourcetype, "_json", "the events' sourcetype");
    t.string("source", &S::source, "bytefreezer", "the events' source");
    t.string("host_field", &S::host_field, "host", "the column whose value becomes the event's host (absent: none)");
    t.boolean("ack", &S::ack, false,
              "wait for indexer acknowledgement before a batch counts as delivered (the token must have it enabled)");
    return t;
  }();
  return t;
}

}  // namespace

SinkFactory splunk_hec_sink() {
  return {"splunk_hec", "Splunk HTTP Event Collector; optionally waits for indexer acknowledgement", table().specs(),
          [](const ConfigNode& n, const std::string& c) { validate_with(table(), n, c); }};
}

}  // namespace bf
