#pragma once
// YAML configuration with environment overrides and strict keys.
//
// Every component reads its section through ConfigNode; a key nobody read is an
// error naming the key and the file (call check_unknown() after reading).
// Env overrides: BYTEFREEZER_<SECTION>__<KEY>[__<SUBKEY>...]=value sets
// section.key.subkey (lower-cased) before anything is read.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace YAML { class Node; }

namespace bf {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ConfigNode {
 public:
  static ConfigNode load_file(const std::string& path);
  static ConfigNode parse(const std::string& yaml, const std::string& origin);
  ConfigNode(const ConfigNode&);
  ConfigNode& operator=(const ConfigNode&);
  ~ConfigNode();

  bool has(const std::string& key) const;
  // The keys of this mapping, in file order (empty when it is not a mapping).
  std::vector<std::string> keys() const;
  std::string str(const std::string& key, std::optional<std::string> def = std::nullopt) const;
  int64_t integer(const std::string& key, std::optional<int64_t> def = std::nullopt) const;
  double number(const std::string& key, std::optional<double> def = std::nullopt) const;
  bool boolean(const std::string& key, std::optional<bool> def = std::nullopt) const;
  // "64MiB", "10MB", "1024" -> bytes
  uint64_t bytes(const std::string& key, std::optional<uint64_t> def = std::nullopt) const;
  // "5s", "250ms", "2m", "1h" -> milliseconds
  std::chrono::milliseconds duration(const std::string& key,
                                     std::optional<std::chrono::milliseconds> def = std::nullopt) const;
  std::vector<std::string> str_list(const std::string& key) const;  // missing -> empty
  // Child mapping; a missing key yields an empty mapping.
  ConfigNode child(const std::string& key) const;
  // Sequence of mappings; missing -> empty.
  std::vector<ConfigNode> list(const std::string& key) const;

  // Dotted path of this node inside the file, e.g. "receiver.spool".
  const std::string& path() const { return path_; }
  const std::string& origin() const;
  // Throws ConfigError naming the first key under this node (recursively) nobody read.
  void check_unknown() const;
  // The value under key as JSON text (quoted YAML scalars stay strings); the whole
  // subtree counts as read. Missing -> "null".
  std::string json(const std::string& key) const;
  // Marks a whole subtree as read (for sections another process reads).
  void mark_read(const std::string& key) const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  struct Shared;
  ConfigNode(std::shared_ptr<Shared> shared, std::unique_ptr<YAML::Node> node, std::string path);
  std::optional<std::string> raw_scalar(const std::string& key) const;
  // The scalar under key; nullopt when absent and a default exists; fails when absent and required.
  std::optional<std::string> lookup(const std::string& key, bool has_default) const;
  std::string full(const std::string& key) const;

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<YAML::Node> node_;
  std::string path_;
};

}  // namespace bf
