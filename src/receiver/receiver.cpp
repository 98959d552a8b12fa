#include "receiver/receiver.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/digest.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/ndjson_validate.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "common/worker.h"
#include "net/conn_limits.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"

namespace bf {

ReceiverOptions parse_receiver_options(const ConfigNode& section) {
  ReceiverOptions o;
  HttpServerOptions http_defaults;
  http_defaults.listen = "0.0.0.0:8080";
  http_defaults.threads = 4;
  o.http = parse_http_server_options(section, http_defaults);
  o.max_decompressed_bytes = section.bytes("max_decompressed", o.max_decompressed_bytes);
  ConfigNode spool = section.child("spool");
  o.spool_dir = spool.str("dir", o.spool_dir);
  o.spool_max_bytes = spool.bytes("max_bytes", o.spool_max_bytes);
  o.max_event_bytes = section.bytes("max_event_bytes", o.max_event_bytes);
  o.max_event_fields = static_cast<size_t>(section.integer("max_event_fields", static_cast<int64_t>(o.max_event_fields)));
  o.max_batch_id_skew = section.duration("max_batch_id_skew", o.max_batch_id_skew);
  o.ledger_lookup_timeout = section.duration("ledger_lookup_timeout", o.ledger_lookup_timeout);
  return o;
}

namespace {

constexpr int64_t kMinBatchIdMs = 1577836800000;  // 2020-01-01T00:00:00Z

Counter& rejected(const std::string& reason) {
  return metrics().counter("bf_receiver_rejected_total", "Ingest requests rejected, by reason",
                           {{"reason", reason}});
}

// Where in the receiver a rejection reason arises: the contract's errors{stage} label.
const char* reject_stage(std::string_view reason) {
  if (reason == "unauthorized" || reason == "forbidden") return "auth";
  if (reason == "invalid_id" || reason == "unknown_dataset" || reason == "bad_batch_id") return "request";
  if (reason == "batch_id_conflict") return "dedup";
  if (reason == "spool_full" || reason == "spool_unavailable") return "spool";
  return "decode";  // bad_encoding, too_large, event_too_large, malformed
}

// The receiver's component (docs/metrics.md): the series resolved once.
struct ReceiverMetrics {
  ComponentMetrics component{"stage", "receiver", "receiver"};
  Counter& duplicate_events = component.discarded(Discard::intentional, "duplicate");
  Counter& conflict_events = component.discarded(Discard::unintentional, "batch_id_conflict");
  Counter& upload_errors = component.error("upload", "store_error");
  Counter& corrupt_entries = component.error("spool", "corrupt");
};

ReceiverMetrics& receiver_metrics() {
  static ReceiverMetrics m;
  return m;
}

// A refused request: bf_receiver_rejected_total{reason} and errors{stage, reason}.
// Its events are not discarded: the sender was told and keeps them.
HttpResponse reject(int status, const std::string& reason, const std::string& message) {
  rejected(reason).inc();
  receiver_metrics().component.error(reject_stage(reason), reason).inc();
  return HttpResponse::error(status, message);
}

std::optional<std::string> bearer_token(const HttpRequest& req) {
  auto auth = req.header("Authorization");
  if (!auth) return std::nullopt;
  const std::string prefix = "Bearer ";
  if (auth->size() <= prefix.size() || auth->compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return auth->substr(prefix.size());
}

// A JSON array body (the rare path: proxies send NDJSON) as NDJSON, one line per
// element, which is then validated like any NDJSON body ("line N" is element N).
std::string array_to_ndjson(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) throw BatchFormatError("invalid JSON array: " + ec.message());
  std::string out;
  size_t i = 0;
  for (const auto& item : v.as_array()) {
    ++i;
    if (!item.is_object()) throw BatchFormatError("array element " + std::to_string(i) + ": not a JSON object");
    append_ndjson(out, item.get_object());
  }
  return out;
}

bool is_json_array(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '[';
}

// The spool entry of a batch: the idempotency key is (account, tenant, dataset, batch id).
std::string spool_id(const DatasetRef& ref, const std::string& batch_id) {
  return ref.account + "." + ref.tenant + "." + ref.dataset + "." + batch_id;
}

}  // namespace

struct Receiver::Impl {
  ReceiverOptions options;
  LiveCatalog catalog;  // replaced by set_catalog (config from control)
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<ObjectStore> lookup_store;  // for lookups while a request waits
  Spool spool;
  std::unique_ptr<HttpServer> server;
  std::thread uploader;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  bool spooled_since_round = false;  // a batch was spooled after the uploader's round began (under mu)
  std::atomic<bool> started{false};
  std::function<void()> uploaded_callback;
  // False after a failed ledger lookup or upload; true after a successful upload.
  std::atomic<bool> store_reachable{true};
  // Serialises the check-then-store of one idempotency key (striped by hash).
  std::array<std::mutex, 64> key_locks;
  // When each spooled batch was accepted (unix µs, from its meta for batches found in
  // the spool at start): the lag is the age of the oldest.
  mutable std::mutex waiting_mu;
  std::map<std::string, int64_t> waiting;

