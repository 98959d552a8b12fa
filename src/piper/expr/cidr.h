#pragma once
// IPv4/IPv6 networks for cidr_match(): parsed once, matched without allocating.
// An IPv4-mapped IPv6 address (::ffff:10.1.2.3) matches IPv4 networks.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bf {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;  // bytes[0..3] hold the address
  static std::optional<IpAddress> parse(std::string_view text);
};

class CidrNetwork {
 public:
  // "10.0.0.0/8", "2001:db8::/32", or a single address (full-length prefix).
  static std::optional<CidrNetwork> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  const IpAddress& base() const { return base_; }  // as written (host bits may be set)
  int prefix() const { return prefix_; }
  // The address with every bit after the first `prefix` cleared.
  static IpAddress masked(const IpAddress& ip, int prefix);

 private:
  IpAddress base_;
  int prefix_ = 0;
};

}  // namespace bf
