// lookup: enrich events from a CSV table (header row), matched exactly or by network.
//   {lookup: {file: /etc/bf/assets.csv, field: src_ip, match: cidr, key: network,
//             columns: [owner, site], target: asset}}
// The table is read when the pipeline compiles and again when the file changes
// (piper/enrich/reloading_file.h). With `match: cidr` the key column holds networks
// and the longest prefix containing the address wins.
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "piper/enrich/batched_step.h"
#include "piper/enrich/reloading_file.h"
#include "piper/prefetch.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }
};
struct AddressHash {
  size_t operator()(const std::array<uint8_t, 16>& a) const { return XXH3_64bits(a.data(), a.size()); }
};

struct TableOptions {
  std::string key;                   // empty: the first column
  std::vector<std::string> columns;  // empty: every column but the key
  bool cidr = false;
  char delimiter = ',';
  int64_t max_bytes = 0;
};

// One version of the table, immutable once loaded.
struct Table {
  std::vector<std::string> names;                // the output columns
  // Per row, its non-empty output columns as the JSON members written: built once when
  // the table loads, copied into each matching event's own storage.
  std::vector<boost::json::object> rows;
  std::unordered_map<std::string, uint32_t, TextHash, std::equal_to<>> exact;
  struct Prefix {                                // the networks of one length and family
    int length = 0;
    bool v4 = false;
    std::unordered_map<std::array<uint8_t, 16>, uint32_t, AddressHash> rows;
  };
  std::vector<Prefix> prefixes;                  // longest first

  const boost::json::object* find(std::string_view key) const {
    auto it = exact.find(key);
    return it == exact.end() ? nullptr : &rows[it->second];
  }
  const boost::json::object* find(const IpAddress& ip) const {
    for (const auto& p : prefixes) {
      if (p.v4 != ip.v4) continue;
      auto it = p.rows.find(CidrNetwork::masked(ip, p.length).bytes);
      if (it != p.rows.end()) return &rows[it->second];
    }
    return nullptr;
  }
};

std::string read_bounded(const std::string& path, int64_t max_bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    data.append(buf, n);
    if (static_cast<int64_t>(data.size()) > max_bytes) {
      std::fclose(f);
      throw std::runtime_error(path + ": larger than max_bytes (" + std::to_string(max_bytes) +
                               " bytes); raise max_bytes or split the table");
    }
  }
  std::fclose(f);
  return data;
}

std::shared_ptr<const Table> load_table(const std::string& path, const TableOptions& o) {
  const std::string text = read_bounded(path, o.max_bytes);
  size_t pos = 0, line = 1;
  std::vector<std::string> record;
  auto next = [&]() -> bool {  // the next non-blank record; false at the end
    while (pos < text.size()) {
      size_t start = pos;
      record.clear();
      if (!read_csv_record(text, pos, o.delimiter, '"', true, record))
        throw std::runtime_error(path + ": line " + std::to_string(line) + ": a quote is not closed");
      line += std::count(text.begin() + static_cast<std::ptrdiff_t>(start), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
      if (!(record.size() == 1 && record[0].empty())) return true;
    }
    return false;
  };
  size_t header_line = line;
  if (!next()) throw std::runtime_error(path + ": empty (a header row is needed)");
  const std::vector<std::string> header = record;
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) throw std::runtime_error(path + ": no column '" + name + "' in the header (line " +
                                                     std::to_string(header_line) + ")");
    return static_cast<size_t>(it - header.begin());
  };
  const size_t key = o.key.empty() ? 0 : column(o.key);
  std::vector<size_t> out;
  if (o.columns.empty()) {
    for (size_t i = 0; i < header.size(); ++i)
      if (i != key) out.push_back(i);
  } else {
    for (const auto& c : o.columns) out.push_back(column(c));
  }
  auto table = std::make_shared<Table>();
  for (size_t i : out) table->names.push_back(header[i]);
  std::map<std::pair<int, bool>, size_t> prefix_index;  // (length, v4) → into prefixes
  while (true) {
    size_t at = line;
    if (!next()) break;
    auto where = [&] { return path + ": line " + std::to_string(at) + ": "; };
    if (record.size() != header.size())
      throw std::runtime_error(where() + std::to_string(record.size()) + " values for " + std::to_string(header.size()) +
                               " columns");
    const auto row = static_cast<uint32_t>(table->rows.size());
    bool fresh;
    if (o.cidr) {
      auto net = CidrNetwork::parse(record[key]);
      if (!net) throw std::runtime_error(where() + "'" + preview(record[key]) + "' is not a network (a.b.c.d/n, x::/n)");
      auto [it, added] = prefix_index.try_emplace({net->prefix(), net->base().v4}, table->prefixes.size());
      if (added) table->prefixes.push_back({net->prefix(), net->base().v4, {}});
      fresh = table->prefixes[it->second].rows.emplace(CidrNetwork::masked(net->base(), net->prefix()).bytes, row).second;
    } else {
      fresh = table->exact.emplace(record[key], row).second;
    }
    if (!fresh) throw std::runtime_error(where() + "key '" + preview(record[key]) + "' appears twice");
    boost::json::object values;
    for (size_t n = 0; n < out.size(); ++n)
      if (!record[out[n]].empty()) values[table->names[n]] = boost::json::string(record[out[n]]);
    table->rows.push_back(std::move(values));
  }
  std::sort(table->prefixes.begin(), table->prefixes.end(),
            [](const Table::Prefix& a, const Table::Prefix& b) { return a.length > b.length; });
  return table;
}

