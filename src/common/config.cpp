#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

extern char** environ;

namespace bf {

struct ConfigNode::Shared {
  std::string origin;          // file name or "<string>"
  std::set<std::string> read;  // dotted paths that some reader asked for
  std::set<std::string> opaque;  // subtrees read as a whole
};

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// BYTEFREEZER_RECEIVER__SPOOL_DIR=x  ->  receiver.spool_dir = x
void apply_env_overrides(YAML::Node& root) {
  const std::string prefix = "BYTEFREEZER_";
  for (char** env = environ; env && *env; ++env) {
    std::string entry(*env);
    if (entry.rfind(prefix, 0) != 0) continue;
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(prefix.size(), eq - prefix.size());
    if (name.find("__") == std::string::npos) continue;
    std::vector<std::string> parts;
    size_t pos = 0;
    while (true) {
      size_t next = name.find("__", pos);
      parts.push_back(lower(name.substr(pos, next - pos)));
      if (next == std::string::npos) break;
      pos = next + 2;
    }
    // yaml-cpp Nodes are handles: walk by reassigning copies.
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node next = chain.back()[parts[i]];
      if (!next.IsDefined() || !next.IsMap()) {
        chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = chain.back()[parts[i]];
      }
      chain.push_back(next);
    }
    chain.back()[parts.back()] = YAML::Load(entry.substr(eq + 1));
  }
}

}  // namespace

ConfigNode::ConfigNode(std::shared_ptr<Shared> shared, std::unique_ptr<YAML::Node> node, std::string path)
    : shared_(std::move(shared)), node_(std::move(node)), path_(std::move(path)) {}

ConfigNode::ConfigNode(const ConfigNode& o)
    : shared_(o.shared_), node_(std::make_unique<YAML::Node>(*o.node_)), path_(o.path_) {}

ConfigNode& ConfigNode::operator=(const ConfigNode& o) {
  shared_ = o.shared_;
  node_ = std::make_unique<YAML::Node>(*o.node_);
  path_ = o.path_;
  return *this;
}

ConfigNode::~ConfigNode() = default;

ConfigNode ConfigNode::parse(const std::string& yaml, const std::string& origin) {
  auto shared = std::make_shared<Shared>();
  shared->origin = origin;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": invalid YAML: " + e.what());
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw ConfigError(origin + ": the top level must be a mapping");
  apply_env_overrides(root);
  return ConfigNode(shared, std::make_unique<YAML::Node>(root), "");
}

ConfigNode ConfigNode::load_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot open config file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ": invalid YAML: " + e.what());
  }
  return parse(YAML::Dump(root), path);
}

const std::string& ConfigNode::origin() const { return shared_->origin; }

std::string ConfigNode::full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(shared_->origin + ": " + (key.empty() ? path_ : full(key)) + ": " + message);
}

bool ConfigNode::has(const std::string& key) const {
  if (!node_->IsMap()) return false;
  YAML::Node n = (*node_)[key];
  return n.IsDefined() && !n.IsNull();
}

std::vector<std::string> ConfigNode::keys() const {
  std::vector<std::string> out;
  if (!node_->IsMap()) return out;
  for (const auto& kv : *node_) out.push_back(kv.first.Scalar());
  return out;
}

std::optional<std::string> ConfigNode::raw_scalar(const std::string& key) const {
  shared_->read.insert(full(key));
  if (!has(key)) return std::nullopt;
  YAML::Node n = (*node_)[key];
  if (!n.IsScalar()) fail(key, "expected a single value");
  return n.Scalar();
}

std::optional<std::string> ConfigNode::lookup(const std::string& key, bool has_default) const {
  auto v = raw_scalar(key);
  if (!v && !has_default) fail(key, "required key is missing");
  return v;
}

std::string ConfigNode::str(const std::string& key, std::optional<std::string> def) const {
  auto v = lookup(key, def.has_value());
  return v ? *v : *def;
}

int64_t ConfigNode::integer(const std::string& key, std::optional<int64_t> def) const {
  auto v = lookup(key, def.has_value());
  if (!v) return *def;
  try {
    size_t used = 0;
    int64_t n = std::stoll(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  fail(key, "expected an integer, got '" + *v + "'");
}

double ConfigNode::number(const std::string& key, std::optional<double> def) const {
  auto v = lookup(key, def.has_value());
  if (!v) return *def;
  try {
    size_t used = 0;
    double n = std::stod(*v, &used);
    if (used == v->size()) return n;
  } catch (const std::exception&) {
  }
  fail(key, "expected a number, got '" + *v + "'");
}

bool ConfigNode::boolean(const std::string& key, std::optional<bool> def) const {
  auto v = lookup(key, def.has_value());
  if (!v) return *def;
  std::string s = lower(*v);
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(key, "expected true or false, got '" + *v + "'");
}

uint64_t ConfigNode::bytes(const std::string& key, std::optional<uint64_t> def) const {
  auto v = lookup(key, def.has_value());
  if (!v) return *def;
  size_t i = 0;
  while (i < v->size() && (std::isdigit(static_cast<unsigned char>((*v)[i])) || (*v)[i] == '.')) ++i;
  std::string unit = lower(v->substr(i));
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  double n = 0;
  try {
    n = std::stod(v->substr(0, i));
  } catch (const std::exception&) {
    fail(key, "expected a size like 64MiB, got '" + *v + "'");
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"b", 1}, {"k", 1024}, {"kb", 1e3}, {"kib", 1024}, {"m", 1048576}, {"mb", 1e6},
      {"mib", 1048576}, {"g", 1073741824}, {"gb", 1e9}, {"gib", 1073741824}, {"tb", 1e12}, {"tib", 1099511627776.0}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) return static_cast<uint64_t>(n * mult);
  }
  fail(key, "unknown size unit in '" + *v + "' (use B, KB, KiB, MB, MiB, GB, GiB)");
}

