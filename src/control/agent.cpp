#include "control/agent.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>

#include "common/catalog.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/spool.h"
#include "common/worker.h"
#include "control/config_document.h"
#include "net/http_client.h"

namespace bf::control {

namespace json = boost::json;

namespace {

Counter& client_counter(const std::string& name, const std::string& help, const std::string& service,
                        Labels extra = {}) {
  Labels labels{{"service", service}};
  for (auto& l : extra) labels.push_back(std::move(l));
  return metrics().counter(name, help, labels);
}

Counter& client_errors(const std::string& service, const std::string& kind) {
  return client_counter("bf_control_client_errors_total",
                        "Failed requests to control (config fetches, health reports), by kind", service,
                        {{"kind", kind}});
}

// The host name as an id: lower-cased, other characters as '-', at most 50.
std::string default_instance() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "local";
  std::string out;
  for (const char* p = host; *p && out.size() < 50; ++p) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '-';
  }
  if (!is_valid_id(out)) return "local";
  return out;
}

HttpClientOptions client_options(const ControlClientOptions& o, std::chrono::milliseconds timeout) {
  HttpClientOptions h;
  h.connect_timeout = std::chrono::milliseconds(3000);
  h.timeout = timeout;
  h.max_retries = 0;  // the callers retry with their own pacing
  h.ca_file = o.ca_file;
  return h;
}

}  // namespace

ControlClientOptions parse_control_client_options(const ConfigNode& s, const std::string& service) {
  ControlClientOptions o;
  o.url = s.str("url");
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0)
    s.fail("url", "must start with http:// or https://");
  while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
  o.key = s.str("key");
  if (o.key.empty()) s.fail("key", "a service key is required (bytefreezer control create-key --role service)");
  o.cache_file = s.str("cache_file", "./data/" + service + "-config.json");
  o.wait = s.duration("wait", o.wait);
  if (o.wait.count() < 1000 || o.wait.count() > 600000) s.fail("wait", "must be between 1s and 10m");
  o.startup_timeout = s.duration("startup_timeout", o.startup_timeout);
  o.health_interval = s.duration("health_interval", o.health_interval);
  if (o.health_interval.count() != 0 && o.health_interval.count() < 1000)
    s.fail("health_interval", "must be 0 (off) or at least 1s");
  o.instance = s.str("instance", default_instance());
  if (!is_valid_id(o.instance) || o.instance.size() > 50)
    s.fail("instance", "must match [a-z0-9][a-z0-9_-]{0,49}");
  o.ca_file = s.str("ca_file", "");
  return o;
}

ConfigFetch http_config_fetch(const ControlClientOptions& options, std::shared_ptr<std::atomic<bool>> cancel) {
  HttpClientOptions h = client_options(options, options.wait + std::chrono::seconds(15));
  h.cancel = std::move(cancel);
  auto client = std::make_shared<HttpClient>(h);
  const std::string url = options.url + "/api/v1/config", key = options.key;
  return [client, url, key](const std::string& etag, std::chrono::milliseconds wait) {
    Headers headers{{"Authorization", "Bearer " + key}};
    if (!etag.empty()) headers["If-None-Match"] = etag;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(wait).count();
    HttpResult r = client->send("GET", url + "?wait=" + std::to_string(secs), headers, "");
    if (r.status == 304) return FetchedConfig{etag, std::nullopt};
    if (r.status != 200)
      throw std::runtime_error("control answered HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
    auto it = r.headers.find("ETag");
    return FetchedConfig{it == r.headers.end() ? config_etag(r.body) : it->second, std::move(r.body)};
  };
}

// ----- ConfigClient

ConfigClient::ConfigClient(ConfigFetch fetch, std::string cache_file, std::chrono::milliseconds wait, std::string what)
    : fetch_(std::move(fetch)), cache_file_(std::move(cache_file)), what_(std::move(what)), wait_(wait) {}

ConfigClient::~ConfigClient() { stop(); }

std::string ConfigClient::etag() const {
  std::lock_guard lock(mu_);
  return etag_;
}

void ConfigClient::on_change(Apply apply) { apply_ = std::move(apply); }

bool ConfigClient::accept(const FetchedConfig& fetched, bool apply) {
  if (!fetched.document) return false;
  auto catalog = std::make_shared<const Catalog>(catalog_from_config_document(*fetched.document));
  if (apply && apply_) apply_(catalog);
  if (!cache_file_.empty()) {
    std::filesystem::path p(cache_file_);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    write_file_durable(p, json::serialize(json::object{{"etag", fetched.etag}, {"document", *fetched.document}}));
  }
  std::lock_guard lock(mu_);
  etag_ = fetched.etag;
  current_ = std::move(catalog);
  return true;
}

std::shared_ptr<const Catalog> ConfigClient::load(std::chrono::milliseconds startup_timeout) {
  const bool cached = !cache_file_.empty() && std::filesystem::exists(cache_file_);
  // With a cache, one attempt: a restart while control is down must not wait.
  const auto deadline = std::chrono::steady_clock::now() + (cached ? std::chrono::milliseconds(0) : startup_timeout);
  std::string last_error;
  while (true) {
    try {
      if (accept(fetch_("", std::chrono::milliseconds(0)), false)) {
        spdlog::info("{}: config {} from control", what_, etag());
        return current_;
      }
    } catch (const ConfigError&) {
      throw;  // control sent a document this build cannot read: not a reason to use an old one
    } catch (const std::exception& e) {
      last_error = e.what();
      client_errors(what_, "config").inc();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!cached)
    throw ConfigError(what_ + ": control is unreachable (" + last_error + ") and there is no cached config at " +
                      cache_file_);
  json::value v;
  try {
    v = json::parse(read_file(cache_file_));
    const json::object& o = v.as_object();
    FetchedConfig f{std::string(o.at("etag").as_string()), std::string(o.at("document").as_string())};
    const std::string saved = cache_file_;
    cache_file_.clear();  // do not rewrite the file it came from
    accept(f, false);
    cache_file_ = saved;
  } catch (const std::exception& e) {
    throw ConfigError(what_ + ": control is unreachable (" + last_error + ") and the cached config " + cache_file_ +
                      " is unreadable: " + e.what());
  }
  client_counter("bf_control_client_cache_starts_total", "Starts from the cached config (control unreachable)", what_)
      .inc();
  spdlog::warn("{}: control is unreachable ({}); starting from the cached config {} ({})", what_, last_error,
               cache_file_, etag());
  return current_;
}

void ConfigClient::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (cancel_) cancel_->store(false);
  thread_ = std::thread([this] { loop(); });
}

void ConfigClient::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (cancel_) cancel_->store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConfigClient::loop() {
  set_thread_name("bf-config");
  auto& updates = client_counter("bf_control_client_updates_total", "New configs applied", what_);
  auto& rejected = client_counter("bf_control_client_rejected_total",
                                  "Configs from control the component refused (it kept the previous one)", what_);
  int failures = 0;
  std::string asked = etag();  // the ETag sent: the current one, or one refused since
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    std::chrono::milliseconds pause{0};
    try {
      FetchedConfig f = fetch_(asked, wait_);
      if (failures) spdlog::info("{}: control reachable again", what_);
      failures = 0;
      if (f.document) {
        try {
          accept(f, true);
          updates.inc();
          spdlog::info("{}: applied config {}", what_, f.etag);
        } catch (const std::exception& e) {
          rejected.inc();
          spdlog::error("{}: refused config {} from control (keeping {}): {}", what_, f.etag, etag(), e.what());
        }
        asked = f.etag;  // either way: wait for the next one
      }
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      client_errors(what_, "config").inc();
      if (failures == 0 || failures % 30 == 0)
        spdlog::warn("{}: config fetch from control failed (running on {}): {}", what_, etag(), e.what());
      ++failures;
      pause = std::chrono::milliseconds(std::min(10000, 250 << std::min(failures, 6)));
    }
    if (pause.count()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, pause, [this] { return stopping_; });
    }
  }
}

