#include "common/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
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

// One context per thread, reused: creating one per call costs its tables every time.
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  return ctx.get();
}

std::string zstd_compress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compressCCtx(thread_cctx(), out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  return ctx.get();
}

// Decompresses into buf (its size is working space, grown as needed) and returns the
// decompressed length. initial: the size to start with when buf is smaller.
size_t zstd_decompress_into(std::string_view data, size_t max_output, std::string& buf, size_t initial) {
  ZSTD_DCtx* ctx = thread_dctx();
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  const size_t limit = max_output == SIZE_MAX ? max_output : max_output + 1;
  if (buf.size() < initial) buf.resize(std::min(initial, limit));
  if (buf.empty()) buf.resize(std::min<size_t>(limit, 1));
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  size_t used = 0;
  while (true) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), used};
    const size_t ret = ZSTD_decompressStream(ctx, &ob, &in);
    if (ZSTD_isError(ret)) throw DecompressError(std::string("invalid zstd data: ") + ZSTD_getErrorName(ret));
    used = ob.pos;
    if (used > max_output)
      throw DecompressTooLarge("decompressed size exceeds limit of " + std::to_string(max_output) + " bytes");
    // Input consumed and the output buffer not filled: everything is flushed.
    if (in.pos == in.size && ob.pos < ob.size) {
      if (ret != 0) throw DecompressError("truncated zstd data");
      return used;
    }
    if (ob.pos == ob.size) buf.resize(std::min(limit, std::max<size_t>(buf.size() * 2, 64 << 10)));
  }
}

// Where the frames declare their content size, one allocation of about that size
// (bounded by a plausible compression ratio, so a forged header cannot make us
// allocate the whole limit); otherwise the buffer grows as output arrives.
size_t zstd_initial_size(std::string_view data) {
  const unsigned long long declared = ZSTD_getFrameContentSize(data.data(), data.size());  // of the first frame
  const size_t plausible = data.size() * 64 + (1u << 20);
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN || declared == ZSTD_CONTENTSIZE_ERROR) return std::min<size_t>(plausible, 64 << 10);
  return static_cast<size_t>(std::min<unsigned long long>(declared + 1, plausible));
}

std::string zstd_decompress(std::string_view data, size_t max_output) {
  std::string out;
  out.resize(zstd_decompress_into(data, max_output, out, zstd_initial_size(data)));
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

constexpr uint32_t kSkippableMagicMask = 0xFFFFFFF0u;
constexpr uint32_t kSkippableMagic = 0x184D2A50u;

// Calls f(frame, skippable) for each frame of a zstd stream.
template <class F>
void for_each_zstd_frame(std::string_view data, F&& f) {
  while (!data.empty()) {
    const size_t n = ZSTD_findFrameCompressedSize(data.data(), data.size());
    if (ZSTD_isError(n)) throw DecompressError(std::string("invalid zstd data: ") + ZSTD_getErrorName(n));
    uint32_t magic = 0;
    for (int i = 3; i >= 0 && data.size() >= 4; --i) magic = (magic << 8) | static_cast<unsigned char>(data[static_cast<size_t>(i)]);
    f(data.substr(0, n), (magic & kSkippableMagicMask) == kSkippableMagic);
    data.remove_prefix(n);
  }
}

}  // namespace

bool has_zstd_skippable_frames(std::string_view data) {
  bool any = false;
  for_each_zstd_frame(data, [&](std::string_view, bool skippable) { any = any || skippable; });
  return any;
}

std::string strip_zstd_skippable_frames(std::string_view data) {
  std::string out;
  out.reserve(data.size());
  for_each_zstd_frame(data, [&](std::string_view frame, bool skippable) {
    if (!skippable) out += frame;
  });
  return out;
}

std::string compress(Encoding e, std::string_view data, int level) {
  switch (e) {
    case Encoding::zstd: return zstd_compress(data, level);
    case Encoding::gzip: return gzip_compress(data, level < 1 ? 1 : (level > 9 ? 9 : level));
    default: return std::string(data);
  }
}

std::string_view decompress_into(Encoding e, std::string_view data, size_t max_output, std::string& buffer) {
  switch (e) {
    case Encoding::zstd: {
      const size_t n = zstd_decompress_into(data, max_output, buffer, zstd_initial_size(data));
      return {buffer.data(), n};  // after the call: it may have moved the buffer
    }
    case Encoding::gzip: buffer = gzip_decompress(data, max_output); return buffer;
    default:
      if (data.size() > max_output)
        throw DecompressTooLarge("body exceeds limit of " + std::to_string(max_output) + " bytes");
      return data;
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
