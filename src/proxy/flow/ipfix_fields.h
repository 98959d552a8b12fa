#pragma once
// The common Information Elements of the IANA IPFIX registry (RFC 7012 §4 types,
// names as registered), used for NetFlow v9 too: v9 field types 1..127 are the
// same numbers (RFC 3954 §8 and RFC 7012 share the first 128 elements).
#include <cstdint>
#include <string_view>

namespace bf::flow {

enum class IeType : uint8_t {
  unsigned_int, signed_int, float_num, boolean, mac, string, octets, ipv4, ipv6,
  time_s, time_ms, time_us, time_ns,  // dateTimeSeconds .. dateTimeNanoseconds
};

struct InfoElement {
  uint16_t id;
  IeType type;
  std::string_view name;
};

// The element with this IANA id (enterprise 0), or nullptr when it is not in our table.
const InfoElement* find_ie(uint16_t id);

// RFC 5103: reverse-direction elements are the IANA ones under this enterprise number.
constexpr uint32_t kReversePen = 29305;

// Well-known ids the decoders use for _time.
namespace ie {
constexpr uint16_t flowEndSysUpTime = 21, flowStartSysUpTime = 22, flowEndSeconds = 151,
                   flowEndMilliseconds = 153, flowEndMicroseconds = 155, flowEndNanoseconds = 157,
                   flowEndDeltaMicroseconds = 159, systemInitTimeMilliseconds = 160;
}

}  // namespace bf::flow
