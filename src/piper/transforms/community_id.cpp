// community_id: the Community ID v1 flow hash ("1:" + base64 of SHA-1), the same value
// Zeek, Suricata and Wireshark compute, so flows can be joined across tools.
//   {community_id: {source_ip: src, destination_ip: dst, source_port: sport,
//                   destination_port: dport, protocol: proto, target: network.community_id}}
// Facts from the published specification (github.com/corelight/community-id-spec):
// the hashed bytes are seed (16 bits), the two addresses, the IP protocol number,
// one zero byte, then — for TCP, UDP, SCTP, ICMP and ICMPv6 — the two ports (16
// bits each), all in network byte order, endpoints ordered so that both directions
// hash alike. For ICMP the type is the source "port", and the code is the destination
// one unless the type has a request/reply counterpart, which then takes its place.
#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>

#include "common/utf8.h"
#include "piper/expr/expr.h"
#include "piper/transforms/transforms.h"

namespace bf {
namespace {

constexpr int kIcmp = 1, kTcp = 6, kUdp = 17, kIcmp6 = 58, kSctp = 132;

// The request/reply counterpart of an ICMP type; nullopt when it has none (a one-way message).
std::optional<uint16_t> icmp_counterpart(int protocol, uint16_t type) {
  static constexpr std::pair<uint16_t, uint16_t> v4[] = {{8, 0}, {13, 14}, {15, 16}, {10, 9}, {17, 18}};
  static constexpr std::pair<uint16_t, uint16_t> v6[] = {{128, 129}, {133, 134}, {135, 136}, {130, 131}, {139, 140}, {144, 145}};
  using Pairs = std::span<const std::pair<uint16_t, uint16_t>>;
  for (const auto& [a, b] : protocol == kIcmp ? Pairs(v4) : Pairs(v6)) {
    if (type == a) return b;
    if (type == b) return a;
  }
  return std::nullopt;
}

std::optional<int> protocol_number(const boost::json::value& v) {
  if (auto n = value_to_int(v); n && *n >= 0 && *n <= 255 && !v.is_bool()) return static_cast<int>(*n);
  if (!v.is_string()) return std::nullopt;
  std::string name(v.get_string());
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name == "tcp") return kTcp;
  if (name == "udp") return kUdp;
  if (name == "icmp") return kIcmp;
  if (name == "icmp6" || name == "icmpv6" || name == "ipv6-icmp") return kIcmp6;
  if (name == "sctp") return kSctp;
  return std::nullopt;
}

// SHA-1 with the digest fetched once and a context per thread: OpenSSL 3's one-shot
// SHA1() looks the algorithm up on every call, which dominated this step.
void sha1(const unsigned char* data, size_t size, unsigned char out[20]) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx c;
  unsigned int len = 0;
  if (!md || !c.ctx || EVP_DigestInit_ex(c.ctx, md, nullptr) != 1 || EVP_DigestUpdate(c.ctx, data, size) != 1 ||
      EVP_DigestFinal_ex(c.ctx, out, &len) != 1 || len != 20)
    throw std::runtime_error("SHA-1 is not available");
}

struct Address {
  unsigned char bytes[16];
  size_t size = 0;  // 4 or 16
};

std::optional<Address> parse_address(const boost::json::value& v) {
  if (!v.is_string()) return std::nullopt;
  std::string text(v.get_string());
  Address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.size = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.size = 16;
  } else {
    return std::nullopt;
  }
  return a;
}

class CommunityId final : public Transform {
 public:
  CommunityId(std::vector<FieldPath> fields, FieldPath target, uint16_t seed)
      : fields_(std::move(fields)), target_(std::move(target)), seed_(seed) {}

