#include "common/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <memory>

namespace bf {

std::optional<Encoding> parse_encoding(std::string_view name) {
  if (name.empty() || name == "identity") return Encoding::identity;
  if (name == "zstd") return Encoding::zstd;
  if (name == "gzip" || name == "x-gzip") return Encoding::gzip;
  return std::nullopt;
}

std::string_view encoding_name(Encoding e) {
  switch (e) {
    case Encoding::zstd: return "zstd";
    case Encoding::gzip: return "gzip";
    default: return "identity";
  }
}

namespace {

std::string zstd_compress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::string zstd_decompress(std::string_view data, size_t max_output) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  std::string chunk(ZSTD_DStreamOutSize(), '\0');
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  while (true) {
    ZSTD_outBuffer ob{chunk.data(), chunk.size(), 0};
    size_t ret = ZSTD_decompressStream(ctx.get(), &ob, &in);
    if (ZSTD_isError(ret)) throw DecompressError(std::string("invalid zstd data: ") + ZSTD_getErrorName(ret));
    if (out.size() + ob.pos > max_output)
      throw DecompressTooLarge("decompressed size exceeds limit of " + std::to_string(max_output) + " bytes");
    out.append(chunk.data(), ob.pos);
    // Input consumed and the output buffer not filled: everything is flushed.
    if (in.pos == in.size && ob.pos < ob.size) {
      if (ret != 0) throw DecompressError("truncated zstd data");
      break;
    }
  }
  return out;
}

std::string gzip_compress(std::string_view data, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: deflateInit failed");
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate failed");
  out.resize(n);
  return out;
}

std::string gzip_decompress(std::string_view data, size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw DecompressError("gzip: inflateInit failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char chunk[64 * 1024];
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
      throw DecompressError(std::string("invalid gzip data: ") + (zs.msg ? zs.msg : "error"));
    size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > max_output)
      throw DecompressTooLarge("decompressed size exceeds limit of " + std::to_string(max_output) + " bytes");
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // concatenated gzip members
      continue;
    }
    if (produced == 0 && (zs.avail_in == 0 || rc == Z_BUF_ERROR))
      throw DecompressError("truncated gzip data");
  }
  return out;
}

}  // namespace

std::string compress(Encoding e, std::string_view data, int level) {
  switch (e) {
    case Encoding::zstd: return zstd_compress(data, level);
    case Encoding::gzip: return gzip_compress(data, level < 1 ? 1 : (level > 9 ? 9 : level));
    default: return std::string(data);
  }
}

std::string decompress(Encoding e, std::string_view data, size_t max_output) {
  switch (e) {
    case Encoding::zstd: return zstd_decompress(data, max_output);
    case Encoding::gzip: return gzip_decompress(data, max_output);
    default:
      if (data.size() > max_output)
        throw DecompressTooLarge("body exceeds limit of " + std::to_string(max_output) + " bytes");
      return std::string(data);
  }
}

}  // namespace bf
