// sample: keeps one event in `rate`, and records the rate in each kept event so counts
// can be re-weighted (sum of _sample_rate estimates the events before sampling).
//   {sample: {rate: 10}}                               random
//   {sample: {rate: 10, key: 'session_id'}}            deterministic: every event of a
//        session is kept or dropped together, the same in every run and process
//   {sample: {rate: 10, key: 'status', mode: dynamic}} per-key rates that adapt: keys
//        seen often are sampled harder, rare ones are kept
// Drops are intentional discards, counted per dataset and step (docs/metrics.md).
#include <xxhash.h>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <string_view>
#include <unordered_map>

#include "piper/expr/expr.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

uint64_t random_u64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// The key's text (strings as they are, other values as JSON, a missing key as "")
// handed to `use`; a string key is not copied.
template <typename F>
auto with_key_text(const Expr& key, const Event& e, F&& use) {
  ExprValue v;
  key.eval(e, v);
  const boost::json::value& k = v.get();
  if (k.is_string()) return use(std::string_view(k.get_string()));
  if (k.is_null()) return use(std::string_view());
  const std::string text = boost::json::serialize(k);
  return use(std::string_view(text));
}
uint64_t key_hash(const Expr& key, const Event& e) {
  return with_key_text(key, e, [](std::string_view k) { return XXH3_64bits(k.data(), k.size()); });
}

// Per-key rates from one window's counts. The kept-event budget of the window
// (events / goal rate) is shared out in proportion to log(1 + count), rarest key
// first, so frequent keys get high rates; a key whose share covers all its events
// keeps them all (rate 1) and leaves the rest of its share to the others.
std::unordered_map<uint64_t, int64_t> adapt_rates(const std::unordered_map<uint64_t, uint64_t>& counts, int64_t goal) {
  std::vector<std::pair<uint64_t, uint64_t>> keys(counts.begin(), counts.end());
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  double total = 0, weights = 0;
  for (const auto& [k, c] : keys) {
    total += static_cast<double>(c);
    weights += std::log1p(static_cast<double>(c));
  }
  double budget = total / static_cast<double>(goal);
  std::unordered_map<uint64_t, int64_t> rates;
  for (const auto& [k, c] : keys) {
    const double w = std::log1p(static_cast<double>(c));
    const double share = weights > 0 ? budget * w / weights : 0;
    weights -= w;
    if (share >= static_cast<double>(c)) {
      rates[k] = 1;
      budget -= static_cast<double>(c);
    } else {
      rates[k] = std::max<int64_t>(1, std::llround(static_cast<double>(c) / std::max(share, 1e-9)));
      budget -= share;
    }
  }
  return rates;
}

enum class Mode { random, hash, dynamic };

class Sample final : public Transform {
 public:
  Sample(Mode mode, int64_t rate, std::shared_ptr<const Expr> key, uint64_t seed, FieldPath rate_field, size_t max_keys,
         uint64_t window)
      : mode_(mode), rate_(rate), key_(std::move(key)), seed_(seed), rate_field_(std::move(rate_field)),
        max_keys_(max_keys), window_(window) {}

