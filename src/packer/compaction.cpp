#include "packer/compaction.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>

#include "common/config.h"
#include "common/ulid.h"
#include "packer/parquet_splice.h"
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
    // At least half the target is not small: files compaction wrote (two of about half
    // the target where the parts formed two chains) are not rewritten pass after pass.
    if (!hour || is_quarantine_part(p.key) || size == sizes.end() || size->second * 2 >= options.target_bytes) continue;
    small[*hour].emplace_back(p, size->second);
  }
  std::vector<CompactionJob> jobs;
  for (auto& [hour, files] : small) {
    if (files.size() < options.min_files) continue;
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first.key < b.first.key; });
    CompactionJob job{hour, {}, {}, 0};
    auto close = [&] {
      if (job.parts.size() >= 2) jobs.push_back(job);
      job = CompactionJob{hour, {}, {}, 0};
    };
    for (const auto& [part, size] : files) {
      job.parts.push_back(part);
      job.part_bytes.push_back(size);
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

std::vector<Compactor::MergedFile> Compactor::merge(const DatasetRef& ref, const CompactionJob& job,
                                                    const std::vector<SchemaColumn>& columns, const fs::path& out_base,
                                                    std::vector<fs::path>& temp_paths, CompactionResult& result) {
  std::string files;
  for (const auto& p : job.parts) files += (files.empty() ? "" : ", ") + sql_quote("bf://" + p.key);
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

  // Each part's column bytes and _time range, from the footers (row-group statistics).
  struct PartStats {
    uint64_t bytes = 0;
    std::optional<int64_t> lo, hi;  // nullopt: no statistics, or a NULL _time (sorted last)
  };
  std::map<std::string, PartStats> stats;  // by part key
  for (const auto& row :
       engine_.query("SELECT file_name, sum(total_uncompressed_size), "
                     "min(CASE WHEN path_in_schema = '_time' THEN epoch_us(stats_min_value::TIMESTAMP) END), "
                     "max(CASE WHEN path_in_schema = '_time' THEN epoch_us(stats_max_value::TIMESTAMP) END), "
                     "bool_and(CASE WHEN path_in_schema = '_time' THEN stats_min_value IS NOT NULL AND "
                     "stats_null_count = 0 END) FROM parquet_metadata([" + files + "]) GROUP BY file_name")
           .rows) {
    if (!row.at(0) || row.at(0)->rfind("bf://", 0) != 0) continue;
    PartStats& st = stats[row.at(0)->substr(5)];
    st.bytes = row.at(1) ? std::stoull(*row.at(1)) : 0;
    if (row.at(2) && row.at(3) && row.at(4) && *row.at(4) == "true") {
      st.lo = std::stoll(*row.at(2));
      st.hi = std::stoll(*row.at(3));
    }
  }

  // Parts are sorted by _time (the packer and every merge write them so). Parts whose
  // ranges do not overlap, concatenated in order of their first _time, are a sorted
  // file without a sort. So the parts are dealt, in order of their first _time, into
  // chains of parts that do not overlap (each to the first chain it follows; parts that
  // share a bound only touch): parts written one run after another form one chain;
  // where consecutive runs overlap at their seams (the stream's disorder) they form
  // two, each a sorted file. A chain of two or more parts becomes one file; the parts
  // left alone in theirs are sorted together into one more. Parts that interleave more
  // than that (more than kMaxChains chains), or without _time statistics, are all
  // sorted into one file.
  constexpr size_t kMaxChains = 2;
  struct Chain {
    int64_t hi = 0;
    std::vector<const CommitPart*> parts;
  };
  std::vector<Chain> chains;
  std::vector<const CommitPart*> by_time;
  for (const auto& p : job.parts) {
    auto it = stats.find(p.key);
    if (it == stats.end() || !it->second.lo) {
      spdlog::debug("packer: compaction sorts: {} has no _time statistics or a NULL _time", p.key);
      by_time.clear();
      break;
    }
    by_time.push_back(&p);
  }
  std::sort(by_time.begin(), by_time.end(), [&](const CommitPart* a, const CommitPart* b) {
    return std::make_pair(*stats[a->key].lo, *stats[a->key].hi) < std::make_pair(*stats[b->key].lo, *stats[b->key].hi);
  });
  for (const CommitPart* p : by_time) {
    const PartStats& st = stats[p->key];
    auto chain = std::find_if(chains.begin(), chains.end(), [&](const Chain& c) { return c.hi <= *st.lo; });
    if (chain == chains.end()) chain = chains.insert(chains.end(), Chain{});
    chain->hi = *st.hi;
    chain->parts.push_back(p);
  }
  const size_t long_chains =
      static_cast<size_t>(std::count_if(chains.begin(), chains.end(), [](const Chain& c) { return c.parts.size() >= 2; }));
  if (long_chains > kMaxChains) {
    spdlog::debug("packer: compaction sorts: the parts of {} interleave in time ({} chains)", job.parts.front().key,
                  long_chains);
    chains.clear();
  }

  std::vector<MergedFile> merged;
  auto add_output = [&](const std::vector<const CommitPart*>& parts, uint64_t rows, const fs::path& path) {
    uint64_t expected = 0;
    for (const CommitPart* p : parts) expected += p->rows;
    if (rows != expected)
      throw std::runtime_error("merge of " + std::to_string(parts.size()) + " parts wrote " + std::to_string(rows) +
                               " rows, the part list records " + std::to_string(expected) + "; not committed");
    std::error_code ec;
    const uint64_t bytes = fs::file_size(path, ec);
    merged.push_back(MergedFile{path, CommitPart{parquet_part_key(ref, job.hour_us, new_ulid()), rows}, ec ? 0 : bytes, {}});
    for (const CommitPart* p : parts) merged.back().replaces.push_back(p->key);
  };
  std::vector<const CommitPart*> to_sort;
  if (chains.empty()) {
    for (const auto& p : job.parts) to_sort.push_back(&p);
  }
  for (const Chain& chain : chains) {
    if (chain.parts.size() < 2) {
      to_sort.insert(to_sort.end(), chain.parts.begin(), chain.parts.end());
      continue;
    }
    const fs::path out = out_base.string() + ".c" + std::to_string(merged.size());
    temp_paths.push_back(out);
    std::vector<std::string> keys;
    for (const CommitPart* p : chain.parts) keys.push_back(p->key);
    if (auto rows = splice(job, keys, projection, out)) {
      ++result.spliced;
      add_output(chain.parts, *rows, out);
      continue;
    }
    // Not the registered columns' layout: decoded, cast and written in order, no sort.
    std::string ordered;
    for (const auto& k : keys) ordered += (ordered.empty() ? "" : ", ") + sql_quote("bf://" + k);
    // Insertion order is kept (the engine's default): the files in list order, each in its order.
    add_output(chain.parts,
               copy_to("SELECT " + projection + " FROM read_parquet([" + ordered +
                           "], union_by_name=true, hive_partitioning=false)",
                       out, write_.compression_level),
               out);
  }
  // A part left alone beside merged chains stays as it is (a later pass merges it).
  if (to_sort.size() >= 2) {
    const fs::path out = out_base.string() + ".s";
    temp_paths.push_back(out);
    uint64_t column_bytes = 0;
    for (const CommitPart* p : to_sort) column_bytes += stats[p->key].bytes;
    add_output(to_sort, sorted_merge(to_sort, projection, column_bytes, out, temp_paths, result), out);
  }
  return merged;
}

uint64_t Compactor::sorted_merge(const std::vector<const CommitPart*>& parts, const std::string& projection,
                                 uint64_t column_bytes, const fs::path& out, std::vector<fs::path>& temp_paths,
                                 CompactionResult& result) {
  std::string files;
  uint64_t expected = 0;
  for (const CommitPart* p : parts) {
    files += (files.empty() ? "" : ", ") + sql_quote("bf://" + p->key);
    expected += p->rows;
  }
  const std::string source = "read_parquet([" + files + "], union_by_name=true, hive_partitioning=false)";
  // DuckDB sorts in memory up to memory_limit and holds well past it (a 200 MB merge
  // peaked at 580 MiB with a 512MB limit, and failed with 128MB), so a merge of more
  // than sort_bytes of column data is sorted in _time windows of about that size: each
  // window (rows of every part in [lo, hi), found through the row groups' statistics)
  // is sorted into a temp file, and the windows, concatenated in order, are the file.
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
  if (bounds.empty()) {
    ++result.sort_passes;
    return copy_to("SELECT " + projection + " FROM " + source + " ORDER BY \"_time\"", out, write_.compression_level);
  }
  uint64_t rows = 0;
  std::string window_files;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    std::string where;
    if (i > 0) where = "\"_time\" >= TIMESTAMP " + sql_quote(bounds[i - 1]);
    if (i < bounds.size()) where += (where.empty() ? "" : " AND ") + ("\"_time\" < TIMESTAMP " + sql_quote(bounds[i]));
    else where = "(" + where + " OR \"_time\" IS NULL)";  // NULLs sort last, as in one sort
    const fs::path window = out.string() + ".w" + std::to_string(i);
    temp_paths.push_back(window);
    ++result.sort_passes;
    // Level 1: the windows are read once, right after.
    rows += copy_to("SELECT " + projection + " FROM " + source + " WHERE " + where + " ORDER BY \"_time\"", window, 1);
    window_files += (window_files.empty() ? "" : ", ") + sql_quote(window.string());
  }
  if (rows != expected)
    throw std::runtime_error("merge of " + std::to_string(parts.size()) + " parts sorted " + std::to_string(rows) +
                             " rows in " + std::to_string(bounds.size() + 1) + " windows, the part list records " +
                             std::to_string(expected) + "; not committed");
  // Insertion order is kept (the engine's default): the files in list order, each in its order.
  return copy_to("SELECT * FROM read_parquet([" + window_files + "])", out, write_.compression_level);
}

