#include "control/config_document.h"

#include <boost/json.hpp>

#include "common/config.h"
#include "common/digest.h"
#include "common/ids.h"
#include "control/store.h"

namespace bf::control {

namespace json = boost::json;

namespace {

// Every row of a paginated listing.
template <class T, class List, class Key>
std::vector<T> all_rows(List list, Key key) {
  std::vector<T> out;
  PageQuery q;
  q.limit = 500;
  while (true) {
    std::vector<T> page = list(q);
    if (page.empty()) break;
    q.after = key(page.back());
    const bool last = page.size() < q.limit;
    for (auto& r : page) out.push_back(std::move(r));
    if (last) break;
  }
  return out;
}

json::value settings_of(const Dataset& d) {
  json::error_code ec;
  json::value v = json::parse(d.settings_json, ec);
  return ec || !v.is_object() ? json::value(json::object()) : v;
}

[[noreturn]] void bad(const std::string& where, const std::string& why) {
  throw ConfigError("config document: " + where + ": " + why);
}

const json::array& array_at(const json::object& o, const char* key, const std::string& where) {
  static const json::array empty;
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return empty;
  if (!v->is_array()) bad(where + "." + key, "must be a list");
  return v->get_array();
}

std::string id_at(const json::value& v, const std::string& where) {
  if (!v.is_object()) bad(where, "must be an object");
  auto* id = v.get_object().if_contains("id");
  if (!id || !id->is_string() || !is_valid_id(id->get_string())) bad(where + ".id", "must be a valid id");
  return std::string(id->get_string());
}

}  // namespace

bool is_config_audience(std::string_view service) {
  for (std::string_view s : {"proxy", "receiver", "piper", "packer", "query", "connector", "all"})
    if (service == s) return true;
  return false;
}

std::string config_document(ControlStore& store, std::string_view service) {
  const bool ingest_keys = service == "receiver" || service == "all";
  const bool query_keys = service == "query" || service == "all";
  const bool connectors = service == "connector" || service == "all";
  std::vector<ApiKey> keys;
  if (ingest_keys || query_keys)
    keys = all_rows<ApiKey>([&](const PageQuery& q) { return store.list_keys(q); }, [](const ApiKey& k) { return k.id; });
  json::array accounts;
  for (const Account& a :
       all_rows<Account>([&](const PageQuery& q) { return store.list_accounts(q); }, [](const Account& a) { return a.id; })) {
    json::array tenants;
    for (const Tenant& t : all_rows<Tenant>([&](const PageQuery& q) { return store.list_tenants(a.id, q); },
                                            [](const Tenant& t) { return t.id; })) {
      json::array datasets;
      for (const Dataset& d : all_rows<Dataset>([&](const PageQuery& q) { return store.list_datasets(a.id, t.id, q); },
                                                [](const Dataset& d) { return d.id; })) {
        datasets.push_back(json::object{{"id", d.id}, {"paused", d.paused}, {"settings", settings_of(d)}});
      }
      json::object tenant{{"id", t.id}, {"datasets", std::move(datasets)}};
      if (connectors) {
        json::array out;
        for (const Connector& c : all_rows<Connector>([&](const PageQuery& q) { return store.list_connectors(a.id, t.id, q); },
                                                      [](const Connector& c) { return c.id; })) {
          json::error_code ec;
          json::value settings = json::parse(c.settings_json, ec);
          out.push_back(json::object{{"id", c.id},
                                     {"sink", c.sink},
                                     {"query", c.query},
                                     {"schedule_ms", c.schedule_ms},
                                     {"settings", ec ? json::value(json::object()) : settings},
                                     {"paused", c.paused}});
        }
        tenant["connectors"] = std::move(out);
      }
      for (auto [field, role, wanted] : {std::tuple{"ingest_keys", "ingest", ingest_keys},
                                         std::tuple{"query_keys", "query", query_keys}}) {
        if (!wanted) continue;
        json::array out;
        for (const ApiKey& k : keys) {
          if (k.role != role || k.revoked_us || k.account != a.id || k.tenant != t.id) continue;
          json::object key{{"id", k.id}, {"secret_sha256", k.secret_hash}};
          if (!k.dataset.empty()) key["dataset"] = k.dataset;
          out.push_back(std::move(key));
        }
        tenant[field] = std::move(out);
      }
      tenants.push_back(std::move(tenant));
    }
    accounts.push_back(json::object{{"id", a.id}, {"tenants", std::move(tenants)}});
  }
  return json::serialize(json::object{{"format", 1}, {"service", service}, {"accounts", std::move(accounts)}});
}

std::string config_etag(std::string_view document) { return "\"" + sha256_hex(document).substr(0, 32) + "\""; }

Catalog catalog_from_config_document(std::string_view document) {
  json::error_code ec;
  json::value root = json::parse(document, ec);
  if (ec) bad("(document)", "invalid JSON: " + ec.message());
  if (!root.is_object()) bad("(document)", "must be an object");
  const json::object& top = root.get_object();
  if (auto* f = top.if_contains("format"); !f || !f->is_int64() || f->get_int64() != 1)
    bad("format", "unsupported (this build reads format 1)");
  Catalog catalog;
  const json::array& accounts = array_at(top, "accounts", "(document)");
  for (size_t i = 0; i < accounts.size(); ++i) {
    const std::string aw = "accounts[" + std::to_string(i) + "]";
    const std::string a = id_at(accounts[i], aw);
    const json::array& tenants = array_at(accounts[i].get_object(), "tenants", aw);
    for (size_t j = 0; j < tenants.size(); ++j) {
      const std::string tw = aw + ".tenants[" + std::to_string(j) + "]";
      const std::string t = id_at(tenants[j], tw);
      const json::object& to = tenants[j].get_object();
      catalog.add_tenant(a, t);
      const json::array& datasets = array_at(to, "datasets", tw);
      for (size_t k = 0; k < datasets.size(); ++k) {
        const std::string dw = tw + ".datasets[" + std::to_string(k) + "]";
        DatasetInfo info;
        info.ref = DatasetRef{a, t, id_at(datasets[k], dw)};
        if (auto* s = datasets[k].get_object().if_contains("settings"); s && s->is_object()) {
          info.pipeline = array_at(s->get_object(), "pipeline", dw + ".settings");
          if (auto* r = s->get_object().if_contains("retention"); r && !r->is_null()) {
            RetentionDays days = parse_retention(*r);
            if (!days.error.empty()) bad(dw + ".settings.retention", days.error);
            info.retention_days = days.days;
          }
        }
        if (catalog.find(info.ref)) bad(dw + ".id", "duplicate dataset");
        catalog.add_dataset(std::move(info));
      }
      for (auto [field, query] : {std::pair{"ingest_keys", false}, std::pair{"query_keys", true}}) {
        const json::array& keys = array_at(to, field, tw);
        for (size_t k = 0; k < keys.size(); ++k) {
          const std::string kw = tw + "." + field + "[" + std::to_string(k) + "]";
          if (!keys[k].is_object()) bad(kw, "must be an object");
          const json::object& ko = keys[k].get_object();
          auto* id = ko.if_contains("id");
          auto* hash = ko.if_contains("secret_sha256");
          if (!id || !id->is_string() || id->get_string().empty()) bad(kw + ".id", "is required");
          if (!hash || !hash->is_string() || hash->get_string().size() != 64) bad(kw + ".secret_sha256", "must be 64 hex");
          KeyGrant grant{a, t, ""};
          if (auto* d = ko.if_contains("dataset"); d && d->is_string()) grant.dataset = std::string(d->get_string());
          if (query) catalog.add_query_key_hash(std::string(id->get_string()), std::string(hash->get_string()), grant);
          else catalog.add_key_hash(std::string(id->get_string()), std::string(hash->get_string()), grant);
        }
      }
    }
  }
  return catalog;
}

}  // namespace bf::control
