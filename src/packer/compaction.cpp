#include "packer/compaction.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>

#include "common/config.h"
#include "common/ulid.h"
#include "packer/schema_registry.h"
#include "storage/layout.h"
#include "storage/object_store.h"
#include "storage/sql_engine.h"

namespace fs = std::filesystem;

namespace bf {

CompactionOptions parse_compaction_options(const ConfigNode& section) {
  CompactionOptions o;
  o.enabled = section.boolean("enabled", o.enabled);
  o.min_files = static_cast<size_t>(section.integer("min_files", static_cast<int64_t>(o.min_files)));
  if (o.min_files < 2 || o.min_files > 100000) section.fail("min_files", "must be 2 to 100000");
  o.target_bytes = section.bytes("target_bytes", o.target_bytes);
  if (o.target_bytes < (1u << 20)) section.fail("target_bytes", "must be at least 1MiB");
  o.interval = section.duration("interval", o.interval);
  o.grace = section.duration("grace", o.grace);
  o.max_files_per_merge = static_cast<size_t>(section.integer("max_files_per_merge", static_cast<int64_t>(o.max_files_per_merge)));
  if (o.max_files_per_merge < 2) section.fail("max_files_per_merge", "must be at least 2");
  o.merges_per_run = static_cast<size_t>(section.integer("merges_per_run", static_cast<int64_t>(o.merges_per_run)));
  if (o.merges_per_run < 1) section.fail("merges_per_run", "must be at least 1");
  o.sort_bytes = section.bytes("sort_bytes", o.sort_bytes);
  if (o.sort_bytes < (1u << 20)) section.fail("sort_bytes", "must be at least 1MiB");
  return o;
}

std::vector<CompactionJob> plan_compaction(const std::vector<CommitPart>& parts,
                                           const std::map<std::string, uint64_t>& sizes,
                                           const CompactionOptions& options) {
  // Small parts by hour; a part key's directory is its hour partition, its name a
  // ULID, so key order within an hour is the order the parts were written.
  std::map<int64_t, std::vector<std::pair<CommitPart, uint64_t>>> small;
  for (const auto& p : parts) {
    auto hour = parquet_part_hour_us(p.key);
    auto size = sizes.find(p.key);
    if (!hour || is_quarantine_part(p.key) || size == sizes.end() || size->second >= options.target_bytes) continue;
    small[*hour].emplace_back(p, size->second);
  }
  std::vector<CompactionJob> jobs;
  for (auto& [hour, files] : small) {
    if (files.size() < options.min_files) continue;
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first.key < b.first.key; });
    CompactionJob job{hour, {}, 0};
    auto close = [&] {
      if (job.parts.size() >= 2) jobs.push_back(job);
      job = CompactionJob{hour, {}, 0};
    };
    for (const auto& [part, size] : files) {
      job.parts.push_back(part);
      job.bytes += size;
      if (job.bytes >= options.target_bytes || job.parts.size() >= options.max_files_per_merge) close();
    }
    close();
  }
  return jobs;
}

Compactor::Compactor(CompactionOptions options, WriteOptions write, std::shared_ptr<ObjectStore> store,
                     SqlEngine& engine, fs::path temp_dir, std::mutex& commit_mutex, const std::atomic<bool>* stopping)
    : options_(options),
      write_(write),
      store_(std::move(store)),
      engine_(engine),
      temp_dir_(std::move(temp_dir)),
      commit_mutex_(commit_mutex),
      stopping_(stopping) {}

uint64_t Compactor::copy_to(const std::string& select, const fs::path& out, int compression_level) {
  SqlResult copied = engine_.query("COPY (" + select + ") TO " + sql_quote(out.string()) +
                                       " (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL " +
                                       std::to_string(compression_level) + ", ROW_GROUP_SIZE " +
                                       std::to_string(write_.row_group_size) + ")",
                                   {}, SIZE_MAX, write_.timeout);
  return copied.rows.empty() || !copied.rows[0].at(0) ? 0 : std::stoull(*copied.rows[0].at(0));
}

