#include "packer/packer.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "common/batch.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "common/worker.h"
#include "packer/schema_registry.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;

namespace bf {

PackerOptions parse_packer_options(const ConfigNode& section) {
  PackerOptions o;
  o.interval = section.duration("interval", o.interval);
  o.max_batches_per_part = static_cast<size_t>(section.integer("max_batches_per_part", static_cast<int64_t>(o.max_batches_per_part)));
  if (o.max_batches_per_part == 0) section.fail("max_batches_per_part", "must be at least 1");
  o.max_part_bytes = section.bytes("max_part_bytes", o.max_part_bytes);
  o.memory_limit = section.str("memory_limit", o.memory_limit);
  o.temp_dir = section.str("temp_dir", o.temp_dir);
  o.dedup_window = section.duration("dedup_window", o.dedup_window);
  o.conversion_timeout = section.duration("conversion_timeout", o.conversion_timeout);
  o.quarantine_after = section.duration("quarantine_after", o.quarantine_after);
  return o;
}

namespace {

constexpr int64_t kHourUs = 3600LL * 1000000;

// Makes `_time` and `_received` valid RFC 3339 UTC text (from RFC 3339 or epoch
// numbers, see parse_event_time) so they convert to TIMESTAMP. An unusable value is kept in `<field>_raw`, never dropped.
int64_t normalize_times(Event& e, int64_t now) {
  auto parse_field = [&](const char* name) -> std::optional<int64_t> {
    auto it = e.find(name);
    if (it == e.end()) return std::nullopt;
    if (auto t = parse_event_time(it->value())) return t;
    e[std::string(name) + "_raw"] = it->value();
    return std::nullopt;
  };
  auto received = parse_field("_received");
  if (!received) {
    received = now;
    metrics().counter("bf_packer_time_fallbacks_total", "Events whose time field was missing or invalid",
                      {{"field", "_received"}}).inc();
  }
  e["_received"] = format_rfc3339(*received);
  auto t = parse_field("_time");
  if (!t) {
    t = *received;
    metrics().counter("bf_packer_time_fallbacks_total", "Events whose time field was missing or invalid",
                      {{"field", "_time"}}).inc();
  }
  e["_time"] = format_rfc3339(*t);
  return *t;
}

int64_t floor_hour(int64_t us) { return us >= 0 ? us / kHourUs * kHourUs : ((us - kHourUs + 1) / kHourUs) * kHourUs; }


// Temp directories of packers that are no longer running (killed before their
// destructor ran) are removed; the directory name carries the owner's pid.
void remove_stale_temp_dirs(const fs::path& parent) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "bytefreezer-packer-";
    if (name.rfind(prefix, 0) != 0 || !entry.is_directory(ec)) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + prefix.size(), nullptr, 10));
    if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;  // owner alive
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
    if (!rm) {
      spdlog::info("packer: removed temp directory {} left by a stopped packer", entry.path().string());
      metrics().counter("bf_packer_stale_temp_dirs_removed_total", "Temp directories of killed packers removed at start").inc();
    }
  }
}

// The dataset's lease was taken over by another packer: the run is abandoned.
struct LeaseLost : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::optional<int64_t> part_time_ms(const std::string& key) {
  const size_t slash = key.rfind('/');
  const std::string name = key.substr(slash == std::string::npos ? 0 : slash + 1);
  if (name.rfind("part-", 0) != 0 || name.size() < 5 + 26) return std::nullopt;
  return ulid_time_ms(name.substr(5, 26));
}

}  // namespace

struct Packer::Impl {
  PackerOptions options;
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<SqlEngine> engine;
  std::unique_ptr<PeriodicWorker> worker;
  fs::path temp_root;
  std::unique_ptr<DatasetLeases> leases;
  std::set<std::string> swept;                  // datasets whose orphans were removed since the lease was acquired
  std::map<std::string, int64_t> acquired_us;   // dataset -> when this packer acquired its lease
  std::map<std::string, int64_t> last_expiry;   // dataset -> when its ledger was last expired
  std::atomic<bool> stopping{false};            // stop(): interrupt DuckDB, commit nothing more

