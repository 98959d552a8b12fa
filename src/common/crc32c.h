#pragma once
// CRC-32C (Castagnoli), as used by iSCSI, ext4 and Kafka: SSE4.2 instructions when
// the CPU has them, a table otherwise. Guards spool entries against torn or rotted bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bf {

// `crc` continues a checksum: crc32c(b, crc32c(a)) == crc32c(a + b).
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace bf
