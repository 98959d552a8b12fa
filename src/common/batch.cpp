#include "common/batch.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <new>
#include <optional>
#include <cstdint>

#include "common/time.h"

namespace bf {

void append_ndjson(std::string& out, const Event& event) {
  out += boost::json::serialize(event);
  out += '\n';
}

std::string to_ndjson(const std::vector<Event>& events) {
  std::string out;
  out.reserve(events.size() * 256);
  for (const auto& e : events) append_ndjson(out, e);
  return out;
}

bool NdjsonLines::next(std::string_view& line) {
  if (pos_ >= text_.size()) return false;
  size_t end = text_.find('\n', pos_);
  if (end == std::string_view::npos) end = text_.size();
  line = text_.substr(pos_, end - pos_);
  pos_ = end + 1;
  ++number_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return true;
}

bool is_blank_line(std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; }

size_t for_each_ndjson_event(std::string_view text, boost::json::monotonic_resource* arena,
                             const std::function<void(Event&)>& on_event) {
  boost::json::parser parser;
  NdjsonLines lines(text);
  std::string_view line;
  size_t count = 0;
  while (lines.next(line)) {
    if (is_blank_line(line)) continue;
    {
      parser.reset(arena ? boost::json::storage_ptr(arena) : boost::json::storage_ptr());
      boost::system::error_code ec;
      parser.write(line.data(), line.size(), ec);
      if (ec) throw BatchFormatError("line " + std::to_string(lines.number()) + ": invalid JSON: " + ec.message());
      boost::json::value v = parser.release();
      if (!v.is_object()) throw BatchFormatError("line " + std::to_string(lines.number()) + ": not a JSON object");
      on_event(v.get_object());
      ++count;
    }  // the value is gone before its arena is released
    if (arena) arena->release();
  }
  return count;
}

namespace {
// The heap, with the blocks the thread's arenas gave back kept for the next batch
// (up to kMaxCachedArenaBytes): a batch asks for the same growing sizes as the one
// before it, so after the first batch its memory is already mapped and touched.
constexpr size_t kMaxCachedArenaBytes = size_t(256) << 20;
class ArenaBlocks final : public boost::json::memory_resource {
 public:
  ~ArenaBlocks() override {
    for (const Block& b : free_) ::operator delete(b.p, std::align_val_t(b.align));
  }

 private:
  struct Block {
    void* p;
    size_t size, align;  // as allocated
  };
  void* do_allocate(size_t n, size_t align) override {
    void* p = nullptr;
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].size != n || free_[i].align != align) continue;
      p = free_[i].p;
      cached_ -= n;
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));  // keeps the others oldest first
      break;
    }
    if (!p) p = ::operator new(n, std::align_val_t(align));
    live_.push_back({p, n, align});
    return p;
  }
  // monotonic_resource gives a block back with a size other than the one it asked
  // for (without its header): the size allocated is looked up.
  void do_deallocate(void* p, size_t, size_t) override {
    Block b{};
    for (size_t i = live_.size(); i-- > 0;) {
      if (live_[i].p != p) continue;
      b = live_[i];
      live_[i] = live_.back();
      live_.pop_back();
      break;
    }
    if (!b.p) return;  // not ours: cannot happen
    if (b.size > kMaxCachedArenaBytes) return ::operator delete(b.p, std::align_val_t(b.align));
    // The oldest blocks go first: those of batches unlike the ones now coming.
    size_t drop = 0;
    while (cached_ + b.size > kMaxCachedArenaBytes) {
      const Block& old = free_[drop++];
      ::operator delete(old.p, std::align_val_t(old.align));
      cached_ -= old.size;
    }
    free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(drop));
    free_.push_back(b);
    cached_ += b.size;
  }
  bool do_is_equal(const boost::json::memory_resource& other) const noexcept override { return this == &other; }
  std::vector<Block> free_;  // oldest first
  std::vector<Block> live_;  // handed out, not yet given back
  size_t cached_ = 0;
};
thread_local ArenaBlocks arena_blocks;
}  // namespace

struct BatchArena::Impl {
  boost::json::monotonic_resource resource{size_t(64) << 10, boost::json::storage_ptr(&arena_blocks)};
};

BatchArena::BatchArena() : impl_(std::make_unique<Impl>()) {}

BatchArena::~BatchArena() = default;

boost::json::storage_ptr BatchArena::storage() const { return boost::json::storage_ptr(&impl_->resource); }

std::vector<Event> parse_ndjson(std::string_view text, boost::json::storage_ptr storage) {
  std::vector<Event> events;
  boost::json::parser parser;
  NdjsonLines lines(text);
  std::string_view line;
  while (lines.next(line)) {
    if (is_blank_line(line)) continue;
    parser.reset(storage);
    boost::system::error_code ec;
    parser.write(line.data(), line.size(), ec);
    if (ec) throw BatchFormatError("line " + std::to_string(lines.number()) + ": invalid JSON: " + ec.message());
    boost::json::value v = parser.release();
    if (!v.is_object()) throw BatchFormatError("line " + std::to_string(lines.number()) + ": not a JSON object");
    events.push_back(std::move(v.get_object()));
  }
  return events;
}

