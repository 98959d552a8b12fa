#include "packer/packer.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>
#include <zstd.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"
#include "common/worker.h"
#include "packer/retention.h"
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
  o.compression_level = static_cast<int>(section.integer("compression_level", o.compression_level));
  if (o.compression_level < 1 || o.compression_level > 22) section.fail("compression_level", "must be 1 to 22");
  o.row_group_size = static_cast<uint64_t>(section.integer("row_group_size", static_cast<int64_t>(o.row_group_size)));
  if (o.row_group_size < 1024) section.fail("row_group_size", "must be at least 1024 rows");
  o.target_file_size = section.bytes("target_file_size", o.target_file_size);
  if (o.target_file_size < (1u << 20)) section.fail("target_file_size", "must be at least 1MiB");
  const ConfigNode bounds = section.child("time_bounds");
  const std::string earliest = bounds.str("earliest", format_rfc3339(o.earliest_time_us));
  if (auto us = parse_rfc3339(earliest, true)) o.earliest_time_us = *us;
  else bounds.fail("earliest", "must be an RFC 3339 time with an offset, e.g. 2000-01-01T00:00:00Z");
  o.max_future = bounds.duration("max_future", o.max_future);
  o.threads = static_cast<int>(section.integer("threads", o.threads));
  if (o.threads < 1 || o.threads > 64) section.fail("threads", "must be 1 to 64");
  const ConfigNode schema = section.child("schema");
  o.schema.max_struct_fields = static_cast<size_t>(schema.integer("max_struct_fields", static_cast<int64_t>(o.schema.max_struct_fields)));
  if (o.schema.max_struct_fields < 1 || o.schema.max_struct_fields > 10000) schema.fail("max_struct_fields", "must be 1 to 10000");
  o.schema.max_depth = static_cast<size_t>(schema.integer("max_depth", static_cast<int64_t>(o.schema.max_depth)));
  if (o.schema.max_depth < 1 || o.schema.max_depth > 32) schema.fail("max_depth", "must be 1 to 32");
  const std::string wide = schema.str("wide_objects", "map");
  if (wide != "map" && wide != "json") schema.fail("wide_objects", "must be map or json");
  o.schema.wide_as_map = wide == "map";
  const ConfigNode flush = section.child("flush");
  o.flush_age = flush.duration("age", o.flush_age);
  o.flush_bytes = flush.bytes("bytes", o.flush_bytes);
  o.compaction = parse_compaction_options(section.child("compaction"));
  return o;
}

namespace {

// The NDJSON bytes a zstd payload declares, after checking that it is whole
// frames (an upload cut short is not); nullopt when it is not, or when a frame
// does not declare its size.
std::optional<uint64_t> whole_zstd_frames(std::string_view payload) {
  if (payload.empty()) return std::nullopt;
  uint64_t total = 0;
  size_t pos = 0;
  while (pos < payload.size()) {
    const char* p = payload.data() + pos;
    const size_t left = payload.size() - pos;
    const size_t n = ZSTD_findFrameCompressedSize(p, left);
    if (ZSTD_isError(n) || n == 0) return std::nullopt;
    const unsigned long long size = ZSTD_getFrameContentSize(p, left);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return std::nullopt;
    total += size;
    pos += n;
  }
  return total;
}

// The store DuckDB reads through: a run's inputs, already fetched by the packer
// to check them, are served from memory (one GET per input, not two); all else
// goes to the real store.
class RunInputs final : public ObjectStore {
 public:
  explicit RunInputs(std::shared_ptr<ObjectStore> store) : store_(std::move(store)) {}
  void hold(const std::string& key, std::shared_ptr<const std::string> data, int64_t mtime_us) {
    std::lock_guard lk(mu_);
    held_[key] = Held{std::move(data), mtime_us};
  }
  void clear() {
    std::lock_guard lk(mu_);
    held_.clear();
  }
  void put(const std::string& key, std::string_view data) override { store_->put(key, data); }
  void put_file(const std::string& key, const std::filesystem::path& file) override { store_->put_file(key, file); }
  void create_if_absent(const std::string& key, std::string_view data) override { store_->create_if_absent(key, data); }
  std::string get(const std::string& key, std::optional<ByteRange> range) override {
    if (auto h = find(key)) {
      if (!range) return *h->data;
      if (range->offset >= h->data->size()) return {};
      return h->data->substr(range->offset, range->length);
    }
    return store_->get(key, range);
  }
  std::optional<ObjectInfo> head(const std::string& key) override {
    if (auto h = find(key)) return ObjectInfo{key, h->data->size(), h->mtime_us, ""};
    return store_->head(key);
  }
  ListPage list(const std::string& prefix, const std::string& token, int max_keys) override {
    return store_->list(prefix, token, max_keys);
  }
  void remove(const std::string& key) override { store_->remove(key); }
  std::string describe() const override { return store_->describe(); }