  Counter& counter(const char* name, const char* help, const DatasetRef& ref) {
    return metrics().counter(name, help, {{"tenant", ref.tenant}, {"dataset", ref.dataset}});
  }

  // Writes one hour's events as a Parquet part under `key`; returns its column list.
  std::vector<SchemaColumn> write_part(const std::string& key, const std::string& ndjson) {
    if (stopping) throw SqlError("packer is stopping");
    std::string id = new_ulid();
    fs::path json_path = temp_root / (id + ".ndjson");
    fs::path parquet_path = temp_root / (id + ".parquet");
    struct Cleanup {
      fs::path a, b;
      ~Cleanup() {
        std::error_code ec;
        fs::remove(a, ec);
        fs::remove(b, ec);
      }
    } cleanup{json_path, parquet_path};
    write_file_durable(json_path, ndjson);
    std::string source = "read_json(" + sql_quote(json_path.string()) +
                         ", format='newline_delimited', sample_size=-1)";
    engine->execute("COPY (SELECT * REPLACE (CAST(\"_time\" AS TIMESTAMP) AS \"_time\", "
                    "CAST(\"_received\" AS TIMESTAMP) AS \"_received\") FROM " + source + ") TO " +
                    sql_quote(parquet_path.string()) + " (FORMAT parquet, COMPRESSION zstd)",
                    options.conversion_timeout);
    SqlResult described = engine->query("DESCRIBE SELECT * FROM read_parquet(" + sql_quote(parquet_path.string()) + ")");
    std::vector<SchemaColumn> columns;
    for (const auto& row : described.rows) columns.push_back(SchemaColumn{row[0].value_or(""), row[1].value_or("")});
    store->put_file(key, parquet_path);
    return columns;
  }

  // The second half of a commit, after its manifest is stored; idempotent, so a
  // run killed anywhere in here is finished by the next one.
  void finish_commit(const DatasetRef& ref, const CommitManifest& m) {
    for (const auto& b : m.batches) put_batch_record(*store, ref, b.id, BatchRecord{b.digest, m.id});
    for (const auto& b : m.batches) store->remove(processed_key(ref, b.id));
    fold_manifest(*store, ref, m);
  }

  // Before packing: finish commits a killed run left, and (once per acquisition of
  // the dataset's lease) remove parts that no commit names and that are older than
  // the acquisition — uploaded by a run (of this or another packer) killed or fenced
  // before its manifest, whose inputs are still in processed/ and will be packed again.
  void recover(const DatasetRef& ref) {
    for (const auto& m : pending_manifests(*store, ref)) {
      spdlog::info("packer: dataset {}: finishing commit {} of an interrupted run", ref.str(), m.id);
      finish_commit(ref, m);
    }
    if (!swept.insert(ref.str()).second) return;
    std::set<std::string> committed;
    for (const auto& p : committed_parts(*store, ref)) committed.insert(p.key);
    for (const auto& obj : store->list_all(parquet_prefix(ref))) {
      auto ms = part_time_ms(obj.key);
      if (!ms || committed.count(obj.key) || *ms * 1000 >= acquired_us[ref.str()]) continue;
      spdlog::info("packer: removing uncommitted part {}", obj.key);
      store->remove(obj.key);
      counter("bf_packer_orphan_parts_removed_total", "Parquet parts of interrupted runs removed", ref).inc();
    }
  }

  void expire_ledger(const DatasetRef& ref) {
    const int64_t now = now_us();
    int64_t& last = last_expiry[ref.str()];
    if (now - last < 3600LL * 1000000) return;
    last = now;
    const int64_t window_us = std::chrono::duration_cast<std::chrono::microseconds>(options.dedup_window).count();
    size_t n = expire_batch_records(*store, ref, now - window_us);
    if (n) spdlog::info("packer: dataset {}: expired {} batch records older than the dedup window", ref.str(), n);
  }

