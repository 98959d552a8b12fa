#include "proxy/batcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/compression.h"
#include "common/ulid.h"

namespace bf {

Batcher::Batcher(BatcherOptions options, Output output) : options_(options), output_(std::move(output)) {
  if (options_.max_events == 0) options_.max_events = 1;
  if (options_.max_bytes == 0) options_.max_bytes = 1;
}

Batcher::~Batcher() { stop(); }

ProxyBatch Batcher::make_batch(const std::string& tenant, const std::string& dataset, std::string_view ndjson,
                               size_t events) {
  ProxyBatch b;
  b.id = new_ulid();
  b.tenant = tenant;
  b.dataset = dataset;
  b.data = compress(Encoding::zstd, ndjson);
  b.events = events;
  b.ndjson_bytes = ndjson.size();
  return b;
}

Batcher::Buffer& Batcher::buffer_for(const std::string& tenant, const std::string& dataset, Delivery delivery) {
  const KeyView key{tenant, dataset, delivery};
  {
    std::shared_lock lock(map_mu_);
    auto it = buffers_.find(key);
    if (it != buffers_.end()) return *it->second;
  }
  std::unique_lock lock(map_mu_);
  auto it = buffers_.find(key);
  if (it == buffers_.end()) {
    auto b = std::make_unique<Buffer>();
    b->tenant = tenant;
    b->dataset = dataset;
    b->delivery = delivery;
    it = buffers_.emplace(Key{tenant, dataset, delivery}, std::move(b)).first;
  }
  return *it->second;
}

Batcher::Pending Batcher::take(Buffer& b) {
  Pending p{std::move(b.ndjson), b.events};
  b.ndjson = std::string();
  b.events = 0;
  return p;
}

void Batcher::deliver(const Buffer& b, Pending&& p) {
  if (p.events == 0) return;
  try {
    ProxyBatch batch = make_batch(b.tenant, b.dataset, p.ndjson, p.events);
    batch.delivery = b.delivery;
    output_(std::move(batch));
  } catch (const std::exception& e) {
    spdlog::error("proxy batcher: delivering a batch of {} events for {}/{} failed: {}", p.events, b.tenant,
                  b.dataset, e.what());
  }
}

void Batcher::add(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
                  Delivery delivery) {
  if (events.empty()) return;
  // Serialize without any lock held.
  std::string lines;
  std::vector<size_t> ends;
  ends.reserve(events.size());
  for (const auto& e : events) {
    append_ndjson(lines, e);
    ends.push_back(lines.size());
  }
  events.clear();

  Buffer& b = buffer_for(tenant, dataset, delivery);
  std::vector<Pending> full;
  {
    std::lock_guard lock(b.mu);
    size_t start = 0;
    for (size_t i = 0; i < ends.size(); ++i) {
      const size_t len = ends[i] - start;
      if (b.events > 0 && b.ndjson.size() + len > options_.max_bytes) full.push_back(take(b));
      if (b.events == 0) {
        b.first = std::chrono::steady_clock::now();
        if (b.ndjson.capacity() < std::min<uint64_t>(options_.max_bytes, 1 << 20))
          b.ndjson.reserve(std::min<uint64_t>(options_.max_bytes, 1 << 20));
      }
      b.ndjson.append(lines, start, len);
      ++b.events;
      start = ends[i];
      if (b.events >= options_.max_events || b.ndjson.size() >= options_.max_bytes) full.push_back(take(b));
    }
  }
  for (auto& p : full) deliver(b, std::move(p));
}

void Batcher::flush_all() {
  std::vector<Buffer*> all;
  {
    std::shared_lock lock(map_mu_);
    for (auto& [k, b] : buffers_) all.push_back(b.get());
  }
  for (Buffer* b : all) {
    Pending p{{}, 0};
    {
      std::lock_guard lock(b->mu);
      if (b->events > 0) p = take(*b);
    }
    deliver(*b, std::move(p));
  }
}

void Batcher::start() {
  std::lock_guard lock(timer_mu_);
  if (timer_.joinable()) return;
  stopping_ = false;
  timer_ = std::thread([this] { timer_loop(); });
}

void Batcher::stop() {
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  flush_all();
}

void Batcher::timer_loop() {
  using namespace std::chrono;
  const auto tick = std::clamp<milliseconds>(options_.max_age / 4, milliseconds(5), milliseconds(250));
  std::unique_lock lock(timer_mu_);
  while (!stopping_) {
    timer_cv_.wait_for(lock, tick, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const auto now = steady_clock::now();
    std::vector<Buffer*> all;
    {
      std::shared_lock map_lock(map_mu_);
      for (auto& [k, b] : buffers_) all.push_back(b.get());
    }
    for (Buffer* b : all) {
      Pending p{{}, 0};
      {
        std::lock_guard block(b->mu);
        if (b->events > 0 && now - b->first >= options_.max_age) p = take(*b);
      }
      deliver(*b, std::move(p));
    }
    lock.lock();
  }
}

}  // namespace bf
