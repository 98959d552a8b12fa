#include "proxy/forwarder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <random>
#include <system_error>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/utf8.h"
#include "net/conn_limits.h"

namespace bf {
namespace {

namespace json = boost::json;

bool is_permanent(long status) {
  return status == 400 || status == 401 || status == 403 || status == 404 || status == 413;
}

std::string truncate_body(const std::string& body, size_t max = 2048) {
  std::string b = repair_utf8(body.size() > max ? std::string_view(body).substr(0, max) : std::string_view(body));
  if (body.size() > max) b += "...";
  return b;
}

void update_spool_gauge(const Spool& spool) {
  metrics().gauge("bf_proxy_spool_bytes", "Bytes of batches in the proxy spool").set(int64_t(spool.bytes()));
}

}  // namespace

Forwarder::Forwarder(ForwarderOptions options)
    : options_(std::move(options)),
      base_url_(options_.receiver_url),
      spool_(options_.spool_dir, options_.spool_max_bytes) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  if (options_.concurrency < 1) options_.concurrency = 1;
  // Batches left by a previous run are sent first: their ULIDs sort before new ones.
  for (const auto& e : spool_.list()) pending_.insert(e.id);
  if (!pending_.empty())
    spdlog::info("proxy: {} unsent batches in spool {}", pending_.size(), queue_dir().string());
  update_spool_gauge(spool_);
}

Forwarder::~Forwarder() { stop(); }

void Forwarder::start() {
  std::lock_guard lock(mu_);
  if (!senders_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < options_.concurrency; ++i) senders_.emplace_back([this] { sender_loop(); });
}

void Forwarder::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : senders_)
    if (t.joinable()) t.join();
  senders_.clear();
}

void Forwarder::submit(const ProxyBatch& batch) {
  json::object meta;
  meta["tenant"] = batch.tenant;
  meta["dataset"] = batch.dataset;
  meta["events"] = batch.events;
  spool_.put(batch.id, json::serialize(meta), batch.data);
  metrics().counter("bf_proxy_batches_spooled_total", "Batches written to the proxy spool").inc();
  update_spool_gauge(spool_);
  {
    std::lock_guard lock(mu_);
    pending_.insert(batch.id);
  }
  cv_.notify_one();
}

void Forwarder::submit_or_drop(const ProxyBatch& batch) {
  const char* reason = nullptr;
  std::string what;
  try {
    submit(batch);
    return;
  } catch (const SpoolFull& e) {
    reason = "spool_full";
    what = e.what();
  } catch (const std::exception& e) {
    reason = "spool_error";
    what = e.what();
  }
  metrics()
      .counter("bf_proxy_dropped_total", "Events the proxy discarded", {{"reason", reason}})
      .inc(batch.events);
  spdlog::error("proxy: dropped batch {} ({} events for {}/{}): {}", batch.id, batch.events, batch.tenant,
                batch.dataset, what);
}

size_t Forwarder::queued() const {
  std::lock_guard lock(mu_);
  return pending_.size() + in_flight_;
}

std::chrono::milliseconds Forwarder::next_backoff() {
  // Called with mu_ held. Exponential with full jitter, at least base/2.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const int n = std::min(consecutive_failures_, 20);
  const auto cap = std::min<int64_t>(options_.backoff_max.count(), options_.backoff_base.count() << n);
  std::uniform_int_distribution<int64_t> d(std::max<int64_t>(1, cap / 2), std::max<int64_t>(1, cap));
  return std::chrono::milliseconds(d(rng));
}

void Forwarder::sender_loop() {
  HttpClient client(options_.http);
  for (;;) {
    std::string id;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (stopping_) return;
        if (pending_.empty()) {
          cv_.wait(lock);
          continue;
        }
        if (std::chrono::steady_clock::now() < not_before_) {
          cv_.wait_until(lock, not_before_);
          continue;
        }
        break;
      }
      id = *pending_.begin();
      pending_.erase(pending_.begin());
      ++in_flight_;
    }
    std::chrono::milliseconds retry_after{0};
    Outcome outcome;
    try {
      outcome = send_one(client, id, &retry_after);
    } catch (const std::exception& e) {
      spdlog::error("proxy: sending batch {} failed unexpectedly: {}", id, e.what());
      outcome = Outcome::retry;
    }
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      if (outcome == Outcome::retry) {
        pending_.insert(id);
        ++consecutive_failures_;
        auto delay = std::min(std::max(next_backoff(), retry_after), options_.backoff_max);
        not_before_ = std::max(not_before_, std::chrono::steady_clock::now() + delay);
      } else {
        consecutive_failures_ = 0;
      }
    }
    cv_.notify_all();
  }
}