std::optional<uint64_t> Compactor::splice(const CompactionJob& job, const std::vector<std::string>& ordered_keys,
                                          const std::string& projection, const fs::path& out) {
  // The parts' columns must already be the registered ones, as the projection would
  // cast them: same names, order and types (one part tells; the splice checks that
  // every part has its Parquet schema).
  const std::string first = "read_parquet(" + sql_quote("bf://" + ordered_keys.front()) + ", hive_partitioning=false)";
  auto layout = [&](const std::string& select) {
    std::vector<std::pair<std::string, std::string>> columns;
    for (const auto& row : engine_.query("DESCRIBE " + select).rows)
      columns.emplace_back(row.at(0).value_or(""), row.at(1).value_or(""));
    return columns;
  };
  if (layout("SELECT * FROM " + first) != layout("SELECT " + projection + " FROM " + first)) return std::nullopt;

  std::map<std::string, uint64_t> size_of;
  for (size_t i = 0; i < job.parts.size() && i < job.part_bytes.size(); ++i) size_of[job.parts[i].key] = job.part_bytes[i];
  std::vector<ParquetSpliceSource> sources;
  for (const auto& key : ordered_keys) {
    auto size = size_of.find(key);
    if (size == size_of.end()) return std::nullopt;
    sources.push_back({key, size->second, [this, key](uint64_t offset, uint64_t length) {
                         return store_->get(key, ByteRange{offset, length});
                       }});
  }
  ParquetSplice spliced(std::move(sources));
  if (!spliced.refusal().empty()) {
    spdlog::debug("packer: compaction decodes the parts: {}", spliced.refusal());
    return std::nullopt;
  }
  spliced.write(out);
  // DuckDB reads the new footer and every row's _time back: a file it could not read
  // is never committed.
  auto check = engine_.query("SELECT count(*), count(\"_time\") FROM read_parquet(" + sql_quote(out.string()) + ")");
  const uint64_t rows = check.rows.at(0).at(0) ? std::stoull(*check.rows[0][0]) : 0;
  const uint64_t times = check.rows.at(0).at(1) ? std::stoull(*check.rows[0][1]) : 0;
  if (rows != spliced.rows() || times != rows)
    throw std::runtime_error("spliced file of " + std::to_string(job.parts.size()) + " parts reads back " +
                             std::to_string(rows) + " rows (" + std::to_string(times) + " with _time), its footers say " +
                             std::to_string(spliced.rows()) + "; not committed");
  return rows;
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
    TempFiles temp;  // the merge's outputs and windows, removed whatever happens
    const std::vector<MergedFile> merged =
        merge(ref, job, registered, temp_dir_ / ("compact-" + manifest.id + ".parquet"), temp.paths, result);
    uint64_t rows = 0, bytes_read = 0, bytes_written = 0;
    std::set<std::string> replaced;
    for (const auto& m : merged) {
      manifest.parts.push_back(m.part);
      manifest.replaces.insert(manifest.replaces.end(), m.replaces.begin(), m.replaces.end());
      replaced.insert(m.replaces.begin(), m.replaces.end());
      rows += m.part.rows;
      bytes_written += m.bytes;
    }
    for (size_t i = 0; i < job.parts.size() && i < job.part_bytes.size(); ++i)
      if (replaced.count(job.parts[i].key)) bytes_read += job.part_bytes[i];
    std::vector<std::string> uploaded;
    auto remove_uploads = [&] {
      for (const auto& key : uploaded) {
        try {
          store_->remove(key);
        } catch (const std::exception&) {
          // the orphan sweep removes it
        }
      }
    };
    bool committed = false;
    try {
      for (const auto& m : merged) {
        uploaded.push_back(m.part.key);
        store_->put_file(m.part.key, m.path);
      }
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
                     ref.str(), manifest.replaces.size(), gone);
        ++result.abandoned;
      } else {
        manifest.fencing_token = fencing_token;
        committed = true;  // from here the uploads stay: a manifest that may be stored names them
        write_manifest(*store_, ref, manifest);
        fold_manifest(*store_, ref, manifest);
      }
    } catch (...) {
      if (!committed) remove_uploads();
      throw;
    }
    if (!committed) {
      remove_uploads();
      if (result.fenced) break;
      continue;
    }
    spdlog::info("packer: dataset {}: compacted {} parts ({} bytes, {} rows) into {} file(s), first {}", ref.str(),
                 manifest.replaces.size(), bytes_read, rows, merged.size(), merged.front().part.key);
    ++result.merges;
    result.parts_replaced += manifest.replaces.size();
    result.bytes_read += bytes_read;
    result.bytes_written += bytes_written;
    result.rows += rows;
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
