// rdns: the host name of an IP address by reverse DNS (PTR), with a bounded cache.
//   {rdns: {field: src_ip, target: src_host, server: "10.0.0.53", timeout_ms: 300, budget_ms: 1000}}
// Per batch: the addresses the cache does not hold are queried together
// (piper/enrich/ptr_resolver.h); the batch waits for them at most budget_ms. What is
// still unanswered then leaves the target unset (counted over_budget) and is asked
// again with a later batch. Answers (names and "no name") are cached for ttl_s /
// negative_ttl_s, in at most cache_size entries (least recently used go first).
#include <list>
#include <mutex>
#include <unordered_map>

#include <xxhash.h>

#include "piper/enrich/batched_step.h"
#include "piper/enrich/ptr_resolver.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::array<uint8_t, 17>;  // the address and its family
struct KeyHash {
  size_t operator()(const Key& k) const { return XXH3_64bits(k.data(), k.size()); }
};
Key key_of(const IpAddress& ip) {
  Key k{};
  std::copy(ip.bytes.begin(), ip.bytes.end(), k.begin());
  k[16] = ip.v4;
  return k;
}

// Names by address, each until it expires; the least recently used leave first.
class NameCache {
 public:
  explicit NameCache(size_t capacity) : capacity_(capacity) {}
  // nullopt: not cached (or expired); "" : cached as having no name.
  std::optional<std::string> get(const Key& k, Clock::time_point now) {
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    if (now >= it->second.expires) {
      order_.erase(it->second.position);
      map_.erase(it);
      return std::nullopt;
    }
    order_.splice(order_.begin(), order_, it->second.position);
    return it->second.name;
  }
  void put(const Key& k, std::string name, Clock::time_point expires) {
    auto it = map_.find(k);
    if (it != map_.end()) {
      it->second.name = std::move(name);
      it->second.expires = expires;
      order_.splice(order_.begin(), order_, it->second.position);
      return;
    }
    if (map_.size() >= capacity_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(k);
    map_.emplace(k, Entry{std::move(name), expires, order_.begin()});
  }

 private:
  struct Entry {
    std::string name;
    Clock::time_point expires;
    std::list<Key>::iterator position;
  };
  size_t capacity_;
  std::list<Key> order_;  // most recently used first
  std::unordered_map<Key, Entry, KeyHash> map_;
};

struct RdnsOptions {
  FieldPath field, target;
  DnsServer server;
  std::chrono::milliseconds timeout, budget;
  std::chrono::seconds ttl, negative_ttl;
  size_t cache_size, max_in_flight;
};

enum : size_t { kTimeout = kLookupInvalid + 1, kOverBudget };

class Rdns final : public BatchedStep {
 public:
  explicit Rdns(RdnsOptions o) : o_(std::move(o)), cache_(o_.cache_size) {}

