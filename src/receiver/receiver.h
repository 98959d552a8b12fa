#pragma once
// The receiver: the HTTP ingest endpoint of DESIGN.md §3. A batch is answered 200
// only once it is in the local spool and fsync'ed; an uploader moves spooled
// batches to raw/ in the object store and removes them from the spool only after
// the upload succeeded, so a restart resumes unfinished uploads. The idempotency
// key is (account, tenant, dataset, X-Batch-Id): a retry is answered 200
// "duplicate", a reused id with other content 409 (storage/ledger.h).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http_server.h"

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;

struct ReceiverOptions {
  HttpServerOptions http;                       // listen default 0.0.0.0:8080
  uint64_t max_decompressed_bytes = 128ull << 20;
  std::string spool_dir = "./data/receiver-spool";
  uint64_t spool_max_bytes = 4ull << 30;        // beyond: 503 + Retry-After
  std::chrono::milliseconds upload_retry_max{30000};
  uint64_t max_event_bytes = 1ull << 20;         // one event's JSON; larger -> 413
  size_t max_event_fields = 10000;               // members and elements at every depth; more -> 413
  std::chrono::milliseconds max_batch_id_skew{3600000};  // X-Batch-Id time ahead of now; more -> 400
  std::chrono::milliseconds ledger_lookup_timeout{2000};  // S3 timeout of the duplicate check at ingest
};
ReceiverOptions parse_receiver_options(const ConfigNode& section);

class Receiver {
 public:
  // lookup_store (default: store) answers the ledger lookups made while a request
  // waits; give it a short timeout so an unreachable store does not stall ingest.
  Receiver(ReceiverOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
           std::shared_ptr<ObjectStore> lookup_store = nullptr);
  ~Receiver();
  void start();
  void stop();   // stops accepting, finishes the upload in progress; spooled batches stay
  uint16_t port() const;
  bool ready() const;
  size_t spooled_batches() const;
  // How long the oldest batch in the spool has waited for its upload to raw/, in ms
  // (0: the spool is empty); also the gauge bf_receiver_lag_milliseconds.
  int64_t lag_ms() const;
  // A new catalog (from control): the next request authenticates and routes with it.
  void set_catalog(std::shared_ptr<const Catalog> catalog);
  // Called (on the uploader thread) after each batch reaches raw/; set before start().
  void on_uploaded(std::function<void()> callback);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
