#include "proxy/forwarder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <random>
#include <stdexcept>
#include <system_error>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/utf8.h"
#include "common/worker.h"
#include "net/conn_limits.h"

namespace bf {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

// The receiver understood the request but refuses this batch for a reason an operator
// can fix without changing the batch (key, permissions, unknown dataset).
bool is_pausing(long status) { return status == 401 || status == 403 || status == 404; }
// This exact batch can never be accepted (malformed, too large, id reused for other content).
bool is_dead(long status) { return status == 400 || status == 413 || status == 409; }

std::string truncate_body(const std::string& body, size_t max = 2048) {
  std::string b = repair_utf8(body.size() > max ? std::string_view(body).substr(0, max) : std::string_view(body));
  if (body.size() > max) b += "...";
  return b;
}

void update_spool_gauge(const Spool& spool) {
  metrics().gauge("bf_proxy_spool_bytes", "Bytes of batches in the proxy spool").set(int64_t(spool.bytes()));
}

Counter& retries_counter(const std::string& reason) {
  return metrics().counter("bf_proxy_send_retries_total", "Batch sends that will be retried", {{"reason", reason}});
}

Gauge& receiver_gauge(const std::string& url) {
  return metrics().gauge("bf_proxy_receiver_healthy",
                         "1 while the receiver's last answer was usable, 0 while it is skipped for a backoff",
                         {{"receiver", url}});
}

Gauge& paused_gauge(const std::string& tenant, const std::string& dataset) {
  return metrics().gauge("bf_proxy_dataset_paused",
                         "1 while a dataset's batches are held in the spool after 401/403/404",
                         {{"tenant", tenant}, {"dataset", dataset}});
}

Gauge& paused_count_gauge() {
  return metrics().gauge("bf_proxy_paused_datasets", "Datasets whose batches are held in the spool after 401/403/404");
}

bool is_out_of_space(const std::exception& e) {
  if (auto* se = dynamic_cast<const std::system_error*>(&e))
    return se->code() == std::errc::no_space_on_device || se->code().value() == EDQUOT;
  return false;
}

bool answered_duplicate(const std::string& body) {
  if (body.find("duplicate") == std::string::npos) return false;
  json::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return false;
  auto* d = v.as_object().if_contains("duplicate");
  return d && d->is_bool() && d->as_bool();
}

}  // namespace

Forwarder::Forwarder(ForwarderOptions options)
    : options_(std::move(options)),
      spool_(options_.spool_dir,
             SpoolOptions{options_.spool_max_bytes, options_.spool_fsync, options_.spool_fsync_interval}),
      component_("sink", "forwarder", options_.component_id),
      dead_letter_events_(component_.discarded(Discard::unintentional, "dead_letter")) {
  if (options_.receiver_urls.empty()) throw std::invalid_argument("forwarder: no receiver url");
  for (std::string url : options_.receiver_urls) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    receivers_.push_back(Receiver{url});
    receiver_gauge(url).set(1);
  }
  if (options_.concurrency < 1) options_.concurrency = 1;
  // Batches left by a previous run are sent first: their ULIDs sort before new ones.
  size_t n = 0;
  for (const auto& e : spool_.list()) {
    Key key;
    try {
      auto meta = json::parse(spool_.read_meta(e.id)).as_object();
      key = {std::string(meta.at("tenant").as_string()), std::string(meta.at("dataset").as_string())};
    } catch (const std::exception&) {
      key = {};  // send_one reads the whole entry and deals with it (quarantine / dead)
    }
    queues_[key].ids.insert(e.id);
    ++n;
  }
  if (n) spdlog::info("proxy: {} unsent batches in spool {}", n, queue_dir().string());
  update_spool_gauge(spool_);
}

Forwarder::~Forwarder() {
  stop();
  std::lock_guard lock(mu_);
  for (auto& [key, q] : queues_)
    if (q.paused) {
      paused_gauge(key.first, key.second).set(0);
      paused_count_gauge().add(-1);
    }
}

void Forwarder::start() {
  std::lock_guard lock(mu_);
  if (!senders_.empty()) return;
  stopping_ = false;
  release_ = false;
  for (int i = 0; i < options_.concurrency; ++i) senders_.emplace_back([this] { sender_loop(); });
}

void Forwarder::stop() {
  release_waiters();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : senders_)
    if (t.joinable()) t.join();
  senders_.clear();
}

