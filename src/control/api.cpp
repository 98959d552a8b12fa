#include "common/catalog.h"
#include "control/api.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "connector/sinks.h"
#include "control/auth.h"
#include "control/config_document.h"
#include "control/health.h"
#include "control/ui.h"
#include "control/store.h"
#include "piper/preview.h"
#include "piper/transform.h"
#include "query/sql_guard.h"
#include "storage/lease_store.h"

namespace bf::control {

namespace json = boost::json;

namespace {

constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxSettingsBytes = 256 * 1024;
constexpr size_t kMaxConnectorQueryBytes = 64 * 1024;
constexpr size_t kDefaultPageSize = 50, kMaxPageSize = 500;
constexpr const char* kSessionCookie = "bf_session";
// Service keys (leases, config, health of a whole fleet) get this many times the per-key rate.
constexpr double kServiceRateFactor = 50;

// A request the API refuses: status, a machine-readable code, the offending field.
struct ApiError {
  int status;
  std::string code;
  std::string message;
  std::string field;
  int64_t retry_after_s = 0;  // 429: the Retry-After header
};

[[noreturn]] void invalid(const std::string& field, const std::string& message) {
  throw ApiError{400, "invalid", message, field};
}
[[noreturn]] void not_found(const std::string& what) { throw ApiError{404, "not_found", what + " not found", ""}; }
[[noreturn]] void forbidden() {
  throw ApiError{403, "forbidden", "this credential may not do that", ""};
}

Counter& denied(const std::string& reason) {
  return metrics().counter("bf_control_denied_total",
                           "Control API requests refused, by reason (unauthenticated, forbidden, not_found, invalid, "
                           "conflict, rate_limited)",
                           {{"reason", reason}});
}

HttpResponse error_response(const ApiError& e) {
  json::object o{{"error", e.code}, {"message", e.message}};
  if (!e.field.empty()) o["field"] = e.field;
  HttpResponse r = HttpResponse::json(e.status, json::serialize(o));
  if (e.status == 401) r.headers["WWW-Authenticate"] = "Bearer";
  if (e.status == 429) r.headers["Retry-After"] = std::to_string(e.retry_after_s);
  return r;
}

std::string iso(int64_t us) { return us ? format_rfc3339(us) : std::string(); }
json::value iso_or_null(int64_t us) { return us ? json::value(format_rfc3339(us)) : json::value(nullptr); }
json::value str_or_null(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }

// ----- representations (what GET returns and what the audit log records)
json::object to_json(const Account& a) {
  return {{"id", a.id}, {"name", a.name}, {"created", iso(a.created_us)}, {"updated", iso(a.updated_us)}};
}
json::object to_json(const Tenant& t) {
  return {{"account", t.account}, {"id", t.id},           {"name", t.name},
          {"created", iso(t.created_us)}, {"updated", iso(t.updated_us)}};
}
json::object to_json(const Dataset& d) {
  json::error_code ec;
  json::value settings = json::parse(d.settings_json, ec);
  if (ec) settings = json::object();
  return {{"account", d.account}, {"tenant", d.tenant}, {"id", d.id}, {"name", d.name}, {"paused", d.paused},
          {"settings", settings}, {"created", iso(d.created_us)}, {"updated", iso(d.updated_us)}};
}
json::object to_json(const Connector& c) {
  json::error_code ec;
  json::value settings = json::parse(c.settings_json, ec);
  if (ec) settings = json::object();
  return {{"account", c.account},
          {"tenant", c.tenant},
          {"id", c.id},
          {"name", c.name},
          {"sink", c.sink},
          {"query", c.query},
          {"schedule", format_duration_ms(c.schedule_ms)},
          {"settings", settings},
          {"paused", c.paused},
          {"created", iso(c.created_us)},
          {"updated", iso(c.updated_us)}};
}
json::object to_json(const User& u) {
  return {{"id", u.id},     {"email", u.email},       {"name", u.name},
          {"role", u.role}, {"account", str_or_null(u.account)}, {"disabled", u.disabled},
          {"created", iso(u.created_us)}, {"updated", iso(u.updated_us)}};
}
json::object to_json(const ApiKey& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"role", k.role},
          {"account", str_or_null(k.account)},
          {"tenant", str_or_null(k.tenant)},
          {"dataset", str_or_null(k.dataset)},
          {"service", str_or_null(k.service)},
          {"created_by", k.created_by},
          {"created", iso(k.created_us)},
          {"last_used", iso_or_null(k.last_used_us)},
          {"revoked", iso_or_null(k.revoked_us)}};
}
json::object to_json(const AuditEntry& e) {
  json::error_code ec;
  json::value before = json::parse(e.before_json, ec);
  if (ec) before = nullptr;
  json::value after = json::parse(e.after_json, ec);
  if (ec) after = nullptr;
  return {{"seq", e.seq},       {"time", iso(e.time_us)},          {"actor", e.actor},   {"action", e.action},
          {"target", e.target}, {"account", str_or_null(e.account)}, {"before", before}, {"after", after}};
}
template <class T>
std::string audit_json(const std::optional<T>& v) {
  return v ? json::serialize(to_json(*v)) : "null";
}

// ----- request bodies: strict, every field checked, unknown fields refused
class Body {
 public:
  Body(const HttpRequest& req, std::string prefix) : prefix_(std::move(prefix)) {
    if (req.body.empty()) invalid(prefix_, "a JSON object body is required");
    auto ct = req.header("Content-Type");
    if (!ct || ct->rfind("application/json", 0) != 0)
      throw ApiError{415, "unsupported_media_type", "Content-Type must be application/json", ""};
    json::parse_options opts;
    opts.max_depth = 32;
    json::error_code ec;
    json::value v = json::parse(req.body, ec, {}, opts);  // also refuses invalid UTF-8
    if (ec) invalid(prefix_, "invalid JSON: " + ec.message());
    if (!v.is_object()) invalid(prefix_, "the body must be a JSON object");
    obj_ = std::move(v.get_object());
  }
  std::string name(const std::string& key) const { return prefix_ + "." + key; }
  bool has(const std::string& key) const { return obj_.contains(key); }
  const json::value* value(const std::string& key) {
    used_.insert(key);
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &it->value();
  }
  // `lines`: newlines and tabs allowed (SQL), other control characters still refused.
  std::optional<std::string> str(const std::string& key, size_t max_len = kMaxNameLength, bool lines = false) {
    const json::value* v = value(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) invalid(name(key), "must be a string");
    std::string s(v->get_string());
    if (s.size() > max_len) invalid(name(key), "longer than " + std::to_string(max_len) + " bytes");
    for (unsigned char c : s)
      if ((c < 0x20 || c == 0x7f) && !(lines && (c == '\n' || c == '\t' || c == '\r')))
        invalid(name(key), "must not contain control characters");
    return s;
  }
  std::string required_str(const std::string& key, size_t max_len = kMaxNameLength) {
    auto s = str(key, max_len);
    if (!s || s->empty()) invalid(name(key), "is required");
    return *s;
  }
  std::string id(const std::string& key, bool required) {
    auto s = required ? std::optional<std::string>(required_str(key, 64)) : str(key, 64);
    if (!s || s->empty()) return "";
    if (!is_valid_id(*s)) invalid(name(key), "must match [a-z0-9][a-z0-9_-]{0,62}");
    return *s;
  }
  std::optional<bool> boolean(const std::string& key) {
    const json::value* v = value(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) invalid(name(key), "must be true or false");
    return v->get_bool();
  }
  // A number >= 0 (integral when `whole`); nullopt when absent or null.
  std::optional<double> number(const std::string& key, bool whole = false) {
    const json::value* v = value(key);
    if (!v || v->is_null()) return std::nullopt;
    double d = 0;
    if (v->is_int64()) d = static_cast<double>(v->get_int64());
    else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
    else if (v->is_double() && !whole) d = v->get_double();
    else invalid(name(key), whole ? "must be a whole number" : "must be a number");
    if (!(d >= 0) || d > 1e15) invalid(name(key), "must be between 0 and 1e15");
    return d;
  }
  void refuse(const std::string& key, const std::string& why) {
    used_.insert(key);
    if (obj_.contains(key)) invalid(name(key), why);
  }
  void check_unknown() const {
    for (const auto& kv : obj_) {
      std::string k(kv.key());
      if (!used_.count(k)) invalid(name(k), "unknown field");
    }
  }

 private:
  std::string prefix_;
  json::object obj_;
  std::set<std::string> used_;
};

std::string path_id(const HttpRequest& req, const std::string& name) {
  auto it = req.params.find(name);
  const std::string v = it == req.params.end() ? "" : it->second;
  if (!is_valid_id(v)) invalid(name, "invalid " + name + " id: must match [a-z0-9][a-z0-9_-]{0,62}");
  return v;
}

// Users and keys have generated ids; the same character rules apply.
std::string path_generated_id(const HttpRequest& req, const std::string& name) {
  auto it = req.params.find(name);
  const std::string v = it == req.params.end() ? "" : it->second;
  if (!is_valid_id(v)) invalid(name, "invalid " + name + " id");
  return v;
}