  StepResult apply(Event& e, std::string& error) const override {
    const boost::json::value* src = find_field(e, fields_[0]);
    const boost::json::value* dst = find_field(e, fields_[1]);
    const boost::json::value* proto = find_field(e, fields_[4]);
    if (!src || !dst || !proto) return StepResult::keep;  // not a flow: skipped
    auto saddr = parse_address(*src), daddr = parse_address(*dst);
    if (!saddr || !daddr) {
      error = "field '" + field_name(fields_[saddr ? 1 : 0]) + "' is not an IP address";
      return StepResult::fail;
    }
    if (saddr->size != daddr->size) {
      error = "source and destination are not both IPv4 or both IPv6";
      return StepResult::fail;
    }
    auto protocol = protocol_number(*proto);
    if (!protocol) {
      error = "field '" + field_name(fields_[4]) + "' is not a protocol number (0-255) or name";
      return StepResult::fail;
    }
    const bool has_ports = *protocol == kTcp || *protocol == kUdp || *protocol == kSctp || *protocol == kIcmp ||
                           *protocol == kIcmp6;
    uint16_t sport = 0, dport = 0;
    bool one_way = false;
    if (has_ports) {
      for (int i : {2, 3}) {
        const boost::json::value* p = find_field(e, fields_[i]);
        auto n = p ? value_to_int(*p) : std::nullopt;
        if (!n || *n < 0 || *n > 65535 || p->is_bool()) {
          error = "field '" + field_name(fields_[i]) + (p ? "' is not a port number (0-65535)" : "' is missing");
          return StepResult::fail;
        }
        (i == 2 ? sport : dport) = static_cast<uint16_t>(*n);
      }
      if (*protocol == kIcmp || *protocol == kIcmp6) {
        if (auto other = icmp_counterpart(*protocol, sport)) {
          dport = *other;
        } else {
          one_way = true;
        }
      }
    }
    // Both directions of a flow hash alike: the smaller (address, port) goes first.
    const int order = std::memcmp(saddr->bytes, daddr->bytes, saddr->size);
    if (!one_way && (order > 0 || (order == 0 && sport > dport))) {
      std::swap(saddr, daddr);
      std::swap(sport, dport);
    }
    unsigned char input[2 + 16 + 16 + 2 + 4];
    size_t n = 0;
    input[n++] = static_cast<unsigned char>(seed_ >> 8);
    input[n++] = static_cast<unsigned char>(seed_);
    std::memcpy(input + n, saddr->bytes, saddr->size);
    n += saddr->size;
    std::memcpy(input + n, daddr->bytes, daddr->size);
    n += daddr->size;
    input[n++] = static_cast<unsigned char>(*protocol);
    input[n++] = 0;
    if (has_ports) {
      for (uint16_t p : {sport, dport}) {
        input[n++] = static_cast<unsigned char>(p >> 8);
        input[n++] = static_cast<unsigned char>(p);
      }
    }
    unsigned char digest[20];
    sha1(input, n, digest);
    set_field(e, target_, boost::json::string("1:" + base64(std::string_view(reinterpret_cast<char*>(digest), sizeof digest))));
    return StepResult::keep;
  }

 private:
  std::vector<FieldPath> fields_;  // source ip, destination ip, source port, destination port, protocol
  FieldPath target_;
  uint16_t seed_;
};

}  // namespace

TransformFactory community_id_transform() {
  return {"community_id",
          "Community ID v1 flow hash into target (default network.community_id) from source_ip, destination_ip, "
          "source_port, destination_port (ICMP: type and code) and protocol (number or tcp/udp/icmp/icmp6/sctp); seed (0)",
          [](const StepOptions& o) -> std::unique_ptr<Transform> {
            std::vector<FieldPath> fields{o.field("source_ip"), o.field("destination_ip"), o.field("source_port"),
                                          o.field("destination_port"), o.field("protocol")};
            auto target = o.field("target");
            auto seed = static_cast<uint16_t>(o.integer("seed"));
            return std::make_unique<CommunityId>(std::move(fields), std::move(target), seed);
          },
          {
              Option("source_ip", OptionType::string, "the field holding the source address").def("source.ip"),
              Option("destination_ip", OptionType::string, "the field holding the destination address").def("destination.ip"),
              Option("source_port", OptionType::string, "the field holding the source port (ICMP: the type)").def("source.port"),
              Option("destination_port", OptionType::string, "the field holding the destination port (ICMP: the code)")
                  .def("destination.port"),
              Option("protocol", OptionType::string,
                     "the field holding the IP protocol: a number 0–255 or tcp, udp, icmp, icmp6, sctp")
                  .def("network.transport"),
              Option("target", OptionType::string, "where the hash goes").def("network.community_id"),
              Option("seed", OptionType::integer, "the Community ID seed").def("0").range(0, 65535),
          }};
}

}  // namespace bf