Forwarder::Outcome Forwarder::send_one(HttpClient& client, const std::string& id,
                                       std::chrono::milliseconds* retry_after) {
  Spool::Item item;
  try {
    item = spool_.read(id);
  } catch (const std::exception& e) {
    if (auto* se = dynamic_cast<const std::system_error*>(&e); se && is_resource_exhaustion(se->code())) {
      // Out of descriptors or memory right now: the entry is fine, try again later.
      spdlog::warn("proxy: cannot read spooled batch {} now (will retry): {}", id, e.what());
      return Outcome::retry;
    }
    if (!spool_.contains(id)) {
      spdlog::warn("proxy: batch {} vanished from the spool: {}", id, e.what());
      return Outcome::sent;  // nothing left to send
    }
    // Unreadable entry: keep the bytes for the operator, out of the queue.
    spool_.quarantine(id, e.what());
    update_spool_gauge(spool_);
    metrics().counter("bf_proxy_batches_dead_total", "Batches the receiver rejected permanently", {{"code", "corrupt"}}).inc();
    return Outcome::dead;
  }
  std::string tenant, dataset;
  uint64_t events = 0;
  try {
    auto meta = json::parse(item.meta).as_object();
    tenant = std::string(meta.at("tenant").as_string());
    dataset = std::string(meta.at("dataset").as_string());
    if (auto* e = meta.if_contains("events")) events = e->to_number<uint64_t>();
    require_id("tenant", tenant);
    require_id("dataset", dataset);
  } catch (const std::exception& e) {
    spdlog::error("proxy: batch {} has unusable spool metadata ({}); moving it to {}", id, e.what(),
                  dead_dir().string());
    move_to_dead(id, item, "invalid_meta", e.what());
    return Outcome::dead;
  }

  const std::string url = base_url_ + "/api/v1/ingest/" + tenant + "/" + dataset;
  Headers headers;
  headers["Authorization"] = "Bearer " + options_.ingest_key;
  headers["Content-Type"] = "application/x-ndjson";
  headers["Content-Encoding"] = "zstd";
  headers["X-Batch-Id"] = id;

  HttpResult r;
  try {
    r = client.send_with_retry("POST", url, headers, item.data);
  } catch (const HttpTransportError& e) {
    metrics().counter("bf_proxy_send_retries_total", "Batch sends that will be retried", {{"reason", "transport"}}).inc();
    spdlog::warn("proxy: batch {} for {}/{} not delivered to {}: {} (will retry)", id, tenant, dataset, url,
                 e.what());
    return Outcome::retry;
  }
  if (r.status >= 200 && r.status < 300) {
    spool_.remove(id);
    update_spool_gauge(spool_);
    metrics().counter("bf_proxy_batches_sent_total", "Batches acknowledged by the receiver").inc();
    metrics().counter("bf_proxy_events_sent_total", "Events acknowledged by the receiver").inc(events);
    return Outcome::sent;
  }
  if (is_permanent(r.status)) {
    const std::string body = truncate_body(r.body);
    spdlog::error("proxy: receiver rejected batch {} for tenant '{}' dataset '{}' with HTTP {}: {} — moved to {}",
                  id, tenant, dataset, r.status, body, dead_dir().string());
    move_to_dead(id, item, std::to_string(r.status), body);
    return Outcome::dead;
  }
  metrics()
      .counter("bf_proxy_send_retries_total", "Batch sends that will be retried", {{"reason", std::to_string(r.status)}})
      .inc();
  spdlog::warn("proxy: receiver answered HTTP {} for batch {} ({}/{}): {} (will retry)", r.status, id, tenant,
               dataset, truncate_body(r.body, 256));
  *retry_after = HttpClient::retry_after(r).value_or(std::chrono::milliseconds(0));
  return Outcome::retry;
}

void Forwarder::move_to_dead(const std::string& id, const Spool::Item& item, const std::string& code,
                             const std::string& reason) {
  const auto dir = dead_dir();
  std::filesystem::create_directories(dir);
  json::object info;
  try {
    info["meta"] = json::parse(item.meta);
  } catch (...) {
    info["meta"] = repair_utf8(item.meta);
  }
  info["batch_id"] = id;
  info["status"] = code;
  info["response"] = reason;
  info["dead_at"] = format_rfc3339(now_us());
  // Data first, then the description, then remove from the queue: a crash in between
  // leaves the batch in both places, never in neither.
  write_file_durable(dir / (id + ".ndjson.zst"), item.data);
  write_file_durable(dir / (id + ".json"), json::serialize(info) + "\n");
  spool_.remove(id);
  update_spool_gauge(spool_);
  metrics().counter("bf_proxy_batches_dead_total", "Batches the receiver rejected permanently", {{"code", code}}).inc();
}

}  // namespace bf
