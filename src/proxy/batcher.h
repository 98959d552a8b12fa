#pragma once
// Per tenant/dataset buffers of serialized events, cut into batches by event count,
// NDJSON bytes or age. Events are serialized outside any lock; a buffer's mutex is held
// only to append the serialized lines. Compression and delivery of a full batch happen
// outside the buffer lock, on the thread that filled it (or the age timer's thread).
// Events of Delivery::backpressure sources are buffered apart from best-effort ones
// (the key is tenant, dataset, delivery), so that a batch is either all droppable or
// all "wait for room" (docs/proxy.md, "Backpressure"). The output may block for a
// backpressure batch: the source thread that filled it then waits, which is the point.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/batch.h"
#include "proxy/delivery.h"

namespace bf {

struct BatcherOptions {
  size_t max_events = 10000;
  uint64_t max_bytes = 4ull << 20;  // uncompressed NDJSON
  std::chrono::milliseconds max_age{1000};
};

struct ProxyBatch {
  std::string id;       // ULID
  std::string tenant;
  std::string dataset;
  std::string data;     // zstd-compressed NDJSON
  size_t events = 0;
  uint64_t ndjson_bytes = 0;
  Delivery delivery = Delivery::best_effort;  // what to do when the spool is full
};

class Batcher {
 public:
  // Receives every cut batch. Called without batcher locks held, possibly from several
  // threads at once. Must not throw (exceptions are logged and the batch counted dropped).
  using Output = std::function<void(ProxyBatch&&)>;

  Batcher(BatcherOptions options, Output output);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void add(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
           Delivery delivery = Delivery::best_effort);
  void start();       // starts the age timer thread
  void stop();        // stops the timer and flushes every buffer
  void flush_all();   // cuts every non-empty buffer now

  // Compresses a complete NDJSON text into a batch (also used for durable HTTP batches).
  static ProxyBatch make_batch(const std::string& tenant, const std::string& dataset, std::string_view ndjson,
                               size_t events);

 private:
  struct Buffer {
    std::mutex mu;
    std::string tenant, dataset;
    Delivery delivery = Delivery::best_effort;
    std::string ndjson;
    size_t events = 0;
    std::chrono::steady_clock::time_point first;  // when the oldest buffered event arrived
  };
  struct Pending {
    std::string ndjson;
    size_t events;
  };
  template <class S>
  struct BasicKey {
    S tenant, dataset;
    Delivery delivery;
  };
  using Key = BasicKey<std::string>;
  using KeyView = BasicKey<std::string_view>;
  struct KeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      if (int c = std::string_view(a.tenant).compare(std::string_view(b.tenant)); c != 0) return c < 0;
      if (int c = std::string_view(a.dataset).compare(std::string_view(b.dataset)); c != 0) return c < 0;
      return a.delivery < b.delivery;
    }
  };

  Buffer& buffer_for(const std::string& tenant, const std::string& dataset, Delivery delivery);
  static Pending take(Buffer& b);
  void deliver(const Buffer& b, Pending&& p);
  void timer_loop();

  BatcherOptions options_;
  Output output_;
  std::shared_mutex map_mu_;
  std::map<Key, std::unique_ptr<Buffer>, KeyLess> buffers_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace bf
