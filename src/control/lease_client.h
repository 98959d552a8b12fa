#pragma once
// Worker leases held in the control plane (docs/control.md, "Leases"): a LeaseStore
// whose every call is one request to control's /api/v1/leases, where the lease
// table lives in control's database (each change one transaction). Pipers and
// packers on any host share it; while control is unreachable every call throws
// LeaseStoreError, so no worker commits without a lease it can prove.
#include <memory>
#include <mutex>
#include <string>

#include "storage/lease_store.h"

namespace bf {
class HttpClient;
}

namespace bf::control {

struct ControlClientOptions;

class ControlLeaseStore final : public LeaseStore {
 public:
  explicit ControlLeaseStore(const ControlClientOptions& options);
  ~ControlLeaseStore() override;
  std::optional<Lease> acquire(const std::string& name, const std::string& holder,
                               std::chrono::milliseconds ttl) override;
  bool renew(Lease& lease, std::chrono::milliseconds ttl) override;
  void release(const Lease& lease) override;
  bool validate(const Lease& lease) override;

 private:
  // 200: the body; 409: nullopt; anything else or no answer: LeaseStoreError.
  std::optional<std::string> call(const std::string& op, const std::string& body);
  std::string url_, key_;
  std::mutex mu_;  // one HttpClient, used by one call at a time
  std::unique_ptr<HttpClient> http_;
};

}  // namespace bf::control
