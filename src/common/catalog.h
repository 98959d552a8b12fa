#pragma once
// The catalog: accounts, tenants, datasets, their pipelines and ingest keys.
// Until the control plane exists it comes from the static `accounts:` section of
// the YAML config:
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
#include <boost/json/array.hpp>
#include <map>
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
};

struct KeyGrant {
  std::string account;
  std::string tenant;
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
  // The account's AI provider (`ai:` section), or nullptr when it has none.
  const AiConfig* ai_config(const std::string& account) const;
  void set_ai_config(const std::string& account, AiConfig config);

 private:
  std::vector<DatasetInfo> datasets_;
  using Keys = std::vector<std::pair<std::string, KeyGrant>>;
  static std::optional<KeyGrant> lookup(const Keys& keys, std::string_view key);
  Keys keys_;
  Keys query_keys_;
  std::vector<std::pair<std::string, std::string>> tenants_;  // (account, tenant)
  std::map<std::string, AiConfig> ai_;                          // by account
};

}  // namespace bf