namespace {
// Removes its files when it goes out of scope (the merge's output and its windows).
struct TempFiles {
  std::vector<fs::path> paths;
  ~TempFiles() {
    std::error_code ec;
    for (const auto& p : paths) fs::remove(p, ec);
  }
};
}  // namespace

CommitPart Compactor::merge(const DatasetRef& ref, const CompactionJob& job, const std::vector<SchemaColumn>& columns,
                            const fs::path& out, uint64_t& bytes_written, size_t& sort_passes) {
  std::string files;
  uint64_t expected = 0;
  for (const auto& p : job.parts) {
    files += (files.empty() ? "" : ", ") + sql_quote("bf://" + p.key);
    expected += p.rows;
  }
  // The partition columns come from the key, not the file: no hive_partitioning.
  const std::string source = "read_parquet([" + files + "], union_by_name=true, hive_partitioning=false)";
  std::set<std::string> present;
  for (const auto& row : engine_.query("DESCRIBE SELECT * FROM " + source).rows)
    if (row.at(0)) present.insert(*row.at(0));
  // Every column of the parts must be a registered one, or the merge would drop it.
  std::string projection;
  for (const auto& c : columns) {
    const std::string value = present.erase(c.name) ? "CAST(" + sql_ident(c.name) + " AS " + c.type.duckdb() + ")"
                                                    : "NULL::" + c.type.duckdb();
    projection += (projection.empty() ? "" : ", ") + value + " AS " + sql_ident(c.name);
  }
  if (!present.empty())
    throw std::runtime_error("hour partition of " + job.parts.front().key + " has column '" + *present.begin() +
                             "' that the schema registry of " + ref.str() + " does not list; not merged");
  if (projection.empty()) throw std::runtime_error("the schema registry of " + ref.str() + " lists no columns; not merged");
  // The rows the part list records for the merged parts, or nothing is committed.
  auto finish = [&](uint64_t rows) {
    if (rows != expected)
      throw std::runtime_error("merge of " + std::to_string(job.parts.size()) + " parts wrote " + std::to_string(rows) +
                               " rows, the part list records " + std::to_string(expected) + "; not committed");
    std::error_code ec;
    bytes_written = fs::file_size(out, ec);
    if (ec) bytes_written = 0;
    return CommitPart{parquet_part_key(ref, job.hour_us, new_ulid()), rows};
  };

  // Each part's column bytes and _time range, from the footers (row-group statistics).
  struct PartStats {
    uint64_t bytes = 0;
    std::optional<int64_t> lo, hi;  // nullopt: no statistics, or a NULL _time (sorted last)
  };
  std::map<std::string, PartStats> stats;  // by bf:// path
  for (const auto& row :
       engine_.query("SELECT file_name, sum(total_uncompressed_size), "
                     "min(CASE WHEN path_in_schema = '_time' THEN epoch_us(stats_min_value::TIMESTAMP) END), "
                     "max(CASE WHEN path_in_schema = '_time' THEN epoch_us(stats_max_value::TIMESTAMP) END), "
                     "bool_and(CASE WHEN path_in_schema = '_time' THEN stats_min_value IS NOT NULL AND "
                     "stats_null_count = 0 END) FROM parquet_metadata([" + files + "]) GROUP BY file_name")
           .rows) {
    if (!row.at(0)) continue;
    PartStats& st = stats[*row.at(0)];
    st.bytes = row.at(1) ? std::stoull(*row.at(1)) : 0;
    if (row.at(2) && row.at(3) && row.at(4) && *row.at(4) == "true") {
      st.lo = std::stoll(*row.at(2));
      st.hi = std::stoll(*row.at(3));
    }
  }
  uint64_t column_bytes = 0;
  for (const auto& [file, st] : stats) column_bytes += st.bytes;

  // Parts are sorted by _time (the packer and every merge write them so). When their
  // ranges do not overlap — the usual case: parts are written in time order — the
  // parts concatenated in order of their first _time are the sorted file: one pass,
  // no sort, memory of a row group.
  std::vector<std::pair<int64_t, std::string>> by_time;  // (first _time, bf:// path)
  for (const auto& p : job.parts) {
    auto it = stats.find("bf://" + p.key);
    if (it == stats.end() || !it->second.lo) {
      by_time.clear();
      break;
    }
    by_time.emplace_back(*it->second.lo, it->first);
  }
  bool disjoint = by_time.size() == job.parts.size();
  if (disjoint) {
    std::sort(by_time.begin(), by_time.end());
    for (size_t i = 1; i < by_time.size() && disjoint; ++i)
      disjoint = *stats[by_time[i - 1].second].hi <= by_time[i].first;
  }
  if (disjoint) {
    std::string ordered;
    for (const auto& [lo, file] : by_time) ordered += (ordered.empty() ? "" : ", ") + sql_quote(file);
    // Insertion order is kept (the engine's default): the files in list order, each in its order.
    const uint64_t rows =
        copy_to("SELECT " + projection + " FROM read_parquet([" + ordered + "], union_by_name=true, hive_partitioning=false)",
                out, write_.compression_level);
    return finish(rows);
  }

  // Overlapping parts are sorted. DuckDB sorts in memory up to memory_limit and holds
  // well past it (a 200 MB merge peaked at 580 MiB with a 512MB limit, and failed with
  // 128MB), so a merge of more than sort_bytes of column data is sorted in _time
  // windows of about that size: each window (rows of every part in [lo, hi), found
  // through the row groups' statistics) is sorted into a temp file, and the windows,
  // concatenated in order, are the file.
  const uint64_t by_bytes = (column_bytes + options_.sort_bytes - 1) / options_.sort_bytes;
  const uint64_t windows = std::clamp<uint64_t>(std::min(by_bytes, expected / 64), 1, 4096);

  std::vector<std::string> bounds;  // ascending, distinct; window i is [bounds[i-1], bounds[i])
  if (windows > 1) {
    std::string fractions;
    for (uint64_t i = 1; i < windows; ++i)
      fractions += (fractions.empty() ? "" : ", ") + std::to_string(double(i) / double(windows));
    for (const auto& row : engine_.query("SELECT DISTINCT unnest(approx_quantile(\"_time\", [" + fractions +
                                         "]))::VARCHAR AS b FROM " + source + " ORDER BY b").rows)
      if (row.at(0)) bounds.push_back(*row.at(0));
  }
  uint64_t rows = 0;
  if (bounds.empty()) {
    ++sort_passes;
    rows = copy_to("SELECT " + projection + " FROM " + source + " ORDER BY \"_time\"", out, write_.compression_level);
  } else {
    TempFiles parts;
    std::string window_files;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      std::string where;
      if (i > 0) where = "\"_time\" >= TIMESTAMP " + sql_quote(bounds[i - 1]);
      if (i < bounds.size()) where += (where.empty() ? "" : " AND ") + ("\"_time\" < TIMESTAMP " + sql_quote(bounds[i]));
      else where = "(" + where + " OR \"_time\" IS NULL)";  // NULLs sort last, as in one sort
      const fs::path window = out.string() + ".w" + std::to_string(i);
      parts.paths.push_back(window);
      ++sort_passes;
      // Level 1: the windows are read once, right after.
      rows += copy_to("SELECT " + projection + " FROM " + source + " WHERE " + where + " ORDER BY \"_time\"", window, 1);
      window_files += (window_files.empty() ? "" : ", ") + sql_quote(window.string());
    }
    if (rows != expected)
      throw std::runtime_error("merge of " + std::to_string(job.parts.size()) + " parts sorted " + std::to_string(rows) +
                               " rows in " + std::to_string(bounds.size() + 1) + " windows, the part list records " +
                               std::to_string(expected) + "; not committed");
    // Insertion order is kept (the engine's default): the files in list order, each in its order.
    rows = copy_to("SELECT * FROM read_parquet([" + window_files + "])", out, write_.compression_level);
  }
  return finish(rows);
}