 private:
  struct Held {
    std::shared_ptr<const std::string> data;
    int64_t mtime_us = 0;
  };
  std::optional<Held> find(const std::string& key) {
    std::lock_guard lk(mu_);
    auto it = held_.find(key);
    if (it == held_.end()) return std::nullopt;
    return it->second;
  }
  std::shared_ptr<ObjectStore> store_;
  std::mutex mu_;
  std::map<std::string, Held> held_;
};

// --- the conversion, in SQL --------------------------------------------------
// Time normalisation as parse_event_time (common/batch.h) does it: RFC 3339 text
// through bf_rfc3339 (sql_engine.h, parse_rfc3339 itself), epoch numbers by
// magnitude (s, then ms >= 1e11, µs >= 1e14, ns >= 1e17), as doubles, truncated.
std::string epoch_expr(const std::string& d) {
  const std::string micros = "(CASE WHEN " + d + " >= 1e17 THEN " + d + " / 1e3 WHEN " + d + " >= 1e14 THEN " + d +
                             " WHEN " + d + " >= 1e11 THEN " + d + " * 1e3 ELSE " + d + " * 1e6 END)";
  return "(CASE WHEN isfinite(" + d + ") AND " + d + " >= 0 AND " + micros + " < 9.2e18 THEN make_timestamp(CAST(trunc(" +
         micros + ") AS BIGINT)) END)";
}

// A time field read as VARCHAR (only strings seen) or as JSON (anything else).
struct TimeField {
  std::string name;
  bool present = false;  // some input has it
  bool as_json = false;
  std::string parsed() const {
    const std::string c = sql_ident(name);
    if (!present) return "NULL::TIMESTAMP";
    if (!as_json) return "bf_rfc3339(" + c + ")";
    return "(CASE json_type(" + c + ") WHEN 'VARCHAR' THEN bf_rfc3339(" + c + " ->> '$') WHEN 'BIGINT' THEN " +
           epoch_expr("TRY_CAST(" + c + " AS DOUBLE)") + " WHEN 'UBIGINT' THEN " +
           epoch_expr("TRY_CAST(" + c + " AS DOUBLE)") + " WHEN 'DOUBLE' THEN " +
           epoch_expr("TRY_CAST(" + c + " AS DOUBLE)") + " END)";
  }
  // The original text of a value that is there but unusable.
  std::string raw_text() const {
    const std::string c = sql_ident(name);
    if (!as_json) return c;
    return "(CASE WHEN json_type(" + c + ") = 'VARCHAR' THEN " + c + " ->> '$' WHEN json_type(" + c +
           ") <> 'NULL' THEN CAST(" + c + " AS VARCHAR) END)";
  }
};

// One read column of the generated read_ndjson.
struct ReadColumn {
  std::string name;
  std::string type;
};

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
  LiveCatalog catalog{nullptr};  // replaced by set_catalog (config from control)
  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<RunInputs> run_inputs;  // what DuckDB reads through bf://
  std::unique_ptr<SqlEngine> engine;
  std::unique_ptr<PeriodicWorker> worker;
  fs::path temp_root;
  std::unique_ptr<DatasetLeases> leases;
  std::set<std::string> swept;                  // datasets whose orphans were removed since the lease was acquired
  std::map<std::string, int64_t> acquired_us;   // dataset -> when this packer acquired its lease
  std::map<std::string, int64_t> last_expiry;   // dataset -> when its ledger was last expired
  std::map<std::string, int64_t> last_retention;  // dataset -> when retention last ran
  std::map<std::string, int64_t> last_compaction;  // dataset -> when compaction last ran
  std::map<std::string, int64_t> compaction_deferred_since;  // dataset -> since when a due pass waits for a backlog
  std::unique_ptr<Compactor> compactor;
  // Compaction's own DuckDB (its memory_limit, no external file cache): merges run on
  // the bf-compact thread while the packing thread converts on `engine`.
  std::unique_ptr<SqlEngine> compact_engine;
  std::unique_ptr<PeriodicWorker> compact_worker;  // started by start(): compaction off the packing thread
  // Held while parts.json is rewritten (folds, retention, a compaction's commit step):
  // the packing and compaction threads both commit to the same datasets.
  std::mutex commit_mu;
  std::mutex due_mu;
  std::map<std::string, std::pair<DatasetRef, uint64_t>> due;  // dataset -> (ref, lease token): handed to bf-compact
  std::atomic<bool> stopping{false};            // stop(): interrupt DuckDB, commit nothing more
  bool backlog = false;                         // a run left inputs behind (a full part's worth)
  int64_t lag_us = 0;                           // this run: the longest an input it found had waited

  Counter& counter(const char* name, const char* help, const DatasetRef& ref) {
    return metrics().counter(name, help, {{"tenant", ref.tenant}, {"dataset", ref.dataset}});
  }

  // A dataset's component contract series (kind "stage", type "packer", labelled
  // tenant/dataset; docs/metrics.md), resolved once per dataset.
  struct Contract {
    explicit Contract(const DatasetRef& ref)
        : component("stage", "packer", "packer", {{"tenant", ref.tenant}, {"dataset", ref.dataset}}),
          undecodable(component.error("decode", "undecodable")),
          undecodable_events(component.discarded(Discard::unintentional, "undecodable")),
          conversion_failed(component.error("convert", "conversion_failed")),
          unconvertible_events(component.discarded(Discard::unintentional, "unconvertible")),
          run_errors(component.error("run", "exception")) {}
    ComponentMetrics component;
    Counter& undecodable;
    Counter& undecodable_events;
    Counter& conversion_failed;
    Counter& unconvertible_events;
    Counter& run_errors;
  };
  std::map<std::string, std::unique_ptr<Contract>> contracts;  // by DatasetRef::str(); worker thread only
  Contract& contract(const DatasetRef& ref) {
    auto& c = contracts[ref.str()];
    if (!c) c = std::make_unique<Contract>(ref);
    return *c;
  }

