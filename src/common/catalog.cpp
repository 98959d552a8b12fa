#include "common/catalog.h"

#include <boost/json/parse.hpp>
#include <openssl/crypto.h>

#include <stdexcept>

#include "common/api_key.h"
#include "common/config.h"
#include "common/digest.h"
#include "common/ids.h"

namespace bf {

Catalog Catalog::parse(const ConfigNode& root) {
  Catalog catalog;
  for (const ConfigNode& account : root.list("accounts")) {
    std::string account_id = account.str("id");
    try {
      require_id("account", account_id);
    } catch (const InvalidId& e) {
      account.fail("id", e.what());
    }
    if (account.has("ai")) catalog.set_ai_config(account_id, parse_ai_config(account.child("ai")));
    for (const ConfigNode& tenant : account.list("tenants")) {
      std::string tenant_id = tenant.str("id");
      try {
        require_id("tenant", tenant_id);
      } catch (const InvalidId& e) {
        tenant.fail("id", e.what());
      }
      if (catalog.has_tenant(account_id, tenant_id)) tenant.fail("id", "duplicate tenant '" + tenant_id + "'");
      catalog.tenants_.emplace_back(account_id, tenant_id);
      for (const std::string& key : tenant.str_list("ingest_keys")) {
        if (key.size() < 16) tenant.fail("ingest_keys", "an ingest key must be at least 16 characters");
        catalog.add_key(key, KeyGrant{account_id, tenant_id});
      }
      for (const std::string& key : tenant.str_list("query_keys")) {
        if (key.size() < 16) tenant.fail("query_keys", "a query key must be at least 16 characters");
        catalog.add_query_key(key, KeyGrant{account_id, tenant_id});
      }
      for (const ConfigNode& dataset : tenant.list("datasets")) {
        DatasetInfo info;
        info.ref = DatasetRef{account_id, tenant_id, dataset.str("id")};
        try {
          require_id("dataset", info.ref.dataset);
        } catch (const InvalidId& e) {
          dataset.fail("id", e.what());
        }
        if (catalog.find(info.ref)) dataset.fail("id", "duplicate dataset '" + info.ref.dataset + "'");
        boost::json::value pipeline = boost::json::parse(dataset.json("pipeline"));
        if (pipeline.is_array()) {
          info.pipeline = std::move(pipeline.get_array());
        } else if (!pipeline.is_null()) {
          dataset.fail("pipeline", "expected a list of steps");
        }
        boost::json::value retention = boost::json::parse(dataset.json("retention"));
        if (!retention.is_null()) {
          RetentionDays r = parse_retention(retention);
          if (!r.error.empty()) dataset.fail("retention", r.error);
          info.retention_days = r.days;
        }
        catalog.datasets_.push_back(std::move(info));
      }
    }
  }
  return catalog;
}

RetentionDays parse_retention(const boost::json::value& v) {
  if (!v.is_object()) return {0, "must be an object: {days: N}"};
  RetentionDays out;
  for (const auto& kv : v.get_object()) {
    if (kv.key() != "days") return {0, "unknown field '" + std::string(kv.key()) + "' (expected days)"};
    const auto& d = kv.value();
    if (!d.is_int64() || d.get_int64() < 1 || d.get_int64() > 36500)
      return {0, "days must be a whole number of days between 1 and 36500"};
    out.days = static_cast<int>(d.get_int64());
  }
  return out;
}

const DatasetInfo* Catalog::find(const DatasetRef& ref) const {
  for (const auto& d : datasets_) {
    if (d.ref == ref) return &d;
  }
  return nullptr;
}

bool Catalog::has_tenant(const std::string& account, const std::string& tenant) const {
  for (const auto& [a, t] : tenants_) {
    if (a == account && t == tenant) return true;
  }
  return false;
}

std::optional<KeyGrant> Catalog::authenticate(std::string_view key) const {
  return lookup(keys_, hashed_keys_, key);
}

std::optional<KeyGrant> Catalog::authenticate_query(std::string_view key) const {
  return lookup(query_keys_, hashed_query_keys_, key);
}

std::optional<KeyGrant> Catalog::lookup(const Keys& keys, const HashedKeys& hashed, std::string_view key) {
  std::optional<KeyGrant> found;
  if (!hashed.empty()) {
    // Found by id, then the secret's hash compared in constant time.
    const KeyParts parts = key_parts_of(key);
    const std::string digest = sha256_hex(parts.secret);
    for (const HashedKey& h : hashed) {
      if (h.id != parts.id || h.secret_hash.size() != digest.size()) continue;
      if (CRYPTO_memcmp(h.secret_hash.data(), digest.data(), digest.size()) == 0 && !found) found = h.grant;
    }
  }
  for (const auto& [candidate, grant] : keys) {
    // Compare every key in full so timing does not reveal prefixes or positions.
    bool equal = candidate.size() == key.size() &&
                 CRYPTO_memcmp(candidate.data(), key.data(), key.size()) == 0;
    if (equal && !found) found = grant;
  }
  return found;
}

const DatasetInfo& Catalog::resolve(const std::string& spec) const {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = spec.find('/', pos);
    parts.push_back(spec.substr(pos, slash - pos));
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  if (parts.size() == 3) {
    if (auto* d = find(DatasetRef{parts[0], parts[1], parts[2]})) return *d;
    throw std::invalid_argument("unknown dataset '" + spec + "'");
  }
  if (parts.size() != 2) throw std::invalid_argument("dataset must be TENANT/DATASET or ACCOUNT/TENANT/DATASET, got '" + spec + "'");
  const DatasetInfo* match = nullptr;
  for (const auto& d : datasets_) {
    if (d.ref.tenant == parts[0] && d.ref.dataset == parts[1]) {
      if (match) throw std::invalid_argument("dataset '" + spec + "' exists in several accounts; use ACCOUNT/TENANT/DATASET");
      match = &d;
    }
  }
  if (!match) throw std::invalid_argument("unknown dataset '" + spec + "'");
  return *match;
}

void Catalog::add_dataset(DatasetInfo info) {
  if (!has_tenant(info.ref.account, info.ref.tenant)) tenants_.emplace_back(info.ref.account, info.ref.tenant);
  datasets_.push_back(std::move(info));
}

void Catalog::add_key(std::string key, KeyGrant grant) {
  if (!has_tenant(grant.account, grant.tenant)) tenants_.emplace_back(grant.account, grant.tenant);
  keys_.emplace_back(std::move(key), std::move(grant));
}

}  // namespace bf

