// Elasticsearch (and OpenSearch): the _bulk API, one `index` action per event.
#include "connector/sinks.h"
#include "connector/sinks/common.h"

namespace bf {

namespace {

struct ElasticsearchSettings {
  SinkCommon common;
  std::string index, pipeline, api_key_env, username, password_env;
};

std::string check_index(const std::string& index) {
  if (index.empty()) return "must be set";
  if (index.size() > 255) return "longer than 255 bytes";
  if (index[0] == '-' || index[0] == '_' || index[0] == '+' || index == "." || index == "..")
    return "must not start with '-', '_' or '+'";
  for (unsigned char c : index)
    if ((c >= 'A' && c <= 'Z') || c <= 0x20 || std::string_view("\\/*?\"<>|,#:").find(static_cast<char>(c)) != std::string_view::npos)
      return "must be lowercase, without spaces or any of \\ / * ? \" < > | , # :";
  return "";
}

const OptionTable<ElasticsearchSettings>& table() {
  static const auto t = [] {
    using S = ElasticsearchSettings;
    OptionTable<S> t;
    add_sink_common(t, "https://es.example.com:9200");
    t.string("index", &S::index, "", "the index (or data stream) the events go to", {}, check_index);
    t.mark_required("index");
    t.string("pipeline", &S::pipeline, "", "an ingest pipeline to run on the events (none by default)");
    t.string("api_key_env", &S::api_key_env, "",
             "environment variable on the connector's host holding the API key (`Authorization: ApiKey …`)", {},
             check_env_name);
    t.string("username", &S::username, "", "user for basic authentication (with `password_env`)");
    t.string("password_env", &S::password_env, "", "environment variable holding that user's password", {},
             check_env_name);
    t.together({"username", "password_env"});
    t.finally([](S& s, const ConfigNode& node) {
      if (!s.api_key_env.empty() && !s.username.empty())
        node.fail("api_key_env", "give either api_key_env or username and password_env, not both");
    });
    return t;
  }();
  return t;
}

}  // namespace

SinkFactory elasticsearch_sink() {
  return {"elasticsearch", "Elasticsearch or OpenSearch through the _bulk API; per-item failures are retried",
          table().specs(), [](const ConfigNode& n, const std::string& c) { validate_with(table(), n, c); }};
}

}  // namespace bf
