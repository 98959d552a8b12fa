#pragma once
// Helpers for the flow decoder tests: a big-endian byte builder (packets are laid
// out field by field from the specifications) and a decode-to-events shortcut.
#include <arpa/inet.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "common/batch.h"
#include "proxy/flow/output.h"

namespace bf::test {

struct Bytes {
  std::string b;
  Bytes& u8(uint32_t v) {
    b.push_back(static_cast<char>(v & 0xff));
    return *this;
  }
  Bytes& u16(uint32_t v) { return u8(v >> 8).u8(v); }
  Bytes& u32(uint32_t v) { return u16(v >> 16).u16(v); }
  Bytes& u64(uint64_t v) { return u32(static_cast<uint32_t>(v >> 32)).u32(static_cast<uint32_t>(v)); }
  Bytes& raw(const std::string& s) {
    b += s;
    return *this;
  }
  Bytes& ipv4(const char* text) {
    in_addr a{};
    inet_pton(AF_INET, text, &a);
    b.append(reinterpret_cast<const char*>(&a), 4);
    return *this;
  }
  Bytes& ipv6(const char* text) {
    in6_addr a{};
    inet_pton(AF_INET6, text, &a);
    b.append(reinterpret_cast<const char*>(&a), 16);
    return *this;
  }
  Bytes& mac(std::initializer_list<int> m) {
    for (int x : m) u8(static_cast<uint32_t>(x));
    return *this;
  }
  Bytes& pad_to(size_t multiple) {
    while (b.size() % multiple) u8(0);
    return *this;
  }
  size_t size() const { return b.size(); }
  // Writes a big-endian u16 at `at` (lengths known only at the end).
  void patch16(size_t at, uint32_t v) {
    b[at] = static_cast<char>((v >> 8) & 0xff);
    b[at + 1] = static_cast<char>(v & 0xff);
  }
  void patch32(size_t at, uint32_t v) {
    patch16(at, v >> 16);
    patch16(at + 2, v & 0xffff);
  }
};

inline flow::EventContext test_context(int64_t received_us = 1764676800000000LL /* 2025-12-02T12:00:00Z */,
                                       std::string_view peer = "192.0.2.1:4000") {
  static thread_local std::string received;
  received = "2025-12-02T12:00:00.000000Z";
  flow::EventContext c;
  c.received_us = received_us;
  c.received = received;
  c.source = "test";
  c.peer = peer;
  return c;
}

inline std::vector<Event> events_of(const std::string& ndjson) { return parse_ndjson(ndjson); }

inline int64_t num(const Event& e, const char* key) {
  const auto* v = e.if_contains(key);
  if (!v) return -999999;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return -999998;
}
inline uint64_t unum(const Event& e, const char* key) {
  const auto* v = e.if_contains(key);
  if (v && v->is_uint64()) return v->as_uint64();
  if (v && v->is_int64()) return static_cast<uint64_t>(v->as_int64());
  return 0xdeadbeef;
}
inline std::string str(const Event& e, const char* key) {
  const auto* v = e.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "<absent>";
}

}  // namespace bf::test

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>

namespace bf::test {

using DecodeFn = std::function<void(const std::string& datagram, std::string& out, flow::FlowStats& stats)>;

// Every truncation of a valid datagram decodes without a crash and is counted as an
// error; what comes out is always valid NDJSON. Returns the number of cuts tried.
inline size_t check_truncations(const std::string& valid, const std::function<DecodeFn()>& fresh) {
  size_t uncounted = 0;
  for (size_t len = 0; len < valid.size(); ++len) {
    std::string out;
    flow::FlowStats stats;
    fresh()(valid.substr(0, len), out, stats);
    if (stats.total_errors() == 0) {
      ++uncounted;
      ADD_FAILURE() << "a cut at " << len << " of " << valid.size() << " bytes was not counted";
    }
    EXPECT_NO_THROW(parse_ndjson(out)) << "cut at " << len;
  }
  return uncounted;
}

// Random mutations (byte flips, overwrites with 0x00/0xff, cuts, duplicated ranges)
// of valid datagrams for BF_FLOW_MUTATION_SECONDS (default 2) on one decoder: no
// crash, output always valid NDJSON. Returns the datagrams tried.
inline uint64_t mutate_for_a_while(const std::vector<std::string>& valid, const DecodeFn& decode) {
  const char* env = std::getenv("BF_FLOW_MUTATION_SECONDS");
  const double seconds = env ? std::atof(env) : 2.0;
  std::mt19937_64 rng(0xb17ef00d);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t tried = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int k = 0; k < 64; ++k, ++tried) {
      std::string d = valid[rng() % valid.size()];
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !d.empty(); ++e) {
        const size_t at = rng() % d.size();
        switch (rng() % 5) {
          case 0: d[at] = static_cast<char>(d[at] ^ (1 << (rng() % 8))); break;
          case 1: d[at] = 0; break;
          case 2: d[at] = static_cast<char>(0xff); break;
          case 3: d.resize(at); break;
          case 4: d.insert(at, d.substr(at, rng() % 32)); break;
        }
      }
      std::string out;
      flow::FlowStats stats;
      decode(d, out, stats);
      try {
        parse_ndjson(out);
      } catch (const std::exception& ex) {
        ADD_FAILURE() << "invalid NDJSON from a mutated datagram: " << ex.what();
        return tried;
      }
    }
  }
  return tried;
}

}  // namespace bf::test