  // A checked input: its field shape and the NDJSON bytes it holds. Throws for an
  // object that is not whole zstd NDJSON (e.g. an upload cut short).
  struct Checked {
    BatchShape shape;
    uint64_t bytes = 0;
  };
  Checked check_input(const std::string& data, const DatasetRef& ref) {
    if (data.empty()) throw BatchFormatError("empty batch object");
    BatchObject object = split_batch_object(data);
    if (object.payload.empty()) throw BatchFormatError("batch object has an envelope but no events");
    if (auto it = object.envelope.find("shape"); it != object.envelope.end()) {
      if (auto bytes = whole_zstd_frames(object.payload)) {
        if (auto shape = BatchShape::from_json(it->value())) return Checked{std::move(*shape), *bytes};
      }
    }
    // Written without a shape (before the piper kept one): decoded once to compute it.
    counter("bf_packer_inputs_decoded_total", "Processed objects without a shape in their envelope, decoded to compute it", ref).inc();
    const std::string text = decompress(Encoding::zstd, object.payload, size_t(1) << 30);
    Checked c;
    for (const Event& e : parse_ndjson(text)) c.shape.add(e);
    c.bytes = text.size();
    return c;
  }

  struct OutFile {
    int64_t hour_us = 0;
    bool quarantine = false;  // _time outside the time bounds
    std::string path;
    uint64_t rows = 0;
  };

