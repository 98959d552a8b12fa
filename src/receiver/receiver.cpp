#include "receiver/receiver.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "net/conn_limits.h"
#include "storage/layout.h"
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
  return o;
}

namespace {

Counter& rejected(const std::string& reason) {
  return metrics().counter("bf_receiver_rejected_total", "Ingest requests rejected, by reason",
                           {{"reason", reason}});
}

HttpResponse reject(int status, const std::string& reason, const std::string& message) {
  rejected(reason).inc();
  return HttpResponse::error(status, message);
}

std::optional<std::string> bearer_token(const HttpRequest& req) {
  auto auth = req.header("Authorization");
  if (!auth) return std::nullopt;
  const std::string prefix = "Bearer ";
  if (auth->size() <= prefix.size() || auth->compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return auth->substr(prefix.size());
}

// A JSON array of objects or NDJSON.
std::vector<Event> parse_body(const std::string& text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec) throw BatchFormatError("invalid JSON array: " + ec.message());
    std::vector<Event> events;
    size_t i = 0;
    for (auto& item : v.as_array()) {
      ++i;
      if (!item.is_object()) throw BatchFormatError("array element " + std::to_string(i) + ": not a JSON object");
      events.push_back(std::move(item.get_object()));
    }
    return events;
  }
  return parse_ndjson(text);
}

}  // namespace

struct Receiver::Impl {
  ReceiverOptions options;
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<ObjectStore> store;
  Spool spool;
  std::unique_ptr<HttpServer> server;
  std::thread uploader;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  std::atomic<bool> started{false};

  Impl(ReceiverOptions o, std::shared_ptr<const Catalog> c, std::shared_ptr<ObjectStore> s)
      : options(std::move(o)), catalog(std::move(c)), store(std::move(s)),
        spool(options.spool_dir, options.spool_max_bytes) {}

  HttpResponse ingest(HttpRequest& req) {
    const std::string& tenant = req.params["tenant"];
    const std::string& dataset = req.params["dataset"];
    auto token = bearer_token(req);
    if (!token) {
      auto r = reject(401, "unauthorized", "missing 'Authorization: Bearer <ingest key>'");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    auto grant = catalog->authenticate(*token);
    if (!grant) {
      auto r = reject(401, "unauthorized", "invalid ingest key");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    if (!is_valid_id(tenant)) return reject(400, "invalid_id", "invalid tenant id");
    if (!is_valid_id(dataset)) return reject(400, "invalid_id", "invalid dataset id");
    if (grant->tenant != tenant) return reject(403, "forbidden", "this ingest key is not valid for tenant '" + tenant + "'");
    DatasetRef ref{grant->account, tenant, dataset};
    if (!catalog->find(ref)) return reject(404, "unknown_dataset", "unknown dataset '" + tenant + "/" + dataset + "'");

    auto encoding = parse_encoding(req.header("Content-Encoding").value_or(""));
    if (!encoding) return reject(415, "bad_encoding", "unsupported Content-Encoding (use zstd, gzip or identity)");
    std::string batch_id;
    if (auto id = req.header("X-Batch-Id")) {
      if (!is_valid_ulid(*id)) return reject(400, "bad_batch_id", "X-Batch-Id must be a ULID");
      batch_id = *id;
      for (char& c : batch_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else {
      batch_id = new_ulid();
    }

    std::vector<Event> events;
    try {
      events = parse_body(decompress(*encoding, req.body, options.max_decompressed_bytes));
    } catch (const DecompressTooLarge& e) {
      return reject(413, "too_large", e.what());
    } catch (const DecompressError& e) {
      return reject(400, "bad_encoding", e.what());
    } catch (const BatchFormatError& e) {
      return reject(400, "malformed", e.what());
    }

    const std::string now = format_rfc3339(now_us());
    for (Event& e : events) {
      if (!e.contains("_received")) e["_received"] = now;
      if (!e.contains("_time")) e["_time"] = e["_received"];
      if (!e.contains("_source")) {
        e["_source"] = "http-ingest";
        if (!e.contains("_peer")) e["_peer"] = req.peer;
      }
    }
    boost::json::object meta{{"account", ref.account}, {"tenant", ref.tenant}, {"dataset", ref.dataset}};
    std::string data = encode_batch(events);
    try {
      if (!events.empty()) spool.put(batch_id, boost::json::serialize(meta), data);
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
    metrics().counter("bf_receiver_events_total", "Events accepted", labels).inc(events.size());
    metrics().counter("bf_receiver_bytes_total", "Request body bytes accepted", labels).inc(req.body.size());
    wake.notify_all();
    boost::json::object body{{"batch_id", batch_id}, {"accepted", events.size()}};
    return HttpResponse::json(200, boost::json::serialize(body));
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
        Spool::Item item = spool.read(entry.id);
        auto meta = boost::json::parse(item.meta).as_object();
        DatasetRef ref{std::string(meta.at("account").as_string()), std::string(meta.at("tenant").as_string()),
                       std::string(meta.at("dataset").as_string())};
        store->put(raw_key(ref, entry.id), item.data);
        spool.remove(entry.id);
        metrics().counter("bf_receiver_uploads_total", "Batches uploaded to raw/").inc();
      } catch (const std::exception& e) {
        all_ok = false;
        metrics().counter("bf_receiver_upload_errors_total", "Failed uploads to raw/ (retried)").inc();
        spdlog::warn("receiver: upload of batch {} failed (will retry): {}", entry.id, e.what());
      }
    }
    metrics().gauge("bf_receiver_spool_bytes", "Bytes in the receiver spool").set(static_cast<int64_t>(spool.bytes()));
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
        wake.wait_for(lock, std::chrono::seconds(1));
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

Receiver::Receiver(ReceiverOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(catalog), std::move(store))) {}

Receiver::~Receiver() { stop(); }

void Receiver::start() {
  Router router;
  router.add("POST", "/api/v1/ingest/{tenant}/{dataset}", [this](HttpRequest& req) { return impl_->ingest(req); });
  add_standard_endpoints(router, [this] { return ready(); });
  impl_->server = std::make_unique<HttpServer>("receiver", impl_->options.http, std::move(router));
  impl_->server->start();
  impl_->uploader = std::thread([this] { impl_->upload_loop(); });
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
size_t Receiver::spooled_batches() const { return impl_->spool.list().size(); }

}  // namespace bf
