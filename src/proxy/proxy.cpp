#include "proxy/proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "common/config.h"
#include "proxy/batcher.h"
#include "proxy/forwarder.h"
#include "proxy/source.h"

namespace bf {

ProxyOptions parse_proxy_options(const ConfigNode& section) {
  ProxyOptions o;
  const ConfigNode receiver = section.child("receiver");
  if (receiver.has("url") && receiver.has("urls"))
    receiver.fail("urls", "set either `url` (one receiver) or `urls` (a list), not both");
  if (receiver.has("urls")) {
    o.receiver_urls = receiver.str_list("urls");
    if (o.receiver_urls.empty()) receiver.fail("urls", "must list at least one receiver");
  } else {
    o.receiver_urls = {receiver.str("url", o.receiver_urls.front())};
  }
  const char* url_key = receiver.has("urls") ? "urls" : "url";
  for (size_t i = 0; i < o.receiver_urls.size(); ++i) {
    const std::string& u = o.receiver_urls[i];
    if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
      receiver.fail(url_key, "must start with http:// or https://, got '" + u + "'");
    for (size_t j = 0; j < i; ++j)
      if (o.receiver_urls[j] == u) receiver.fail(url_key, "lists '" + u + "' twice");
  }
  o.ingest_key = receiver.str("ingest_key", "");
  if (o.ingest_key.empty())
    receiver.fail("ingest_key", "is required (the receiver answers 401 without it)");
  o.receiver_timeout = receiver.duration("timeout", o.receiver_timeout);
  o.receiver_connect_timeout = receiver.duration("connect_timeout", o.receiver_connect_timeout);
  const int64_t retries = receiver.integer("max_retries", o.receiver_max_retries);
  if (retries < 0 || retries > 20) receiver.fail("max_retries", "must be 0..20");
  o.receiver_max_retries = static_cast<int>(retries);
  o.retry_backoff_base = receiver.duration("retry_backoff", o.retry_backoff_base);
  o.retry_backoff_max = receiver.duration("retry_backoff_max", o.retry_backoff_max);
  if (o.retry_backoff_base.count() <= 0) receiver.fail("retry_backoff", "must be positive");
  if (o.retry_backoff_max < o.retry_backoff_base) receiver.fail("retry_backoff_max", "must be >= retry_backoff");
  o.receiver_ca_file = receiver.str("ca_file", "");
  o.receiver_verify_tls = receiver.boolean("verify_tls", true);

  const ConfigNode batch = section.child("batch");
  const int64_t max_events = batch.integer("max_events", int64_t(o.batch_max_events));
  if (max_events < 1) batch.fail("max_events", "must be at least 1");
  o.batch_max_events = static_cast<size_t>(max_events);
  o.batch_max_bytes = batch.bytes("max_bytes", o.batch_max_bytes);
  if (o.batch_max_bytes == 0) batch.fail("max_bytes", "must be positive");
  o.batch_max_age = batch.duration("max_age", o.batch_max_age);
  if (o.batch_max_age.count() <= 0) batch.fail("max_age", "must be positive");

  const ConfigNode spool = section.child("spool");
  o.spool_dir = spool.str("dir", o.spool_dir);
  if (o.spool_dir.empty()) spool.fail("dir", "must not be empty");
  o.spool_max_bytes = spool.bytes("max_bytes", o.spool_max_bytes);
  const std::string fsync = spool.str("fsync", "always");
  if (fsync != "always" && fsync != "interval")
    spool.fail("fsync", "must be 'always' or 'interval', got '" + fsync + "'");
  o.spool_fsync_interval_mode = fsync == "interval";
  o.spool_fsync_interval = spool.duration("fsync_interval", o.spool_fsync_interval);
  if (o.spool_fsync_interval.count() <= 0 || o.spool_fsync_interval > std::chrono::milliseconds(60000))
    spool.fail("fsync_interval", "must be between 1ms and 60s");

  o.permanent_error_retry = section.duration("permanent_error_retry", o.permanent_error_retry);
  if (o.permanent_error_retry.count() <= 0) section.fail("permanent_error_retry", "must be positive");

  const int64_t level = section.integer("compression_level", o.compression_level);
  if (level < -7 || level > 19 || level == 0)
    section.fail("compression_level", "must be a zstd level: 1..19, or -1..-7 for zstd's fastest levels");
  o.compression_level = static_cast<int>(level);

  const int64_t conc = section.integer("forward_concurrency", o.forward_concurrency);
  if (conc < 1 || conc > 64) section.fail("forward_concurrency", "must be 1..64");
  o.forward_concurrency = static_cast<int>(conc);
  return o;
}

struct Proxy::Impl : EventSink {
  ProxyOptions options;
  std::vector<std::unique_ptr<Source>> sources;
  std::unique_ptr<Forwarder> forwarder;
  std::unique_ptr<Batcher> batcher;
  std::mutex lifecycle_mu;
  bool started = false;
  std::atomic<bool> is_ready{false};

  void emit(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
            Delivery delivery) override {
    batcher->add(tenant, dataset, std::move(events), delivery);
  }