  // Converts the run's inputs (held in run_inputs) with one COPY: DuckDB reads the
  // zstd NDJSON through bf:// with the registry's columns and types (the schema was
  // evolved for these inputs before), normalises _time/_received in SQL and writes
  // one Parquet file per event hour into out_dir. A field whose values the run's
  // shape says read_ndjson cannot read straight as its type (a value that does not
  // fit, a renamed member) is read as JSON and converted in SQL, with the values
  // that do not fit going to its overflow column; when the run has top-level fields
  // that differ only in case (which read_ndjson's column list refuses) whole
  // records are read as JSON.
  std::vector<OutFile> convert(const std::vector<std::string>& keys, const BatchShape& run, SchemaRegistry& registry,
                               const fs::path& out_dir, int64_t now, uint64_t run_bytes) {
    if (stopping) throw SqlError("packer is stopping");
    std::set<std::string> folded;
    bool whole_records = false;
    for (const auto& name : run.root.names) {
      std::string l = name;
      for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      // read_ndjson's column list refuses both names differing only in case and the empty name.
      if (!folded.insert(l).second || name.empty()) whole_records = true;
    }
    TimeField time{"_time"}, received{"_received"};
    for (TimeField* tf : {&time, &received}) {
      if (const FieldShape* r = run.root.member(tf->name)) {
        tf->present = true;
        tf->as_json = whole_records || (r->kinds & ~kKindNull) != kKindString;
      }
    }
    const std::string now_ts = "make_timestamp(CAST(" + std::to_string(now) + " AS BIGINT))";
    const std::string time_ts = "COALESCE(\"__bf_t\", \"__bf_r\", " + now_ts + ")";
    // The value of a top-level field as read: its read_ndjson column, or (whole
    // records) its member of the record, as JSON.
    auto source_json = [&](const std::string& source) {
      return whole_records ? member_json("\"__bf_rec\"", source) : sql_ident(source);
    };
    std::vector<ReadColumn> read;
    std::vector<std::string> fields;      // the typed columns, from what was read
    std::vector<std::string> projection;  // the written columns, in the registry's order
    std::map<std::string, std::string> overflow_of;  // overflow column -> its expression
    for (const TimeField* tf : {&time, &received}) {
      if (!tf->present) continue;
      if (!whole_records) read.push_back(ReadColumn{tf->name, tf->as_json ? "JSON" : "VARCHAR"});
      fields.push_back(source_json(tf->name) + " AS " + sql_ident(tf->name));
    }
    auto raw_column = [&](const TimeField& tf) {
      const std::string raw = tf.name + "_raw";
      const std::string parsed = tf.name == "_time" ? "\"__bf_t\"" : "\"__bf_r\"";
      if (!tf.present) return sql_ident(raw);
      return "CASE WHEN " + parsed + " IS NULL AND " + sql_ident(tf.name) + " IS NOT NULL THEN " + tf.raw_text() +
             " ELSE " + sql_ident(raw) + " END AS " + sql_ident(raw);
    };
    for (const auto& col : registry.columns()) {
      const std::string type = col.type.duckdb();
      if (col.name == "_time") {
        projection.push_back(time_ts + " AS \"_time\"");
        continue;
      }
      if (col.name == "_received") {
        projection.push_back("COALESCE(\"__bf_r\", " + now_ts + ") AS \"_received\"");
        continue;
      }
      if (col.name == "_time_raw" || col.name == "_received_raw")
        projection.push_back(raw_column(col.name == "_time_raw" ? time : received));
      else
        projection.push_back(sql_ident(col.name));
      if (col.is_overflow) continue;  // projected with its column
      const FieldShape* f = run.root.member(col.source);
      std::string value = "NULL::" + type, overflow = "NULL::VARCHAR";
      if (f && !whole_records && reads_natively(col.type, *f)) {
        read.push_back(ReadColumn{col.source, type});
        value = sql_ident(col.source);
      } else if (f) {
        const std::string j = source_json(col.source);
        if (!whole_records) read.push_back(ReadColumn{col.source, "JSON"});
        const std::string fits = fits_sql(j, col.type, *f);
        value = convert_sql(j, col.type);
        if (!fits.empty()) {
          value = "CASE WHEN " + fits + " THEN " + value + " END";
          overflow = "CASE WHEN NOT (" + fits + ") THEN CAST(" + j + " AS VARCHAR) END";
        }
        value = "CAST(" + value + " AS " + type + ")";
      }
      fields.push_back(value + " AS " + sql_ident(col.name));
      if (!col.overflow.empty()) overflow_of[col.overflow] = overflow;
    }
    for (const auto& col : registry.columns())
      if (col.is_overflow) fields.push_back(overflow_of.count(col.name) ? overflow_of[col.name] + " AS " + sql_ident(col.name) : "NULL::VARCHAR AS " + sql_ident(col.name));
    if (whole_records) read = {ReadColumn{"__bf_rec", "JSON"}};
    if (read.empty()) read.push_back(ReadColumn{"_time", "JSON"});  // events with no typed field: rows still count

    std::string files, columns;
    for (const auto& k : keys) files += (files.empty() ? "" : ", ") + sql_quote("bf://" + k);
    for (const auto& c : read) columns += (columns.empty() ? "" : ", ") + sql_quote(c.name) + ": " + sql_quote(c.type);
    auto join = [](const std::vector<std::string>& items) {
      std::string s;
      for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
      return s;
    };
    const std::string source = "read_ndjson([" + files + "], columns={" + columns + "}, format='newline_delimited', records='" +
                               (whole_records ? "false" : "true") + "', auto_detect=false)";
    const std::string typed = fields.empty() ? "SELECT 1 AS \"__bf_row\" FROM " + source : "SELECT " + join(fields) + " FROM " + source;
    // Rows whose _time is outside the bounds belong to the quarantine partition.
    const int64_t latest = now + std::chrono::duration_cast<std::chrono::microseconds>(options.max_future).count();
    const std::string in_bounds = "\"_time\" BETWEEN make_timestamp(CAST(" + std::to_string(options.earliest_time_us) +
                                  " AS BIGINT)) AND make_timestamp(CAST(" + std::to_string(latest) + " AS BIGINT))";
    const auto deadline = std::chrono::steady_clock::now() + options.conversion_timeout;
    auto left = [&] {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (ms.count() <= 0) throw SqlTimeout("conversion took longer than conversion_timeout");
      return ms;
    };
    auto parquet_options = [&](bool split) {
      return " (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL " + std::to_string(options.compression_level) +
             ", ROW_GROUP_SIZE " + std::to_string(options.row_group_size) +
             (split ? ", FILE_SIZE_BYTES " + std::to_string(options.target_file_size) : std::string()) + ", RETURN_STATS)";
    };
    // The whole run, sorted by _time, into one file (DuckDB's PARTITION_BY does not keep
    // an ORDER BY, a single-file COPY does). A run within one hour — the usual case —
    // is done: that file is the part. Otherwise it is split by hour, reading it back.
    fs::create_directories(out_dir);
    const fs::path sorted = out_dir / "run.parquet";
    engine->execute("COPY (SELECT " + join(projection) + " FROM (SELECT *, " + received.parsed() + " AS \"__bf_r\", " +
                        time.parsed() + " AS \"__bf_t\" FROM (" + typed + ")) ORDER BY \"_time\") TO " +
                        sql_quote(sorted.string()) + " (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL " +
                        std::to_string(options.compression_level) + ", ROW_GROUP_SIZE " +
                        std::to_string(options.row_group_size) + ")",
                    left());
    const std::string read_back = "read_parquet(" + sql_quote(sorted.string()) + ")";
    SqlResult hours = engine->query("SELECT CASE WHEN " + in_bounds + " THEN epoch_us(date_trunc('hour', \"_time\")) END, count(*) FROM " +
                                        read_back + " GROUP BY ALL ORDER BY 1 NULLS LAST",
                                    {}, SIZE_MAX, left());
    // A run larger than a file is written by one thread: with several, DuckDB's
    // FILE_SIZE_BYTES rotation interleaves row groups across files and breaks the order.
    const bool split = run_bytes > options.target_file_size;
    std::vector<OutFile> out;
    uint64_t rows = 0;
    if (!split && hours.rows.size() == 1 && hours.rows[0].at(0)) {
      OutFile f;
      f.path = sorted.string();
      f.rows = std::stoull(hours.rows[0].at(1).value_or("0"));
      f.hour_us = std::stoll(*hours.rows[0].at(0));
      rows = f.rows;
      out.push_back(std::move(f));
    }
    if (split && !hours.rows.empty()) engine->execute("SET threads = 1");
    struct RestoreThreads {
      SqlEngine& engine;
      bool active;
      int threads;
      ~RestoreThreads() {
        if (!active) return;
        try {
          engine.execute("SET threads = " + std::to_string(threads));
        } catch (const std::exception&) {
        }
      }
    } restore{*engine, split, options.threads};
    for (const auto& h : out.empty() ? hours.rows : std::vector<SqlRow>{}) {
      const bool quarantine = !h.at(0);
      const std::string name = quarantine ? "quarantine" : "hour-" + *h.at(0);
      const fs::path target = split ? out_dir / name : out_dir / (name + ".parquet");
      if (split) fs::create_directories(target);
      std::string where = "NOT (" + in_bounds + ")";
      if (!quarantine) {
        const int64_t start = std::stoll(*h.at(0));
        where = in_bounds + " AND \"_time\" >= make_timestamp(CAST(" + std::to_string(start) +
                " AS BIGINT)) AND \"_time\" < make_timestamp(CAST(" + std::to_string(start + 3600LL * 1000000) + " AS BIGINT))";
      }
      SqlResult stats = engine->query("COPY (SELECT * FROM " + read_back + " WHERE " + where + " ORDER BY \"_time\") TO " +
                                          sql_quote(target.string()) + parquet_options(split),
                                      {}, SIZE_MAX, left());
      for (const auto& row : stats.rows) {
        OutFile f;
        f.path = row.at(0).value_or("");
        f.rows = std::stoull(row.at(1).value_or("0"));
        f.quarantine = quarantine;
        if (!quarantine) f.hour_us = std::stoll(*h.at(0));
        rows += f.rows;
        out.push_back(std::move(f));
      }
    }
    // Every event the inputs declare is in the output, or nothing is committed.
    if (rows != run.events)
      throw SqlError("conversion wrote " + std::to_string(rows) + " rows, the inputs hold " + std::to_string(run.events) + " events");
    registry.merge_shape(run);
    return out;
  }

