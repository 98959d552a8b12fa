#pragma once
// Batch (de)compression: zstd is the wire and storage default; gzip is accepted on input.
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bf {

enum class Encoding { identity, gzip, zstd };

// Parses a Content-Encoding value ("zstd", "gzip", "identity" or empty).
std::optional<Encoding> parse_encoding(std::string_view name);
std::string_view encoding_name(Encoding e);

struct DecompressError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown when the decompressed size would exceed the caller's limit (zip bombs).
struct DecompressTooLarge : DecompressError {
  using DecompressError::DecompressError;
};

std::string compress(Encoding e, std::string_view data, int level = 3);
std::string decompress(Encoding e, std::string_view data, size_t max_output);

}  // namespace bf