void Forwarder::release_waiters() {
  release_ = true;
  std::lock_guard lock(space_mu_);
  space_cv_.notify_all();
}

void Forwarder::space_freed() {
  std::lock_guard lock(space_mu_);
  space_cv_.notify_all();
}

void Forwarder::store(const ProxyBatch& batch, Spool::PutOptions put) {
  json::object meta;
  meta["tenant"] = batch.tenant;
  meta["dataset"] = batch.dataset;
  meta["events"] = batch.events;
  spool_.put(batch.id, json::serialize(meta), batch.data, put);
  metrics().counter("bf_proxy_batches_spooled_total", "Batches written to the proxy spool").inc();
  metrics().counter("bf_proxy_events_spooled_total", "Events written to the proxy spool").inc(batch.events);
  update_spool_gauge(spool_);
  {
    std::lock_guard lock(mu_);
    queues_[Key{batch.tenant, batch.dataset}].ids.insert(batch.id);
  }
  cv_.notify_all();
}

void Forwarder::count_store_failure(const char* reason, uint64_t dropped_events) {
  component_.error("spool", reason).inc();
  if (dropped_events) component_.discarded(Discard::unintentional, reason).inc(dropped_events);
}

void Forwarder::submit(const ProxyBatch& batch) {
  component_.received_events.inc(batch.events);
  component_.received_bytes.inc(batch.ndjson_bytes);
  try {
    store(batch, {});
  } catch (const SpoolFull&) {
    count_store_failure("spool_full", 0);  // the caller refuses its request: nothing is lost
    throw;
  } catch (const std::exception& e) {
    count_store_failure(is_out_of_space(e) ? "spool_full" : "spool_error", 0);
    throw;
  }
}

void Forwarder::submit_or_drop(const ProxyBatch& batch) {
  component_.received_events.inc(batch.events);
  component_.received_bytes.inc(batch.ndjson_bytes);
  const char* reason = nullptr;
  std::string what;
  try {
    store(batch, {Spool::Commit::deferred, false});
    return;
  } catch (const SpoolFull& e) {
    reason = "spool_full";
    what = e.what();
  } catch (const std::exception& e) {
    reason = is_out_of_space(e) ? "spool_full" : "spool_error";
    what = e.what();
  }
  metrics()
      .counter("bf_proxy_dropped_total", "Events the proxy discarded", {{"reason", reason}})
      .inc(batch.events);
  count_store_failure(reason, batch.events);
  spdlog::error("proxy: dropped batch {} ({} events for {}/{}): {}", batch.id, batch.events, batch.tenant,
                batch.dataset, what);
}

void Forwarder::submit_or_wait(const ProxyBatch& batch) {
  using namespace std::chrono;
  component_.received_events.inc(batch.events);
  component_.received_bytes.inc(batch.ndjson_bytes);
  bool waiting = false;
  const auto started = Clock::now();
  auto finish_wait = [&] {
    if (!waiting) return;
    blocked_.fetch_sub(1);
    metrics().gauge("bf_proxy_backpressure_blocked", "Source threads waiting for room in the full proxy spool").add(-1);
    metrics()
        .counter("bf_proxy_backpressure_wait_ms_total", "Milliseconds source threads waited for room in the spool")
        .inc(uint64_t(duration_cast<milliseconds>(Clock::now() - started).count()));
  };
  for (;;) {
    const bool force = release_.load() || spool_.bytes() == 0;
    try {
      store(batch, {Spool::Commit::now, force});
      finish_wait();
      return;
    } catch (const SpoolFull&) {
    } catch (const std::exception& e) {
      // A full disk is waited out like a full spool (an empty spool does not make
      // room on the disk); only a stopping proxy, or another error, gives the batch up.
      if (!is_out_of_space(e) || release_.load()) {
        finish_wait();
        const char* reason = is_out_of_space(e) ? "spool_full" : "spool_error";
        metrics().counter("bf_proxy_dropped_total", "Events the proxy discarded", {{"reason", reason}}).inc(batch.events);
        count_store_failure(reason, batch.events);
        spdlog::error("proxy: dropped batch {} ({} events for {}/{}): {}", batch.id, batch.events, batch.tenant,
                      batch.dataset, e.what());
        return;
      }
    }
    if (!waiting) {
      waiting = true;
      blocked_.fetch_add(1);
      metrics().gauge("bf_proxy_backpressure_blocked", "Source threads waiting for room in the full proxy spool").add(1);
      metrics().counter("bf_proxy_backpressure_waits_total", "Batches that waited for room in the full proxy spool").inc();
      const int64_t now_s = duration_cast<seconds>(Clock::now().time_since_epoch()).count();
      int64_t last = last_block_warning_.load();
      if (now_s - last >= 10 && last_block_warning_.compare_exchange_strong(last, now_s))
        spdlog::warn("proxy: spool {} is full ({} bytes); TCP sources stop reading until batches are delivered",
                     queue_dir().string(), spool_.bytes());
    }
    std::unique_lock lock(space_mu_);
    if (release_.load()) continue;
    space_cv_.wait_for(lock, milliseconds(50));
  }
}

