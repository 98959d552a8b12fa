// geoip: location or network owner of an IP address from an MMDB database
// (GeoLite2 / GeoIP2 / DB-IP: City, Country, ASN) through libmaxminddb.
//   {geoip: {database: /var/lib/GeoIP/GeoLite2-City.mmdb, field: client_ip, target: geo,
//            fields: [country_code, city_name, latitude, longitude]}}
// The database is opened when the pipeline compiles and again when the file changes
// (piper/enrich/reloading_file.h). It is copied into memory first: libmaxminddb maps
// the file, and a database rewritten in place under a mapping would crash the process.
#include <fcntl.h>
#include <maxminddb.h>
#include <xxhash.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "piper/enrich/batched_step.h"
#include "piper/enrich/reloading_file.h"
#include "piper/prefetch.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

enum class DbKind { city, country, asn, other };

// An open database, closed when the last batch using it is done.
class Mmdb {
 public:
  explicit Mmdb(const std::string& path) {
    int src = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (src < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    int copy = ::memfd_create("bf-geoip", MFD_CLOEXEC);
    struct stat st {};
    bool ok = copy >= 0 && ::fstat(src, &st) == 0;
    for (off_t off = 0; ok && off < st.st_size;) {
      ssize_t n = ::sendfile(copy, src, &off, static_cast<size_t>(st.st_size - off));
      if (n <= 0) ok = false;
    }
    ::close(src);
    if (!ok) {
      if (copy >= 0) ::close(copy);
      throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
    }
    std::string proc = "/proc/self/fd/" + std::to_string(copy);
    int status = MMDB_open(proc.c_str(), MMDB_MODE_MMAP, &db_);
    ::close(copy);  // the mapping keeps the copy alive
    if (status != MMDB_SUCCESS) throw std::runtime_error(path + ": not an MMDB database: " + MMDB_strerror(status));
    std::string type = db_.metadata.database_type ? db_.metadata.database_type : "";
    kind_ = type.find("ASN") != std::string::npos       ? DbKind::asn
            : type.find("City") != std::string::npos    ? DbKind::city
            : type.find("Country") != std::string::npos ? DbKind::country
                                                        : DbKind::other;
    type_ = type;
  }
  ~Mmdb() { MMDB_close(&db_); }
  Mmdb(const Mmdb&) = delete;
  Mmdb& operator=(const Mmdb&) = delete;

  const MMDB_s* db() const { return &db_; }
  DbKind kind() const { return kind_; }
  const std::string& type() const { return type_; }

 private:
  MMDB_s db_{};
  DbKind kind_ = DbKind::other;
  std::string type_;
};

// An output field: its name under the target and where it is in a record.
struct Output {
  std::string name;
  std::vector<std::string> path;  // empty: the matched network
  std::vector<const char*> cpath;  // path as MMDB_aget_value wants it, null-terminated
};

struct Known {
  const char* name;
  std::vector<std::string> path;  // "*" stands for the language
  std::vector<DbKind> kinds;
};
const std::vector<Known>& known_fields() {
  using K = DbKind;
  static const std::vector<Known> k{
      {"continent_code", {"continent", "code"}, {K::city, K::country}},
      {"continent_name", {"continent", "names", "*"}, {K::city, K::country}},
      {"country_code", {"country", "iso_code"}, {K::city, K::country}},
      {"country_name", {"country", "names", "*"}, {K::city, K::country}},
      {"registered_country_code", {"registered_country", "iso_code"}, {K::city, K::country}},
      {"region_code", {"subdivisions", "0", "iso_code"}, {K::city}},
      {"region_name", {"subdivisions", "0", "names", "*"}, {K::city}},
      {"city_name", {"city", "names", "*"}, {K::city}},
      {"postal_code", {"postal", "code"}, {K::city}},
      {"latitude", {"location", "latitude"}, {K::city}},
      {"longitude", {"location", "longitude"}, {K::city}},
      {"timezone", {"location", "time_zone"}, {K::city}},
      {"accuracy_radius", {"location", "accuracy_radius"}, {K::city}},
      {"asn", {"autonomous_system_number"}, {K::asn}},
      {"as_org", {"autonomous_system_organization"}, {K::asn}},
      {"network", {}, {K::city, K::country, K::asn, K::other}},
  };
  return k;
}
std::vector<std::string> default_fields(DbKind kind) {
  switch (kind) {
    case DbKind::city:
      return {"continent_code", "country_code", "country_name", "region_code", "region_name",
              "city_name",      "postal_code",  "latitude",     "longitude",   "timezone"};
    case DbKind::country: return {"continent_code", "country_code", "country_name"};
    case DbKind::asn: return {"asn", "as_org"};
    case DbKind::other: return {};
  }
  return {};
}

// A scalar from the data section as JSON; maps and arrays are not read (null).
boost::json::value to_json(const MMDB_entry_data_s& d) {
  switch (d.type) {
    case MMDB_DATA_TYPE_UTF8_STRING: return boost::json::string(std::string_view(d.utf8_string, d.data_size));
    case MMDB_DATA_TYPE_DOUBLE: return d.double_value;
    case MMDB_DATA_TYPE_FLOAT: return static_cast<double>(d.float_value);
    case MMDB_DATA_TYPE_UINT16: return d.uint16;
    case MMDB_DATA_TYPE_UINT32: return d.uint32;
    case MMDB_DATA_TYPE_INT32: return d.int32;
    case MMDB_DATA_TYPE_UINT64: return d.uint64;
    case MMDB_DATA_TYPE_BOOLEAN: return d.boolean;
    default: return nullptr;
  }
}

std::string network_text(IpAddress ip, int prefix) {
  ip = CidrNetwork::masked(ip, prefix);
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip.v4 ? AF_INET : AF_INET6, ip.bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

struct IpHash {
  size_t operator()(const IpAddress& ip) const { return XXH3_64bits(ip.bytes.data(), ip.bytes.size()) ^ ip.v4; }
};
struct IpEqual {
  bool operator()(const IpAddress& a, const IpAddress& b) const { return a.v4 == b.v4 && a.bytes == b.bytes; }
};

class GeoIp final : public BatchedStep {
 public:
  GeoIp(FieldPath field, FieldPath target, std::vector<Output> outputs, std::unique_ptr<ReloadingFile<Mmdb>> db)
      : field_(std::move(field)), target_(std::move(target)), outputs_(std::move(outputs)), db_(std::move(db)) {}

  // The batch's database version, and the records of the addresses it has seen (one
  // batch's, whether it comes in one piece or in slices).
  struct State final : BatchState {
    std::shared_ptr<const Mmdb> db;
    // An address seen before in this batch (clients repeat) reuses its record: a
    // copy costs less than walking the database for each output field again.
    std::unordered_map<IpAddress, std::optional<boost::json::object>, IpHash, IpEqual> seen;
  };
  bool sliceable() const override { return true; }
  std::unique_ptr<BatchState> begin_batch() const override {
    auto state = std::make_unique<State>();
    if (db_) state->db = db_->get();  // one version for the whole batch
    return state;
  }
  void apply_batch(const std::vector<Event*>& events, std::vector<StepResult>& results,
                   std::vector<std::string>& errors) const override {
    apply_slice(events, results, errors, begin_batch().get());
  }
  void apply_slice(const std::vector<Event*>& events, std::vector<StepResult>& results, std::vector<std::string>& errors,
                   BatchState* batch) const override {
    auto& state = static_cast<State&>(*batch);
    if (!state.db) {  // compiled without files (the control plane's preview)
      std::fill(results.begin(), results.end(), StepResult::fail);
      std::fill(errors.begin(), errors.end(), std::string(kFileNotOpenedHere));
      return;
    }
    uint64_t counts[3] = {0, 0, 0};
    for (size_t k = 0; k < events.size(); ++k) {
      Event* e = events[k];
      if (k + 1 < events.size()) prefetch_event(*events[k + 1]);
      bool present;
      auto ip = address_at(*e, field_, present);
      if (!ip) {
        counts[kLookupInvalid] += present;
        continue;
      }
      auto [it, fresh] = state.seen.try_emplace(*ip);
      if (fresh) {
        boost::json::object rec;
        if (lookup(*state.db, *ip, rec)) it->second = std::move(rec);
      }
      if (!it->second) {
        ++counts[kLookupMiss];
        continue;
      }
      ++counts[kLookupHit];
      if (!it->second->empty()) merge_into(*e, target_, *it->second);
    }
    for (size_t r = 0; r < 3; ++r) lookups_.add(r, counts[r]);
  }
  void count_as(const Labels& labels) override {
    lookups_.count_as(labels);
    if (db_) db_->count_as(labels);
  }

 private:
  bool lookup(const Mmdb& db, const IpAddress& ip, boost::json::object& rec) const {
    sockaddr_storage ss{};
    if (ip.v4) {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      std::memcpy(&sa->sin_addr, ip.bytes.data(), 4);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      std::memcpy(&sa->sin6_addr, ip.bytes.data(), 16);
    }
    int error = 0;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(db.db(), reinterpret_cast<sockaddr*>(&ss), &error);
    if (error != MMDB_SUCCESS || !r.found_entry) return false;  // an IPv6 address in an IPv4 database: a miss
    for (const auto& o : outputs_) {
      if (o.path.empty()) {  // the network: an IPv4 address in an IPv6 tree counts from bit 96
        int prefix = r.netmask - (ip.v4 && db.db()->metadata.ip_version == 6 ? 96 : 0);
        rec[o.name] = network_text(ip, std::max(prefix, 0));
        continue;
      }
      MMDB_entry_data_s data{};
      if (MMDB_aget_value(&r.entry, &data, o.cpath.data()) != MMDB_SUCCESS || !data.has_data) continue;
      boost::json::value value = to_json(data);
      if (!value.is_null()) rec[o.name] = std::move(value);
    }
    return true;
  }
  FieldPath field_;
  std::optional<FieldPath> target_;
  std::vector<Output> outputs_;
  std::unique_ptr<ReloadingFile<Mmdb>> db_;
  mutable ResultCounters lookups_ = lookup_counters();
};

const char* kind_name(DbKind k) {
  switch (k) {
    case DbKind::city: return "City";
    case DbKind::country: return "Country";
    case DbKind::asn: return "ASN";
    case DbKind::other: return "other";
  }
  return "other";
}

OptionSpecs options() {
  std::vector<std::string> names;
  for (const auto& kf : known_fields()) names.emplace_back(kf.name);
  return {
      Option("database", OptionType::string, "the MMDB file (GeoLite2, GeoIP2, DB-IP: City, Country or ASN)").mandatory(),
      Option("field", OptionType::string, "the field holding the IPv4 or IPv6 address").mandatory(),
      Option("target", OptionType::string, "an object field for the results (merged into an object already there)")
          .def("geo"),
      Option("fields", OptionType::string_list,
             "the values written, by name (those the database's type holds; other values: use paths)")
          .one_of(std::move(names))
          .note("by the database's type"),
      Option("paths", OptionType::string_map, "output name → dotted path into the record (traits.is_anycast)"),
      Option("language", OptionType::string, "the language of names").def("en"),
  };
}

}  // namespace

TransformFactory geoip_transform() {
  return {"geoip", "Location (City, Country) or network owner (ASN) of an IP address from an MMDB database; reloaded when the file changes",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            auto field = o.field("field");
            auto target = o.field("target");
            std::string language = o.nonempty("language");
            std::string path = o.str("database");
            if (path.empty()) o.fail("database", "must not be empty");
            std::unique_ptr<ReloadingFile<Mmdb>> db;
            std::shared_ptr<const Mmdb> first;
            if (o.open_files()) {  // validate only: the database is the piper host's business
              try {
                db = std::make_unique<ReloadingFile<Mmdb>>(path, [](const std::string& p) { return std::make_shared<const Mmdb>(p); });
              } catch (const EnrichFileMissing& e) {
                o.fail_missing_file("database", e.what());
              } catch (const std::exception& e) {
                o.fail("database", e.what());
              }
              first = db->get();
            }
            // Without the database its kind is unknown: the fields are checked by name only.
            const DbKind kind = first ? first->kind() : DbKind::other;
            const std::string type = first ? first->type() : std::string("(not opened)");
            std::vector<std::string> names = o.str_list("fields", first ? default_fields(kind) : std::vector<std::string>{});
            std::vector<Output> outputs;
            for (const auto& name : names) {
              const Known* k = nullptr;
              for (const auto& kf : known_fields())
                if (name == kf.name) k = &kf;
              if (!k) throw std::logic_error("geoip: field '" + name + "' passed the declaration but is not known");
              if (kind != DbKind::other && std::find(k->kinds.begin(), k->kinds.end(), kind) == k->kinds.end())
                o.fail("fields", "'" + name + "' is not in a " + kind_name(kind) + " database (" + type + ")");
              Output out{name, k->path, {}};
              for (auto& p : out.path)
                if (p == "*") p = language;
              outputs.push_back(std::move(out));
            }
            if (o.has("paths")) {  // output name → dotted path into the record, e.g. traits.is_anycast
              for (const auto& kv : o.object("paths")) {
                if (!kv.value().is_string() || kv.value().get_string().empty())
                  o.fail("paths", "'" + std::string(kv.key()) + "' must map to a dotted path");
                Output out{std::string(kv.key()), {}, {}};
                try {
                  out.path = FieldPath::parse(std::string(kv.value().get_string())).parts;
                } catch (const PipelineError& e) {
                  o.fail("paths", e.what());
                }
                outputs.push_back(std::move(out));
              }
            }
            if (outputs.empty() && first) o.fail("fields", "no output fields: give fields or paths for a " + type + " database");
            for (auto& out : outputs) {
              for (const auto& p : out.path) out.cpath.push_back(p.c_str());
              out.cpath.push_back(nullptr);
            }
            return std::make_unique<GeoIp>(std::move(field), std::move(target), std::move(outputs), std::move(db));
          },
          options()};
}

}  // namespace bf
