#pragma once
// The control plane inside `bytefreezer run` (docs/control.md, "In bytefreezer run"):
// the SQLite store in the data directory, the API on control.listen, and the
// catalog the in-process components run on, pushed to them on every change.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace bf {
class Catalog;
class ConfigNode;
}  // namespace bf

namespace bf::control {

struct HealthReport;

class EmbeddedControl {
 public:
  // Reads the `control:` section and opens the store. On first start (no account in
  // the store yet) the `accounts:` section of config_file is imported; afterwards
  // the store is authoritative and the section is only logged as ignored.
  EmbeddedControl(const ConfigNode& section, const std::string& config_file, bool file_has_accounts);
  ~EmbeddedControl();
  // The catalog as the store holds it now.
  std::shared_ptr<const Catalog> load();
  // Called with each new catalog after a change (a throw keeps the old one).
  void on_change(std::function<void(std::shared_ptr<const Catalog>)> apply);
  void start();
  void stop();
  uint16_t port() const;
  // Health of the components in this process (control.health.report_interval apart).
  void report_health(const HealthReport& report);
  std::chrono::milliseconds health_report_interval() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf::control
