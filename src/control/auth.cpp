#include "control/auth.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "common/digest.h"

namespace bf::control {

namespace {

void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialise");
}

constexpr size_t kKeyIdBytes = 8, kKeySecretBytes = 32;
constexpr std::string_view kKeyPrefix = "bfk_";

}  // namespace

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : {Role::system_admin, Role::account_admin, Role::account_viewer, Role::ingest, Role::query,
                 Role::service}) {
    if (name == role_name(r)) return r;
  }
  return std::nullopt;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::system_admin: return "system_admin";
    case Role::account_admin: return "account_admin";
    case Role::account_viewer: return "account_viewer";
    case Role::ingest: return "ingest";
    case Role::query: return "query";
    case Role::service: return "service";
  }
  return "?";
}

bool is_service_name(std::string_view name) {
  for (std::string_view s : {"proxy", "receiver", "piper", "packer", "query", "connector"}) {
    if (name == s) return true;
  }
  return false;
}

std::string random_hex(size_t bytes) {
  ensure_sodium();
  std::vector<unsigned char> buf(bytes);
  randombytes_buf(buf.data(), buf.size());
  std::string out(bytes * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), buf.data(), buf.size());
  out.pop_back();
  sodium_memzero(buf.data(), buf.size());
  return out;
}

NewKey generate_api_key() {
  NewKey k;
  k.id = random_hex(kKeyIdBytes);
  std::string secret = random_hex(kKeySecretBytes);
  k.secret_hash = hash_secret(secret);
  k.token = std::string(kKeyPrefix) + k.id + "_" + secret;
  sodium_memzero(secret.data(), secret.size());
  return k;
}

std::string hash_secret(std::string_view secret) { return sha256_hex(secret); }

bool verify_secret(std::string_view secret, std::string_view stored_hash) {
  ensure_sodium();
  const std::string computed = hash_secret(secret);
  // Equal lengths always (both hex SHA-256); a malformed stored hash compares against
  // itself-sized garbage, still in constant time, and fails.
  if (stored_hash.size() != computed.size()) {
    const std::string filler(computed.size(), '0');
    const int same = sodium_memcmp(computed.data(), filler.data(), computed.size());
    return same == 0 && false;
  }
  return sodium_memcmp(computed.data(), stored_hash.data(), computed.size()) == 0;
}

std::string hash_password(std::string_view password) {
  ensure_sodium();
  if (password.size() > kMaxPasswordLength) throw std::invalid_argument("password too long");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("password hashing ran out of memory");
  return out;
}

bool verify_password(std::string_view password, const std::string& hash) {
  ensure_sodium();
  if (password.size() > kMaxPasswordLength || hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string base64url(std::string_view bytes) {
  ensure_sodium();
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  ensure_sodium();
  std::string out(text.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

Decision decide(const Principal& who, Action action, const Resource& what) {
  switch (who.role) {
    case Role::system_admin:
      return Decision::allow;
    case Role::ingest:
    case Role::query:
      // Data-plane keys: ingest at the receiver, queries at the query server; nothing here.
      return Decision::forbidden;
    case Role::service: {
      // Data-plane services fetch their config and report their health.
      if (what.kind == Kind::config) return action == Action::read ? Decision::allow : Decision::forbidden;
      if (what.kind == Kind::health) return action == Action::create ? Decision::allow : Decision::forbidden;
      // Leases coordinate pipers and packers (the handler also keeps each to its own stage).
      if (what.kind == Kind::lease)
        return who.service == "piper" || who.service == "packer" ? Decision::allow : Decision::forbidden;
      // They read the catalog they serve (connectors: the connector service); they change nothing.
      const bool catalog = what.kind == Kind::account || what.kind == Kind::tenant || what.kind == Kind::dataset ||
                           (what.kind == Kind::connector && who.service == "connector");
      return catalog && (action == Action::list || action == Action::read) ? Decision::allow : Decision::forbidden;
    }
    case Role::account_admin:
    case Role::account_viewer:
      break;
  }
  // Account users: the config document spans every account (and carries key
  // hashes), so it is for services; component health and the plugin schemas hold no account data and are
  // shown to every account user, read-only.
  if (what.kind == Kind::config || what.kind == Kind::lease) return Decision::forbidden;
  if (what.kind == Kind::health || what.kind == Kind::plugins)
    return action == Action::list || action == Action::read ? Decision::allow : Decision::forbidden;
  // Account users: accounts are created and deleted by system admins only.
  if (what.kind == Kind::account && (action == Action::create || action == Action::remove)) {
    if (action == Action::remove && what.account != who.account) return Decision::hidden;
    return Decision::forbidden;
  }
  // Handing out system-wide powers (a system_admin user or key, a service key) is a
  // system admin's alone: refused, not hidden, as it names no other account.
  const bool system_wide = what.grants && (*what.grants == Role::system_admin || *what.grants == Role::service);
  if (system_wide && what.account.empty() && (action == Action::create || action == Action::update))
    return Decision::forbidden;
  // Listing accounts shows only their own (the handler filters); everything else
  // outside their account does not exist for them.
  if (!(what.kind == Kind::account && action == Action::list) && what.account != who.account) return Decision::hidden;
  if (action == Action::list || action == Action::read) return Decision::allow;
  if (who.role == Role::account_viewer) return Decision::forbidden;
  // account_admin: may not hand out system-wide powers.
  if (what.grants && (*what.grants == Role::system_admin || *what.grants == Role::service)) return Decision::forbidden;
  return Decision::allow;
}

bool RateLimiter::take(const std::string& key, int64_t& retry_after_s) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (buckets_.size() > 100000) {
    // Forget buckets that have refilled: they are indistinguishable from new ones.
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      const double t = it->second.tokens + std::chrono::duration<double>(now - it->second.last).count() * rate_;
      it = t >= burst_ ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - b.tokens) / rate_)));
  return false;
}

}  // namespace bf::control