  void apply_batch(const std::vector<Event*>& events, std::vector<StepResult>&, std::vector<std::string>&) const override {
    uint64_t counts[5] = {0, 0, 0, 0, 0};
    // Each event's address, and the distinct ones.
    std::vector<int64_t> slot(events.size(), -1);  // into `names`; -1: no address
    std::vector<IpAddress> distinct;
    std::unordered_map<Key, size_t, KeyHash> index;
    for (size_t i = 0; i < events.size(); ++i) {
      bool present;
      auto ip = address_at(*events[i], o_.field, present);
      if (!ip) {
        counts[kLookupInvalid] += present;
        continue;
      }
      auto [it, added] = index.try_emplace(key_of(*ip), distinct.size());
      if (added) distinct.push_back(*ip);
      slot[i] = static_cast<int64_t>(it->second);
    }
    // What the cache knows; the rest is asked for together, within the budget.
    std::vector<std::optional<PtrAnswer>> names(distinct.size());
    std::vector<IpAddress> ask;
    std::vector<size_t> asked;  // into distinct
    const auto start = Clock::now();
    {
      std::lock_guard lock(mu_);
      for (size_t d = 0; d < distinct.size(); ++d) {
        if (auto name = cache_.get(key_of(distinct[d]), start)) {
          names[d] = PtrAnswer{name->empty() ? PtrAnswer::not_found : PtrAnswer::found, std::move(*name)};
        } else {
          ask.push_back(distinct[d]);
          asked.push_back(d);
        }
      }
    }
    if (!ask.empty()) {
      std::vector<std::optional<PtrAnswer>> got;
      try {
        got = resolve_ptr(o_.server, ask, {o_.timeout, start + o_.budget, o_.max_in_flight});
      } catch (const std::exception&) {  // no socket now: like an exhausted budget, tried again next batch
        got.resize(ask.size());
      }
      queries_.add(0, ask.size());
      const auto now = Clock::now();
      std::lock_guard lock(mu_);
      for (size_t a = 0; a < ask.size(); ++a) {
        if (!got[a]) continue;  // over budget: not cached, asked again next time
        const bool found = got[a]->status == PtrAnswer::found;
        cache_.put(key_of(ask[a]), found ? got[a]->name : std::string(), now + (found ? o_.ttl : o_.negative_ttl));
        names[asked[a]] = std::move(got[a]);
      }
    }
    for (size_t i = 0; i < events.size(); ++i) {
      if (slot[i] < 0) continue;
      const auto& a = names[static_cast<size_t>(slot[i])];
      if (!a) {
        ++counts[kOverBudget];
      } else if (a->status == PtrAnswer::found) {
        ++counts[kLookupHit];
        set_field(*events[i], o_.target, boost::json::string(a->name));
      } else {
        ++counts[a->status == PtrAnswer::timeout ? size_t{kTimeout} : size_t{kLookupMiss}];
      }
    }
    for (size_t r = 0; r < 5; ++r) lookups_.add(r, counts[r]);
  }
  void count_as(const Labels& labels) override {
    lookups_.count_as(labels);
    queries_.count_as(labels);
  }

 private:
  RdnsOptions o_;
  mutable std::mutex mu_;  // taken twice per batch, never per event
  mutable NameCache cache_;
  mutable ResultCounters lookups_ = lookup_counters({"timeout", "over_budget"});
  mutable ResultCounters queries_{"bf_piper_rdns_queries_total", "PTR queries the rdns step sent (cache misses)", {"sent"}};
};

}  // namespace

TransformFactory rdns_transform() {
  return {"rdns", "Host name of an IP address by reverse DNS (PTR) into target; TTL cache, per-query timeout and a per-batch time budget",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            RdnsOptions r;
            r.field = o.field("field");
            r.target = o.field("target");
            if (o.has("server")) {
              auto s = DnsServer::parse(o.str("server"));
              if (!s) o.fail("server", "'" + o.str("server") + "' is not an address[:port] (e.g. 10.0.0.53, 127.0.0.1:5353, [::1]:53)");
              r.server = *s;
            } else {
              auto s = DnsServer::system();
              if (!s) o.fail("server", "not given, and /etc/resolv.conf names no nameserver");
              r.server = *s;
            }
            r.timeout = std::chrono::milliseconds(o.integer("timeout_ms"));
            r.budget = std::chrono::milliseconds(o.integer("budget_ms"));
            r.ttl = std::chrono::seconds(o.integer("ttl_s"));
            r.negative_ttl = std::chrono::seconds(o.integer("negative_ttl_s"));
            r.cache_size = static_cast<size_t>(o.integer("cache_size"));
            r.max_in_flight = static_cast<size_t>(o.integer("max_in_flight"));
            return std::make_unique<Rdns>(std::move(r));
          },
          {
              Option("field", OptionType::string, "the field holding the IPv4 or IPv6 address").mandatory(),
              Option("target", OptionType::string, "where the host name goes").mandatory(),
              Option("server", OptionType::string, "the DNS server: address[:port], [v6]:port")
                  .note("the first nameserver of /etc/resolv.conf"),
              Option("timeout_ms", OptionType::integer, "how long one query waits for its answer").def("500").range(1, 30000),
              Option("budget_ms", OptionType::integer, "how long a batch waits for all its answers").def("1000").range(1, 60000),
              Option("ttl_s", OptionType::integer, "how long a name is cached").def("3600").range(1, 7 * 86400),
              Option("negative_ttl_s", OptionType::integer, "how long \"no name\" (or a timeout) is cached")
                  .def("300")
                  .range(1, 7 * 86400),
              Option("cache_size", OptionType::integer, "addresses cached (the least recently used go first)")
                  .def("10000")
                  .range(1, 10000000),
              Option("max_in_flight", OptionType::integer, "queries unanswered at a time").def("64").range(1, 4096),
          }};
}

}  // namespace bf