std::string lower_ulid() {
  std::string s = new_ulid();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool valid_email(const std::string& e) {
  const size_t at = e.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= e.size() || e.find('@', at + 1) != std::string::npos) return false;
  return std::none_of(e.begin(), e.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Dataset settings: {"sources": [...], "pipeline": [...], "packer": {...}, "retention": {...}}.
// The pipeline is compiled as the piper would, so a bad step is refused here.
std::string validate_settings(const json::value& v, const std::string& where, const PipelineContext& context) {
  const std::string f = "dataset.settings";
  if (!v.is_object()) invalid(f, "must be an object");
  const json::object& o = v.get_object();
  for (const auto& kv : o) {
    const std::string k(kv.key());
    const json::value& x = kv.value();
    if (k == "sources") {
      if (!x.is_array()) invalid(f + ".sources", "must be a list");
      size_t i = 0;
      for (const auto& s : x.get_array()) {
        const std::string fi = f + ".sources[" + std::to_string(i++) + "]";
        if (!s.is_object()) invalid(fi, "must be an object");
        auto t = s.get_object().find("type");
        if (t == s.get_object().end() || !t->value().is_string() || t->value().get_string().empty())
          invalid(fi + ".type", "is required");
      }
    } else if (k == "pipeline") {
      if (!x.is_array()) invalid(f + ".pipeline", "must be a list of steps");
      try {
        Pipeline::compile(x.get_array(), where, &context);
      } catch (const std::exception& e) {
        invalid(f + ".pipeline", e.what());
      }
    } else if (k == "packer") {
      if (!x.is_object()) invalid(f + ".packer", "must be an object");
    } else if (k == "retention") {
      // The packer's rule (common/catalog.h), so what control accepts is what runs.
      if (!x.is_object()) invalid(f + ".retention", "must be an object");
      for (const auto& r : x.get_object())
        if (r.key() != "days") invalid(f + ".retention." + std::string(r.key()), "unknown field");
      if (RetentionDays r = parse_retention(x); !r.error.empty()) invalid(f + ".retention.days", "must be a whole number of days between 1 and 36500");
    } else {
      invalid(f + "." + k, "unknown field (expected sources, pipeline, packer, retention)");
    }
  }
  std::string out = json::serialize(o);
  if (out.size() > kMaxSettingsBytes) invalid(f, "larger than " + std::to_string(kMaxSettingsBytes) + " bytes");
  return out;
}

struct Page {
  PageQuery query;
  size_t want = kDefaultPageSize;
};

Page page_from(const HttpRequest& req) {
  Page p;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    const std::string& v = it->second;
    if (v.empty() || v.size() > 4 || !std::all_of(v.begin(), v.end(), ::isdigit)) invalid("limit", "must be 1..500");
    p.want = std::stoul(v);
    if (p.want < 1 || p.want > kMaxPageSize) invalid("limit", "must be 1..500");
  }
  if (auto it = req.query.find("cursor"); it != req.query.end() && !it->second.empty()) {
    auto raw = unbase64url(it->second);
    if (!raw || raw->rfind("c1:", 0) != 0 || raw->size() > 200) invalid("cursor", "not a cursor this API returned");
    p.query.after = raw->substr(3);
  }
  p.query.limit = p.want + 1;  // one more tells whether there is a next page
  return p;
}

template <class T, class Key>
HttpResponse page_response(std::vector<T> rows, const Page& page, Key key) {
  json::object out;
  json::array items;
  const bool more = rows.size() > page.want;
  if (more) rows.resize(page.want);
  for (const auto& r : rows) items.push_back(to_json(r));
  out["items"] = std::move(items);
  out["next_cursor"] = more ? json::value(base64url("c1:" + key(rows.back()))) : json::value(nullptr);
  return HttpResponse::json(200, json::serialize(out));
}

HttpResponse json_ok(int status, const json::object& o) { return HttpResponse::json(status, json::serialize(o)); }

std::string peer_host(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

std::optional<std::string> cookie(const HttpRequest& req, std::string_view name) {
  auto h = req.header("Cookie");
  if (!h) return std::nullopt;
  std::string_view s = *h;
  while (!s.empty()) {
    size_t semi = s.find(';');
    std::string_view part = s.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    if (semi == std::string_view::npos) break;
    s.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace

ControlOptions parse_control_options(const ConfigNode& section) {
  ControlOptions o;
  HttpServerOptions defaults;
  defaults.listen = "127.0.0.1:8090";
  defaults.max_body_bytes = 1 << 20;
  defaults.max_connections = 256;
  defaults.threads = 12;  // config long-polls each hold one while they wait
  o.http = parse_http_server_options(section, defaults);
  o.db = section.str("db", o.db);
  if (o.db.empty()) section.fail("db", "must name a file");
  ConfigNode store = section.child("store");
  o.store_type = store.str("type", o.store_type);
  if (o.store_type != "sqlite" && o.store_type != "postgres") store.fail("type", "must be sqlite or postgres");
  o.store_url = store.str("url", "");
  if (o.store_type == "postgres" && o.store_url.empty())
    store.fail("url", "is required for postgres (e.g. postgresql://bytefreezer@db:5432/bytefreezer)");
  if (o.store_type == "sqlite" && !o.store_url.empty()) store.fail("url", "is for postgres; SQLite uses control.db");
  const std::string password_env = store.str("password_env", "");
  if (!password_env.empty()) {
    const char* pw = std::getenv(password_env.c_str());
    if (!pw || !*pw) store.fail("password_env", "environment variable " + password_env + " is not set");
    o.store_password = pw;
  }
  o.session_ttl = section.duration("session_ttl", o.session_ttl);
  if (o.session_ttl.count() < 60000) section.fail("session_ttl", "must be at least 1m");
  ConfigNode rl = section.child("rate_limit");
  o.requests_per_second = rl.number("requests_per_second", o.requests_per_second);
  if (o.requests_per_second <= 0) rl.fail("requests_per_second", "must be greater than 0");
  o.request_burst = rl.number("burst", o.request_burst);
  if (o.request_burst < 1) rl.fail("burst", "must be at least 1");
  o.login_attempts_per_minute = rl.number("login_attempts_per_minute", o.login_attempts_per_minute);
  if (o.login_attempts_per_minute <= 0) rl.fail("login_attempts_per_minute", "must be greater than 0");
  ConfigNode cfg = section.child("config");
  o.config_wait_max = cfg.duration("max_wait", o.config_wait_max);
  if (o.config_wait_max.count() < 1000 || o.config_wait_max.count() > 600000)
    cfg.fail("max_wait", "must be between 1s and 10m");
  const int64_t waiters = cfg.integer("max_waiters", static_cast<int64_t>(o.config_max_waiters));
  if (waiters < 0 || waiters >= o.http.threads)
    cfg.fail("max_waiters", "must be 0 or more and less than control.threads (" + std::to_string(o.http.threads) + ")");
  o.config_max_waiters = static_cast<size_t>(waiters);
  ConfigNode health = section.child("health");
  o.health_timeout = health.duration("timeout", o.health_timeout);
  if (o.health_timeout.count() < 1000) health.fail("timeout", "must be at least 1s");
  const int64_t history = health.integer("history", static_cast<int64_t>(o.health_history));
  if (history < 1 || history > 100000) health.fail("history", "must be between 1 and 100000");
  o.health_history = static_cast<size_t>(history);
  const int64_t comps = health.integer("max_components", static_cast<int64_t>(o.health_max_components));
  if (comps < 1 || comps > 100000) health.fail("max_components", "must be between 1 and 100000");
  o.health_max_components = static_cast<size_t>(comps);
  o.health_report_interval = health.duration("report_interval", o.health_report_interval);
  if (o.health_report_interval.count() != 0 && o.health_report_interval.count() < 100)
    health.fail("report_interval", "must be 0 (no reports) or at least 100ms");
  o.secure_cookie = !o.http.tls.cert_file.empty();
  return o;
}

// -------------------------------------------------------------------------------

struct ControlApi::Impl {
  std::shared_ptr<ControlStore> store;
  ControlOptions options;
  RateLimiter requests;
  RateLimiter service_requests;
  RateLimiter logins;
  std::mutex touch_mu;
  std::map<std::string, int64_t> touched;  // key id -> last time last_used was written
  std::string dummy_hash;                  // verified against for unknown emails (same timing)
  std::once_flag dummy_once;
  // Config long-polls wait for `config_gen` to move (or a second, for changes made
  // by other processes on the same store).
  std::mutex config_mu;
  std::condition_variable config_cv;
  uint64_t config_gen = 0;
  bool closing = false;
  std::atomic<size_t> config_waiters{0};
  HealthBoard health;
  std::shared_ptr<LeaseStore> leases;

  Impl(std::shared_ptr<ControlStore> s, ControlOptions o)
      : store(std::move(s)),
        options(std::move(o)),
        requests(options.requests_per_second, options.request_burst),
        service_requests(options.requests_per_second * kServiceRateFactor, options.request_burst * kServiceRateFactor),
        logins(options.login_attempts_per_minute / 60.0, std::max(1.0, options.login_attempts_per_minute)),
        health(options.health_timeout, options.health_history, options.health_max_components) {}

  void config_changed() {
    {
      std::lock_guard lock(config_mu);
      ++config_gen;
    }
    config_cv.notify_all();
  }
  ConfigReply config(const std::string& service, const std::string& if_none_match, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      uint64_t gen;
      {
        std::lock_guard lock(config_mu);
        gen = config_gen;  // before reading the store, so a change made meanwhile wakes the wait
      }
      std::string doc = config_document(*store, service);
      std::string etag = config_etag(doc);
      if (etag != if_none_match) return {std::move(etag), std::move(doc)};
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return {std::move(etag), std::nullopt};
      std::unique_lock lock(config_mu);
      config_cv.wait_until(lock, std::min(deadline, now + std::chrono::seconds(1)),
                           [&] { return config_gen != gen || closing; });
      if (closing) return {std::move(etag), std::nullopt};
    }
  }

  struct Ctx {
    HttpRequest& req;
    Principal who;
    AuditEntry audit(std::string action, std::string target, std::string account, std::string before,
                     std::string after) const {
      return make_audit(who.actor(), std::move(action), std::move(target), std::move(account), std::move(before),
                        std::move(after));
    }
  };
  using Handler = std::function<HttpResponse(Impl&, Ctx&)>;
  struct Route {
    std::string method, pattern;
    bool public_route;
    Handler handler;
  };
  static const std::vector<Route>& table();

  // ----- authentication
  std::optional<Principal> from_key(std::string_view token) {
    std::string id, secret;
    if (auto parts = parse_api_key(token)) {
      id = parts->id;
      secret = parts->secret;
    } else if (token.size() >= 16 && token.size() <= 512) {
      id = imported_key_id(token);  // a key imported from the static YAML
      secret = std::string(token);
    } else {
      return std::nullopt;
    }
    std::optional<ApiKey> k = store->get_key(id);
    // Unknown ids are compared too, so timing does not tell them from wrong secrets.
    const bool match = verify_secret(secret, k ? k->secret_hash : std::string(64, '0'));
    if (!k || !match || k->revoked_us != 0) return std::nullopt;
    auto role = parse_role(k->role);
    if (!role) return std::nullopt;
    touch(k->id);
    return Principal{*role, "key", k->id, k->account, k->tenant, k->dataset, k->service};
  }
  void touch(const std::string& id) {
    const int64_t now = now_us();
    {
      std::lock_guard lock(touch_mu);
      int64_t& last = touched[id];
      if (now - last < 60'000'000) return;  // last_used has a one-minute resolution
      last = now;
    }
    store->touch_key(id, now);
  }
  std::optional<Principal> from_session(const std::string& token) {
    if (token.size() != 64) return std::nullopt;
    auto s = store->get_session(hash_secret(token));
    if (!s) return std::nullopt;
    if (s->expires_us <= now_us()) {
      store->delete_session(s->token_hash);
      return std::nullopt;
    }
    auto u = store->get_user(s->user_id);
    if (!u || u->disabled) return std::nullopt;
    auto role = parse_role(u->role);
    if (!role) return std::nullopt;
    return Principal{*role, "user", u->id, u->account, "", "", ""};
  }
  // nullopt: no credentials presented. Throws 401 for bad ones.
  std::optional<Principal> authenticate(const HttpRequest& req) {
    if (auto h = req.header("Authorization")) {
      std::string_view v = *h;
      if (v.size() < 7 || lower(std::string(v.substr(0, 7))) != "bearer ")
        throw ApiError{401, "unauthenticated", "Authorization must be 'Bearer <key>'", ""};
      v.remove_prefix(7);
      auto p = from_key(v);
      if (!p) throw ApiError{401, "unauthenticated", "unknown, revoked or malformed API key", ""};
      return p;
    }
    if (auto c = cookie(req, kSessionCookie)) {
      auto p = from_session(*c);
      if (!p) throw ApiError{401, "unauthenticated", "session expired or unknown; log in again", ""};
      return p;
    }
    return std::nullopt;
  }

  HttpResponse serve(const Route& route, HttpRequest& req) {
    try {
      int64_t retry = 0;
      std::optional<Principal> who;
      try {
        who = authenticate(req);
      } catch (const ApiError&) {
        // Failed credentials draw on the peer's bucket: guessing keys is rate-limited too.
        if (!requests.take("peer:" + peer_host(req.peer), retry)) throw rate_limited(retry);
        // Public routes ignore stale credentials (a login with an expired cookie must work).
        if (!route.public_route) throw;
      }
      const std::string bucket = who ? who->actor() : "peer:" + peer_host(req.peer);
      // Service keys make a lease call per dataset and write: their own, larger budget.
      RateLimiter& limiter = who && who->role == Role::service ? service_requests : requests;
      if (!limiter.take(bucket, retry)) throw rate_limited(retry);
      if (!who && !route.public_route)
        throw ApiError{401, "unauthenticated", "credentials required: Authorization: Bearer <API key> or a session", ""};
      Ctx ctx{req, who.value_or(Principal{})};
      if (!who) ctx.who.kind = "anonymous";
      HttpResponse r = route.handler(*this, ctx);
      // Wake config long-polls after a change to what config documents hold.
      const bool catalog = route.pattern.rfind("/api/v1/accounts", 0) == 0 || route.pattern.rfind("/api/v1/keys", 0) == 0;
      if (catalog && req.method != "GET" && r.status < 300) config_changed();
      return r;
    } catch (const ApiError& e) {
      static const std::map<int, std::string> reasons{{400, "invalid"},   {401, "unauthenticated"},
                                                      {403, "forbidden"}, {404, "not_found"},
                                                      {409, "conflict"},  {415, "invalid"},
                                                      {429, "rate_limited"}};
      auto it = reasons.find(e.status);
      denied(it == reasons.end() ? "other" : it->second).inc();
      return error_response(e);
    } catch (const StoreConflict& e) {
      denied("conflict").inc();
      spdlog::info("control: {} {}: conflict: {}", req.method, req.path, e.what());
      return error_response(ApiError{409, "conflict", "conflicts with existing data: " + std::string(e.what()), ""});
    }
  }
  static ApiError rate_limited(int64_t retry_after_s) {
    return ApiError{429, "rate_limited", "too many requests; retry after " + std::to_string(retry_after_s) + "s", "",
                    retry_after_s};
  }

  // ----- policy
  static void require(const Principal& who, Action a, Kind k, const std::string& account,
                      const std::string& hidden_what, std::optional<Role> grants = std::nullopt) {
    switch (decide(who, a, Resource{k, account, grants})) {
      case Decision::allow: return;
      case Decision::forbidden: forbidden();
      case Decision::hidden: not_found(hidden_what);
    }
  }
  static std::string account_label(const std::string& a) { return "account '" + a + "'"; }

  Account need_account(const std::string& id) {
    auto a = store->get_account(id);
    if (!a) not_found(account_label(id));
    return *a;
  }
  Tenant need_tenant(const std::string& account, const std::string& id) {
    need_account(account);
    auto t = store->get_tenant(account, id);
    if (!t) not_found("tenant '" + account + "/" + id + "'");
    return *t;
  }
  Dataset need_dataset(const std::string& account, const std::string& tenant, const std::string& id) {
    need_tenant(account, tenant);
    auto d = store->get_dataset(account, tenant, id);
    if (!d) not_found("dataset '" + account + "/" + tenant + "/" + id + "'");
    return *d;
  }

  // ----- accounts
  HttpResponse list_accounts(Ctx& c) {
    require(c.who, Action::list, Kind::account, "", "");
    Page page = page_from(c.req);
    if (c.who.role == Role::system_admin || c.who.role == Role::service)
      return page_response(store->list_accounts(page.query), page, [](const Account& a) { return a.id; });
    std::vector<Account> own;
    if (auto a = store->get_account(c.who.account); a && a->id > page.query.after) own.push_back(*a);
    return page_response(std::move(own), page, [](const Account& a) { return a.id; });
  }
  HttpResponse create_account(Ctx& c) {
    Body b(c.req, "account");
    Account a;
    a.id = b.id("id", true);
    require(c.who, Action::create, Kind::account, a.id, account_label(a.id));
    a.name = b.str("name").value_or("");
    b.check_unknown();
    a.created_us = a.updated_us = now_us();
    if (store->get_account(a.id)) throw ApiError{409, "conflict", account_label(a.id) + " exists", "account.id"};
    store->create_account(a, c.audit("account.create", a.id, a.id, "null", audit_json(std::optional(a))));
    return json_ok(201, to_json(a));
  }
  HttpResponse get_account(Ctx& c) {
    const std::string id = path_id(c.req, "account");
    require(c.who, Action::read, Kind::account, id, account_label(id));
    return json_ok(200, to_json(need_account(id)));
  }
  HttpResponse update_account(Ctx& c) {
    const std::string id = path_id(c.req, "account");
    require(c.who, Action::update, Kind::account, id, account_label(id));
    Body b(c.req, "account");
    b.refuse("id", "cannot be changed");
    Account before = need_account(id), after = before;
    if (auto n = b.str("name")) after.name = *n;
    b.check_unknown();
    after.updated_us = now_us();
    store->update_account(after, c.audit("account.update", id, id, audit_json(std::optional(before)),
                                         audit_json(std::optional(after))));
    return json_ok(200, to_json(after));
  }
  HttpResponse delete_account(Ctx& c) {
    const std::string id = path_id(c.req, "account");
    require(c.who, Action::remove, Kind::account, id, account_label(id));
    Account before = need_account(id);
    if (!store->list_tenants(id, PageQuery{"", 1, ""}).empty())
      throw ApiError{409, "conflict", account_label(id) + " still has tenants; delete them first", ""};
    store->delete_account(id, c.audit("account.delete", id, id, audit_json(std::optional(before)), "null"));
    return HttpResponse{204, {}, ""};
  }

  // ----- tenants
  HttpResponse list_tenants(Ctx& c) {
    const std::string acc = path_id(c.req, "account");
    require(c.who, Action::list, Kind::tenant, acc, account_label(acc));
    need_account(acc);
    Page page = page_from(c.req);
    return page_response(store->list_tenants(acc, page.query), page, [](const Tenant& t) { return t.id; });
  }
  HttpResponse create_tenant(Ctx& c) {
    const std::string acc = path_id(c.req, "account");
    require(c.who, Action::create, Kind::tenant, acc, account_label(acc));
    Body b(c.req, "tenant");
    Tenant t;
    t.account = acc;
    t.id = b.id("id", true);
    t.name = b.str("name").value_or("");
    b.check_unknown();
    need_account(acc);
    if (store->get_tenant(acc, t.id))
      throw ApiError{409, "conflict", "tenant '" + acc + "/" + t.id + "' exists", "tenant.id"};
    t.created_us = t.updated_us = now_us();
    store->create_tenant(t, c.audit("tenant.create", acc + "/" + t.id, acc, "null", audit_json(std::optional(t))));
    return json_ok(201, to_json(t));
  }
  HttpResponse get_tenant(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), id = path_id(c.req, "tenant");
    require(c.who, Action::read, Kind::tenant, acc, account_label(acc));
    return json_ok(200, to_json(need_tenant(acc, id)));
  }
  HttpResponse update_tenant(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), id = path_id(c.req, "tenant");
    require(c.who, Action::update, Kind::tenant, acc, account_label(acc));
    Body b(c.req, "tenant");
    b.refuse("id", "cannot be changed");
    b.refuse("account", "cannot be changed");
    Tenant before = need_tenant(acc, id), after = before;
    if (auto n = b.str("name")) after.name = *n;
    b.check_unknown();
    after.updated_us = now_us();
    store->update_tenant(after, c.audit("tenant.update", acc + "/" + id, acc, audit_json(std::optional(before)),
                                        audit_json(std::optional(after))));
    return json_ok(200, to_json(after));
  }
  HttpResponse delete_tenant(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), id = path_id(c.req, "tenant");
    require(c.who, Action::remove, Kind::tenant, acc, account_label(acc));
    Tenant before = need_tenant(acc, id);
    if (!store->list_datasets(acc, id, PageQuery{"", 1, ""}).empty())
      throw ApiError{409, "conflict", "tenant '" + acc + "/" + id + "' still has datasets; delete them first", ""};
    if (!store->list_connectors(acc, id, PageQuery{"", 1, ""}).empty())
      throw ApiError{409, "conflict", "tenant '" + acc + "/" + id + "' still has connectors; delete them first", ""};
    store->delete_tenant(acc, id, c.audit("tenant.delete", acc + "/" + id, acc, audit_json(std::optional(before)), "null"));
    return HttpResponse{204, {}, ""};
  }

  // ----- datasets
  // The datasets of the tenant other than `dataset`: the targets its route steps may name.
  PipelineContext tenant_context(const std::string& acc, const std::string& ten, const std::string& dataset) {
    PipelineContext context{dataset, {}};
    for (std::string after;;) {
      auto page = store->list_datasets(acc, ten, PageQuery{after, 500, ""});
      for (const Dataset& d : page) {
        if (d.id != dataset) context.siblings.push_back(d.id);
      }
      if (page.size() < 500) break;
      after = page.back().id;
    }
    return context;
  }
  // The first dataset of the tenant with a route step naming `target`; "" if none.
  std::string routing_to(const std::string& acc, const std::string& ten, const std::string& target) {
    for (std::string after;;) {
      auto page = store->list_datasets(acc, ten, PageQuery{after, 500, ""});
      for (const Dataset& d : page) {
        json::error_code ec;
        json::value settings = json::parse(d.settings_json, ec);
        const json::value* steps = ec || !settings.is_object() ? nullptr : settings.get_object().if_contains("pipeline");
        if (!steps || !steps->is_array()) continue;
        for (const auto& step : steps->get_array()) {
          const json::value* route = step.is_object() ? step.get_object().if_contains("route") : nullptr;
          const json::value* to = route && route->is_object() ? route->get_object().if_contains("to") : nullptr;
          if (!to) continue;
          if (to->is_string() && to->get_string() == target) return d.id;
          if (to->is_array() && std::find(to->get_array().begin(), to->get_array().end(), json::value(target)) != to->get_array().end())
            return d.id;
        }
      }
      if (page.size() < 500) return "";
      after = page.back().id;
    }
  }
  void read_dataset_fields(Body& b, Dataset& d) {
    if (auto n = b.str("name")) d.name = *n;
    if (auto p = b.boolean("paused")) d.paused = *p;
    if (const json::value* s = b.value("settings"); s && !s->is_null()) {
      // Validate only: the enrichment files a pipeline names are on the pipers' hosts,
      // and control opens no file an API caller names (docs/control.md).
      PipelineContext context = tenant_context(d.account, d.tenant, d.id);
      context.open_files = false;
      d.settings_json = validate_settings(*s, d.account + "/" + d.tenant + "/" + d.id, context);
    }
    b.check_unknown();
  }
  HttpResponse list_datasets(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant");
    require(c.who, Action::list, Kind::dataset, acc, account_label(acc));
    need_tenant(acc, ten);
    Page page = page_from(c.req);
    return page_response(store->list_datasets(acc, ten, page.query), page, [](const Dataset& d) { return d.id; });
  }
  HttpResponse create_dataset(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant");
    require(c.who, Action::create, Kind::dataset, acc, account_label(acc));
    Body b(c.req, "dataset");
    Dataset d;
    d.account = acc;
    d.tenant = ten;
    d.id = b.id("id", true);
    read_dataset_fields(b, d);
    need_tenant(acc, ten);
    const std::string target = acc + "/" + ten + "/" + d.id;
    if (store->get_dataset(acc, ten, d.id)) throw ApiError{409, "conflict", "dataset '" + target + "' exists", "dataset.id"};
    d.created_us = d.updated_us = now_us();
    store->create_dataset(d, c.audit("dataset.create", target, acc, "null", audit_json(std::optional(d))));
    return json_ok(201, to_json(d));
  }
  HttpResponse get_dataset(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "dataset");
    require(c.who, Action::read, Kind::dataset, acc, account_label(acc));
    return json_ok(200, to_json(need_dataset(acc, ten, id)));
  }
  HttpResponse update_dataset(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "dataset");
    require(c.who, Action::update, Kind::dataset, acc, account_label(acc));
    Body b(c.req, "dataset");
    for (const char* k : {"id", "account", "tenant"}) b.refuse(k, "cannot be changed");
    Dataset before = need_dataset(acc, ten, id), after = before;
    read_dataset_fields(b, after);
    after.updated_us = now_us();
    store->update_dataset(after, c.audit("dataset.update", acc + "/" + ten + "/" + id, acc,
                                         audit_json(std::optional(before)), audit_json(std::optional(after))));
    return json_ok(200, to_json(after));
  }
  HttpResponse delete_dataset(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "dataset");
    require(c.who, Action::remove, Kind::dataset, acc, account_label(acc));
    Dataset before = need_dataset(acc, ten, id);
    // A route target stays while a pipeline routes to it: the pipers could not compile
    // that pipeline any more.
    if (std::string from = routing_to(acc, ten, id); !from.empty())
      throw ApiError{409, "conflict", "dataset '" + from + "' routes events to '" + id + "'; change its pipeline first", ""};
    store->delete_dataset(acc, ten, id, c.audit("dataset.delete", acc + "/" + ten + "/" + id, acc,
                                                audit_json(std::optional(before)), "null"));
    return HttpResponse{204, {}, ""};
  }

  // ----- connectors
  Connector need_connector(const std::string& account, const std::string& tenant, const std::string& id) {
    need_tenant(account, tenant);
    auto c = store->get_connector(account, tenant, id);
    if (!c) not_found("connector '" + account + "/" + tenant + "/" + id + "'");
    return *c;
  }
  // Every field checked the way a connector would run it: the sink's own option
  // table for its settings, the query service's SQL guard (over the tenant's
  // datasets) for the query.
  void read_connector_fields(Body& b, Connector& c) {
    if (auto n = b.str("name")) c.name = *n;
    if (auto p = b.boolean("paused")) c.paused = *p;
    if (auto k = b.str("sink")) c.sink = *k;
    if (auto q = b.str("query", kMaxConnectorQueryBytes, /*lines=*/true)) c.query = *q;
    if (auto sch = b.str("schedule")) {
      try {
        const ConfigNode node = ConfigNode::parse(json::serialize(json::object{{"schedule", *sch}}), "connector");
        c.schedule_ms = node.duration("schedule", std::chrono::milliseconds(0)).count();
      } catch (const ConfigError&) {
        invalid(b.name("schedule"), "must be a duration like 30s, 5m or 1h");
      }
      if (c.schedule_ms < 10000 || c.schedule_ms > 7 * 86400000LL) invalid(b.name("schedule"), "must be between 10s and 7d");
    }
    const json::value* settings = b.value("settings");
    b.check_unknown();
    const SinkFactory* sink = find_sink(c.sink);
    if (!sink) {
      std::string known;
      for (const auto& f : sink_factories()) known += (known.empty() ? "" : ", ") + f.type;
      invalid(b.name("sink"), c.sink.empty() ? "is required (one of " + known + ")" : "must be one of " + known);
    }
    if (settings && !settings->is_null()) {
      if (!settings->is_object()) invalid(b.name("settings"), "must be an object");
      c.settings_json = json::serialize(*settings);
      if (c.settings_json.size() > kMaxSettingsBytes)
        invalid(b.name("settings"), "larger than " + std::to_string(kMaxSettingsBytes) + " bytes");
    }
    // The stored settings are checked again when only the sink changes.
    try {
      sink->validate(ConfigNode::parse(c.settings_json, "connector settings"), "sink " + c.sink);
    } catch (const ConfigError& e) {
      invalid(b.name("settings"), e.what());
    }
    if (c.query.empty()) invalid(b.name("query"), "is required: one SELECT over the tenant's datasets");
    SqlGuardOptions guard;
    guard.tables = tenant_context(c.account, c.tenant, "").siblings;
    if (SqlGuardVerdict v = check_untrusted_sql(c.query, guard); !v.allowed) invalid(b.name("query"), v.message);
  }
  HttpResponse list_connectors(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant");
    require(c.who, Action::list, Kind::connector, acc, account_label(acc));
    need_tenant(acc, ten);
    Page page = page_from(c.req);
    return page_response(store->list_connectors(acc, ten, page.query), page, [](const Connector& x) { return x.id; });
  }
  HttpResponse create_connector(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant");
    require(c.who, Action::create, Kind::connector, acc, account_label(acc));
    need_tenant(acc, ten);
    Body b(c.req, "connector");
    Connector x;
    x.account = acc;
    x.tenant = ten;
    x.id = b.id("id", true);
    read_connector_fields(b, x);
    const std::string target = acc + "/" + ten + "/" + x.id;
    if (store->get_connector(acc, ten, x.id))
      throw ApiError{409, "conflict", "connector '" + target + "' exists", "connector.id"};
    x.created_us = x.updated_us = now_us();
    store->create_connector(x, c.audit("connector.create", target, acc, "null", audit_json(std::optional(x))));
    return json_ok(201, to_json(x));
  }
  HttpResponse get_connector(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "connector");
    require(c.who, Action::read, Kind::connector, acc, account_label(acc));
    return json_ok(200, to_json(need_connector(acc, ten, id)));
  }
  HttpResponse update_connector(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "connector");
    require(c.who, Action::update, Kind::connector, acc, account_label(acc));
    Body b(c.req, "connector");
    for (const char* k : {"id", "account", "tenant"}) b.refuse(k, "cannot be changed");
    Connector before = need_connector(acc, ten, id), after = before;
    read_connector_fields(b, after);
    after.updated_us = now_us();
    store->update_connector(after, c.audit("connector.update", acc + "/" + ten + "/" + id, acc,
                                           audit_json(std::optional(before)), audit_json(std::optional(after))));
    return json_ok(200, to_json(after));
  }
  HttpResponse delete_connector(Ctx& c) {
    const std::string acc = path_id(c.req, "account"), ten = path_id(c.req, "tenant"), id = path_id(c.req, "connector");
    require(c.who, Action::remove, Kind::connector, acc, account_label(acc));
    Connector before = need_connector(acc, ten, id);
    store->delete_connector(acc, ten, id, c.audit("connector.delete", acc + "/" + ten + "/" + id, acc,
                                                  audit_json(std::optional(before)), "null"));
    return HttpResponse{204, {}, ""};
  }

  // ----- users
  // The account whose users/keys/audit a listing shows: the caller's own, or for a
  // system admin ?account= (empty: all).
  std::string scope_filter(const Ctx& c, Kind k) {
    std::string want;
    if (auto it = c.req.query.find("account"); it != c.req.query.end() && !it->second.empty()) {
      if (!is_valid_id(it->second)) invalid("account", "invalid account id");
      want = it->second;
    }
    if (c.who.role == Role::system_admin) {
      require(c.who, Action::list, k, want, account_label(want));
      return want;
    }
    require(c.who, Action::list, k, want.empty() ? c.who.account : want, account_label(want));
    return c.who.account;
  }
  HttpResponse list_users(Ctx& c) {
    const std::string acc = scope_filter(c, Kind::user);
    Page page = page_from(c.req);
    page.query.account = acc;
    return page_response(store->list_users(page.query), page, [](const User& u) { return u.id; });
  }
  void check_role_account(const std::string& prefix, Role role, const std::string& account) {
    if (role == Role::system_admin) {
      if (!account.empty()) invalid(prefix + ".account", "a system_admin belongs to no account");
    } else if (account.empty()) {
      invalid(prefix + ".account", "is required for role " + std::string(role_name(role)));
    }
  }
  Role user_role(Body& b, const std::string& current) {
    auto r = b.str("role", 32);
    const std::string name = r.value_or(current);
    auto role = parse_role(name);
    if (!role || !(*role == Role::system_admin || *role == Role::account_admin || *role == Role::account_viewer))
      invalid("user.role", "must be system_admin, account_admin or account_viewer");
    return *role;
  }
  std::string password_field(Body& b) {
    auto p = b.str("password", kMaxPasswordLength);
    if (!p) return "";
    if (p->size() < kMinPasswordLength)
      invalid("user.password", "must be at least " + std::to_string(kMinPasswordLength) + " characters");
    return hash_password(*p);
  }
  HttpResponse create_user(Ctx& c) {
    Body b(c.req, "user");
    User u;
    u.email = lower(b.required_str("email", 254));
    if (!valid_email(u.email)) invalid("user.email", "not an email address");
    Role role = user_role(b, "");
    u.role = role_name(role);
    u.account = b.id("account", false);
    require(c.who, Action::create, Kind::user, u.account, account_label(u.account), role);
    check_role_account("user", role, u.account);
    if (!u.account.empty()) need_account(u.account);
    u.name = b.str("name").value_or("");
    u.disabled = b.boolean("disabled").value_or(false);
    if (!b.has("password")) invalid("user.password", "is required");
    u.password_hash = password_field(b);
    b.check_unknown();
    if (store->find_user_by_email(u.email)) throw ApiError{409, "conflict", "a user with this email exists", "user.email"};
    u.id = "u" + lower_ulid();
    u.created_us = u.updated_us = now_us();
    store->create_user(u, c.audit("user.create", "user:" + u.id, u.account, "null", audit_json(std::optional(u))));
    return json_ok(201, to_json(u));
  }
  User visible_user(Ctx& c, Action a) {
    const std::string id = path_generated_id(c.req, "user");
    auto u = store->get_user(id);
    const std::string label = "user '" + id + "'";
    if (!u) {
      require(c.who, a, Kind::user, c.who.account, label);  // 403 for credentials that see no users
      not_found(label);
    }
    require(c.who, Action::read, Kind::user, u->account, label);  // another account's: as if missing
    require(c.who, a, Kind::user, u->account, label);
    return *u;
  }
  HttpResponse get_user(Ctx& c) { return json_ok(200, to_json(visible_user(c, Action::read))); }
  HttpResponse update_user(Ctx& c) {
    User before = visible_user(c, Action::update), after = before;
    Body b(c.req, "user");
    b.refuse("id", "cannot be changed");
    if (auto e = b.str("email", 254)) {
      after.email = lower(*e);
      if (!valid_email(after.email)) invalid("user.email", "not an email address");
    }
    Role role = user_role(b, before.role);
    after.role = role_name(role);
    if (b.has("account")) after.account = b.id("account", false);
    else b.value("account");
    require(c.who, Action::update, Kind::user, after.account, account_label(after.account), role);
    check_role_account("user", role, after.account);
    if (!after.account.empty() && after.account != before.account) need_account(after.account);
    if (auto n = b.str("name")) after.name = *n;
    if (auto d = b.boolean("disabled")) after.disabled = *d;
    std::string hash = password_field(b);
    b.check_unknown();
    if (!hash.empty()) after.password_hash = hash;
    after.updated_us = now_us();
    json::object after_audit = to_json(after);
    if (!hash.empty()) after_audit["password_changed"] = true;
    store->update_user(after, c.audit("user.update", "user:" + after.id, after.account,
                                      audit_json(std::optional(before)), json::serialize(after_audit)));
    return json_ok(200, to_json(after));
  }
  HttpResponse delete_user(Ctx& c) {
    User before = visible_user(c, Action::remove);
    store->delete_user(before.id, c.audit("user.delete", "user:" + before.id, before.account,
                                          audit_json(std::optional(before)), "null"));
    return HttpResponse{204, {}, ""};
  }

  // ----- API keys
  HttpResponse list_keys(Ctx& c) {
    const std::string acc = scope_filter(c, Kind::api_key);
    Page page = page_from(c.req);
    page.query.account = acc;
    return page_response(store->list_keys(page.query), page, [](const ApiKey& k) { return k.id; });
  }
  HttpResponse create_key(Ctx& c) {
    Body b(c.req, "key");
    ApiKey k;
    auto rname = b.str("role", 32);
    if (!rname) invalid("key.role", "is required");
    auto role = parse_role(*rname);
    if (!role) invalid("key.role", "must be one of system_admin, account_admin, account_viewer, ingest, query, service");
    k.role = role_name(*role);
    k.account = b.id("account", false);
    k.tenant = b.id("tenant", false);
    k.dataset = b.id("dataset", false);
    k.service = b.str("service", 32).value_or("");
    k.name = b.str("name").value_or("");
    b.check_unknown();
    require(c.who, Action::create, Kind::api_key, k.account, account_label(k.account), *role);
    // The scope each role takes, and nothing more.
    const bool tenant_scoped = *role == Role::ingest || *role == Role::query;
    if (*role == Role::service) {
      if (!is_service_name(k.service))
        invalid("key.service", "must be one of proxy, receiver, piper, packer, query, connector");
    } else if (!k.service.empty()) {
      invalid("key.service", "only for role service");
    }
    if (*role == Role::system_admin || *role == Role::service) {
      if (!k.account.empty()) invalid("key.account", "a " + k.role + " key belongs to no account");
    } else if (k.account.empty()) {
      invalid("key.account", "is required for role " + k.role);
    }
    if (tenant_scoped && k.tenant.empty()) invalid("key.tenant", "is required for role " + k.role);
    if (!tenant_scoped && !k.tenant.empty()) invalid("key.tenant", "only for roles ingest and query");
    if (*role != Role::ingest && !k.dataset.empty()) invalid("key.dataset", "only for role ingest");
    if (!k.account.empty()) need_account(k.account);
    if (!k.tenant.empty() && !store->get_tenant(k.account, k.tenant))
      invalid("key.tenant", "no tenant '" + k.account + "/" + k.tenant + "'");
    if (!k.dataset.empty() && !store->get_dataset(k.account, k.tenant, k.dataset))
      invalid("key.dataset", "no dataset '" + k.account + "/" + k.tenant + "/" + k.dataset + "'");
    NewKey nk = generate_api_key();
    k.id = nk.id;
    k.secret_hash = nk.secret_hash;
    k.created_by = c.who.actor();
    k.created_us = now_us();
    store->create_key(k, c.audit("key.create", "key:" + k.id, k.account, "null", audit_json(std::optional(k))));
    json::object out = to_json(k);
    out["key"] = nk.token;  // the only time the secret is shown
    return json_ok(201, out);
  }
  ApiKey visible_key(Ctx& c, Action a) {
    const std::string id = path_generated_id(c.req, "key");
    auto k = store->get_key(id);
    const std::string label = "key '" + id + "'";
    if (!k) {
      require(c.who, a, Kind::api_key, c.who.account, label);
      not_found(label);
    }
    require(c.who, Action::read, Kind::api_key, k->account, label);  // another account's: as if missing
    auto role = parse_role(k->role);
    require(c.who, a, Kind::api_key, k->account, label, a == Action::read ? std::nullopt : role);
    return *k;
  }
  HttpResponse get_key(Ctx& c) { return json_ok(200, to_json(visible_key(c, Action::read))); }
  HttpResponse update_key(Ctx& c) {
    ApiKey before = visible_key(c, Action::update), after = before;
    Body b(c.req, "key");
    for (const char* f : {"id", "role", "account", "tenant", "dataset", "service"})
      b.refuse(f, "cannot be changed; create a new key");
    if (auto n = b.str("name")) after.name = *n;
    if (auto r = b.boolean("revoked")) {
      if (!*r && before.revoked_us) invalid("key.revoked", "a revoked key stays revoked; create a new key");
      if (*r && !before.revoked_us) after.revoked_us = now_us();
    }
    b.check_unknown();
    store->update_key(after, c.audit("key.update", "key:" + after.id, after.account, audit_json(std::optional(before)),
                                     audit_json(std::optional(after))));
    return json_ok(200, to_json(after));
  }
  // Revokes: the row stays, so the audit log and last-used time keep their meaning.
  HttpResponse delete_key(Ctx& c) {
    ApiKey before = visible_key(c, Action::remove), after = before;
    if (!before.revoked_us) {
      after.revoked_us = now_us();
      store->update_key(after, c.audit("key.revoke", "key:" + after.id, after.account,
                                       audit_json(std::optional(before)), audit_json(std::optional(after))));
    }
    return json_ok(200, to_json(after));
  }

  // ----- audit
  HttpResponse list_audit(Ctx& c) {
    const std::string acc = scope_filter(c, Kind::audit);
    Page page = page_from(c.req);
    if (!page.query.after.empty() &&
        (page.query.after.size() > 18 || !std::all_of(page.query.after.begin(), page.query.after.end(), ::isdigit)))
      invalid("cursor", "not a cursor this API returned");
    page.query.account = acc;
    return page_response(store->list_audit(page.query), page, [](const AuditEntry& e) { return std::to_string(e.seq); });
  }

  // ----- sessions
  const std::string& dummy() {
    std::call_once(dummy_once, [this] { dummy_hash = hash_password(random_hex(16)); });
    return dummy_hash;
  }
  HttpResponse login(Ctx& c) {
    Body b(c.req, "login");
    const std::string email = lower(b.required_str("email", 254));
    auto pw = b.str("password", kMaxPasswordLength);
    b.check_unknown();
    int64_t retry = 0;
    if (!logins.take("email:" + email, retry) || !logins.take("peer:" + peer_host(c.req.peer), retry))
      throw rate_limited(retry);
    auto u = store->find_user_by_email(email);
    const bool ok = verify_password(pw.value_or(""), u ? u->password_hash : dummy());
    if (!u || !ok || u->disabled) throw ApiError{401, "unauthenticated", "wrong email or password", ""};
    const std::string token = random_hex(32);
    Session s{hash_secret(token), u->id, now_us(), now_us() + options.session_ttl.count() * 1000};
    store->delete_expired_sessions(s.created_us);
    store->create_session(s);
    HttpResponse r = json_ok(200, json::object{{"user", to_json(*u)}, {"expires", iso(s.expires_us)}});
    r.headers["Set-Cookie"] = std::string(kSessionCookie) + "=" + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                              std::to_string(options.session_ttl.count() / 1000) + (options.secure_cookie ? "; Secure" : "");
    return r;
  }
  HttpResponse logout(Ctx& c) {
    if (c.who.kind != "user") invalid("session", "logout ends a session; API keys are revoked instead");
    if (auto t = cookie(c.req, kSessionCookie)) store->delete_session(hash_secret(*t));
    HttpResponse r{204, {}, ""};
    r.headers["Set-Cookie"] = std::string(kSessionCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
    return r;
  }
  HttpResponse me(Ctx& c) {
    const Principal& w = c.who;
    json::object out{{"kind", w.kind},
                     {"id", w.id},
                     {"role", role_name(w.role)},
                     {"account", str_or_null(w.account)},
                     {"tenant", str_or_null(w.tenant)},
                     {"dataset", str_or_null(w.dataset)},
                     {"service", str_or_null(w.service)},
                     {"email", nullptr}};
    if (w.kind == "user")
      if (auto u = store->get_user(w.id)) out["email"] = u->email;  // the UI shows who is logged in
    return json_ok(200, out);
  }
  HttpResponse openapi(Ctx&) { return HttpResponse::json(200, openapi_document()); }

  // ----- config distribution
  HttpResponse get_config(Ctx& c) {
    require(c.who, Action::read, Kind::config, "", "");
    auto q = c.req.query.find("service");
    std::string service = q == c.req.query.end() ? "" : q->second;
    if (c.who.role == Role::service) {
      if (!service.empty() && service != c.who.service)
        invalid("service", "a service key fetches its own service's config ('" + c.who.service + "')");
      service = c.who.service;
    } else if (!is_service_name(service)) {
      invalid("service", "must be one of proxy, receiver, piper, packer, query, connector");
    }
    std::chrono::milliseconds wait{0};
    if (auto w = c.req.query.find("wait"); w != c.req.query.end()) {
      const std::string& v = w->second;
      const int64_t max_s = options.config_wait_max.count() / 1000;
      if (v.empty() || v.size() > 6 || !std::all_of(v.begin(), v.end(), ::isdigit) || std::stoll(v) > max_s)
        invalid("wait", "must be whole seconds, 0.." + std::to_string(max_s));
      wait = std::chrono::seconds(std::stoll(v));
    }
    const std::string inm(c.req.header("If-None-Match").value_or(""));
    // Each waiting request holds a server thread: beyond the cap, answer at once.
    bool waiting = wait.count() > 0 && !inm.empty();
    if (waiting && config_waiters.fetch_add(1) >= options.config_max_waiters) {
      config_waiters.fetch_sub(1);
      waiting = false;
    }
    ConfigReply r = config(service, inm, waiting ? wait : std::chrono::milliseconds(0));
    if (waiting) config_waiters.fetch_sub(1);
    HttpResponse out = r.document ? HttpResponse::json(200, std::move(*r.document)) : HttpResponse{304, {}, ""};
    out.headers["ETag"] = r.etag;
    out.headers["Cache-Control"] = "no-cache";
    return out;
  }

  // ----- leases (storage/lease_store.h semantics, one request per call)
  struct LeaseRequest {
    Lease lease;
    std::chrono::milliseconds ttl{0};
  };
  LeaseRequest lease_request(Ctx& c, bool with_token, bool with_ttl) {
    require(c.who, Action::update, Kind::lease, "", "");
    if (!leases) throw ApiError{503, "unavailable", "this control serves no leases", ""};
    Body b(c.req, "lease");
    LeaseRequest r;
    r.lease.name = b.required_str("name", 300);
    r.lease.holder = b.required_str("holder", 200);
    // A service key works only on its own stage's leases: "<stage>/<account>/<tenant>/<dataset>".
    if (c.who.role == Role::service && r.lease.name.rfind(c.who.service + "/", 0) != 0)
      invalid("lease.name", "a " + c.who.service + " key holds only leases named " + c.who.service + "/...");
    if (with_token) {
      auto t = b.number("token", true);
      if (!t || *t < 1) invalid("lease.token", "is required (the token acquire returned)");
      r.lease.token = static_cast<uint64_t>(*t);
    }
    if (with_ttl) {
      auto ttl = b.number("ttl_ms", true);
      if (!ttl || *ttl < 1000 || *ttl > 3600000) invalid("lease.ttl_ms", "must be 1000..3600000");
      r.ttl = std::chrono::milliseconds(static_cast<int64_t>(*ttl));
    }
    b.check_unknown();
    return r;
  }
  static json::object lease_json(const Lease& l) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(l.expires - std::chrono::system_clock::now());
    return {{"name", l.name}, {"holder", l.holder}, {"token", l.token}, {"expires_in_ms", std::max<int64_t>(0, left.count())}};
  }
  HttpResponse acquire_lease(Ctx& c) {
    LeaseRequest r = lease_request(c, false, true);
    auto got = leases->acquire(r.lease.name, r.lease.holder, r.ttl);
    if (!got) throw ApiError{409, "conflict", "lease '" + r.lease.name + "' is held by another worker", ""};
    return json_ok(200, lease_json(*got));
  }
  HttpResponse renew_lease(Ctx& c) {
    LeaseRequest r = lease_request(c, true, true);
    if (!leases->renew(r.lease, r.ttl)) throw ApiError{409, "conflict", "lease '" + r.lease.name + "' is lost", ""};
    return json_ok(200, lease_json(r.lease));
  }
  HttpResponse release_lease(Ctx& c) {
    LeaseRequest r = lease_request(c, true, false);
    leases->release(r.lease);
    return HttpResponse{204, {}, ""};
  }
  HttpResponse validate_lease(Ctx& c) {
    LeaseRequest r = lease_request(c, true, false);
    return json_ok(200, json::object{{"valid", leases->validate(r.lease)}});
  }

  // ----- health
  static json::object report_json(const HealthReport& r) {
    json::object o{{"time", iso(r.time_us)},
                   {"status", r.status},
                   {"events_per_second", r.events_per_second},
                   {"lag_seconds", r.lag_seconds ? json::value(*r.lag_seconds) : json::value(nullptr)},
                   {"spool_depth", r.spool_depth ? json::value(*r.spool_depth) : json::value(nullptr)},
                   {"errors", r.errors},
                   {"events_total", r.events_total ? json::value(*r.events_total) : json::value(nullptr)},
                   {"seq", r.seq}};
    return o;
  }
  json::object component_json(const ComponentHealth& h) const {
    json::object o = report_json(h.last);
    o["id"] = h.id;
    o["service"] = h.last.service;
    o["instance"] = h.last.instance;
    o["version"] = h.last.version;
    o["reported_status"] = h.last.status;
    o["status"] = h.status;
    o["last_seen"] = iso(h.last.time_us);
    o["first_seen"] = iso(h.first_seen_us);
    o.erase("time");
    o.erase("seq");
    return o;
  }
  HttpResponse report_health(Ctx& c) {
    require(c.who, Action::create, Kind::health, "", "");
    Body b(c.req, "report");
    HealthReport r;
    r.service = b.str("service", 32).value_or("");
    if (c.who.role == Role::service) {
      if (!r.service.empty() && r.service != c.who.service)
        invalid("report.service", "a service key reports for its own service ('" + c.who.service + "')");
      r.service = c.who.service;
    } else if (!is_service_name(r.service)) {
      invalid("report.service", "must be one of proxy, receiver, piper, packer, query, connector");
    }
    r.instance = b.id("instance", true);
    if (r.instance.size() > 50) invalid("report.instance", "longer than 50 characters");
    r.status = b.required_str("status", 16);
    if (r.status != "ok" && r.status != "degraded" && r.status != "failing")
      invalid("report.status", "must be ok, degraded or failing");
    r.version = b.str("version", 64).value_or("");
    r.events_per_second = b.number("events_per_second").value_or(0);
    r.lag_seconds = b.number("lag_seconds");
    if (auto d = b.number("spool_depth", true)) r.spool_depth = static_cast<int64_t>(*d);
    r.errors = static_cast<int64_t>(b.number("errors", true).value_or(0));
    if (auto d = b.number("events_total", true)) r.events_total = static_cast<int64_t>(*d);
    b.check_unknown();
    const std::string id = HealthBoard::component_id(r.service, r.instance);
    if (!record_health(std::move(r)))
      throw ApiError{409, "conflict", "control tracks at most " + std::to_string(options.health_max_components) +
                                          " components", "report.instance"};
    return json_ok(200, json::object{{"id", id}});
  }
  bool record_health(HealthReport r) {
    r.time_us = now_us();
    return health.report(std::move(r));
  }
  // The option schemas of the built-in sources and steps, for the UI's forms.
  HttpResponse get_plugins(Ctx& c) {
    require(c.who, Action::read, Kind::plugins, "", "");
    return HttpResponse::json(200, plugins_document());
  }
  HttpResponse list_health(Ctx& c) {
    require(c.who, Action::list, Kind::health, "", "");
    json::array items;
    for (const ComponentHealth& h : health.list(now_us())) items.push_back(component_json(h));
    return json_ok(200, json::object{{"items", std::move(items)},
                                     {"timeout_seconds", options.health_timeout.count() / 1000.0}});
  }
  HttpResponse get_health(Ctx& c) {
    const std::string id = path_id(c.req, "component");
    require(c.who, Action::read, Kind::health, "", "");
    auto h = health.get(id, now_us());
    if (!h) not_found("component '" + id + "'");
    // The history in pages, oldest first: ?limit= (default 500, a whole default history)
    // and ?cursor= (the next_cursor of the page before; opaque, like every cursor).
    Page page = page_from(c.req);
    if (!c.req.query.count("limit")) page.want = kMaxPageSize;
    uint64_t after = 0;
    if (const std::string& a = page.query.after; !a.empty()) {
      if (a.size() > 19 || !std::all_of(a.begin(), a.end(), ::isdigit)) invalid("cursor", "not a cursor this API returned");
      after = std::stoull(a);
    }
    json::object o = component_json(*h);
    std::vector<HealthReport> reports = health.history(id, after, page.want + 1);
    const bool more = reports.size() > page.want;
    if (more) reports.resize(page.want);
    json::array history;
    for (const HealthReport& r : reports) history.push_back(report_json(r));
    o["history"] = std::move(history);
    o["next_cursor"] = more ? json::value(base64url("c1:" + std::to_string(reports.back().seq))) : json::value(nullptr);
    return json_ok(200, o);
  }

  // ----- pipeline preview: sample events through a pipeline, nothing stored.
  HttpResponse preview_pipeline_request(Ctx& c) {
    Body b(c.req, "preview");
    const json::value* steps = b.value("pipeline");
    if (!steps || !steps->is_array()) invalid("preview.pipeline", "must be a list of steps");
    const json::value* events = b.value("events");
    if (!events || !events->is_array()) invalid("preview.events", "must be a list of events (JSON objects)");
    const PreviewLimits limits;
    if (events->get_array().size() > limits.max_events)
      throw ApiError{413, "too_large", "more than " + std::to_string(limits.max_events) + " sample events", "preview.events"};
    std::vector<Event> input;
    for (size_t i = 0; i < events->get_array().size(); ++i) {
      const json::value& e = events->get_array()[i];
      if (!e.is_object()) invalid("preview.events[" + std::to_string(i) + "]", "must be a JSON object");
      input.push_back(e.get_object());
    }
    // With a dataset: its tenant's datasets are the route targets, and the caller must
    // be allowed to read it. Without: targets need only be valid ids.
    const std::string acc = b.id("account", false), ten = b.id("tenant", false), ds = b.id("dataset", false);
    b.check_unknown();
    // Control reads no file an API caller names: file steps fail each sample saying so.
    PipelineContext context;
    context.open_files = false;
    std::string where = "pipeline";
    if (acc.empty() && ten.empty() && ds.empty()) {
      require(c.who, Action::read, Kind::dataset, c.who.account, "");  // data-plane keys may not
      context.known_datasets = false;
    } else {
      if (acc.empty() || ten.empty() || ds.empty()) invalid("preview.dataset", "account, tenant and dataset go together");
      require(c.who, Action::read, Kind::dataset, acc, account_label(acc));
      need_dataset(acc, ten, ds);
      context = tenant_context(acc, ten, ds);
      context.open_files = false;
      where = "dataset " + acc + "/" + ten + "/" + ds;
    }
    try {
      return json_ok(200, bf::preview_pipeline(steps->get_array(), std::move(input), where, &context));
    } catch (const PipelineError& e) {
      invalid("preview.pipeline", e.what());
    }
  }
};

