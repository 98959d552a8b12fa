#pragma once
// Steps pass over a batch one event after another, and a batch (10,000 events of
// 2–3 KB) is far larger than the cache: each pass after the first finds every event
// cold, and each field lookup waits for memory twice (the member table, then the key).
// Asking for the next event's member table while this one is worked on hides most of
// the first wait. Only a hint: it changes no result, and an address is never read.
#include "common/batch.h"

namespace bf {

inline void prefetch_event(const Event& e) {
  if (e.empty()) return;
  // The members (and, in a table of more than 18, the hash buckets right after them).
  const char* first = reinterpret_cast<const char*>(e.begin());
  const char* end = reinterpret_cast<const char*>(e.begin() + e.capacity());
  constexpr size_t kLines = 16;  // 1 KiB: the members of a 30-field event
  for (size_t i = 0; i < kLines && first + i * 64 < end; ++i) __builtin_prefetch(first + i * 64);
  if (e.capacity() > 18) __builtin_prefetch(end);
}

}  // namespace bf
