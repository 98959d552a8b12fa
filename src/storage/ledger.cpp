#include "storage/ledger.h"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/ulid.h"
#include "storage/layout.h"
#include "storage/object_store.h"

namespace bf {
namespace {

std::string text(const boost::json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

boost::json::array parts_json(const std::vector<CommitPart>& parts) {
  boost::json::array out;
  for (const auto& p : parts) out.push_back(boost::json::object{{"key", p.key}, {"rows", p.rows}});
  return out;
}

boost::json::array strings_json(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& i : items) out.emplace_back(i);
  return out;
}

std::vector<CommitPart> parse_parts(const boost::json::value& v) {
  std::vector<CommitPart> out;
  for (const auto& item : v.as_array()) {
    const auto& o = item.as_object();
    out.push_back(CommitPart{std::string(o.at("key").as_string()), o.at("rows").to_number<uint64_t>()});
  }
  return out;
}

CommitManifest parse_manifest(const std::string& data) {
  auto o = boost::json::parse(data).as_object();
  CommitManifest m;
  m.id = std::string(o.at("id").as_string());
  m.parts = parse_parts(o.at("parts"));
  for (const auto& item : o.at("batches").as_array()) {
    const auto& b = item.as_object();
    m.batches.push_back(CommitManifest::Batch{text(b, "id"), text(b, "digest")});
  }
  if (auto* r = o.if_contains("replaces"); r && r->is_array())
    for (const auto& k : r->get_array()) m.replaces.emplace_back(k.as_string());
  // Optional: manifests written before leases have no token.
  if (auto* t = o.if_contains("fencing_token"); t && t->is_number()) m.fencing_token = t->to_number<uint64_t>();
  return m;
}

std::vector<CommitPart> read_parts_file(ObjectStore& store, const DatasetRef& ref) {
  try {
    return parse_parts(boost::json::parse(store.get(committed_parts_key(ref))).as_object().at("parts"));
  } catch (const NotFound&) {
    return {};
  }
}

}  // namespace

std::optional<BatchRecord> get_batch_record(ObjectStore& store, const DatasetRef& ref, const std::string& batch_id) {
  std::string data;
  try {
    data = store.get(batch_record_key(ref, batch_id));
  } catch (const NotFound&) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(data, ec);
  if (ec || !v.is_object()) {
    // A torn or foreign record: the batch was seen, its content is unknown.
    spdlog::warn("ledger: unreadable record for batch {} in {}", batch_id, ref.str());
    return BatchRecord{};
  }
  return BatchRecord{text(v.get_object(), "digest"), text(v.get_object(), "commit")};
}

void put_batch_record(ObjectStore& store, const DatasetRef& ref, const std::string& batch_id, const BatchRecord& record) {
  boost::json::object o{{"digest", record.digest}};
  if (record.committed()) o["commit"] = record.commit;
  store.put(batch_record_key(ref, batch_id), boost::json::serialize(o));
}

size_t expire_batch_records(ObjectStore& store, const DatasetRef& ref, int64_t cutoff_us) {
  // Keys sort by hour, so the expired records come first: stop at the first live one.
  size_t removed = 0;
  std::string token;
  do {
    ListPage page = store.list(batch_records_prefix(ref), token, 1000);
    token = page.next_token;
    for (const auto& obj : page.objects) {
      std::string name = obj.key.substr(obj.key.rfind('/') + 1);
      auto ms = ulid_time_ms(name.substr(0, name.find('.')));
      if (ms && *ms * 1000 >= cutoff_us) return removed;
      store.remove(obj.key);
      ++removed;
    }
  } while (!token.empty());
  return removed;
}

void write_manifest(ObjectStore& store, const DatasetRef& ref, const CommitManifest& m) {
  boost::json::array batches;
  for (const auto& b : m.batches) batches.push_back(boost::json::object{{"id", b.id}, {"digest", b.digest}});
  boost::json::object o{{"id", m.id}, {"parts", parts_json(m.parts)}, {"batches", std::move(batches)}};
  if (m.fencing_token) o["fencing_token"] = m.fencing_token;
  if (!m.replaces.empty()) o["replaces"] = strings_json(m.replaces);
  store.put(commit_manifest_key(ref, m.id), boost::json::serialize(o));
}

std::vector<CommitManifest> pending_manifests(ObjectStore& store, const DatasetRef& ref) {
  std::vector<CommitManifest> out;
  for (const auto& obj : store.list_all(commit_manifests_prefix(ref))) {
    try {
      out.push_back(parse_manifest(store.get(obj.key)));
    } catch (const NotFound&) {
      // folded meanwhile
    } catch (const std::exception& e) {
      spdlog::error("ledger: unreadable commit manifest {}: {}", obj.key, e.what());
    }
  }
  return out;  // list order is key order: commit ids are ULIDs, so oldest first
}

void write_committed_parts(ObjectStore& store, const DatasetRef& ref, const std::vector<CommitPart>& parts) {
  store.put(committed_parts_key(ref), boost::json::serialize(boost::json::object{{"parts", parts_json(parts)}}));
}

void fold_manifest(ObjectStore& store, const DatasetRef& ref, const CommitManifest& manifest) {
  std::vector<CommitPart> parts = read_parts_file(store, ref);
  const std::set<std::string> replaced(manifest.replaces.begin(), manifest.replaces.end());
  const size_t before = parts.size();
  std::erase_if(parts, [&](const CommitPart& p) { return replaced.count(p.key) > 0; });
  bool changed = parts.size() != before;
  std::set<std::string> known;
  for (const auto& p : parts) known.insert(p.key);
  for (const auto& p : manifest.parts) {
    if (known.insert(p.key).second) {
      parts.push_back(p);
      changed = true;
    }
  }
  if (changed) write_committed_parts(store, ref, parts);
  // A kill before the manifest is deleted folds it again: the record is rewritten the same.
  if (!manifest.replaces.empty())
    store.put(replaced_parts_key(ref, manifest.id),
              boost::json::serialize(boost::json::object{{"commit", manifest.id}, {"keys", strings_json(manifest.replaces)}}));
  store.remove(commit_manifest_key(ref, manifest.id));
}

std::vector<CommitPart> committed_parts(ObjectStore& store, const DatasetRef& ref) {
  // Manifests first: a fold that runs meanwhile moves parts into parts.json before
  // deleting the manifest, so reading parts.json second misses nothing.
  // A part a pending compaction replaces is left out whether parts.json still names
  // it (not folded yet) or not (folded meanwhile); part keys are never reused.
  std::map<std::string, uint64_t> parts;
  std::set<std::string> replaced;
  for (const auto& m : pending_manifests(store, ref)) {
    for (const auto& p : m.parts) parts.emplace(p.key, p.rows);
    replaced.insert(m.replaces.begin(), m.replaces.end());
  }
  for (const auto& p : read_parts_file(store, ref)) parts.emplace(p.key, p.rows);
  std::vector<CommitPart> out;
  for (auto& [key, rows] : parts)
    if (!replaced.count(key)) out.push_back(CommitPart{key, rows});
  return out;
}

std::vector<CommitPart> folded_parts(ObjectStore& store, const DatasetRef& ref) { return read_parts_file(store, ref); }

std::vector<ReplacedParts> replaced_parts(ObjectStore& store, const DatasetRef& ref) {
  std::vector<ReplacedParts> out;
  for (const auto& obj : store.list_all(replaced_parts_prefix(ref))) {
    try {
      auto o = boost::json::parse(store.get(obj.key)).as_object();
      ReplacedParts r{text(o, "commit"), {}};
      for (const auto& k : o.at("keys").as_array()) r.keys.emplace_back(k.as_string());
      if (!r.commit.empty()) out.push_back(std::move(r));
    } catch (const NotFound&) {
      // deleted meanwhile
    } catch (const std::exception& e) {
      spdlog::error("ledger: unreadable record of replaced parts {}: {}", obj.key, e.what());
    }
  }
  return out;
}

void delete_replaced_parts(ObjectStore& store, const DatasetRef& ref, const ReplacedParts& replaced) {
  for (const auto& key : replaced.keys) store.remove(key);
  store.remove(replaced_parts_key(ref, replaced.commit));
}

}  // namespace bf
