#include "control/commands.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>
#include <termios.h>
#include <unistd.h>

#include <functional>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "common/catalog.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/time.h"
#include "common/ulid.h"
#include "control/api.h"
#include "control/auth.h"
#include "control/store.h"
#include "piper/transform.h"

namespace bf::control {

namespace json = boost::json;

namespace {

struct ImportedKey {
  std::string key, role, account, tenant;
};
struct ImportedDataset {
  std::string account, tenant, id;
  json::array pipeline;
  json::value retention = {};  // null: none
};
struct Plan {
  std::vector<std::string> accounts;
  std::vector<std::pair<std::string, std::string>> tenants;
  std::vector<ImportedDataset> datasets;
  std::vector<ImportedKey> keys;
};

std::string checked_id(const ConfigNode& node, const char* what) {
  std::string id = node.str("id");
  try {
    require_id(what, id);
  } catch (const InvalidId& e) {
    node.fail("id", e.what());
  }
  return id;
}

// Reads and validates the whole `accounts:` section before anything is written.
Plan read_plan(const ConfigNode& root) {
  Plan plan;
  std::set<std::string> seen;
  for (const ConfigNode& account : root.list("accounts")) {
    const std::string a = checked_id(account, "account");
    if (!seen.insert(a).second) account.fail("id", "duplicate account '" + a + "'");
    plan.accounts.push_back(a);
    if (account.has("ai")) {
      // The AI section may carry a provider key: control keeps no such secrets.
      account.mark_read("ai");
      spdlog::warn("import: {}.ai is not imported (it stays in the components' own config)", account.path());
    }
    for (const ConfigNode& tenant : account.list("tenants")) {
      const std::string t = checked_id(tenant, "tenant");
      if (!seen.insert(a + "/" + t).second) tenant.fail("id", "duplicate tenant '" + t + "'");
      plan.tenants.emplace_back(a, t);
      for (auto [field, role] : {std::pair{"ingest_keys", "ingest"}, {"query_keys", "query"}}) {
        for (const std::string& key : tenant.str_list(field)) {
          if (key.size() < 16) tenant.fail(field, "a key must be at least 16 characters");
          if (key.size() > 512) tenant.fail(field, "a key must be at most 512 characters");
          plan.keys.push_back({key, role, a, t});
        }
      }
      const std::vector<ConfigNode> datasets = tenant.list("datasets");
      const size_t first = plan.datasets.size();
      for (const ConfigNode& dataset : datasets) {
        ImportedDataset d{a, t, checked_id(dataset, "dataset"), {}};
        if (!seen.insert(a + "/" + t + "/" + d.id).second) dataset.fail("id", "duplicate dataset '" + d.id + "'");
        json::value p = json::parse(dataset.json("pipeline"));
        if (p.is_array()) {
          d.pipeline = std::move(p.get_array());
        } else if (!p.is_null()) {
          dataset.fail("pipeline", "expected a list of steps");
        }
        d.retention = json::parse(dataset.json("retention"));
        if (!d.retention.is_null())
          if (RetentionDays r = parse_retention(d.retention); !r.error.empty()) dataset.fail("retention", r.error);
        plan.datasets.push_back(std::move(d));
      }
      // Once the tenant's datasets are known: route steps may name any of them.
      for (size_t i = first; i < plan.datasets.size(); ++i) {
        const ImportedDataset& d = plan.datasets[i];
        PipelineContext context{d.id, {}};
        context.open_files = false;  // validate only, as the API does: the files are the pipers'
        for (size_t j = first; j < plan.datasets.size(); ++j) {
          if (j != i) context.siblings.push_back(plan.datasets[j].id);
        }
        try {
          Pipeline::compile(d.pipeline, a + "/" + t + "/" + d.id, &context);
        } catch (const std::exception& e) {
          datasets[i - first].fail("pipeline", e.what());
        }
      }
    }
    account.check_unknown();
  }
  return plan;
}

AuditEntry entry(const std::string& actor, std::string action, std::string target, std::string account,
                 std::string before, std::string after) {
  return make_audit(actor, std::move(action), std::move(target), std::move(account), std::move(before),
                    std::move(after));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::unique_ptr<ControlStore> open_from_config(const ControlCli& cli, ControlOptions* out = nullptr) {
  ConfigNode root = cli.config.empty() ? ConfigNode::parse("{}", "(defaults)") : ConfigNode::load_file(cli.config);
  init_logging(root.child("log").str("level", "info"));
  ConfigNode section = root.child("control");
  ControlOptions options = parse_control_options(section);
  section.check_unknown();
  if (!cli.db.empty()) {  // an explicit SQLite file wins over control.store
    options.db = cli.db;
    options.store_type = "sqlite";
    options.store_url.clear();
  }
  auto store = open_control_store(options);
  if (out) *out = options;
  return store;
}

// One line from stdin, without echo when it is a terminal.
std::string read_password_line() {
  const bool tty = ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << "password: " << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return line;
}

// Creates a system_admin user; the error, if any, as text.
std::optional<std::string> add_admin(ControlStore& store, const std::string& email_in, const std::string& password,
                                     const std::string& actor) {
  const std::string email = lower(email_in);
  if (email.find('@') == std::string::npos || email.size() > 254) return "'" + email + "' is not an email address";
  if (password.size() < kMinPasswordLength || password.size() > kMaxPasswordLength)
    return "the password must be " + std::to_string(kMinPasswordLength) + " to " +
           std::to_string(kMaxPasswordLength) + " characters";
  if (store.find_user_by_email(email)) return "a user with email " + email + " exists already";
  User u;
  u.id = "u" + lower(new_ulid());
  u.email = email;
  u.role = role_name(Role::system_admin);
  u.password_hash = hash_password(password);
  u.created_us = u.updated_us = now_us();
  json::object after{{"id", u.id}, {"email", u.email}, {"role", u.role}};
  store.create_user(u, entry(actor, "user.create", "user:" + u.id, "", "null", json::serialize(after)));
  return std::nullopt;
}

}  // namespace

bool bootstrap_admin(ControlStore& store) {
  if (store.count_users() != 0) return true;
  const char* email = std::getenv("BYTEFREEZER_ADMIN_EMAIL");
  const char* password = std::getenv("BYTEFREEZER_ADMIN_PASSWORD");
  if (email && password) {
    if (auto err = add_admin(store, email, password, "bootstrap")) {
      spdlog::error("control: BYTEFREEZER_ADMIN_EMAIL/PASSWORD: {}", *err);
      return false;
    }
    spdlog::info("control: created the first system_admin {} from BYTEFREEZER_ADMIN_EMAIL", email);
  } else {
    spdlog::warn("control: no users yet: run `bytefreezer control create-admin --email you@example.com` "
                 "or start with BYTEFREEZER_ADMIN_EMAIL and BYTEFREEZER_ADMIN_PASSWORD set");
  }
  return true;
}

ImportReport import_accounts_yaml(ControlStore& store, const std::string& file) {
  ConfigNode root = ConfigNode::load_file(file);
  Plan plan = read_plan(root);
  const std::string actor = "import:" + file;
  ImportReport r;
  const int64_t now = now_us();
  for (const std::string& a : plan.accounts) {
    if (store.get_account(a)) {
      ++r.unchanged;
      continue;
    }
    Account acc{a, "", now, now};
    store.create_account(acc, entry(actor, "account.create", a, a, "null", json::serialize(json::object{{"id", a}})));
    ++r.created;
  }
  for (const auto& [a, t] : plan.tenants) {
    if (store.get_tenant(a, t)) {
      ++r.unchanged;
      continue;
    }
    store.create_tenant(Tenant{a, t, "", now, now},
                        entry(actor, "tenant.create", a + "/" + t, a, "null",
                              json::serialize(json::object{{"account", a}, {"id", t}})));
    ++r.created;
  }
  for (const ImportedDataset& d : plan.datasets) {
    const std::string target = d.account + "/" + d.tenant + "/" + d.id;
    auto existing = store.get_dataset(d.account, d.tenant, d.id);
    if (!existing) {
      json::object settings{{"pipeline", d.pipeline}};
      if (!d.retention.is_null()) settings["retention"] = d.retention;
      Dataset ds{d.account, d.tenant, d.id, "", json::serialize(settings), false, now, now};
      store.create_dataset(ds, entry(actor, "dataset.create", target, d.account, "null", ds.settings_json));
      ++r.created;
      continue;
    }
    json::error_code ec;
    json::value settings = json::parse(existing->settings_json, ec);
    if (ec || !settings.is_object()) settings = json::object();
    auto& obj = settings.get_object();
    const auto it = obj.find("pipeline");
    const auto rt = obj.find("retention");
    const json::value retention = rt == obj.end() ? json::value() : rt->value();
    // A retention set through the API stays unless the file sets one.
    if (it != obj.end() && it->value() == json::value(d.pipeline) && (d.retention.is_null() || retention == d.retention)) {
      ++r.unchanged;
      continue;
    }
    Dataset after = *existing;
    obj["pipeline"] = d.pipeline;
    if (!d.retention.is_null()) obj["retention"] = d.retention;
    after.settings_json = json::serialize(settings);
    after.updated_us = now;
    store.update_dataset(after, entry(actor, "dataset.update", target, d.account, existing->settings_json,
                                      after.settings_json));
    ++r.updated;
  }
  for (const ImportedKey& k : plan.keys) {
    const std::string id = imported_key_id(k.key);
    if (auto existing = store.get_key(id)) {
      // The same key under another tenant in the file would be ambiguous: refuse it.
      if (existing->account != k.account || existing->tenant != k.tenant || existing->role != k.role)
        throw ConfigError(file + ": a key of " + k.account + "/" + k.tenant + " is already imported for " +
                          existing->account + "/" + existing->tenant + " as " + existing->role);
      ++r.unchanged;
      continue;
    }
    ApiKey key;
    key.id = id;
    key.secret_hash = hash_secret(k.key);
    key.name = "imported " + k.role + " key";
    key.role = k.role;
    key.account = k.account;
    key.tenant = k.tenant;
    key.created_by = actor;
    key.created_us = now;
    json::object after{{"id", id}, {"role", k.role}, {"account", k.account}, {"tenant", k.tenant}};
    store.create_key(key, entry(actor, "key.create", "key:" + id, k.account, "null", json::serialize(after)));
    ++r.created;
  }
  return r;
}

int serve_control(const ControlCli& cli, const std::function<void()>& wait_for_stop) {
  ControlOptions options;
  std::shared_ptr<ControlStore> store = open_from_config(cli, &options);
  spdlog::info("control: store {} (schema version {})", store->describe(), store->schema_version());
  if (!bootstrap_admin(*store)) return 1;
  ControlServer server(store, options);
  server.start();
  spdlog::info("control: API on port {} (/api/v1, /api/v1/openapi.json)", server.port());
  wait_for_stop();
  spdlog::info("control: stopping");
  server.stop();
  return 0;
}

int import_command(const ControlCli& cli, const std::string& file) {
  auto store = open_from_config(cli);
  ImportReport r = import_accounts_yaml(*store, file);
  std::cout << "imported " << file << ": " << r.created << " created, " << r.updated << " updated, " << r.unchanged
            << " unchanged\n";
  return 0;
}

int create_admin_command(const ControlCli& cli, const std::string& email) {
  auto store = open_from_config(cli);
  const char* env = std::getenv("BYTEFREEZER_ADMIN_PASSWORD");
  const std::string password = env ? std::string(env) : read_password_line();
  if (auto err = add_admin(*store, email, password, "cli")) {
    std::cerr << "error: " << *err << "\n";
    return 1;
  }
  std::cout << "created system_admin " << lower(email) << "\n";
  return 0;
}

int create_key_command(const ControlCli& cli, const std::string& role_in, const std::string& service,
                       const std::string& name) {
  auto store = open_from_config(cli);
  auto role = parse_role(role_in);
  if (!role || (*role != Role::system_admin && *role != Role::service)) {
    std::cerr << "error: --role must be system_admin or service (account keys are made through the API)\n";
    return 2;
  }
  if ((*role == Role::service) != is_service_name(service)) {
    std::cerr << "error: --service (proxy, receiver, piper, packer, query, connector) goes with --role service only\n";
    return 2;
  }
  NewKey nk = generate_api_key();
  ApiKey k;
  k.id = nk.id;
  k.secret_hash = nk.secret_hash;
  k.name = name;
  k.role = role_name(*role);
  k.service = service;
  k.created_by = "cli";
  k.created_us = now_us();
  json::object after{{"id", k.id}, {"role", k.role}, {"service", k.service}, {"name", k.name}};
  store->create_key(k, entry("cli", "key.create", "key:" + k.id, "", "null", json::serialize(after)));
  std::cout << nk.token << "\n";
  std::cerr << "key " << k.id << " (" << k.role << "): shown once, store it now\n";
  return 0;
}

}  // namespace bf::control