size_t Forwarder::queued() const {
  std::lock_guard lock(mu_);
  size_t n = in_flight_;
  for (auto& [k, q] : queues_) n += q.ids.size();
  return n;
}

std::vector<std::pair<std::string, std::string>> Forwarder::paused() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, q] : queues_)
    if (q.paused) out.push_back(k);
  return out;
}

std::chrono::milliseconds Forwarder::backoff(int failures) {
  // Exponential with jitter, in [cap/2, cap].
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const int n = std::clamp(failures - 1, 0, 20);
  const auto cap = std::min<int64_t>(options_.backoff_max.count(), options_.backoff_base.count() << n);
  std::uniform_int_distribution<int64_t> d(std::max<int64_t>(1, cap / 2), std::max<int64_t>(1, cap));
  return std::chrono::milliseconds(d(rng));
}

void Forwarder::receiver_failed(size_t index, std::chrono::milliseconds retry_after) {
  std::lock_guard lock(mu_);
  Receiver& r = receivers_[index];
  ++r.failures;
  const auto delay = std::max(backoff(r.failures), std::min(retry_after, options_.retry_after_max));
  r.not_before = std::max(r.not_before, Clock::now() + delay);
  receiver_gauge(r.base).set(0);
}

void Forwarder::receiver_ok(size_t index) {
  std::lock_guard lock(mu_);
  Receiver& r = receivers_[index];
  if (r.failures > 0) spdlog::info("proxy: receiver {} is answering again", r.base);
  r.failures = 0;
  receiver_gauge(r.base).set(1);
}

void Forwarder::pause_locked(const Key& key, Queue& q, long status, const std::string& detail) {
  q.next_probe = Clock::now() + options_.permanent_error_retry;
  if (q.paused) return;
  q.paused = true;
  q.status = status;
  paused_gauge(key.first, key.second).set(1);
  paused_count_gauge().add(1);
  metrics()
      .counter("bf_proxy_dataset_pauses_total", "Times a dataset was paused after 401/403/404",
               {{"code", std::to_string(status)}})
      .inc();
  spdlog::error(
      "proxy: receiver answered HTTP {} for tenant '{}' dataset '{}': {} — pausing this dataset; its {} batches "
      "stay in the spool and one is retried every {} ms (fix the ingest key or create the dataset)",
      status, key.first, key.second, detail, q.ids.size(), options_.permanent_error_retry.count());
}

void Forwarder::resume_locked(const Key& key, Queue& q) {
  q.paused = false;
  q.probing = false;
  paused_gauge(key.first, key.second).set(0);
  paused_count_gauge().add(-1);
  spdlog::info("proxy: tenant '{}' dataset '{}' accepted again; sending its {} spooled batches", key.first,
               key.second, q.ids.size());
}