class Lookup final : public BatchedStep {
 public:
  Lookup(FieldPath field, std::optional<FieldPath> target, bool cidr, std::unique_ptr<ReloadingFile<Table>> table)
      : field_(std::move(field)), target_(std::move(target)), cidr_(cidr), table_(std::move(table)) {}

  struct State final : BatchState {
    std::shared_ptr<const Table> table;  // the batch's version, whether it comes whole or in slices
  };
  bool sliceable() const override { return true; }
  std::unique_ptr<BatchState> begin_batch() const override {
    auto state = std::make_unique<State>();
    if (table_) state->table = table_->get();  // one version for the whole batch
    return state;
  }
  void apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                   std::vector<std::string>& errors) const override {
    apply_slice(events, results, errors, begin_batch().get());
  }
  void apply_slice(const std::vector<Event*>& events, std::vector<StepResult>& results, std::vector<std::string>& errors,
                   BatchState* batch) const override {
    const auto& table = static_cast<State&>(*batch).table;
    if (!table) {  // compiled without files (the control plane's preview)
      std::fill(results.begin(), results.end(), StepResult::fail);
      std::fill(errors.begin(), errors.end(), std::string(kFileNotOpenedHere));
      return;
    }
    uint64_t counts[3] = {0, 0, 0};
    std::string number;
    for (size_t k = 0; k < events.size(); ++k) {
      Event* e = events[k];
      if (k + 1 < events.size()) prefetch_event(*events[k + 1]);
      const boost::json::value* v = find_field(*e, field_);
      if (!v) continue;
      const boost::json::object* row = nullptr;
      if (v->is_string() && cidr_) {
        auto ip = IpAddress::parse(v->get_string());
        if (!ip) {
          ++counts[kLookupInvalid];
          continue;
        }
        row = table->find(*ip);
      } else if (v->is_string()) {
        row = table->find(std::string_view(v->get_string()));
      } else if (!cidr_ && (v->is_int64() || v->is_uint64())) {  // a port, a status code
        number = v->is_int64() ? std::to_string(v->get_int64()) : std::to_string(v->get_uint64());
        row = table->find(std::string_view(number));
      } else {
        ++counts[kLookupInvalid];
        continue;
      }
      if (!row) {
        ++counts[kLookupMiss];
        continue;
      }
      ++counts[kLookupHit];
      merge_into(*e, target_, *row);
    }
    for (size_t r = 0; r < 3; ++r) lookups_.add(r, counts[r]);
  }
  void count_as(const Labels& labels) override {
    lookups_.count_as(labels);
    if (table_) table_->count_as(labels);
  }

 private:
  FieldPath field_;
  std::optional<FieldPath> target_;
  bool cidr_;
  std::unique_ptr<ReloadingFile<Table>> table_;
  mutable ResultCounters lookups_ = lookup_counters();
};

}  // namespace

TransformFactory lookup_transform() {
  return {"lookup", "Enrich from a CSV table (header row) by exact key or by network (match: cidr, longest prefix); reloaded when the file changes",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            std::optional<FieldPath> target;
            if (o.has("target")) target = o.field("target");
            TableOptions t;
            t.cidr = o.choice("match") == "cidr";
            t.key = o.str("key", "");
            t.columns = o.str_list("columns", {});
            t.delimiter = single_char(o, "delimiter");
            if (t.delimiter == '"') o.fail("delimiter", "must not be the quote character");
            t.max_bytes = o.integer("max_bytes");
            std::string file = o.str("file");
            if (file.empty()) o.fail("file", "must not be empty");
            std::unique_ptr<ReloadingFile<Table>> table;
            if (o.open_files()) {  // validate only: the table is the piper host's business
              try {
                table = std::make_unique<ReloadingFile<Table>>(file, [t](const std::string& p) { return load_table(p, t); });
              } catch (const EnrichFileMissing& e) {
                o.fail_missing_file("file", e.what());
              } catch (const std::exception& e) {
                o.fail("file", e.what());
              }
            }
            return std::make_unique<Lookup>(std::move(field), std::move(target), t.cidr, std::move(table));
          },
          {
              Option("file", OptionType::string, "the CSV table, with a header row").mandatory(),
              Option("field", OptionType::string, "the field whose value is looked up").mandatory(),
              Option("match", OptionType::string, "exact: the key's text; cidr: the key column holds networks, the longest prefix wins")
                  .one_of({"exact", "cidr"})
                  .def("exact"),
              Option("key", OptionType::string, "the column matched").note("the first column"),
              Option("columns", OptionType::string_list, "the columns added").note("all but the key"),
              Option("target", OptionType::string, "an object field for the columns").note("into the event"),
              Option("delimiter", OptionType::string, "one character between values; \\t for a tab").def(","),
              Option("max_bytes", OptionType::integer, "the largest file loaded, in bytes (a larger one does not compile)").def("67108864").range(1, double(int64_t{1} << 30)),
          }};
}

}  // namespace bf
