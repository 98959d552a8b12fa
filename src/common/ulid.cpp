#include "common/ulid.h"

#include <array>
#include <chrono>
#include <mutex>
#include <random>
#include <string>

#include "common/digest.h"
#include "common/time.h"

namespace bf {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int decode_char(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

// 80 random bits as two words: hi holds 16 bits, lo 64 bits.
struct Random80 {
  uint16_t hi = 0;
  uint64_t lo = 0;
};

std::string encode(uint64_t ms, Random80 r) {
  std::string out(26, '0');
  for (int i = 9; i >= 0; --i) {  // 48-bit time in 10 chars (50 bits, top 2 zero)
    out[i] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  // 80 random bits in 16 chars, most significant first.
  for (int i = 25; i >= 10; --i) {
    out[i] = kAlphabet[r.lo & 31];
    r.lo = (r.lo >> 5) | (static_cast<uint64_t>(r.hi & 31) << 59);
    r.hi >>= 5;
  }
  return out;
}

struct Generator {
  std::mutex mu;
  std::mt19937_64 rng{std::random_device{}()};
  int64_t last_ms = -1;
  Random80 last;

  std::string next(int64_t ms, bool monotonic) {
    std::lock_guard lock(mu);
    Random80 r;
    if (monotonic && ms <= last_ms) {
      // Same millisecond (or clock went back): increment the random part so ids
      // created by this process sort in creation order.
      ms = last_ms;
      r = last;
      if (++r.lo == 0) ++r.hi;
    } else {
      r.hi = static_cast<uint16_t>(rng());
      r.lo = rng();
    }
    if (monotonic) {
      last_ms = ms;
      last = r;
    }
    return encode(static_cast<uint64_t>(ms), r);
  }
};

Generator& generator() {
  static Generator g;
  return g;
}

}  // namespace

std::string new_ulid() { return generator().next(now_ms(), true); }

std::string ulid_at(int64_t unix_ms) { return generator().next(unix_ms, false); }

std::string derived_ulid(std::string_view base, std::string_view salt) {
  std::string input(base);
  input += '\0';
  input += salt;
  const std::string hex = sha256_hex(input);
  Random80 r;
  r.hi = static_cast<uint16_t>(std::stoul(hex.substr(0, 4), nullptr, 16));
  r.lo = std::stoull(hex.substr(4, 16), nullptr, 16);
  return encode(static_cast<uint64_t>(ulid_time_ms(base).value_or(0)), r);
}

bool is_valid_ulid(std::string_view s) {
  if (s.size() != 26) return false;
  if (decode_char(s[0]) > 7) return false;  // would overflow 48 bits
  for (char c : s) {
    if (decode_char(c) < 0) return false;
  }
  return true;
}

std::optional<int64_t> ulid_time_ms(std::string_view s) {
  if (!is_valid_ulid(s)) return std::nullopt;
  int64_t ms = 0;
  for (int i = 0; i < 10; ++i) ms = (ms << 5) | decode_char(s[i]);
  return ms;
}

}  // namespace bf
