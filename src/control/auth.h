#pragma once
// Credentials and the access policy of the control plane (docs/control.md):
// API keys bfk_<id>_<secret> (the secret stored only as a hash, compared in
// constant time), argon2id passwords, session tokens, roles, and one policy
// function that every endpoint asks.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/api_key.h"

namespace bf::control {

enum class Role { system_admin, account_admin, account_viewer, ingest, query, service };
std::optional<Role> parse_role(std::string_view name);
const char* role_name(Role role);
// proxy, receiver, piper, packer, query, connector
bool is_service_name(std::string_view name);

// ----- API keys
struct NewKey {
  std::string token;        // bfk_<id>_<secret>: shown once, never stored
  std::string id;           // 16 lowercase hex
  std::string secret_hash;  // what the store keeps
};
NewKey generate_api_key();

// parse_api_key, imported_key_id: common/api_key.h (the components check keys too).
using bf::KeyParts;
using bf::parse_api_key;
using bf::imported_key_id;
// Hex SHA-256. Secrets are 256 random bits, so a fast hash is enough.
std::string hash_secret(std::string_view secret);
// Constant-time comparison of hash_secret(secret) with the stored hash.
bool verify_secret(std::string_view secret, std::string_view stored_hash);

// ----- passwords (argon2id through libsodium's crypto_pwhash_str)
constexpr size_t kMinPasswordLength = 12;
constexpr size_t kMaxPasswordLength = 1024;
std::string hash_password(std::string_view password);
bool verify_password(std::string_view password, const std::string& hash);

// Random bytes from libsodium, lowercase hex.
std::string random_hex(size_t bytes);
// URL-safe base64 without padding (pagination cursors); decode: nullopt when malformed.
std::string base64url(std::string_view bytes);
std::optional<std::string> unbase64url(std::string_view text);

// ----- who is asking
struct Principal {
  Role role = Role::account_viewer;
  std::string kind;  // "user" or "key"
  std::string id;    // user id or key id
  std::string account, tenant, dataset, service;
  std::string actor() const { return kind + ":" + id; }
};

enum class Action { list, read, create, update, remove };
// config: the distributed config document; health: component reports (system-wide);
// lease: piper and packer worker leases; plugins: the option schemas of the
// built-in sources, steps and sinks (the UI's forms); connector: a tenant's exports.
enum class Kind { account, tenant, dataset, connector, user, api_key, audit, config, health, lease, plugins };
struct Resource {
  Kind kind = Kind::account;
  std::string account;               // the account it belongs to; "" = system-wide
  std::optional<Role> grants;        // users and keys: the role the change gives
};

enum class Decision {
  allow,
  forbidden,  // 403: the caller may know the resource but not do this
  hidden,     // 404: outside the caller's accounts; answered as if it did not exist
};
Decision decide(const Principal& who, Action action, const Resource& what);

// ----- token bucket per key
class RateLimiter {
 public:
  RateLimiter(double per_second, double burst) : rate_(per_second), burst_(burst) {}
  // true: allowed. false: retry_after_s is when the next token arrives (>= 1).
  bool take(const std::string& key, int64_t& retry_after_s);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace bf::control