std::chrono::milliseconds ConfigNode::duration(const std::string& key,
                                               std::optional<std::chrono::milliseconds> def) const {
  auto v = lookup(key, def.has_value());
  if (!v) return *def;
  size_t i = 0;
  while (i < v->size() && (std::isdigit(static_cast<unsigned char>((*v)[i])) || (*v)[i] == '.')) ++i;
  std::string unit = lower(v->substr(i));
  double n = 0;
  try {
    n = std::stod(v->substr(0, i));
  } catch (const std::exception&) {
    fail(key, "expected a duration like 500ms or 5s, got '" + *v + "'");
  }
  double ms;
  if (unit == "ms") ms = n;
  else if (unit == "s") ms = n * 1000;
  else if (unit == "m") ms = n * 60000;
  else if (unit == "h") ms = n * 3600000;
  else if (unit == "d") ms = n * 86400000;
  else if (unit.empty() && n == 0) ms = 0;
  else fail(key, "expected a duration with a unit (ms, s, m, h, d), got '" + *v + "'");
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::vector<std::string> ConfigNode::str_list(const std::string& key) const {
  shared_->read.insert(full(key));
  std::vector<std::string> out;
  if (!has(key)) return out;
  YAML::Node n = (*node_)[key];
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) fail(key, "expected a list of values");
  for (const auto& item : n) {
    if (!item.IsScalar()) fail(key, "expected a list of values");
    out.push_back(item.Scalar());
  }
  return out;
}

ConfigNode ConfigNode::child(const std::string& key) const {
  shared_->read.insert(full(key));
  if (!has(key)) return ConfigNode(shared_, std::make_unique<YAML::Node>(YAML::NodeType::Map), full(key));
  YAML::Node n = (*node_)[key];
  if (!n.IsMap()) fail(key, "expected a mapping");
  return ConfigNode(shared_, std::make_unique<YAML::Node>(n), full(key));
}

std::vector<ConfigNode> ConfigNode::list(const std::string& key) const {
  shared_->read.insert(full(key));
  std::vector<ConfigNode> out;
  if (!has(key)) return out;
  YAML::Node n = (*node_)[key];
  if (!n.IsSequence()) fail(key, "expected a list");
  for (size_t i = 0; i < n.size(); ++i) {
    std::string path = full(key) + "[" + std::to_string(i) + "]";
    shared_->read.insert(path);
    out.emplace_back(ConfigNode(shared_, std::make_unique<YAML::Node>(n[i]), path));
  }
  return out;
}

namespace {
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void yaml_to_json(const YAML::Node& n, std::string& out) {
  if (n.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& kv : n) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, kv.first.Scalar());
      out += ':';
      yaml_to_json(kv.second, out);
    }
    out += '}';
  } else if (n.IsSequence()) {
    out += '[';
    for (size_t i = 0; i < n.size(); ++i) {
      if (i) out += ',';
      yaml_to_json(n[i], out);
    }
    out += ']';
  } else if (!n.IsDefined() || n.IsNull()) {
    out += "null";
  } else {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") {  // quoted in the YAML: always a string
      append_json_string(out, s);
      return;
    }
    std::string l = lower(s);
    if (l == "true" || l == "false") {
      out += l;
      return;
    }
    // A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    size_t i = 0;
    if (i < s.size() && s[i] == '-') ++i;
    bool numeric = i < s.size() && is_digit(s[i]);
    if (numeric) {
      if (s[i] == '0') ++i;
      else while (i < s.size() && is_digit(s[i])) ++i;
      if (i < s.size() && s[i] == '.') {
        ++i;
        numeric = i < s.size() && is_digit(s[i]);
        while (i < s.size() && is_digit(s[i])) ++i;
      }
      if (numeric && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        numeric = i < s.size() && is_digit(s[i]);
        while (i < s.size() && is_digit(s[i])) ++i;
      }
      numeric = numeric && i == s.size();
    }
    if (numeric) out += s;
    else append_json_string(out, s);
  }
}
}  // namespace

std::string ConfigNode::json(const std::string& key) const {
  mark_read(key);
  std::string out;
  if (!has(key)) return "null";
  yaml_to_json((*node_)[key], out);
  return out;
}

void ConfigNode::mark_read(const std::string& key) const {
  shared_->read.insert(full(key));
  shared_->opaque.insert(full(key));
}

namespace {
void check_tree(const YAML::Node& node, const std::string& path,
                const std::set<std::string>& read, const std::set<std::string>& opaque, const std::string& origin) {
  if (opaque.count(path)) return;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      std::string sub = path.empty() ? key : path + "." + key;
      if (!read.count(sub)) {
        throw ConfigError(origin + ": unknown key '" + sub + "'");
      }
      check_tree(kv.second, sub, read, opaque, origin);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      std::string sub = path + "[" + std::to_string(i) + "]";
      if (read.count(sub)) check_tree(node[i], sub, read, opaque, origin);
    }
  }
}
}  // namespace

void ConfigNode::check_unknown() const {
  check_tree(*node_, path_, shared_->read, shared_->opaque, shared_->origin);
}

}  // namespace bf
