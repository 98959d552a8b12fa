#include "packer/packer.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

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

}  // namespace

struct Packer::Impl {
  PackerOptions options;
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<SqlEngine> engine;
  std::unique_ptr<PeriodicWorker> worker;
  fs::path temp_root;

  // Writes one hour's events as a Parquet part; returns its column list.
  std::vector<SchemaColumn> write_part(const DatasetRef& ref, int64_t hour, const std::string& ndjson) {
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
                    sql_quote(parquet_path.string()) + " (FORMAT parquet, COMPRESSION zstd)");
    SqlResult described = engine->query("DESCRIBE SELECT * FROM read_parquet(" + sql_quote(parquet_path.string()) + ")");
    std::vector<SchemaColumn> columns;
    for (const auto& row : described.rows) columns.push_back(SchemaColumn{row[0].value_or(""), row[1].value_or("")});
    store->put_file(parquet_part_key(ref, hour, id), parquet_path);
    return columns;
  }

  // Packs what is in processed/, halving the number of batches per part when
  // DuckDB fails (e.g. out of memory); a single batch it cannot convert is
  // quarantined so it cannot block the dataset.
  size_t pack_dataset(const DatasetRef& ref) {
    size_t limit = options.max_batches_per_part;
    while (true) {
      std::vector<std::string> inputs;
      try {
        return pack_some(ref, limit, inputs);
      } catch (const SqlError& e) {
        if (inputs.empty()) throw;
        if (limit > 1) {
          limit = std::max<size_t>(1, std::min(limit, inputs.size()) / 2);
          spdlog::warn("packer: dataset {}: conversion failed, retrying with {} batches: {}", ref.str(), limit, e.what());
          continue;
        }
        spdlog::error("packer: quarantining {}: {}", inputs[0], e.what());
        store->put("quarantine/" + inputs[0], store->get(inputs[0]));
        store->remove(inputs[0]);
        metrics().counter("bf_packer_quarantined_total", "Processed objects that could not be decoded or converted",
                          {{"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
        return 0;
      }
    }
  }

  size_t pack_some(const DatasetRef& ref, size_t limit, std::vector<std::string>& inputs) {
    ListPage page = store->list(processed_prefix(ref), "", static_cast<int>(std::min<size_t>(limit, 1000)));
    std::map<int64_t, std::string> hours;  // hour start -> NDJSON
    size_t events = 0;
    uint64_t buffered = 0;
    const int64_t now = now_us();
    for (const auto& obj : page.objects) {
      if (buffered >= options.max_part_bytes) break;  // the rest waits for the next run
      if (!batch_id_of(obj.key)) continue;
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
        spdlog::error("packer: quarantining {}: {}", obj.key, e.what());
        store->put("quarantine/" + obj.key, data);
        store->remove(obj.key);
        metrics().counter("bf_packer_quarantined_total", "Processed objects that could not be decoded or converted",
                          {{"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
        continue;
      }
      for (Event& e : batch) {
        int64_t t = normalize_times(e, now);
        std::string& ndjson = hours[floor_hour(t)];
        size_t before = ndjson.size();
        append_ndjson(ndjson, e);
        buffered += ndjson.size() - before;
      }
      events += batch.size();
      inputs.push_back(obj.key);
    }
    if (inputs.empty()) return 0;

    SchemaRegistry registry(store, ref);
    size_t parts = 0;
    for (const auto& [hour, ndjson] : hours) {
      registry.merge(write_part(ref, hour, ndjson));
      ++parts;
    }
    registry.save_if_changed();
    // Only now, with every part in place, are the inputs removed.
    for (const auto& key : inputs) store->remove(key);
    Labels labels{{"tenant", ref.tenant}, {"dataset", ref.dataset}};
    metrics().counter("bf_packer_parts_total", "Parquet files written", labels).inc(parts);
    metrics().counter("bf_packer_events_total", "Events written to Parquet", labels).inc(events);
    metrics().counter("bf_packer_batches_total", "Processed batches packed", labels).inc(inputs.size());
    return parts;
  }
};

Packer::Packer(PackerOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->catalog = std::move(catalog);
  impl_->store = std::move(store);
  impl_->temp_root = (options.temp_dir.empty() ? fs::temp_directory_path() : fs::path(options.temp_dir)) /
                     ("bytefreezer-packer-" + new_ulid());
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
  for (const auto& d : impl_->catalog->datasets()) {
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

void Packer::stop() {
  if (impl_->worker) impl_->worker->stop();
}

}  // namespace bf
