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

// zstd levels per hop: fast where batches only pass through (the wire, the spools,
// raw/); the lake's Parquet files take the configured level.
constexpr int kZstdFastLevel = 1;
constexpr int kZstdDefaultLevel = 3;

std::string compress(Encoding e, std::string_view data, int level = kZstdDefaultLevel);
// zstd data may be several concatenated frames, skippable frames included (skipped).
std::string decompress(Encoding e, std::string_view data, size_t max_output);
// The same into a caller's buffer, whose size is working space kept between calls (a
// buffer reused per thread allocates nothing once warm). Returns the decompressed
// bytes: a view into `buffer`, or of `data` itself for identity.
std::string_view decompress_into(Encoding e, std::string_view data, size_t max_output, std::string& buffer);

// Whether a zstd stream holds skippable frames (magic 0x184D2A50..5F): metadata of its
// writer (pzstd's frame sizes, a seek table, ...), which decompression skips.
// Throws DecompressError if `data` is not a sequence of complete zstd frames.
bool has_zstd_skippable_frames(std::string_view data);
// The same stream with its skippable frames left out: the same decompressed bytes.
std::string strip_zstd_skippable_frames(std::string_view data);

}  // namespace bf
