// Any HTTP endpoint: the selected rows as NDJSON or one JSON array per request.
#include <cctype>

#include "connector/sinks.h"
#include "connector/sinks/common.h"

namespace bf {

namespace {

struct WebhookSettings {
  SinkCommon common;
  std::string method, format, auth_header, auth_env;
};

std::string check_header_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return "must be 1 to 64 characters";
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '-' || c == '_')) return "must be a header name (letters, digits, '-', '_')";
  return "";
}

const OptionTable<WebhookSettings>& table() {
  static const auto t = [] {
    using S = WebhookSettings;
    OptionTable<S> t;
    add_sink_common(t, "https://hooks.example.com/bytefreezer");
    t.string("method", &S::method, "POST", "the request method", {"POST", "PUT"});
    t.string("format", &S::format, "ndjson", "the body: one JSON object per line, or one JSON array",
             {"ndjson", "json_array"});
    t.string("auth_header", &S::auth_header, "Authorization", "the header that carries `auth_env`'s value", {},
             check_header_name);
    t.string("auth_env", &S::auth_env, "",
             "environment variable on the connector's host holding that header's value (none: no header)", {},
             check_env_name);
    return t;
  }();
  return t;
}

}  // namespace

SinkFactory webhook_sink() {
  return {"webhook", "Any HTTP endpoint, the rows as NDJSON or a JSON array; 2xx is delivered, 429 and 5xx retried",
          table().specs(), [](const ConfigNode& n, const std::string& c) { validate_with(table(), n, c); }};
}

}  // namespace bf