const std::vector<ControlApi::Impl::Route>& ControlApi::Impl::table() {
  using I = Impl;
  auto h = [](HttpResponse (I::*fn)(Ctx&)) { return Handler([fn](I& i, Ctx& c) { return (i.*fn)(c); }); };
  const std::string acc = "/api/v1/accounts/{account}", ten = acc + "/tenants/{tenant}";
  static const std::vector<Route> routes{
      {"GET", "/api/v1/openapi.json", true, h(&I::openapi)},
      {"POST", "/api/v1/auth/login", true, h(&I::login)},
      {"POST", "/api/v1/auth/logout", false, h(&I::logout)},
      {"GET", "/api/v1/auth/me", false, h(&I::me)},
      {"GET", "/api/v1/accounts", false, h(&I::list_accounts)},
      {"POST", "/api/v1/accounts", false, h(&I::create_account)},
      {"GET", acc, false, h(&I::get_account)},
      {"PATCH", acc, false, h(&I::update_account)},
      {"DELETE", acc, false, h(&I::delete_account)},
      {"GET", acc + "/tenants", false, h(&I::list_tenants)},
      {"POST", acc + "/tenants", false, h(&I::create_tenant)},
      {"GET", ten, false, h(&I::get_tenant)},
      {"PATCH", ten, false, h(&I::update_tenant)},
      {"DELETE", ten, false, h(&I::delete_tenant)},
      {"GET", ten + "/datasets", false, h(&I::list_datasets)},
      {"POST", ten + "/datasets", false, h(&I::create_dataset)},
      {"GET", ten + "/datasets/{dataset}", false, h(&I::get_dataset)},
      {"PATCH", ten + "/datasets/{dataset}", false, h(&I::update_dataset)},
      {"DELETE", ten + "/datasets/{dataset}", false, h(&I::delete_dataset)},
      {"GET", ten + "/connectors", false, h(&I::list_connectors)},
      {"POST", ten + "/connectors", false, h(&I::create_connector)},
      {"GET", ten + "/connectors/{connector}", false, h(&I::get_connector)},
      {"PATCH", ten + "/connectors/{connector}", false, h(&I::update_connector)},
      {"DELETE", ten + "/connectors/{connector}", false, h(&I::delete_connector)},
      {"GET", "/api/v1/users", false, h(&I::list_users)},
      {"POST", "/api/v1/users", false, h(&I::create_user)},
      {"GET", "/api/v1/users/{user}", false, h(&I::get_user)},
      {"PATCH", "/api/v1/users/{user}", false, h(&I::update_user)},
      {"DELETE", "/api/v1/users/{user}", false, h(&I::delete_user)},
      {"GET", "/api/v1/keys", false, h(&I::list_keys)},
      {"POST", "/api/v1/keys", false, h(&I::create_key)},
      {"GET", "/api/v1/keys/{key}", false, h(&I::get_key)},
      {"PATCH", "/api/v1/keys/{key}", false, h(&I::update_key)},
      {"DELETE", "/api/v1/keys/{key}", false, h(&I::delete_key)},
      {"GET", "/api/v1/audit", false, h(&I::list_audit)},
      {"GET", "/api/v1/config", false, h(&I::get_config)},
      {"POST", "/api/v1/health", false, h(&I::report_health)},
      {"GET", "/api/v1/health", false, h(&I::list_health)},
      {"GET", "/api/v1/health/{component}", false, h(&I::get_health)},
      {"GET", "/api/v1/plugins", false, h(&I::get_plugins)},
      {"POST", "/api/v1/leases/acquire", false, h(&I::acquire_lease)},
      {"POST", "/api/v1/leases/renew", false, h(&I::renew_lease)},
      {"POST", "/api/v1/leases/release", false, h(&I::release_lease)},
      {"POST", "/api/v1/leases/validate", false, h(&I::validate_lease)},
      {"POST", "/api/v1/pipelines/preview", false, h(&I::preview_pipeline_request)},
  };
  return routes;
}