  // The second half of a commit, after its manifest is stored; idempotent, so a
  // run killed anywhere in here is finished by the next one.
  void finish_commit(const DatasetRef& ref, const CommitManifest& m) {
    for (const auto& b : m.batches) put_batch_record(*store, ref, b.id, BatchRecord{b.digest, m.id});
    for (const auto& b : m.batches) store->remove(processed_key(ref, b.id));
    std::lock_guard commit(commit_mu);
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
    // Replaced by a compaction and kept for readers until their grace has passed.
    for (const auto& r : replaced_parts(*store, ref)) committed.insert(r.keys.begin(), r.keys.end());
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

  // Once an hour per dataset (and at a packer's first run), after recover() folded
  // every pending manifest: expired parts leave parts.json, then the store.
  void enforce_retention(const DatasetRef& ref, int days) {
    if (days <= 0) return;
    const int64_t now = now_us();
    int64_t& last = last_retention[ref.str()];
    if (now - last < 3600LL * 1000000) return;
    last = now;
    std::vector<CommitPart> expired;
    {
      std::lock_guard commit(commit_mu);
      expired = apply_retention(*store, ref, days, now);
    }
    if (expired.empty()) return;
    uint64_t rows = 0;
    for (const auto& p : expired) rows += p.rows;
    spdlog::info("packer: dataset {}: retention ({} days) deleted {} parts, {} events", ref.str(), days, expired.size(), rows);
    counter("bf_packer_retention_parts_deleted_total", "Parquet parts deleted by the dataset's retention", ref).inc(expired.size());
    counter("bf_packer_retention_events_deleted_total", "Events in the Parquet parts deleted by retention", ref).inc(rows);
  }

  // A dataset's turn in a run, under its lease: recovery, ledger expiry, retention,
  // packing, compaction.
  size_t pack_dataset(const DatasetRef& ref, int retention_days) {
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
    enforce_retention(ref, retention_days);
    const size_t written = pack(ref);
    if (compact_worker) {
      // The dataset is ours and recovered: bf-compact may merge under this lease.
      {
        std::lock_guard lock(due_mu);
        due.insert_or_assign(ref.str(), std::make_pair(ref, leases->token(ref)));
      }
      compact_worker->wake();
    } else {
      compact(ref, backlog);
    }
    return written;
  }

  // The bf-compact thread's step: a pass for each dataset handed over whose interval
  // has passed. Packing goes on meanwhile; the pass holds the dataset's lease as the
  // packing thread renews it, and stops at a lease that was lost or taken again.
  void compact_due() {
    std::vector<std::pair<DatasetRef, uint64_t>> datasets;
    {
      std::lock_guard lock(due_mu);
      for (const auto& [name, d] : due) datasets.push_back(d);
    }
    const int64_t interval_us = std::chrono::duration_cast<std::chrono::microseconds>(options.compaction.interval).count();
    for (const auto& [ref, token] : datasets) {
      if (stopping) return;
      int64_t& last = last_compaction[ref.str()];
      const int64_t now = now_us();
      if (last && now - last < interval_us) continue;
      last = now;
      if (compaction_pass(ref, token, now)) {
        last = 0;  // merges were left: the rest at once
        compact_worker->wake();
      }
    }
  }

  // run_once() without start() (no bf-compact thread): every interval per dataset,
  // after its run, a compaction pass (what is left goes on at the next run, without
  // waiting for the interval).
  void compact(const DatasetRef& ref, bool backlog) {
    if (!options.compaction.enabled || stopping) return;
    const int64_t now = now_us();
    const int64_t interval_us = std::chrono::duration_cast<std::chrono::microseconds>(options.compaction.interval).count();
    int64_t& last = last_compaction[ref.str()];
    if (last && now - last < interval_us) return;
    // Packing goes first: a merge can take as long as many runs, and inputs left behind
    // would wait for it, so a run with a backlog puts a due pass off — for at most one
    // more interval, or sustained load would never let compaction run.
    int64_t& deferred_since = compaction_deferred_since[ref.str()];
    if (backlog) {
      if (!deferred_since) deferred_since = now;
      if (now - deferred_since < interval_us) {
        counter("bf_packer_compaction_deferred_total", "Due compaction passes put off because the run left inputs to pack", ref).inc();
        return;
      }
    }
    deferred_since = 0;
    last = now;
    if (compaction_pass(ref, leases->token(ref), now)) last = 0;  // the rest at the next run, after its packing
  }

  // One compaction pass over the dataset under the lease with `token`: replaced parts
  // past their grace deleted, then merges_per_run merges. A failure is counted and
  // logged; packing is not affected. Returns whether merges were left for later.
  bool compaction_pass(const DatasetRef& ref, uint64_t token, int64_t now) {
    try {
      if (size_t n = compactor->delete_replaced(ref, now))
        counter("bf_packer_replaced_parts_deleted_total", "Parts replaced by compaction deleted after their grace", ref).inc(n);
      const CompactionResult r = compactor->compact(
          ref, [&] { return SchemaRegistry(store, ref, options.schema).columns(); },
          [&] { return leases->fence(ref) && leases->token(ref) == token; }, token);
      if (r.fenced)
        counter("bf_packer_fenced_total", "Runs abandoned without committing because the lease was lost", ref).inc();
      if (r.abandoned)
        counter("bf_packer_compaction_abandoned_total",
                "Merges not committed because a part they replace left parts.json meanwhile (retention) or a pending commit names it",
                ref)
            .inc(r.abandoned);
      if (r.merges) {
        counter("bf_packer_compactions_total", "Compaction commits: merged parts that replaced smaller ones", ref).inc(r.merges);
        counter("bf_packer_compacted_parts_total", "Parts replaced by compaction", ref).inc(r.parts_replaced);
        counter("bf_packer_compacted_bytes_read_total", "Bytes of the parts compaction merged", ref).inc(r.bytes_read);
        counter("bf_packer_compacted_bytes_written_total", "Bytes of the merged parts compaction wrote", ref).inc(r.bytes_written);
        counter("bf_packer_compacted_rows_total", "Rows of the merged parts compaction wrote", ref).inc(r.rows);
      }
      // Also with no merge committed, so the series exists from the first pass.
      counter("bf_packer_compaction_sort_passes_total",
              "Sorts compaction ran: none for a merge whose parts' _time ranges do not overlap, else one per merge, or one "
              "per _time window of a merge larger than compaction.sort_bytes",
              ref)
          .inc(r.sort_passes);
      counter("bf_packer_compaction_spliced_total",
              "Merges whose parts' row groups were copied as bytes into the merged file (disjoint _time ranges, the "
              "registered columns), not decoded and written again",
              ref)
          .inc(r.spliced);
      return r.more && !r.fenced;
    } catch (const std::exception& e) {
      if (stopping) return false;
      spdlog::error("packer: dataset {}: compaction failed (retried next interval): {}", ref.str(), e.what());
      counter("bf_packer_compaction_errors_total", "Compaction passes that failed (nothing committed for the merge)", ref).inc();
      return false;
    }
  }

  // Packs what is in processed/, halving the number of batches per part when
  // DuckDB fails (e.g. out of memory); a single batch it cannot convert is
  // quarantined so it cannot block the dataset.
  size_t pack(const DatasetRef& ref) {
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
        contract(ref).conversion_failed.inc();
        if (limit > 1) {
          limit = std::max<size_t>(1, std::min(limit, inputs.size()) / 2);
          spdlog::warn("packer: dataset {}: conversion failed, retrying with {} batches: {}", ref.str(), limit, e.what());
          continue;
        }
        spdlog::error("packer: quarantining {}: {}", inputs[0], e.what());
        const std::string data = store->get(inputs[0]);
        store->put("quarantine/" + inputs[0], data);
        store->remove(inputs[0]);
        contract(ref).unconvertible_events.inc(declared_event_count(data));
        counter("bf_packer_quarantined_total", "Processed objects that could not be decoded or converted", ref).inc();
        return 0;
      }
    }
  }

  // Flush on size or age: a part's worth of inputs (a full page, or flush_bytes as
  // stored) or an input older than flush_age; otherwise they wait for more.
  bool flush_due(const DatasetRef& ref, const ListPage& page, size_t limit, int64_t now) {
    const int64_t age_us = std::chrono::duration_cast<std::chrono::microseconds>(options.flush_age).count();
    uint64_t waiting = 0;
    int64_t oldest = now;
    for (const auto& obj : page.objects) {
      waiting += obj.size;
      oldest = std::min(oldest, obj.mtime_us);
    }
    lag_us = std::max(lag_us, now - oldest);
    const char* reason = nullptr;
    if (!page.next_token.empty() || page.objects.size() >= limit || waiting >= options.flush_bytes) reason = "size";
    else if (now - oldest >= age_us) reason = "age";
    if (!reason) {
      counter("bf_packer_flush_waits_total", "Runs that left a dataset's inputs waiting for packer.flush.bytes or .age", ref).inc();
      return false;
    }
    metrics().counter("bf_packer_flushes_total", "Runs that packed a dataset's inputs, by what made them due",
                      {{"tenant", ref.tenant}, {"dataset", ref.dataset}, {"reason", reason}}).inc();
    return true;
  }

  size_t pack_some(const DatasetRef& ref, size_t limit, std::vector<std::string>& inputs) {
    ListPage page = store->list(processed_prefix(ref), "", static_cast<int>(std::min<size_t>(limit, 1000)));
    if (!page.next_token.empty()) backlog = true;
    const int64_t now = now_us();
    if (page.objects.empty() || !flush_due(ref, page, limit, now)) return 0;
    CommitManifest manifest;
    manifest.id = new_ulid();
    uint64_t buffered = 0;
    uint64_t object_bytes = 0;  // the inputs as stored (received_bytes)
    BatchShape run;
    std::optional<SchemaRegistry> registry;  // loaded with the first input
    struct Release {
      RunInputs& held;
      ~Release() { held.clear(); }
    } release{*run_inputs};
    for (const auto& obj : page.objects) {
      // The rest waits for the next run, which run_once starts at once.
      if (inputs.size() >= limit || buffered >= options.max_part_bytes) {
        backlog = true;
        break;
      }
      if (stopping) throw SqlError("packer is stopping");  // stop() is bounded while inputs are read, too
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
      Checked checked;
      try {
        checked = check_input(data, ref);
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
        contract(ref).undecodable.inc();
        contract(ref).undecodable_events.inc(declared_event_count(data));
        continue;
      }
      // Evolved batch by batch, so each change names the batch that caused it.
      if (!registry) registry.emplace(store, ref, options.schema);
      registry->evolve(checked.shape, *batch_id);
      run.merge(checked.shape);
      buffered += checked.bytes;
      object_bytes += data.size();
      run_inputs->hold(obj.key, std::make_shared<const std::string>(std::move(data)), obj.mtime_us);
      inputs.push_back(obj.key);
      manifest.batches.push_back(CommitManifest::Batch{*batch_id, record ? record->digest : std::string()});
    }
    if (inputs.empty()) return 0;

    const fs::path out_dir = temp_root / manifest.id;
    struct RemoveDir {
      fs::path dir;
      ~RemoveDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } remove_dir{out_dir};
    uint64_t events = 0;
    uint64_t part_bytes = 0;
    uint64_t quarantined_events = 0;
    try {
      for (const auto& f : convert(inputs, run, *registry, out_dir, now, buffered)) {
        if (!leases->keep_alive(ref)) throw LeaseLost("lease lost while writing parts");
        std::string key = f.quarantine ? parquet_quarantine_part_key(ref, new_ulid()) : parquet_part_key(ref, f.hour_us, new_ulid());
        if (f.quarantine) quarantined_events += f.rows;
        manifest.parts.push_back(CommitPart{key, f.rows});  // listed first, so a failed upload is cleaned up too
        store->put_file(key, f.path);
        events += f.rows;
        std::error_code size_error;
        const auto size = fs::file_size(f.path, size_error);
        if (!size_error) part_bytes += size;
      }
      // Fence: a packer that lost the lease must not touch the schema or commit.
      if (!leases->fence(ref)) throw LeaseLost("lease lost before the schema update");
      registry->save_if_changed();
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
    // Events whose time field was missing or unusable (the shapes count them).
    for (const char* name : {"_received", "_time"}) {
      const FieldShape* f = run.root.member(name);
      const uint64_t n = run.events - (f ? f->count : 0) + (f ? f->bad_time : 0);
      if (n) metrics().counter("bf_packer_time_fallbacks_total", "Events whose time field was missing or invalid", {{"field", name}}).inc(n);
    }
    if (quarantined_events)
      counter("bf_packer_time_quarantined_events_total", "Events written to the quarantine partition: _time outside packer.time_bounds", ref)
          .inc(quarantined_events);
    counter("bf_packer_parts_total", "Parquet files written", ref).inc(manifest.parts.size());
    counter("bf_packer_events_total", "Events written to Parquet", ref).inc(events);
    counter("bf_packer_batches_total", "Processed batches packed", ref).inc(inputs.size());
    counter("bf_packer_input_bytes_total", "NDJSON bytes of the processed batches packed", ref).inc(buffered);
    counter("bf_packer_commits_total", "Commits (manifests) written", ref).inc();
    // The contract counts a run once it is committed (a failed run is retried whole).
    ComponentMetrics& c = contract(ref).component;
    c.received_events.inc(run.events);
    c.received_bytes.inc(object_bytes);
    c.sent_events.inc(events);
    c.sent_bytes.inc(part_bytes);
    return manifest.parts.size();
  }
};

