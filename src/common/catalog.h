#pragma once
// The catalog: accounts, tenants, datasets, their pipelines and ingest keys.
// It comes from the control plane (control/config_document.h) or, for a component
// run without control, from the static `accounts:` section of the YAML config:
//
//   accounts:
//     - id: acme
//       ai: {provider: openai, endpoint: URL, model: NAME}  # optional: NL questions (docs/ask.md)
//       tenants:
//         - id: default
//           ingest_keys: ["secret-ingest-key"]   # may write the tenant's datasets
//           query_keys: ["secret-query-key"]     # may query the tenant's datasets
//           datasets:
//             - id: syslog
//               pipeline: [{add: {field: env, value: prod}}]
//               retention: {days: 30}                # optional: event hours kept (packer)
#include <boost/json/array.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ai_config.h"

namespace bf {

class ConfigNode;

struct DatasetRef {
  std::string account, tenant, dataset;
  std::string str() const { return account + "/" + tenant + "/" + dataset; }
  bool operator==(const DatasetRef&) const = default;
};

struct DatasetInfo {
  DatasetRef ref;
  boost::json::array pipeline;  // steps as JSON objects; compiled by the piper
  // `retention: {days: N}`: the packer deletes event hours older than N days; 0 keeps all.
  int retention_days = 0;
};

// The days of a `retention:` value ({"days": N}, N in 1..36500), or a message saying
// what is wrong with it. Shared by the YAML catalog, control's API and its documents.
struct RetentionDays {
  int days = 0;
  std::string error;  // empty: valid
};
RetentionDays parse_retention(const boost::json::value& retention);

struct KeyGrant {
  std::string account;
  std::string tenant;
  std::string dataset = {};  // ingest keys from control may be scoped to one dataset; empty: every dataset
};

class Catalog {
 public:
  static Catalog parse(const ConfigNode& accounts_list_parent);  // reads key "accounts"
  const std::vector<DatasetInfo>& datasets() const { return datasets_; }
  const DatasetInfo* find(const DatasetRef& ref) const;
  bool has_tenant(const std::string& account, const std::string& tenant) const;
  // The grant of an ingest key, or nullopt. Constant-time comparison per key.
  std::optional<KeyGrant> authenticate(std::string_view key) const;
  std::optional<KeyGrant> authenticate_query(std::string_view key) const;
  // "tenant/dataset" or "account/tenant/dataset" -> the dataset; throws
  // std::invalid_argument when unknown or ambiguous (same tenant id in two accounts).
  const DatasetInfo& resolve(const std::string& spec) const;
  void add_dataset(DatasetInfo info);                 // tests and tooling
  void add_key(std::string key, KeyGrant grant);
  void add_query_key(std::string key, KeyGrant grant);
  // Keys as control distributes them: the key's id and the hex SHA-256 of its secret
  // (common/api_key.h), never the key itself. authenticate() checks both kinds.
  void add_key_hash(std::string id, std::string secret_hash, KeyGrant grant);
  void add_query_key_hash(std::string id, std::string secret_hash, KeyGrant grant);
  void add_tenant(const std::string& account, const std::string& tenant);
  // The account's AI provider (`ai:` section), or nullptr when it has none.
  const AiConfig* ai_config(const std::string& account) const;
  void set_ai_config(const std::string& account, AiConfig config);
  const std::map<std::string, AiConfig>& ai_configs() const { return ai_; }

 private:
  std::vector<DatasetInfo> datasets_;
  using Keys = std::vector<std::pair<std::string, KeyGrant>>;
  struct HashedKey {
    std::string id, secret_hash;
    KeyGrant grant;
  };
  using HashedKeys = std::vector<HashedKey>;
  static std::optional<KeyGrant> lookup(const Keys& keys, const HashedKeys& hashed, std::string_view key);
  Keys keys_;
  Keys query_keys_;
  HashedKeys hashed_keys_, hashed_query_keys_;
  std::vector<std::pair<std::string, std::string>> tenants_;  // (account, tenant)
  std::map<std::string, AiConfig> ai_;                          // by account
};

// A catalog that can be replaced while a component runs (control distributes a new
// one): readers take a snapshot and keep it for one request or one run.
class LiveCatalog {
 public:
  explicit LiveCatalog(std::shared_ptr<const Catalog> initial) : current_(std::move(initial)) {}
  std::shared_ptr<const Catalog> get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void set(std::shared_ptr<const Catalog> next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Catalog> current_;
};

}  // namespace bf