namespace {
std::mutex plugins_mu;
std::string& plugins_doc() {
  static std::string doc = R"({"sources":{},"steps":{}})";
  return doc;
}
}  // namespace
void set_plugins_document(std::string json) {
  std::lock_guard lock(plugins_mu);
  plugins_doc() = std::move(json);
}
std::string plugins_document() {
  std::lock_guard lock(plugins_mu);
  return plugins_doc();
}

ControlApi::ControlApi(std::shared_ptr<ControlStore> store, ControlOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(options))) {}
ControlApi::~ControlApi() = default;

void ControlApi::add_routes(Router& router) {
  for (const auto& r : Impl::table()) {
    router.add(r.method, r.pattern, [impl = impl_.get(), &r](HttpRequest& req) { return impl->serve(r, req); });
  }
}

ControlApi::ConfigReply ControlApi::config(const std::string& service, const std::string& if_none_match,
                                           std::chrono::milliseconds wait) {
  return impl_->config(service, if_none_match, wait);
}
void ControlApi::config_changed() { impl_->config_changed(); }
bool ControlApi::record_health(HealthReport report) { return impl_->record_health(std::move(report)); }
void ControlApi::set_lease_store(std::shared_ptr<LeaseStore> leases) { impl_->leases = std::move(leases); }
void ControlApi::shutdown() {
  {
    std::lock_guard lock(impl_->config_mu);
    impl_->closing = true;
  }
  impl_->config_cv.notify_all();
}