Packer::Packer(PackerOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
               WorkerLeases leases)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->leases = std::make_unique<DatasetLeases>("packer", std::move(leases));
  impl_->catalog.set(std::move(catalog));
  impl_->store = std::move(store);
  const fs::path temp_parent = options.temp_dir.empty() ? fs::temp_directory_path() : fs::path(options.temp_dir);
  fs::create_directories(temp_parent);
  remove_stale_temp_dirs(temp_parent);
  impl_->temp_root = temp_parent / ("bytefreezer-packer-" + std::to_string(::getpid()) + "-" + new_ulid());
  fs::create_directories(impl_->temp_root);
  SqlEngine::Options engine_options;
  engine_options.threads = options.threads;
  engine_options.memory_limit = options.memory_limit;
  engine_options.event_time_functions = true;
  engine_options.worker_thread_name = "bf-packer-duck";
  engine_options.temp_directory = (impl_->temp_root / "duckdb").string();  // its spill files, private to this packer
  // Each conversion allocates and frees a run's worth of memory; without this it stays
  // resident between runs (docs/performance.md, peak RSS).
  engine_options.allocator_background_threads = true;
  for (const auto& d : impl_->catalog.get()->datasets()) impl_->contract(d.ref);  // the contract's series exist from the start
  impl_->run_inputs = std::make_shared<RunInputs>(impl_->store);
  impl_->engine = std::make_unique<SqlEngine>(impl_->run_inputs, engine_options);
  // Compaction's own engine: it reads the store directly (no run inputs), one thread,
  // its own spill directory. DuckDB's external file cache would keep the parts a merge
  // reads once in its buffer pool (e2e with compaction every 20 s: peak RSS 643 MiB
  // against 232 without), so it is off there; the conversion keeps it.
  SqlEngine::Options compact_options = engine_options;
  compact_options.threads = 1;
  compact_options.event_time_functions = false;
  compact_options.worker_thread_name = "bf-compact-duck";
  compact_options.temp_directory = (impl_->temp_root / "duckdb-compact").string();
  impl_->compact_engine = std::make_unique<SqlEngine>(impl_->store, compact_options);
  impl_->compact_engine->execute("SET enable_external_file_cache=false");
  impl_->compactor = std::make_unique<Compactor>(options.compaction,
                                                 Compactor::WriteOptions{options.compression_level, options.row_group_size,
                                                                         options.conversion_timeout},
                                                 impl_->store, *impl_->compact_engine, impl_->temp_root, impl_->commit_mu,
                                                 &impl_->stopping);
}

