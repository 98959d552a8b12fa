#pragma once
// Per tenant/dataset buffers of serialized events, cut into batches by event count,
// NDJSON bytes or age. Sources hand over NDJSON text (add_ndjson: many events per
// call, one buffer lock per call, not per event) or events that are serialized outside
// any lock (add). A buffer's mutex is held only to append the text.
// Events of Delivery::backpressure sources are buffered apart from best-effort ones
// (the key is tenant, dataset, delivery), so that a batch is either all droppable or
// all "wait for room" (docs/proxy.md, "Backpressure").
// A cut batch goes to the batch thread ("bf-proxy-batch"), which compresses it and
// calls the output, so that the source's thread reads on meanwhile; at most
// kQueuedBatches cut batches wait for that thread. A backpressure source that cuts one
// more waits for room (as it waits when the output blocks on a full spool: its socket
// is not read, TCP flow control pushes back); a best-effort one (UDP, which cannot
// push back) may queue up to kQueuedBestEffortBatches — a burst of fsyncs or a starved
// batch thread is then absorbed by the queue, not by the socket's receive buffer — and
// past that compresses and delivers it on its own thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
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

class Counter;

struct BatcherOptions {
  size_t max_events = 10000;
  uint64_t max_bytes = 4ull << 20;  // uncompressed NDJSON
  std::chrono::milliseconds max_age{1000};
  int compression_level = 1;  // zstd level of the batches (proxy.compression_level)
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

  static constexpr size_t kQueuedBatches = 2;
  static constexpr size_t kQueuedBestEffortBatches = 8;  // at most 8 x batch.max_bytes waiting

  void add(const std::string& tenant, const std::string& dataset, std::vector<Event>&& events,
           Delivery delivery = Delivery::best_effort);
  // `lines`: `events` complete NDJSON lines (each a JSON object ending in '\n').
  void add_ndjson(const std::string& tenant, const std::string& dataset, std::string_view lines, size_t events,
                  Delivery delivery = Delivery::best_effort);
  void start();       // starts the age timer thread
  void stop();        // stops the timer, flushes every buffer, waits for the batch thread
  void flush_all();   // cuts every non-empty buffer now; returns when each is delivered
  void wait_idle();   // returns when the batch thread has delivered every batch cut so far

  // Compresses a complete NDJSON text into a batch (also used for durable HTTP batches).
  static ProxyBatch make_batch(const std::string& tenant, const std::string& dataset, std::string_view ndjson,
                               size_t events, int compression_level = 1);

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

  struct Job {
    const Buffer* buffer;
    Pending pending;
  };

  Buffer& buffer_for(const std::string& tenant, const std::string& dataset, Delivery delivery);
  Pending take(Buffer& b);
  void append_line(Buffer& b, std::string_view line, std::vector<Pending>& full);
  // To the batch thread; when its queue is full, best effort: compress and output
  // here, backpressure: wait for room.
  void dispatch(const Buffer& b, Pending&& p);
  void deliver(const Buffer& b, Pending&& p);
  void recycle(std::string&& text);
  void timer_loop();
  void batch_loop();

  BatcherOptions options_;
  Output output_;
  Counter& batch_errors_;  // bf_proxy_dropped_total{reason="batch_error"}: a cut batch that could not be made
  std::shared_mutex map_mu_;
  std::map<Key, std::unique_ptr<Buffer>, KeyLess> buffers_;

  std::mutex spare_mu_;
  std::vector<std::string> spare_;  // emptied NDJSON buffers, capacity kept

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // a job was queued, or stop
  std::condition_variable room_cv_;   // a job was taken, or the batch thread went idle
  std::deque<Job> queue_;
  bool batch_busy_ = false;
  bool batch_stopping_ = false;
  std::thread batch_thread_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace bf