std::vector<RouteSpec> ControlApi::routes() {
  std::vector<RouteSpec> out;
  for (const auto& r : Impl::table()) out.push_back({r.method, r.pattern});
  return out;
}

std::unique_ptr<ControlStore> open_control_store(const ControlOptions& options) {
  if (options.store_type == "postgres") {
    PostgresStoreOptions pg;
    pg.password = options.store_password;
    return open_postgres_store(options.store_url, pg);
  }
  return open_sqlite_store(options.db);
}

std::shared_ptr<LeaseStore> open_control_leases(const ControlOptions& options) {
  if (options.store_type == "postgres") {
    PostgresStoreOptions pg;
    pg.password = options.store_password;
    return open_postgres_lease_store(options.store_url, pg);
  }
  return std::make_shared<SqliteLeaseStore>(options.db);
}

ControlServer::ControlServer(std::shared_ptr<ControlStore> store, ControlOptions options) {
  HttpServerOptions http = options.http;
  // Leases live in control's database (their own table), each change one transaction.
  std::shared_ptr<LeaseStore> leases = open_control_leases(options);
  api_ = std::make_unique<ControlApi>(std::move(store), std::move(options));
  api_->set_lease_store(std::move(leases));
  Router router;
  api_->add_routes(router);
  add_standard_endpoints(router, [] { return true; });
  router.set_fallback(serve_ui);  // the web UI at /, behind every route above
  server_ = std::make_unique<HttpServer>("control", http, std::move(router));
}
ControlServer::~ControlServer() = default;
void ControlServer::start() { server_->start(); }
void ControlServer::stop() {
  api_->shutdown();  // waiting config requests answer now, so the server's threads can stop
  server_->stop();
}
uint16_t ControlServer::port() const { return server_->port(); }

}  // namespace bf::control