CompactionResult Compactor::compact(const DatasetRef& ref, const std::function<std::vector<SchemaColumn>()>& columns,
                                    const std::function<bool()>& fence, uint64_t fencing_token) {
  CompactionResult result;
  // Only folded parts (parts.json): a part of a commit still pending — the packing
  // thread's, between its manifest and its fold — is left for a later pass, so no fold
  // can bring back a part this pass replaced.
  const std::vector<CommitPart> parts = folded_parts(*store_, ref);
  std::map<std::string, uint64_t> sizes;
  for (const auto& obj : store_->list_all(parquet_prefix(ref))) sizes[obj.key] = obj.size;
  const std::vector<CompactionJob> jobs = plan_compaction(parts, sizes, options_);
  if (jobs.empty()) return result;
  // Read after the part list: every folded part's columns are registered (the packer
  // saves the schema before its commit point).
  const std::vector<SchemaColumn> registered = columns();
  for (const auto& job : jobs) {
    if (result.merges >= options_.merges_per_run) {
      result.more = true;
      break;
    }
    if (stopping_ && *stopping_) break;
    if (!fence()) {
      spdlog::warn("packer: dataset {}: compaction stopped: the lease was lost", ref.str());
      result.fenced = true;
      break;
    }
    CommitManifest manifest;
    manifest.id = new_ulid();
    const fs::path out = temp_dir_ / ("compact-" + manifest.id + ".parquet");
    TempFiles remove_out{{out}};
    uint64_t written = 0;
    CommitPart merged = merge(ref, job, registered, out, written, result.sort_passes);
    manifest.parts.push_back(merged);
    for (const auto& p : job.parts) manifest.replaces.push_back(p.key);
    bool committed = false;
    try {
      store_->put_file(merged.key, out);
      // The commit step, serialised with the packing thread's folds and retention:
      // they read and rewrite parts.json too, and must not lose this commit's change
      // (nor this one theirs).
      std::lock_guard commit(commit_mutex_);
      // The commit point: only a holder of the lease may swap the part set.
      if (!fence()) {
        spdlog::warn("packer: dataset {}: compaction abandoned before its commit: the lease was lost", ref.str());
        result.fenced = true;
      } else if (const std::string gone = replaced_not_committed(ref, manifest.replaces); !gone.empty()) {
        // Retention deleted one meanwhile, or a pending commit names one: merged next time.
        spdlog::warn("packer: dataset {}: compaction of {} abandoned before its commit: part {} changed meanwhile",
                     ref.str(), job.parts.size(), gone);
        ++result.abandoned;
      } else {
        manifest.fencing_token = fencing_token;
        committed = true;  // from here the upload stays: a manifest that may be stored names it
        write_manifest(*store_, ref, manifest);
        fold_manifest(*store_, ref, manifest);
      }
    } catch (...) {
      if (!committed) {
        try {
          store_->remove(merged.key);
        } catch (const std::exception&) {
          // the orphan sweep removes it
        }
      }
      throw;
    }
    if (!committed) {
      store_->remove(merged.key);
      if (result.fenced) break;
      continue;
    }
    spdlog::info("packer: dataset {}: compacted {} parts ({} bytes, {} rows) into {}", ref.str(), job.parts.size(),
                 job.bytes, merged.rows, merged.key);
    ++result.merges;
    result.parts_replaced += job.parts.size();
    result.bytes_read += job.bytes;
    result.bytes_written += written;
    result.rows += merged.rows;
  }
  return result;
}

std::string Compactor::replaced_not_committed(const DatasetRef& ref, const std::vector<std::string>& keys) {
  std::set<std::string> folded;
  for (const auto& p : folded_parts(*store_, ref)) folded.insert(p.key);
  std::set<std::string> pending;  // a commit left half done names them: its fold would add them back
  for (const auto& m : pending_manifests(*store_, ref))
    for (const auto& p : m.parts) pending.insert(p.key);
  for (const auto& k : keys)
    if (!folded.count(k) || pending.count(k)) return k;
  return {};
}

size_t Compactor::delete_replaced(const DatasetRef& ref, int64_t now_us) {
  size_t deleted = 0;
  const int64_t grace_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.grace).count();
  for (const auto& r : replaced_parts(*store_, ref)) {
    auto ms = ulid_time_ms(r.commit);
    if (ms && *ms * 1000 + grace_us > now_us) break;  // oldest first: the rest are younger
    delete_replaced_parts(*store_, ref, r);
    deleted += r.keys.size();
  }
  return deleted;
}

}  // namespace bf