  Impl(ReceiverOptions o, std::shared_ptr<const Catalog> c, std::shared_ptr<ObjectStore> s)
      : options(std::move(o)), catalog(std::move(c)), store(std::move(s)),
        spool(options.spool_dir, options.spool_max_bytes) {
    const int64_t now = now_us();
    for (const auto& entry : spool.list()) {
      int64_t since = now;  // entries of versions that did not record it, or unreadable ones
      try {
        auto meta = boost::json::parse(spool.read_meta(entry.id));
        if (auto* r = meta.as_object().if_contains("received_us"); r && r->is_int64()) since = std::min(now, r->as_int64());
      } catch (const std::exception&) {
      }
      waiting.emplace(entry.id, since);
    }
  }

  // Before the put, so the uploader never removes an entry not yet recorded; false
  // when the batch was waiting already (a retry keeps its first time).
  bool spooled(const std::string& key, int64_t since) {
    std::lock_guard lock(waiting_mu);
    return waiting.try_emplace(key, since).second;
  }
  void unspooled(const std::string& key) {
    std::lock_guard lock(waiting_mu);
    waiting.erase(key);
  }
  int64_t lag_ms() const {
    int64_t oldest = INT64_MAX;
    {
      std::lock_guard lock(waiting_mu);
      for (const auto& [key, since] : waiting) oldest = std::min(oldest, since);
    }
    const int64_t lag = oldest == INT64_MAX ? 0 : std::max<int64_t>(0, (now_us() - oldest) / 1000);
    metrics().gauge("bf_receiver_lag_milliseconds", "How long the oldest spooled batch has waited for its upload (0: none)")
        .set(lag);
    return lag;
  }

