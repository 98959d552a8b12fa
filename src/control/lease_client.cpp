#include "control/lease_client.h"

#include <boost/json.hpp>

#include "control/agent.h"
#include "net/http_client.h"

namespace bf::control {

namespace json = boost::json;

namespace {
Lease lease_from(const std::string& body) {
  const json::object o = json::parse(body).as_object();
  Lease l;
  l.name = std::string(o.at("name").as_string());
  l.holder = std::string(o.at("holder").as_string());
  l.token = o.at("token").to_number<uint64_t>();
  // Control's clock decides expiry; locally only the remaining time is meaningful.
  l.expires = std::chrono::system_clock::now() + std::chrono::milliseconds(o.at("expires_in_ms").to_number<int64_t>());
  return l;
}
}  // namespace

ControlLeaseStore::ControlLeaseStore(const ControlClientOptions& options)
    : url_(options.url + "/api/v1/leases/"), key_(options.key) {
  HttpClientOptions h;
  h.connect_timeout = std::chrono::milliseconds(3000);
  h.timeout = std::chrono::milliseconds(10000);
  h.max_retries = 1;
  h.ca_file = options.ca_file;
  http_ = std::make_unique<HttpClient>(h);
}

ControlLeaseStore::~ControlLeaseStore() = default;

std::optional<std::string> ControlLeaseStore::call(const std::string& op, const std::string& body) {
  std::lock_guard lock(mu_);
  HttpResult r;
  try {
    // Retries only transport errors and 429/503: every call is safe to repeat
    // (acquire by the same holder is a new acquisition, which the holder wanted).
    r = http_->execute("POST", url_ + op,
                       {{"Authorization", "Bearer " + key_}, {"Content-Type", "application/json"}}, std::string_view(body),
                       [](const HttpResult& res) { return res.status == 429 || res.status == 503; });
  } catch (const std::exception& e) {
    throw LeaseStoreError("control lease " + op + ": " + e.what());
  }
  if (r.status == 200 || r.status == 204) return r.body;
  if (r.status == 409) return std::nullopt;
  throw LeaseStoreError("control lease " + op + ": HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
}

std::optional<Lease> ControlLeaseStore::acquire(const std::string& name, const std::string& holder,
                                                std::chrono::milliseconds ttl) {
  auto body = call("acquire", json::serialize(json::object{{"name", name}, {"holder", holder}, {"ttl_ms", ttl.count()}}));
  if (!body) return std::nullopt;
  return lease_from(*body);
}

bool ControlLeaseStore::renew(Lease& lease, std::chrono::milliseconds ttl) {
  auto body = call("renew", json::serialize(json::object{
                                {"name", lease.name}, {"holder", lease.holder}, {"token", lease.token}, {"ttl_ms", ttl.count()}}));
  if (!body) return false;
  lease.expires = lease_from(*body).expires;
  return true;
}

void ControlLeaseStore::release(const Lease& lease) {
  call("release", json::serialize(json::object{{"name", lease.name}, {"holder", lease.holder}, {"token", lease.token}}));
}

bool ControlLeaseStore::validate(const Lease& lease) {
  auto body =
      call("validate", json::serialize(json::object{{"name", lease.name}, {"holder", lease.holder}, {"token", lease.token}}));
  return body && json::parse(*body).as_object().at("valid").as_bool();
}

}  // namespace bf::control
