#pragma once
// Bounds-checked big-endian reader over a datagram, shared by the flow decoders.
// Reading past the end never touches memory outside the span: it returns 0 (or
// nullptr), and ok() turns false for good, so a decoder checks once per structure.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bf::flow {

class Reader {
 public:
  Reader() = default;
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  explicit Reader(std::string_view s) : p_(reinterpret_cast<const uint8_t*>(s.data())), n_(s.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return pos_ >= n_; }
  const uint8_t* here() const { return p_ + pos_; }

  uint8_t u8() { return need(1) ? p_[pos_++] : 0; }
  uint16_t u16() {
    if (!need(2)) return 0;
    const uint16_t v = static_cast<uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    const uint32_t v = uint32_t(p_[pos_]) << 24 | uint32_t(p_[pos_ + 1]) << 16 | uint32_t(p_[pos_ + 2]) << 8 |
                       uint32_t(p_[pos_ + 3]);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    const uint64_t hi = u32();
    return hi << 32 | u32();
  }
  // n bytes in place, or nullptr (and !ok()) when fewer remain.
  const uint8_t* bytes(size_t n) {
    if (!need(n)) return nullptr;
    const uint8_t* b = p_ + pos_;
    pos_ += n;
    return b;
  }
  bool skip(size_t n) { return bytes(n) != nullptr || n == 0; }
  // The next n bytes as a reader of their own (this one moves past them).
  Reader sub(size_t n) {
    const uint8_t* b = bytes(n);
    return b ? Reader(b, n) : Reader(nullptr, 0, false);
  }
  // sFlow's XDR opaque: a length, the bytes, padding to a multiple of 4.
  Reader xdr_opaque(size_t max) {
    const uint32_t len = u32();
    if (!ok_ || len > max || len > remaining()) {
      ok_ = false;
      return Reader(nullptr, 0, false);
    }
    Reader r(p_ + pos_, len);
    pos_ += len;
    skip((4 - len % 4) % 4);
    return r;
  }

 private:
  Reader(const uint8_t* p, size_t n, bool ok) : p_(p), n_(n), ok_(ok) {}
  bool need(size_t k) {
    if (ok_ && n_ - pos_ >= k) return true;
    ok_ = false;
    pos_ = n_;
    return false;
  }
  const uint8_t* p_ = nullptr;
  size_t n_ = 0;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Big-endian unsigned of 1..8 bytes (reduced-size encoding, RFC 7011 §6.2).
inline uint64_t read_be(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

}  // namespace bf::flow