  HttpResponse ingest(HttpRequest& req) {
    const std::string& tenant = req.params["tenant"];
    const std::string& dataset = req.params["dataset"];
    ReceiverMetrics& contract = receiver_metrics();
    contract.component.received_bytes.inc(req.body.size());
    auto token = bearer_token(req);
    if (!token) {
      auto r = reject(401, "unauthorized", "missing 'Authorization: Bearer <ingest key>'");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    const std::shared_ptr<const Catalog> catalog = this->catalog.get();
    auto grant = catalog->authenticate(*token);
    if (!grant) {
      auto r = reject(401, "unauthorized", "invalid ingest key");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    if (!is_valid_id(tenant)) return reject(400, "invalid_id", "invalid tenant id");
    if (!is_valid_id(dataset)) return reject(400, "invalid_id", "invalid dataset id");
    if (grant->tenant != tenant) return reject(403, "forbidden", "this ingest key is not valid for tenant '" + tenant + "'");
    if (!grant->dataset.empty() && grant->dataset != dataset)
      return reject(403, "forbidden", "this ingest key is not valid for dataset '" + dataset + "'");
    DatasetRef ref{grant->account, tenant, dataset};
    if (!catalog->find(ref)) return reject(404, "unknown_dataset", "unknown dataset '" + tenant + "/" + dataset + "'");

    auto encoding = parse_encoding(req.header("Content-Encoding").value_or(""));
    if (!encoding) return reject(415, "bad_encoding", "unsupported Content-Encoding (use zstd, gzip or identity)");
    std::string batch_id;
    if (auto id = req.header("X-Batch-Id")) {
      if (!is_valid_ulid(*id)) return reject(400, "bad_batch_id", "X-Batch-Id must be a ULID");
      batch_id = *id;
      for (char& c : batch_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      // The id's time names the raw/ partition and the ledger hour: absurd times are refused.
      const int64_t ms = *ulid_time_ms(batch_id);
      const int64_t now_ms = now_us() / 1000;
      if (ms < kMinBatchIdMs || ms > now_ms + options.max_batch_id_skew.count())
        return reject(400, "bad_batch_id", "X-Batch-Id " + batch_id + " has a ULID time of " + format_rfc3339(ms * 1000) +
                                               ", outside 2020-01-01 .. now + receiver.max_batch_id_skew");
    } else {
      batch_id = new_ulid();
    }

    // The body is validated and stored as sent: a zstd body keeps its compressed
    // bytes (only skippable frames a sender added are left out, so the first frame of
    // a stored object is always our envelope); others are compressed once, fast.
    // The decompressed body lives in a buffer kept per server thread (no allocation or
    // page faults per batch once warm); an unusually large one is given back after use.
    thread_local std::string scratch;
    struct ScratchTrim {
      ~ScratchTrim() {
        if (scratch.size() > (32u << 20)) std::string().swap(scratch);
      }
    } trim_scratch;
    std::string_view body;
    std::string ndjson_from_array;
    bool array_body = false;
    NdjsonSummary summary;
    BatchShape shape;  // built while validating; the piper passes complete batches on with it
    try {
      body = decompress_into(*encoding, req.body, options.max_decompressed_bytes, scratch);
      const NdjsonLimits limits{options.max_event_bytes, options.max_event_fields};
      if ((array_body = is_json_array(body))) {
        ndjson_from_array = array_to_ndjson(body);
        summary = validate_ndjson(ndjson_from_array, limits, &shape);
      } else {
        summary = validate_ndjson(body, limits, &shape);
      }
    } catch (const DecompressTooLarge& e) {
      return reject(413, "too_large", e.what());
    } catch (const EventTooLarge& e) {
      return reject(413, "event_too_large", e.what());
    } catch (const DecompressError& e) {
      return reject(400, "bad_encoding", e.what());
    } catch (const BatchFormatError& e) {
      return reject(400, "malformed", e.what());
    }
    // Taken in (refused after this with 409/503 they are errors: the sender keeps them).
    contract.component.received_events.inc(summary.events);
    const std::string digest = sha256_hex(body);
    const std::string key = spool_id(ref, batch_id);
    std::lock_guard key_lock(key_locks[std::hash<std::string>{}(key) % key_locks.size()]);
    // A batch id seen before: the same content is a retry (answered, not stored
    // again); other content under the same id is refused, never overwrites.
    std::optional<std::string> seen_digest;
    if (spool.contains(key)) {
      seen_digest = spooled_digest(key);
    } else if (store_reachable) {
      try {
        if (auto record = get_batch_record(*lookup_store, ref, batch_id)) seen_digest = record->digest;
      } catch (const std::exception& e) {
        // The store is down: accept into the spool (the uploader checks the ledger
        // before it uploads), and stop asking until an upload succeeds again, so
        // ingest does not wait on a store timeout per request.
        store_reachable = false;
        spdlog::warn("receiver: ledger lookup failed, answering from the spool until the store is back: {}", e.what());
      }
    }
    boost::json::object response{{"batch_id", batch_id}};
    if (seen_digest) {
      if (!seen_digest->empty() && *seen_digest != digest) {
        return reject(409, "batch_id_conflict",
                      "X-Batch-Id " + batch_id + " was already used for a batch with different content; "
                      "a batch id identifies one batch — send new data with a new id");
      }
      metrics().counter("bf_receiver_duplicate_batches_total", "Retried batches answered without storing them again",
                        {{"tenant", tenant}, {"dataset", dataset}}).inc();
      contract.duplicate_events.inc(summary.events);
      response["accepted"] = summary.events;
      response["duplicate"] = true;
      return HttpResponse::json(200, boost::json::serialize(response));
    }
    const int64_t received_us = now_us();
    boost::json::object meta{{"account", ref.account}, {"tenant", ref.tenant}, {"dataset", ref.dataset},
                             {"batch_id", batch_id}, {"digest", digest}, {"events", summary.events},
                             {"received_us", received_us}};
    // The receive metadata; decoders apply it to events without it (batch.h).
    BatchEnvelope envelope{{"received", format_rfc3339(received_us)}, {"source", "http-ingest"}, {"peer", req.peer},
                           {"events", summary.events}};
    if (summary.complete) {
      envelope["complete"] = true;
      envelope["shape"] = shape.to_json();
    }
    std::string data;
    if (array_body) {
      data = wrap_batch_object(envelope, compress(Encoding::zstd, ndjson_from_array, kZstdFastLevel));
    } else if (*encoding != Encoding::zstd) {
      data = wrap_batch_object(envelope, compress(Encoding::zstd, body, kZstdFastLevel));
    } else if (has_zstd_skippable_frames(req.body)) {
      data = wrap_batch_object(envelope, strip_zstd_skippable_frames(req.body));
      metrics().counter("bf_receiver_skippable_frames_removed_total",
                        "Batches stored without the zstd skippable frames their sender put in the body",
                        {{"tenant", tenant}, {"dataset", dataset}}).inc();
    } else {
      data = wrap_batch_object(envelope, req.body);
    }
    const bool fresh = summary.events > 0 && spooled(key, received_us);
    try {
      try {
        if (summary.events > 0) spool.put(key, boost::json::serialize(meta), data);
      } catch (...) {
        if (fresh) unspooled(key);
        throw;
      }
    } catch (const SpoolFull& e) {
      auto r = reject(503, "spool_full", "receiver is over its spool limit; retry later");
      r.headers["Retry-After"] = "5";
      spdlog::warn("receiver: {}", e.what());
      return r;
    } catch (const std::system_error& e) {
      if (!is_resource_exhaustion(e.code())) throw;  // the server answers 500
      // Out of descriptors or disk right now (EMFILE, ENOSPC, ...): not stored, retry.
      auto r = reject(503, "spool_unavailable", "receiver cannot store the batch right now; retry later");
      r.headers["Retry-After"] = "5";
      spdlog::warn("receiver: batch {} not stored: {}", batch_id, e.what());
      return r;
    }
    Labels labels{{"tenant", tenant}, {"dataset", dataset}};
    metrics().counter("bf_receiver_batches_total", "Batches accepted", labels).inc();
    metrics().counter("bf_receiver_events_total", "Events accepted", labels).inc(summary.events);
    metrics().counter("bf_receiver_bytes_total", "Request body bytes accepted", labels).inc(req.body.size());
    {
      std::lock_guard lock(mu);
      spooled_since_round = true;
    }
    wake.notify_all();
    response["accepted"] = summary.events;
    response["duplicate"] = false;
    return HttpResponse::json(200, boost::json::serialize(response));
  }

  std::string spooled_digest(const std::string& key) {
    try {
      auto meta = boost::json::parse(spool.read(key).meta).as_object();
      if (auto* d = meta.if_contains("digest"); d && d->is_string()) return std::string(d->get_string());
    } catch (const std::exception&) {
      // removed by the uploader meanwhile, or written by an older version
    }
    return {};
  }

  // Moves one spooled batch to raw/. The ledger record goes first, so every batch
  // in raw/ (and after) has one; a batch already committed is not uploaded again.
  void upload(const std::string& id) {
    Spool::Item item = spool.read(id);
    auto meta = boost::json::parse(item.meta).as_object();
    auto field = [&](const char* k) {
      auto* v = meta.if_contains(k);
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    DatasetRef ref{field("account"), field("tenant"), field("dataset")};
    std::string batch_id = field("batch_id");
    if (batch_id.empty()) batch_id = id.substr(id.rfind('.') + 1);  // entries of older versions
    uint64_t events = 0;  // 0 for entries of versions that did not record it
    if (auto* e = meta.if_contains("events"); e && e->is_number()) events = e->to_number<uint64_t>();
    ReceiverMetrics& contract = receiver_metrics();
    const std::string digest = field("digest");
    auto record = get_batch_record(*store, ref, batch_id);
    if (record && !record->digest.empty() && !digest.empty() && record->digest != digest) {
      // Two batches with one id reached two spools (or one spool while the store was
      // down): keep this one aside for an operator instead of overwriting the other.
      store->put("quarantine/conflicts/" + raw_key(ref, batch_id) + "." + digest.substr(0, 16), item.data);
      metrics().counter("bf_receiver_batch_conflicts_total", "Spooled batches whose id was taken by other content (kept in quarantine/conflicts/)").inc();
      contract.conflict_events.inc(events);
      spdlog::error("receiver: batch {} of {} conflicts with a stored batch of the same id; kept under quarantine/conflicts/",
                    batch_id, ref.str());
    } else if (record && record->committed()) {
      metrics().counter("bf_receiver_duplicate_batches_total", "Retried batches answered without storing them again",
                        {{"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
      contract.duplicate_events.inc(events);
    } else {
      if (!record) put_batch_record(*store, ref, batch_id, BatchRecord{digest, ""});
      store->put(raw_key(ref, batch_id), item.data);
      metrics().counter("bf_receiver_uploads_total", "Batches uploaded to raw/").inc();
      contract.component.sent_events.inc(events);
      contract.component.sent_bytes.inc(item.data.size());
    }
    spool.remove(id);
    unspooled(id);
    if (uploaded_callback) uploaded_callback();
  }

  // Uploads every spooled batch; returns false if any upload failed.
  bool upload_pending() {
    bool all_ok = true;
    for (const auto& entry : spool.list()) {
      {
        std::lock_guard lock(mu);
        if (stopping) return all_ok;
      }
      try {
        upload(entry.id);
        store_reachable = true;
      } catch (const SpoolCorrupt& e) {
        receiver_metrics().corrupt_entries.inc();
        spool.quarantine(entry.id, e.what());  // never retried forever, never uploaded
        unspooled(entry.id);
      } catch (const std::exception& e) {
        all_ok = false;
        store_reachable = false;
        metrics().counter("bf_receiver_upload_errors_total", "Failed uploads to raw/ (retried)").inc();
        receiver_metrics().upload_errors.inc();
        spdlog::warn("receiver: upload of batch {} failed (will retry): {}", entry.id, e.what());
      }
    }
    metrics().gauge("bf_receiver_spool_bytes", "Bytes in the receiver spool").set(static_cast<int64_t>(spool.bytes()));
    lag_ms();  // refreshes the gauge
    return all_ok;
  }

  void upload_loop() {
    std::mt19937 rng(std::random_device{}());
    auto delay = std::chrono::milliseconds(200);
    while (true) {
      // Listing the spool can fail too (e.g. EMFILE): that is a failed round, retried
      // with backoff, never the end of this thread (an escaping exception would end
      // the process).
      bool ok = false;
      {
        std::lock_guard lock(mu);
        spooled_since_round = false;
      }
      try {
        ok = upload_pending();
      } catch (const std::exception& e) {
        metrics().counter("bf_receiver_upload_errors_total", "Failed uploads to raw/ (retried)").inc();
        spdlog::warn("receiver: upload round failed (will retry): {}", e.what());
      } catch (...) {
        metrics().counter("bf_receiver_upload_errors_total", "Failed uploads to raw/ (retried)").inc();
        spdlog::warn("receiver: upload round failed (will retry)");
      }
      std::unique_lock lock(mu);
      if (stopping) return;
      if (ok) {
        delay = std::chrono::milliseconds(200);
        wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping || spooled_since_round; });
      } else {
        // Exponential backoff with jitter while the store is failing.
        delay = std::min(delay * 2, options.upload_retry_max);
        auto jittered = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(delay.count() / 2, delay.count())(rng));
        wake.wait_for(lock, jittered, [&] { return stopping; });
      }
      if (stopping) return;
    }
  }
};

Receiver::Receiver(ReceiverOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
                   std::shared_ptr<ObjectStore> lookup_store)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(catalog), std::move(store))) {
  impl_->lookup_store = lookup_store ? std::move(lookup_store) : impl_->store;
}

Receiver::~Receiver() { stop(); }

void Receiver::start() {
  Router router;
  router.add("POST", "/api/v1/ingest/{tenant}/{dataset}", [this](HttpRequest& req) { return impl_->ingest(req); });
  add_standard_endpoints(router, [this] { return ready(); });
  impl_->server = std::make_unique<HttpServer>("receiver", impl_->options.http, std::move(router));
  impl_->server->start();
  impl_->uploader = std::thread([this] {
    set_thread_name("bf-recv-upload");
    impl_->upload_loop();
  });
  impl_->started = true;
  spdlog::info("receiver: listening on port {}, spool {}, store {}", port(), impl_->spool.dir().string(),
               impl_->store->describe());
}

void Receiver::stop() {
  if (!impl_->started.exchange(false)) return;
  if (impl_->server) impl_->server->stop();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->uploader.joinable()) impl_->uploader.join();
}

uint16_t Receiver::port() const { return impl_->server ? impl_->server->port() : 0; }
bool Receiver::ready() const { return impl_->started; }
void Receiver::on_uploaded(std::function<void()> callback) { impl_->uploaded_callback = std::move(callback); }

size_t Receiver::spooled_batches() const { return impl_->spool.list().size(); }
int64_t Receiver::lag_ms() const { return impl_->lag_ms(); }

}  // namespace bf

namespace bf {
void Receiver::set_catalog(std::shared_ptr<const Catalog> catalog) { impl_->catalog.set(std::move(catalog)); }
}  // namespace bf
