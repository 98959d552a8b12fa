#pragma once
// The connector's destinations (docs/connectors.md): one file per sink under sinks/,
// each declaring its options once (common/option_table.h). Control validates a
// connector's settings with the same table (so what it accepts is what a connector
// can run), `bytefreezer plugins --schema` prints them and the UI builds its forms
// from them. Credentials are never options: a sink names the environment variable
// that holds its token on the connector's host. Light header: no Boost, no YAML.
#include <string>
#include <string_view>
#include <vector>

#include "common/options.h"

namespace bf {

class ConfigNode;

struct SinkFactory {
  std::string type;         // "elasticsearch"
  std::string description;
  OptionSpecs options;
  // Reads `settings` through the sink's table: ConfigError naming the key and `context`.
  void (*validate)(const ConfigNode& settings, const std::string& context) = nullptr;
};

// Every built-in sink, in one explicit list (sinks/registry.cpp).
const std::vector<SinkFactory>& sink_factories();
const SinkFactory* find_sink(std::string_view type);  // null: unknown

}  // namespace bf