void Forwarder::sender_loop() {
  set_thread_name("bf-proxy-fwd");
  HttpClientOptions http = options_.http;
  // With several receivers a failed attempt fails over at once instead of retrying
  // (and waiting on) the same receiver.
  if (receivers_.size() > 1) http.max_retries = 0;
  HttpClient client(http);
  for (;;) {
    std::string id;
    Key key;
    bool probe = false;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (stopping_) return;
        const auto now = Clock::now();
        if (now < local_not_before_) {
          cv_.wait_until(lock, local_not_before_);
          continue;
        }
        auto receiver_ready = Clock::time_point::max();
        for (const auto& r : receivers_) receiver_ready = std::min(receiver_ready, r.not_before);
        auto wake = Clock::time_point::max();
        std::map<Key, Queue>::iterator best = queues_.end();
        for (auto it = queues_.begin(); it != queues_.end(); ++it) {
          Queue& q = it->second;
          if (q.ids.empty()) continue;
          if (q.paused) {
            if (q.probing) continue;
            if (now < q.next_probe) {
              wake = std::min(wake, q.next_probe);
              continue;
            }
          }
          if (best == queues_.end() || *q.ids.begin() < *best->second.ids.begin()) best = it;
        }
        if (best == queues_.end()) {
          if (wake == Clock::time_point::max())
            cv_.wait(lock);
          else
            cv_.wait_until(lock, wake);
          continue;
        }
        if (receiver_ready > now) {  // every receiver is backing off
          cv_.wait_until(lock, receiver_ready);
          continue;
        }
        Queue& q = best->second;
        id = *q.ids.begin();
        q.ids.erase(q.ids.begin());
        key = best->first;
        if (q.paused) {
          q.probing = true;
          probe = true;
        }
        ++in_flight_;
        break;
      }
    }
    Result res;
    bool local_failure = false;
    try {
      res = send_one(client, id, key);
      local_failure = res.outcome == Outcome::retry && res.status < 0;
    } catch (const std::exception& e) {
      spdlog::error("proxy: sending batch {} failed unexpectedly: {}", id, e.what());
      res.outcome = Outcome::retry;
      local_failure = true;
    }
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      Queue& q = queues_[key];
      if (probe) q.probing = false;
      switch (res.outcome) {
        case Outcome::sent:
        case Outcome::dead:
          if (q.paused) resume_locked(key, q);
          local_failures_ = 0;
          break;
        case Outcome::retry:
          q.ids.insert(id);  // the receivers' backoff gates the next try
          break;
        case Outcome::pause:
          q.ids.insert(id);
          pause_locked(key, q, res.status, res.detail);
          break;
      }
      if (local_failure) {
        ++local_failures_;
        local_not_before_ = Clock::now() + backoff(local_failures_);
      }
    }
    cv_.notify_all();
  }
}

