#include "proxy/batcher.h"

#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "common/metrics.h"
#include "common/ulid.h"
#include "common/worker.h"

namespace bf {

namespace {

// One zstd context per thread that compresses batches, kept between batches: a
// context made per call (ZSTD_compress) allocates and faults in its tables each time.
// The output is an ordinary zstd frame, what compress(Encoding::zstd, ...) writes.
std::string zstd_frame(std::string_view data, int level) {
  // The frame goes to a scratch buffer kept with the context (sized once, not zeroed
  // per batch), then to a string of its exact size.
  struct Ctx {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    std::unique_ptr<char[]> scratch;
    size_t capacity = 0;
    ~Ctx() { ZSTD_freeCCtx(ctx); }
  };
  thread_local Ctx c;
  if (!c.ctx) throw std::runtime_error("zstd: cannot create a compression context");
  const size_t bound = ZSTD_compressBound(data.size());
  if (bound > c.capacity) {
    c.scratch = std::make_unique_for_overwrite<char[]>(bound);
    c.capacity = bound;
  }
  const size_t n = ZSTD_compressCCtx(c.ctx, c.scratch.get(), bound, data.data(), data.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
  std::string out(c.scratch.get(), n);
  if (c.capacity > (64u << 20)) {  // one huge batch: do not keep its buffer
    c.scratch.reset();
    c.capacity = 0;
  }
  return out;
}

constexpr size_t kSpareBuffers = Batcher::kQueuedBatches + 2;  // kept for the steady state, not for bursts

}  // namespace

Batcher::Batcher(BatcherOptions options, Output output)
    : options_(options),
      output_(std::move(output)),
      batch_errors_(metrics().counter("bf_proxy_dropped_total", "Events the proxy discarded", {{"reason", "batch_error"}})) {
  if (options_.max_events == 0) options_.max_events = 1;
  if (options_.max_bytes == 0) options_.max_bytes = 1;
  batch_thread_ = std::thread([this] { batch_loop(); });
}

Batcher::~Batcher() {
  stop();
  {
    std::lock_guard lock(queue_mu_);
    batch_stopping_ = true;
  }
  queue_cv_.notify_all();
  if (batch_thread_.joinable()) batch_thread_.join();
}

ProxyBatch Batcher::make_batch(const std::string& tenant, const std::string& dataset, std::string_view ndjson,
                               size_t events, int compression_level) {
  ProxyBatch b;
  b.id = new_ulid();
  b.tenant = tenant;
  b.dataset = dataset;
  b.data = zstd_frame(ndjson, compression_level);
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
  {
    std::lock_guard lock(spare_mu_);
    if (!spare_.empty()) {
      b.ndjson = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  b.events = 0;
  return p;
}

void Batcher::recycle(std::string&& text) {
  if (text.capacity() == 0 || text.capacity() > 2 * options_.max_bytes + (1 << 20)) return;
  text.clear();
  std::lock_guard lock(spare_mu_);
  if (spare_.size() < kSpareBuffers) spare_.push_back(std::move(text));
}

void Batcher::deliver(const Buffer& b, Pending&& p) {
  if (p.events == 0) return;
  try {
    ProxyBatch batch = make_batch(b.tenant, b.dataset, p.ndjson, p.events, options_.compression_level);
    recycle(std::move(p.ndjson));
    batch.delivery = b.delivery;
    output_(std::move(batch));
  } catch (const std::exception& e) {
    batch_errors_.inc(p.events);
    spdlog::error("proxy batcher: delivering a batch of {} events for {}/{} failed: {}", p.events, b.tenant,
                  b.dataset, e.what());
  }
}

void Batcher::dispatch(const Buffer& b, Pending&& p) {
  if (p.events == 0) return;
  std::unique_lock lock(queue_mu_);
  if (b.delivery != Delivery::backpressure) {
    // A best-effort source (UDP) must get back to its socket at once, or the kernel
    // drops what arrives meanwhile: the batch thread compresses and spools the batch
    // when it has room; when it has none, this thread does (so several best-effort
    // sources still compress in parallel under sustained load).
    if (queue_.size() >= kQueuedBestEffortBatches || batch_stopping_) {
      lock.unlock();
      return deliver(b, std::move(p));
    }
  } else {
    room_cv_.wait(lock, [this] { return queue_.size() < kQueuedBatches || batch_stopping_; });
  }
  if (batch_stopping_) {  // only after stop(): no thread left to hand it to
    lock.unlock();
    return deliver(b, std::move(p));
  }
  queue_.push_back(Job{&b, std::move(p)});
  lock.unlock();
  queue_cv_.notify_one();
}

void Batcher::batch_loop() {
  set_thread_name("bf-proxy-batch");
  std::unique_lock lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [this] { return !queue_.empty() || batch_stopping_; });
    if (queue_.empty()) return;  // stopping, and nothing left
    Job job = std::move(queue_.front());
    queue_.pop_front();
    batch_busy_ = true;
    lock.unlock();
    room_cv_.notify_all();
    deliver(*job.buffer, std::move(job.pending));
    lock.lock();
    batch_busy_ = false;
    room_cv_.notify_all();
  }
}

void Batcher::wait_idle() {
  std::unique_lock lock(queue_mu_);
  room_cv_.wait(lock, [this] { return (queue_.empty() && !batch_busy_) || batch_stopping_; });
}

void Batcher::append_line(Buffer& b, std::string_view line, std::vector<Pending>& full) {
  if (b.events > 0 && b.ndjson.size() + line.size() > options_.max_bytes) full.push_back(take(b));
  if (b.events == 0) b.first = std::chrono::steady_clock::now();
  b.ndjson.append(line);
  ++b.events;
  if (b.events >= options_.max_events || b.ndjson.size() >= options_.max_bytes) full.push_back(take(b));
}

void Batcher::add_ndjson(const std::string& tenant, const std::string& dataset, std::string_view lines,
                         size_t events, Delivery delivery) {
  if (events == 0 || lines.empty()) return;
  Buffer& b = buffer_for(tenant, dataset, delivery);
  std::vector<Pending> full;
  {
    std::lock_guard lock(b.mu);
    if (b.ndjson.capacity() < std::min<uint64_t>(options_.max_bytes, 8 << 20))
      b.ndjson.reserve(std::min<uint64_t>(options_.max_bytes, 8 << 20));
    if (b.events + events <= options_.max_events && b.ndjson.size() + lines.size() <= options_.max_bytes) {
      // The common case: everything fits, no cut before the last line.
      if (b.events == 0) b.first = std::chrono::steady_clock::now();
      b.ndjson.append(lines);
      b.events += events;
      if (b.events >= options_.max_events || b.ndjson.size() >= options_.max_bytes) full.push_back(take(b));
    } else {
      // A cut falls inside: line by line (JSON text has no raw LF, so LF ends a line).
      size_t pos = 0;
      while (pos < lines.size()) {
        const void* nl = std::memchr(lines.data() + pos, '\n', lines.size() - pos);
        const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - lines.data()) + 1 : lines.size();
        append_line(b, lines.substr(pos, end - pos), full);
        pos = end;
      }
    }
  }
  for (auto& p : full) dispatch(b, std::move(p));
}

void Batcher::add(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
                  Delivery delivery) {
  if (events.empty()) return;
  // Serialize without any lock held.
  std::string lines;
  for (const auto& e : events) append_ndjson(lines, e);
  const size_t n = events.size();
  events.clear();
  add_ndjson(tenant, dataset, lines, n, delivery);
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
    dispatch(*b, std::move(p));
  }
  wait_idle();
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
  set_thread_name("bf-proxy-age");
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
      dispatch(*b, std::move(p));
    }
    lock.lock();
  }
}

}  // namespace bf