Packer::~Packer() {
  stop();
  std::error_code ec;
  fs::remove_all(impl_->temp_root, ec);
}

size_t Packer::run_once() {
  size_t parts = 0;
  impl_->lag_us = 0;
  // One bounded run per dataset in turn (max_part_bytes, conversion_timeout), so a
  // dataset with a backlog or a slow conversion cannot starve the others; rounds
  // repeat while a run left a full part's worth behind, so a backlog drains at
  // conversion speed rather than one part per interval.
  bool more = true;
  while (more && !impl_->stopping) {
    more = false;
    const std::shared_ptr<const Catalog> catalog = impl_->catalog.get();  // this round's datasets
    for (const auto& d : catalog->datasets()) {
      if (impl_->stopping) break;
      impl_->backlog = false;
      try {
        const size_t written = impl_->pack_dataset(d.ref, d.retention_days);
        parts += written;
        more = more || (written > 0 && impl_->backlog);
      } catch (const std::exception& e) {
        spdlog::error("packer: dataset {}: {}", d.ref.str(), e.what());
        metrics().counter("bf_packer_errors_total", "Failed packer runs (retried next interval)",
                          {{"tenant", d.ref.tenant}, {"dataset", d.ref.dataset}}).inc();
        impl_->contract(d.ref).run_errors.inc();
      }
    }
  }
  metrics().gauge("bf_packer_lag_milliseconds",
                  "How long the oldest processed/ object the last run found had been waiting (0: none waited)")
      .set(impl_->lag_us / 1000);
  return parts;
}

void Packer::start() {
  if (impl_->options.compaction.enabled) {
    // Thread "bf-compact"; woken by the packing thread after each dataset's run.
    impl_->compact_worker = std::make_unique<PeriodicWorker>(
        "compact", std::max<std::chrono::milliseconds>(impl_->options.compaction.interval, std::chrono::seconds(1)),
        [this] { impl_->compact_due(); });
    impl_->compact_worker->start();
  }
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
    set_thread_name("bf-packer-stop");
    while (!stopped) {
      impl_->engine->interrupt();
      impl_->compact_engine->interrupt();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  if (impl_->worker) impl_->worker->stop();
  // After packing stopped (it hands datasets over); a merge in progress is interrupted
  // and not committed, its upload removed (or swept at the next start).
  if (impl_->compact_worker) impl_->compact_worker->stop();
  impl_->compact_worker.reset();  // a later run_once() compacts inline again
  stopped = true;
  interrupter.join();
  impl_->stopping = false;  // a later run_once() or start() works again
  impl_->leases->release_all();
}

}  // namespace bf

namespace bf {
void Packer::set_catalog(std::shared_ptr<const Catalog> catalog) { impl_->catalog.set(std::move(catalog)); }
}  // namespace bf