  void emit_ndjson(const std::string& tenant, const std::string& dataset, std::string_view lines, size_t events,
                   Delivery delivery) override {
    batcher->add_ndjson(tenant, dataset, lines, events, delivery);
  }

  uint64_t emit_durable(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events) override {
    if (events.empty()) return 0;
    const ProxyBatch b =
        Batcher::make_batch(tenant, dataset, to_ndjson(events), events.size(), options.compression_level);
    forwarder->submit(b);  // throws SpoolFull / filesystem errors
    return b.ndjson_bytes;
  }

  void stop_all() {
    is_ready = false;
    // A TCP source blocked on a full spool must return before it can stop: from now on
    // its batches are stored even over spool.max_bytes (what it read is kept).
    if (forwarder) forwarder->release_waiters();
    for (auto it = sources.rbegin(); it != sources.rend(); ++it) {
      try {
        (*it)->stop();
      } catch (const std::exception& e) {
        spdlog::error("proxy: stopping source {}: {}", (*it)->name(), e.what());
      }
    }
    if (batcher) batcher->stop();      // flushes every buffer into the spool
    if (forwarder) forwarder->stop();  // in-flight sends finish; the rest waits in the spool
  }
};

Proxy::Proxy(const ConfigNode& section) : impl_(std::make_unique<Impl>()) {
  impl_->options = parse_proxy_options(section);
  for (const ConfigNode& node : section.list("sources")) {
    const std::string type = node.str("type", "");
    if (type.empty()) node.fail("type", "is required");
    const SourceFactory* factory = find_source_factory(type);
    if (!factory) {
      std::string known;
      for (const auto& f : source_factories()) known += (known.empty() ? "" : ", ") + f.type;
      node.fail("type", "unknown source type '" + type + "' (known types: " + known + ")");
    }
    auto source = factory->create(node, *impl_);
    for (const auto& other : impl_->sources)
      if (other->name() == source->name())
        node.fail("name", "duplicate source name '" + source->name() + "' (set a distinct `name`)");
    impl_->sources.push_back(std::move(source));
  }
  section.check_unknown();
}

Proxy::~Proxy() { stop(); }

void Proxy::start() {
  std::lock_guard lock(impl_->lifecycle_mu);
  if (impl_->started) return;
  const ProxyOptions& o = impl_->options;
  ForwarderOptions fo;
  fo.receiver_urls = o.receiver_urls;
  fo.ingest_key = o.ingest_key;
  fo.spool_dir = o.spool_dir;
  fo.spool_max_bytes = o.spool_max_bytes;
  fo.spool_fsync = o.spool_fsync_interval_mode ? SpoolFsync::interval : SpoolFsync::always;
  fo.spool_fsync_interval = o.spool_fsync_interval;
  fo.permanent_error_retry = o.permanent_error_retry;
  fo.concurrency = o.forward_concurrency;
  fo.http.timeout = o.receiver_timeout;
  fo.http.connect_timeout = o.receiver_connect_timeout;
  fo.http.max_retries = o.receiver_max_retries;
  fo.http.verify_tls = o.receiver_verify_tls;
  fo.http.ca_file = o.receiver_ca_file;
  fo.backoff_base = o.retry_backoff_base;
  fo.backoff_max = o.retry_backoff_max;
  // Inner retries (one send, single receiver) honour Retry-After only briefly; the
  // batch then waits in the spool behind the receiver's backoff, which honours the
  // full Retry-After.
  fo.http.retry_after_max = std::min(o.retry_backoff_max, std::chrono::milliseconds(5000));
  impl_->forwarder = std::make_unique<Forwarder>(std::move(fo));
  BatcherOptions bo{o.batch_max_events, o.batch_max_bytes, o.batch_max_age, o.compression_level};
  Forwarder* fwd = impl_->forwarder.get();
  impl_->batcher = std::make_unique<Batcher>(bo, [fwd](ProxyBatch&& b) {
    if (b.delivery == Delivery::backpressure)
      fwd->submit_or_wait(b);  // TCP: blocks the source while the spool is full
    else
      fwd->submit_or_drop(b);  // UDP: drop-newest, counted
  });
  impl_->forwarder->start();
  impl_->batcher->start();
  impl_->started = true;
  try {
    for (auto& s : impl_->sources) {
      s->start();
      spdlog::info("proxy: source {} listening on port {}", s->name(), s->port());
    }
  } catch (...) {
    impl_->stop_all();
    impl_->started = false;
    throw;
  }
  impl_->is_ready = true;
}

void Proxy::stop() {
  std::lock_guard lock(impl_->lifecycle_mu);
  if (!impl_->started) return;
  impl_->stop_all();
  impl_->started = false;
}

bool Proxy::ready() const { return impl_->is_ready.load(); }

uint16_t Proxy::source_port(const std::string& source_name) const {
  for (const auto& s : impl_->sources)
    if (s->name() == source_name) return s->port();
  throw std::out_of_range("proxy: no source named '" + source_name + "'");
}

const ProxyOptions& Proxy::options() const { return impl_->options; }

}  // namespace bf