std::optional<int64_t> parse_event_time(const boost::json::value& v) {
  if (v.is_string()) return parse_rfc3339(v.get_string(), /*require_offset=*/false);
  if (!v.is_number()) return std::nullopt;
  return parse_epoch_time(v.to_number<double>());
}

std::optional<int64_t> parse_epoch_time(double n) {
  if (!std::isfinite(n) || n < 0) return std::nullopt;
  const double micros = n >= 1e17 ? n / 1e3 : n >= 1e14 ? n : n >= 1e11 ? n * 1e3 : n * 1e6;
  if (micros >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(micros);
}

namespace {
constexpr uint32_t kEnvelopeMagic = 0x184D2A5B;  // one of zstd's skippable-frame magics
// An envelope is small metadata; a larger size field means a corrupt or foreign object.
constexpr uint32_t kMaxEnvelopeBytes = 16u << 20;

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t get_le32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return v;
}
}  // namespace

std::string wrap_batch_object(const BatchEnvelope& envelope, std::string_view compressed_ndjson) {
  if (envelope.empty()) return std::string(compressed_ndjson);
  const std::string json = boost::json::serialize(envelope);
  if (json.size() > kMaxEnvelopeBytes) throw BatchFormatError("batch envelope larger than 16 MiB");
  std::string out;
  out.reserve(8 + json.size() + compressed_ndjson.size());
  put_le32(out, kEnvelopeMagic);
  put_le32(out, static_cast<uint32_t>(json.size()));
  out += json;
  out += compressed_ndjson;
  return out;
}

BatchObject split_batch_object(std::string_view object) {
  BatchObject b;
  b.payload = object;
  if (object.size() < 4 || get_le32(object) != kEnvelopeMagic) return b;
  if (object.size() < 8) throw BatchFormatError("truncated batch envelope");
  const uint32_t size = get_le32(object.substr(4));
  if (size > kMaxEnvelopeBytes || object.size() - 8 < size) throw BatchFormatError("truncated batch envelope");
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(object.substr(8, size), ec);
  if (ec || !v.is_object()) throw BatchFormatError("malformed batch envelope");
  b.envelope = std::move(v.get_object());
  b.payload = object.substr(8 + size);
  return b;
}

void apply_envelope_defaults(const BatchEnvelope& envelope, std::vector<Event>& events) {
  auto member = [&](const char* name) -> const boost::json::value* {
    const auto* v = envelope.if_contains(name);
    return v && v->is_string() ? v : nullptr;
  };
  if (const auto* c = envelope.if_contains("complete"); c && c->is_bool() && c->get_bool()) return;
  const boost::json::value* received = member("received");
  const boost::json::value* source = member("source");
  const boost::json::value* peer = member("peer");
  if (!received && !source) return;
  for (Event& e : events) {
    if (received && !e.contains("_received")) e["_received"] = *received;
    if (!e.contains("_time")) {
      // A copy first: inserting may move the members.
      if (const auto* r = e.if_contains("_received")) {
        boost::json::value time = *r;
        e["_time"] = std::move(time);
      }
    }
    if (source && !e.contains("_source")) {
      e["_source"] = *source;
      if (peer && !e.contains("_peer")) e["_peer"] = *peer;
    }
  }
}

std::string encode_batch(const std::vector<Event>& events, const BatchEnvelope& envelope) {
  return wrap_batch_object(envelope, compress(Encoding::zstd, to_ndjson(events)));
}

std::vector<Event> decode_batch(std::string_view compressed, size_t max_bytes, boost::json::storage_ptr storage) {
  // No stage stores an empty batch, so an empty object is a read that raced a write
  // (some S3 servers show an object empty while it is being overwritten): never
  // "a batch of no events", which would let the batch be committed with nothing in it.
  if (compressed.empty()) throw BatchFormatError("empty batch object");
  BatchObject object = split_batch_object(compressed);
  if (object.payload.empty()) throw BatchFormatError("batch object has an envelope but no events");
  std::vector<Event> events = parse_ndjson(decompress(Encoding::zstd, object.payload, max_bytes), std::move(storage));
  apply_envelope_defaults(object.envelope, events);
  return events;
}

uint64_t declared_event_count(std::string_view object) noexcept {
  try {
    const BatchObject b = split_batch_object(object);
    const boost::json::value* n = b.envelope.if_contains("events");
    if (!n)
      if (auto* shape = b.envelope.if_contains("shape"); shape && shape->is_object()) n = shape->get_object().if_contains("events");
    if (n && n->is_number()) return n->to_number<uint64_t>();
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace bf
