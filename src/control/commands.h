#pragma once
// What `bytefreezer control ...` does (docs/control.md, "CLI"); main.cpp only
// declares the options.
#include <cstddef>
#include <functional>
#include <string>

namespace bf::control {

class ControlStore;

// Where the control commands find their settings: the `control:` section of
// `config` (when it names a file), with `db` (when set) replacing control.db.
struct ControlCli {
  std::string config;
  std::string db;
};

struct ImportReport {
  size_t created = 0, updated = 0, unchanged = 0;
};
// Imports the static `accounts:` section of a YAML file (accounts, tenants, datasets
// with their pipelines, ingest and query keys) into the store. Idempotent: a second
// run changes nothing; a key revoked since stays revoked. Validates the whole file
// before changing anything; throws ConfigError naming the item.
ImportReport import_accounts_yaml(ControlStore& store, const std::string& file);

// On a store without users: creates the system_admin named by BYTEFREEZER_ADMIN_EMAIL
// and BYTEFREEZER_ADMIN_PASSWORD, or logs how to make one. false: the variables are bad.
bool bootstrap_admin(ControlStore& store);

// `bytefreezer control --config FILE`: serves the API until wait_for_stop returns
// (main: SIGINT/SIGTERM).
int serve_control(const ControlCli& cli, const std::function<void()>& wait_for_stop);
// `bytefreezer control import FILE --config CONFIG`
int import_command(const ControlCli& cli, const std::string& file);
// `bytefreezer control create-admin --email E`: password from $BYTEFREEZER_ADMIN_PASSWORD
// or one line of stdin.
int create_admin_command(const ControlCli& cli, const std::string& email);
// `bytefreezer control create-key --role system_admin|service [--service S] [--name N]`: prints the key once.
int create_key_command(const ControlCli& cli, const std::string& role, const std::string& service,
                       const std::string& name);

}  // namespace bf::control
