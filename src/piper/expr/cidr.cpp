#include "piper/expr/cidr.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace bf {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  IpAddress ip;
  if (inet_pton(AF_INET, buf, ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
    std::memmove(ip.bytes.data(), ip.bytes.data() + 12, 4);
    std::memset(ip.bytes.data() + 4, 0, 12);
    ip.v4 = true;
  }
  return ip;
}

std::optional<CidrNetwork> CidrNetwork::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const int max = ip->v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > max) return std::nullopt;
  }
  CidrNetwork n;
  n.base_ = *ip;
  n.prefix_ = prefix;
  return n;
}

IpAddress CidrNetwork::masked(const IpAddress& ip, int prefix) {
  IpAddress out = ip;
  for (size_t i = 0; i < out.bytes.size(); ++i, prefix -= 8) {
    if (prefix >= 8) continue;
    out.bytes[i] &= prefix <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - prefix));
  }
  return out;
}

bool CidrNetwork::contains(const IpAddress& ip) const {
  if (ip.v4 != base_.v4) return false;
  int bits = prefix_;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((ip.bytes[i] & mask) != (base_.bytes[i] & mask)) return false;
  }
  return true;
}

}  // namespace bf