  StepResult apply(Event& e, std::string&) const override {
    if (mode_ == Mode::dynamic) {  // the pipeline runs this mode per batch; one event is a batch of one
      const uint64_t h = key_hash(*key_, e);
      std::lock_guard lock(state_.mu);
      return finish(e, dynamic_rate(h));
    }
    int64_t rate = rate_;
    bool keep = true;
    if (mode_ == Mode::random) {
      keep = random_u64() % static_cast<uint64_t>(rate) == 0;
    } else {
      keep = with_key_text(*key_, e, [&](std::string_view k) { return XXH64(k.data(), k.size(), seed_); }) %
                 static_cast<uint64_t>(rate) ==
             0;
    }
    return keep ? finish(e, rate) : StepResult::drop;
  }
  // Dynamic mode works per batch: the keys are hashed first, then one lock covers the
  // whole batch's counting (DESIGN §7: no lock per event), in event order, so a batch
  // counts as if its events came one by one.
  bool batched() const override { return mode_ == Mode::dynamic; }
  void apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                   std::vector<std::string>& errors) const override {
    if (mode_ != Mode::dynamic) return Transform::apply_batch(events, results, errors);
    std::vector<int64_t> rates(events.size());
    for (size_t i = 0; i < events.size(); ++i) rates[i] = static_cast<int64_t>(key_hash(*key_, *events[i]));
    {
      std::lock_guard lock(state_.mu);
      for (auto& r : rates) r = dynamic_rate(static_cast<uint64_t>(r));
    }
    for (size_t i = 0; i < events.size(); ++i) results[i] = finish(*events[i], rates[i]);
  }

 private:
  // Keeps the event with `rate` (dynamic: rate 1 always, else one in `rate` at random)
  // and records it.
  StepResult finish(Event& e, int64_t rate) const {
    if (mode_ == Mode::dynamic && rate != 1 && random_u64() % static_cast<uint64_t>(rate) != 0) return StepResult::drop;
    // An event sampled before (an earlier sample step) stands for rate × its old rate.
    if (const boost::json::value* old = find_field(e, rate_field_)) {
      if (auto prior = value_to_int(*old); prior && *prior >= 1 && *prior <= INT64_MAX / rate) rate *= *prior;
    }
    set_field(e, rate_field_, rate);
    return StepResult::keep;
  }
  // The key's rate from the last window's counts, counting this event in the current
  // window. At most max_keys keys are tracked; the others share one bucket (and its
  // rate). A key the last window did not see is kept (rate 1) — rare keys survive.
  // The caller holds state_.mu.
  int64_t dynamic_rate(uint64_t h) const {
    auto& s = state_;
    int64_t rate;
    auto counted = s.counts.find(h);
    if (counted == s.counts.end() && s.counts.size() >= max_keys_) {
      ++s.overflow_count;
      rate = s.overflow_rate;
    } else {
      if (counted == s.counts.end()) counted = s.counts.emplace(h, 0).first;
      ++counted->second;
      auto known = s.rates.find(h);
      rate = known == s.rates.end() ? 1 : known->second;
    }
    if (++s.seen >= window_) {
      constexpr uint64_t kOverflowKey = 0;  // stands for the shared bucket in adapt_rates
      auto counts = std::move(s.counts);
      const bool had_overflow = s.overflow_count > 0;
      if (had_overflow) counts[kOverflowKey] += s.overflow_count;
      s.rates = adapt_rates(counts, rate_);
      s.overflow_rate = had_overflow ? s.rates[kOverflowKey] : rate_;
      s.rates.erase(kOverflowKey);
      s.counts.clear();
      s.counts.reserve(std::min<size_t>(max_keys_, 4096));
      s.overflow_count = 0;
      s.seen = 0;
    }
    return rate;
  }

  Mode mode_;
  int64_t rate_;
  std::shared_ptr<const Expr> key_;
  uint64_t seed_;
  FieldPath rate_field_;
  size_t max_keys_;
  uint64_t window_;
  // The dynamic sampler's table, locked once per batch (batches of a dataset may run
  // on several threads); memory is bounded by max_keys in both maps.
  struct State {
    std::mutex mu;
    std::unordered_map<uint64_t, uint64_t> counts;  // this window, by key hash
    std::unordered_map<uint64_t, int64_t> rates;    // from the last window
    uint64_t overflow_count = 0;
    int64_t overflow_rate = 1;
    uint64_t seen = 0;
  };
  mutable State state_;
};

}  // namespace

TransformFactory sample_transform() {
  return {"sample",
          "Keep one event in `rate` and record the rate in rate_field (default _sample_rate); mode random (default without key), "
          "hash (default with key: by xxhash of the key, stable across runs; seed) or dynamic (per-key rates adapting every "
          "window events, at most max_keys keys tracked)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            const int64_t rate = o.integer("rate");
            std::shared_ptr<const Expr> key = o.has("key") ? o.expr("key") : nullptr;
            const std::string m = o.choice("mode", key ? "hash" : "random");
            const Mode mode = m == "random" ? Mode::random : m == "hash" ? Mode::hash : Mode::dynamic;
            if (mode != Mode::random && !key) o.fail("key", "mode " + m + " needs a key (an expression, e.g. 'session_id')");
            if (mode == Mode::random && key) o.fail("key", "mode random takes no key");
            const int64_t seed = o.integer("seed");
            if (mode != Mode::hash && o.has("seed")) o.fail("seed", "only mode hash takes a seed");
            const int64_t max_keys = o.integer("max_keys");
            const int64_t window = o.integer("window_events");
            if (mode != Mode::dynamic) {
              if (o.has("max_keys")) o.fail("max_keys", "only mode dynamic tracks keys");
              if (o.has("window_events")) o.fail("window_events", "only mode dynamic has windows");
            }
            return std::make_unique<Sample>(mode, rate, std::move(key), static_cast<uint64_t>(seed),
                                            o.field("rate_field"), static_cast<size_t>(max_keys),
                                            static_cast<uint64_t>(window));
          },
          {
              Option("rate", OptionType::integer, "keep one event in rate").mandatory().range(1, double(int64_t(1) << 40)),
              Option("key", OptionType::string, "an expression whose value groups events (mode hash or dynamic)"),
              Option("mode", OptionType::string,
                     "random: each event alone; hash: by the key, the same in every run; dynamic: per-key rates that adapt")
                  .one_of({"random", "hash", "dynamic"})
                  .note("random without key, hash with it"),
              Option("seed", OptionType::integer, "mode hash: changes which keys are kept").def("0").range(0, 9223372036854775807.0),
              Option("rate_field", OptionType::string, "where each kept event records the rate").def("_sample_rate"),
              Option("max_keys", OptionType::integer, "mode dynamic: keys tracked per window").def("10000").range(1, 1000000),
              Option("window_events", OptionType::integer, "mode dynamic: events per window, after which the rates adapt")
                  .def("10000")
                  .range(10, double(int64_t(1) << 40)),
          }};
}

}  // namespace bf