Forwarder::Result Forwarder::send_one(HttpClient& client, const std::string& id, const Key& key) {
  Spool::Item item;
  try {
    item = spool_.read(id);
  } catch (const std::exception& e) {
    if (auto* se = dynamic_cast<const std::system_error*>(&e); se && is_resource_exhaustion(se->code())) {
      // Out of descriptors or memory right now: the entry is fine, try again later.
      spdlog::warn("proxy: cannot read spooled batch {} now (will retry): {}", id, e.what());
      return {Outcome::retry, -1, e.what()};
    }
    if (!spool_.contains(id)) {
      spdlog::warn("proxy: batch {} vanished from the spool: {}", id, e.what());
      return {Outcome::sent, 0, {}};  // nothing left to send
    }
    // Unreadable entry: keep the bytes for the operator, out of the queue (its
    // event count is unreadable too: counted as an error, not as discarded events).
    component_.error("spool", "corrupt").inc();
    spool_.quarantine(id, e.what());
    update_spool_gauge(spool_);
    space_freed();
    metrics().counter("bf_proxy_batches_dead_total", "Batches the receiver rejected permanently", {{"code", "corrupt"}}).inc();
    return {Outcome::dead, 0, {}};
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
    if (!key.first.empty() && (key.first != tenant || key.second != dataset))
      throw std::runtime_error("meta names " + tenant + "/" + dataset + ", queued as " + key.first + "/" + key.second);
  } catch (const std::exception& e) {
    spdlog::error("proxy: batch {} has unusable spool metadata ({}); moving it to {}", id, e.what(),
                  dead_dir().string());
    component_.error("spool", "invalid_meta").inc();
    move_to_dead(id, item, "invalid_meta", e.what(), events);
    return {Outcome::dead, 0, {}};
  }

  const std::string path = "/api/v1/ingest/" + tenant + "/" + dataset;
  Headers headers;
  headers["Authorization"] = "Bearer " + options_.ingest_key;
  headers["Content-Type"] = "application/x-ndjson";
  headers["Content-Encoding"] = "zstd";
  headers["X-Batch-Id"] = id;

  std::vector<bool> tried(receivers_.size(), false);
  long pause_status = 0;
  std::string pause_detail;
  bool failed_before = false;
  for (;;) {
    size_t index = receivers_.size();
    std::string base;
    int failures = 0;
    {
      std::lock_guard lock(mu_);
      const auto now = Clock::now();
      for (size_t i = 0; i < receivers_.size(); ++i)
        if (!tried[i] && receivers_[i].not_before <= now) {
          index = i;
          base = receivers_[i].base;
          failures = receivers_[i].failures;
          break;
        }
    }
    if (index == receivers_.size()) break;
    tried[index] = true;
    const std::string url = base + path;
    const bool more = std::find(tried.begin(), tried.end(), false) != tried.end();
    const char* next = more ? "trying the next receiver" : "will retry";

    HttpResult r;
    try {
      r = client.send_with_retry("POST", url, headers, item.data);
    } catch (const HttpTransportError& e) {
      retries_counter("transport").inc();
      component_.error("send", "transport").inc();
      if (failures == 0)
        spdlog::warn("proxy: receiver {} unreachable ({}); skipping it for a backoff, {}", base, e.what(), next);
      else
        spdlog::debug("proxy: batch {} not delivered to {}: {}", id, url, e.what());
      receiver_failed(index, std::chrono::milliseconds(0));
      failed_before = true;
      continue;
    }
    if (r.status >= 200 && r.status < 300) {
      receiver_ok(index);
      spool_.remove(id);
      update_spool_gauge(spool_);
      space_freed();
      metrics().counter("bf_proxy_batches_sent_total", "Batches acknowledged by the receiver").inc();
      metrics().counter("bf_proxy_events_sent_total", "Events acknowledged by the receiver").inc(events);
      component_.sent_events.inc(events);
      component_.sent_bytes.inc(item.data.size());
      if (answered_duplicate(r.body))
        metrics()
            .counter("bf_proxy_batches_duplicate_total", "Batches a receiver already had (answered duplicate)")
            .inc();
      if (failed_before)
        metrics()
            .counter("bf_proxy_failovers_total", "Batches delivered after another receiver failed them")
            .inc();
      return {Outcome::sent, r.status, {}};
    }
    if (is_dead(r.status)) {
      receiver_ok(index);
      const std::string body = truncate_body(r.body);
      spdlog::error(
          "proxy: receiver {} rejected batch {} for tenant '{}' dataset '{}' with HTTP {}: {} — moved to {}", base,
          id, tenant, dataset, r.status, body, dead_dir().string());
      component_.error("send", "http_" + std::to_string(r.status)).inc();
      move_to_dead(id, item, std::to_string(r.status), body, events);
      return {Outcome::dead, r.status, {}};
    }
    if (is_pausing(r.status)) {
      receiver_ok(index);  // it answered; the problem is the key or the dataset
      retries_counter(std::to_string(r.status)).inc();
      component_.error("send", "http_" + std::to_string(r.status)).inc();
      spdlog::debug("proxy: receiver {} answered HTTP {} for batch {} ({}/{}): {}", base, r.status, id, tenant,
                    dataset, truncate_body(r.body, 256));
      if (pause_status == 0) {
        pause_status = r.status;
        pause_detail = "receiver " + base + ": " + truncate_body(r.body, 512);
      }
      continue;
    }
    retries_counter(std::to_string(r.status)).inc();
    component_.error("send", "http_" + std::to_string(r.status)).inc();
    if (failures == 0)
      spdlog::warn("proxy: receiver {} answered HTTP {} for batch {} ({}/{}): {}; skipping it for a backoff, {}", base,
                   r.status, id, tenant, dataset, truncate_body(r.body, 256), next);
    else
      spdlog::debug("proxy: receiver {} answered HTTP {} for batch {}", base, r.status, id);
    receiver_failed(index, HttpClient::retry_after(r).value_or(std::chrono::milliseconds(0)));
    failed_before = true;
  }
  if (pause_status != 0) return {Outcome::pause, pause_status, pause_detail};
  return {Outcome::retry, 0, {}};
}

void Forwarder::move_to_dead(const std::string& id, const Spool::Item& item, const std::string& code,
                             const std::string& reason, uint64_t events) {
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
  space_freed();
  metrics().counter("bf_proxy_batches_dead_total", "Batches the receiver rejected permanently", {{"code", code}}).inc();
  dead_letter_events_.inc(events);  // set aside in dead/, not delivered
}

}  // namespace bf