namespace bf {
void Catalog::add_query_key(std::string key, KeyGrant grant) {
  if (!has_tenant(grant.account, grant.tenant)) tenants_.emplace_back(grant.account, grant.tenant);
  query_keys_.emplace_back(std::move(key), std::move(grant));
}
}  // namespace bf

namespace bf {
const AiConfig* Catalog::ai_config(const std::string& account) const {
  auto it = ai_.find(account);
  return it == ai_.end() ? nullptr : &it->second;
}
void Catalog::set_ai_config(const std::string& account, AiConfig config) { ai_[account] = std::move(config); }
}  // namespace bf

namespace bf {
void Catalog::add_tenant(const std::string& account, const std::string& tenant) {
  if (!has_tenant(account, tenant)) tenants_.emplace_back(account, tenant);
}
void Catalog::add_key_hash(std::string id, std::string secret_hash, KeyGrant grant) {
  add_tenant(grant.account, grant.tenant);
  hashed_keys_.push_back({std::move(id), std::move(secret_hash), std::move(grant)});
}
void Catalog::add_query_key_hash(std::string id, std::string secret_hash, KeyGrant grant) {
  add_tenant(grant.account, grant.tenant);
  hashed_query_keys_.push_back({std::move(id), std::move(secret_hash), std::move(grant)});
}
}  // namespace bf
