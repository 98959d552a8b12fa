#include "control/embedded.h"

#include <spdlog/spdlog.h>

#include "common/catalog.h"
#include "common/config.h"
#include "control/agent.h"
#include "control/api.h"
#include "control/commands.h"
#include "control/health.h"
#include "control/store.h"

namespace bf::control {

struct EmbeddedControl::Impl {
  ControlOptions options;
  std::shared_ptr<ControlStore> store;
  std::unique_ptr<ControlServer> server;
  std::unique_ptr<ConfigClient> client;
};

EmbeddedControl::EmbeddedControl(const ConfigNode& section, const std::string& config_file, bool file_has_accounts)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = parse_control_options(section);
  impl_->store = open_control_store(impl_->options);
  spdlog::info("control: store {} (schema version {})", impl_->store->describe(), impl_->store->schema_version());
  const bool first_start = impl_->store->list_accounts(PageQuery{"", 1, ""}).empty();
  if (file_has_accounts && first_start) {
    ImportReport r = import_accounts_yaml(*impl_->store, config_file);
    spdlog::info("control: first start: imported accounts: from {} ({} created)", config_file, r.created);
  } else if (file_has_accounts) {
    spdlog::info("control: the accounts: section of {} was imported on first start; the store is authoritative now "
                 "(change it through the API, or `bytefreezer control import {}`)",
                 config_file, config_file);
  }
  if (!bootstrap_admin(*impl_->store)) throw ConfigError("control: BYTEFREEZER_ADMIN_EMAIL/PASSWORD are not usable");
  impl_->server = std::make_unique<ControlServer>(impl_->store, impl_->options);
  ControlApi* api = &impl_->server->api();
  ConfigFetch local = [api](const std::string& etag, std::chrono::milliseconds wait) {
    ControlApi::ConfigReply r = api->config("all", etag, wait);
    return FetchedConfig{r.etag, std::move(r.document)};
  };
  // No cache file: the store is on this host.
  impl_->client = std::make_unique<ConfigClient>(std::move(local), "", std::chrono::seconds(30), "run");
}

EmbeddedControl::~EmbeddedControl() { stop(); }

std::shared_ptr<const Catalog> EmbeddedControl::load() { return impl_->client->load(std::chrono::seconds(0)); }

void EmbeddedControl::on_change(std::function<void(std::shared_ptr<const Catalog>)> apply) {
  impl_->client->on_change(std::move(apply));
}

void EmbeddedControl::start() {
  impl_->server->start();
  spdlog::info("control: API on port {} (/api/v1, /api/v1/openapi.json)", impl_->server->port());
  impl_->client->start();
}

void EmbeddedControl::stop() {
  if (!impl_->server) return;
  impl_->server->api().shutdown();  // ends the in-process wait, then the client's thread
  impl_->client->stop();
  impl_->server->stop();
  impl_->server.reset();
}

void EmbeddedControl::report_health(const HealthReport& report) {
  if (impl_->server) impl_->server->api().record_health(report);
}
std::chrono::milliseconds EmbeddedControl::health_report_interval() const {
  return impl_->options.health_report_interval;
}

uint16_t EmbeddedControl::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace bf::control