  // Packs what is in processed/, halving the number of batches per part when
  // DuckDB fails (e.g. out of memory); a single batch it cannot convert is
  // quarantined so it cannot block the dataset.
  size_t pack_dataset(const DatasetRef& ref) {
    switch (leases->hold(ref)) {
      case DatasetLeases::Hold::busy:
        counter("bf_packer_lease_busy_total", "Runs that skipped a dataset whose lease another packer holds", ref).inc();
        return 0;
      case DatasetLeases::Hold::acquired:
        swept.erase(ref.str());
        acquired_us[ref.str()] = now_us();
        break;
      case DatasetLeases::Hold::kept:
        break;
    }
    recover(ref);
    expire_ledger(ref);
    size_t limit = options.max_batches_per_part;
    while (true) {
      std::vector<std::string> inputs;
      try {
        return pack_some(ref, limit, inputs);
      } catch (const LeaseLost& e) {
        // Nothing committed; uploaded parts were deleted; inputs stay for the new holder.
        spdlog::warn("packer: dataset {}: run abandoned without committing: {}", ref.str(), e.what());
        counter("bf_packer_fenced_total", "Runs abandoned without committing because the lease was lost", ref).inc();
        return 0;
      } catch (const SqlError& e) {
        if (inputs.empty() || stopping) throw;  // interrupted by stop(): the inputs are fine
        if (limit > 1) {
          limit = std::max<size_t>(1, std::min(limit, inputs.size()) / 2);
          spdlog::warn("packer: dataset {}: conversion failed, retrying with {} batches: {}", ref.str(), limit, e.what());
          continue;
        }
        spdlog::error("packer: quarantining {}: {}", inputs[0], e.what());
        store->put("quarantine/" + inputs[0], store->get(inputs[0]));
        store->remove(inputs[0]);
        counter("bf_packer_quarantined_total", "Processed objects that could not be decoded or converted", ref).inc();
        return 0;
      }
    }
  }

  size_t pack_some(const DatasetRef& ref, size_t limit, std::vector<std::string>& inputs) {
    ListPage page = store->list(processed_prefix(ref), "", static_cast<int>(std::min<size_t>(limit, 1000)));
    struct Hour {
      std::string ndjson;
      uint64_t rows = 0;
    };
    std::map<int64_t, Hour> hours;  // hour start -> events
    CommitManifest manifest;
    manifest.id = new_ulid();
    size_t events = 0;
    uint64_t buffered = 0;
    const int64_t now = now_us();
    for (const auto& obj : page.objects) {
      if (buffered >= options.max_part_bytes) break;  // the rest waits for the next run
      if (!leases->keep_alive(ref)) throw LeaseLost("lease lost while reading inputs");
      auto batch_id = batch_id_of(obj.key);
      if (!batch_id) continue;
      auto record = get_batch_record(*store, ref, *batch_id);
      if (record && record->committed()) {
        // Already in Parquet (a retry that got past the receiver, or a stage
        // re-delivering after a crash): never packed twice.
        store->remove(obj.key);
        counter("bf_packer_duplicate_batches_total", "Processed batches skipped because already committed", ref).inc();
        continue;
      }
      std::string data;
      try {
        data = store->get(obj.key);
      } catch (const NotFound&) {
        continue;
      }
      std::vector<Event> batch;
      try {
        batch = decode_batch(data);
      } catch (const std::exception& e) {
        if (now - obj.mtime_us < options.quarantine_after.count() * 1000) {
          // Young enough to be an aborted upload the piper will redo.
          counter("bf_packer_unreadable_waiting_total", "Undecodable processed objects left for their writer's retry", ref).inc();
          continue;
        }
        spdlog::error("packer: quarantining {}: {}", obj.key, e.what());
        store->put("quarantine/" + obj.key, data);
        store->remove(obj.key);
        counter("bf_packer_quarantined_total", "Processed objects that could not be decoded or converted", ref).inc();
        continue;
      }
      for (Event& e : batch) {
        int64_t t = normalize_times(e, now);
        Hour& hour = hours[floor_hour(t)];
        size_t before = hour.ndjson.size();
        append_ndjson(hour.ndjson, e);
        buffered += hour.ndjson.size() - before;
        ++hour.rows;
      }
      events += batch.size();
      inputs.push_back(obj.key);
      manifest.batches.push_back(CommitManifest::Batch{*batch_id, record ? record->digest : std::string()});
    }
    if (inputs.empty()) return 0;

    SchemaRegistry registry(store, ref);
    try {
      for (const auto& [hour, h] : hours) {
        if (!leases->keep_alive(ref)) throw LeaseLost("lease lost while writing parts");
        std::string key = parquet_part_key(ref, hour, new_ulid());
        manifest.parts.push_back(CommitPart{key, h.rows});  // listed first, so a failed upload is cleaned up too
        registry.merge(write_part(key, h.ndjson));
      }
      // Fence: a packer that lost the lease must not touch the schema or commit.
      if (!leases->fence(ref)) throw LeaseLost("lease lost before the schema update");
      registry.save_if_changed();
      // Renewed again right before the commit point, so the manifest write has a
      // whole ttl to land while no other packer can hold the dataset.
      if (!leases->fence(ref)) throw LeaseLost("lease lost before the commit");
    } catch (...) {
      // Nothing names these parts; the inputs stay and are packed again.
      for (const auto& p : manifest.parts) {
        try {
          store->remove(p.key);
        } catch (const std::exception&) {
          // removed by the orphan sweep at the next start
        }
      }
      throw;
    }
    // The commit point: once the manifest is stored the parts are visible and the
    // inputs are as good as deleted.
    manifest.fencing_token = leases->token(ref);
    write_manifest(*store, ref, manifest);
    finish_commit(ref, manifest);
    counter("bf_packer_parts_total", "Parquet files written", ref).inc(manifest.parts.size());
    counter("bf_packer_events_total", "Events written to Parquet", ref).inc(events);
    counter("bf_packer_batches_total", "Processed batches packed", ref).inc(inputs.size());
    counter("bf_packer_commits_total", "Commits (manifests) written", ref).inc();
    return manifest.parts.size();
  }
};