// ----- HealthReporter

HealthReporter::HealthReporter(const ControlClientOptions& options, std::string service, std::string version,
                               std::function<HealthSample()> sample)
    : options_(options), service_(std::move(service)), version_(std::move(version)), sample_(std::move(sample)) {}

HealthReporter::HealthReporter(std::string service, std::string instance, std::string version,
                               std::chrono::milliseconds interval, std::function<HealthSample()> sample, Deliver deliver)
    : service_(std::move(service)),
      version_(std::move(version)),
      sample_(std::move(sample)),
      deliver_(std::move(deliver)) {
  options_.instance = instance.empty() ? default_instance() : std::move(instance);
  options_.health_interval = interval;
}

HealthReporter::~HealthReporter() { stop(); }

void HealthReporter::start() {
  if (options_.health_interval.count() == 0) return;
  thread_ = std::thread([this] { loop(); });
}

void HealthReporter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthReporter::post(HttpClient& client, const Headers& headers, const HealthSample& s, double eps) {
  json::object body{{"instance", options_.instance}, {"status", s.status},   {"version", version_},
                    {"events_per_second", eps},       {"errors", s.errors},  {"events_total", s.events_total}};
  if (s.lag_seconds) body["lag_seconds"] = *s.lag_seconds;
  if (s.spool_depth) body["spool_depth"] = *s.spool_depth;
  try {
    HttpResult r = client.send("POST", options_.url + "/api/v1/health", headers, json::serialize(body));
    if (r.status != 200) {
      client_errors(service_, "health").inc();
      spdlog::debug("{}: health report refused: HTTP {}: {}", service_, r.status, r.body.substr(0, 200));
    }
  } catch (const std::exception& e) {
    client_errors(service_, "health").inc();
    spdlog::debug("{}: health report failed: {}", service_, e.what());
  }
}

void HealthReporter::loop() {
  set_thread_name("bf-health");
  std::unique_ptr<HttpClient> client;
  if (!deliver_) client = std::make_unique<HttpClient>(client_options(options_, std::chrono::milliseconds(5000)));
  const Headers headers{{"Authorization", "Bearer " + options_.key}, {"Content-Type", "application/json"}};
  std::optional<uint64_t> last_events;
  auto last_time = std::chrono::steady_clock::now();
  while (true) {
    HealthSample s = sample_();
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last_time).count();
    double eps = 0;
    if (last_events && dt > 0 && s.events_total >= *last_events) eps = static_cast<double>(s.events_total - *last_events) / dt;
    last_events = s.events_total;
    last_time = now;
    if (deliver_) {
      HealthReport r;
      r.service = service_;
      r.instance = options_.instance;
      r.status = s.status;
      r.version = version_;
      r.events_per_second = eps;
      r.lag_seconds = s.lag_seconds;
      r.spool_depth = s.spool_depth;
      r.errors = s.errors;
      r.events_total = static_cast<int64_t>(s.events_total);
      deliver_(r);
    } else {
      post(*client, headers, s, eps);
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.health_interval, [this] { return stopping_; })) return;
  }
}

}  // namespace bf::control