Packer::Packer(PackerOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
               WorkerLeases leases)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->leases = std::make_unique<DatasetLeases>("packer", std::move(leases));
  impl_->catalog = std::move(catalog);
  impl_->store = std::move(store);
  const fs::path temp_parent = options.temp_dir.empty() ? fs::temp_directory_path() : fs::path(options.temp_dir);
  fs::create_directories(temp_parent);
  remove_stale_temp_dirs(temp_parent);
  impl_->temp_root = temp_parent / ("bytefreezer-packer-" + std::to_string(::getpid()) + "-" + new_ulid());
  fs::create_directories(impl_->temp_root);
  SqlEngine::Options engine_options;
  engine_options.threads = 1;
  engine_options.memory_limit = options.memory_limit;
  impl_->engine = std::make_unique<SqlEngine>(impl_->store, engine_options);
}

Packer::~Packer() {
  stop();
  std::error_code ec;
  fs::remove_all(impl_->temp_root, ec);
}

size_t Packer::run_once() {
  size_t parts = 0;
  // One bounded run per dataset in turn (max_part_bytes, conversion_timeout), so a
  // dataset with a backlog or a slow conversion cannot starve the others.
  for (const auto& d : impl_->catalog->datasets()) {
    if (impl_->stopping) break;
    try {
      parts += impl_->pack_dataset(d.ref);
    } catch (const std::exception& e) {
      spdlog::error("packer: dataset {}: {}", d.ref.str(), e.what());
      metrics().counter("bf_packer_errors_total", "Failed packer runs (retried next interval)",
                        {{"tenant", d.ref.tenant}, {"dataset", d.ref.dataset}}).inc();
    }
  }
  return parts;
}

void Packer::start() {
  impl_->worker = std::make_unique<PeriodicWorker>("packer", impl_->options.interval, [this] { run_once(); });
  impl_->worker->start();
}

void Packer::wake() {
  if (impl_->worker) impl_->worker->wake();
}

void Packer::stop() {
  // Bounded: a conversion in progress is interrupted (its inputs stay for the next
  // start) — again until the worker has returned, in case one starts meanwhile.
  impl_->stopping = true;
  std::atomic<bool> stopped{false};
  std::thread interrupter([&] {
    while (!stopped) {
      impl_->engine->interrupt();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  if (impl_->worker) impl_->worker->stop();
  stopped = true;
  interrupter.join();
  impl_->stopping = false;  // a later run_once() or start() works again
  impl_->leases->release_all();
}

}  // namespace bf
