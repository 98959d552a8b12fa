#include "packer/parquet_splice.h"

#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <utility>

namespace bf {

namespace {

// --- Thrift compact protocol (the encoding of Parquet's footer) -------------------
// A footer is decoded into a generic tree, so fields this code does not know (newer
// statistics, logical types) are carried over unchanged.

enum : uint8_t {
  kStop = 0,
  kTrue = 1,  // field type of a boolean true; list element type of booleans in old writers
  kFalse = 2,  // field type of a boolean false; list element type of booleans
  kI8 = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12,
  kUuid = 13,
};

struct Value {
  uint8_t type = kStop;  // kTrue for booleans (the value in i)
  int64_t i = 0;         // integers, booleans (0/1), a double's bits
  std::string s;         // binary, uuid
  uint8_t elem = 0;      // list/set element type; map value type
  uint8_t key = 0;       // map key type
  std::vector<Value> items;  // list/set elements; a map's keys and values, alternating
  std::vector<std::pair<int16_t, Value>> fields;  // a struct's, in the order read
};

class Reader {
 public:
  // Keeps a view: `bytes` must outlive the reader.
  Reader(const std::string& bytes, std::string what) : p_(bytes.data()), end_(p_ + bytes.size()), what_(std::move(what)) {}
  Reader(std::string&&, std::string) = delete;

  Value read_struct(int depth = 0) {
    if (depth > 32) fail("nesting deeper than 32");
    Value v;
    v.type = kStruct;
    int16_t last = 0;
    for (;;) {
      const uint8_t header = byte();
      const uint8_t type = header & 0x0f;
      if (type == kStop) return v;
      const uint8_t delta = header >> 4;
      const int16_t id = delta ? static_cast<int16_t>(last + delta) : static_cast<int16_t>(zigzag(varint()));
      last = id;
      Value field;
      if (type == kTrue || type == kFalse) {
        field.type = kTrue;
        field.i = type == kTrue;
      } else {
        field = read_value(type, depth + 1);
      }
      v.fields.emplace_back(id, std::move(field));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(what_ + ": Parquet footer does not decode: " + why);
  }
  uint8_t byte() {
    if (p_ == end_) fail("truncated");
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  static int64_t zigzag(uint64_t n) { return static_cast<int64_t>(n >> 1) ^ -static_cast<int64_t>(n & 1); }
  size_t count(uint64_t n) const {
    // Every element takes at least a byte: a larger count is a corrupt footer.
    if (n > static_cast<uint64_t>(end_ - p_)) fail("a count larger than the footer");
    return static_cast<size_t>(n);
  }

  Value read_value(uint8_t type, int depth) {
    if (depth > 32) fail("nesting deeper than 32");
    Value v;
    v.type = type;
    switch (type) {
      case kTrue:
      case kFalse:  // an element of a list, set or map: one byte
        v.type = kTrue;
        v.i = byte() == 1;
        return v;
      case kI8:
        v.i = static_cast<int8_t>(byte());
        return v;
      case kI16:
      case kI32:
      case kI64:
        v.i = zigzag(varint());
        return v;
      case kDouble:
        for (int k = 0; k < 8; ++k) v.i |= int64_t(byte()) << (8 * k);
        return v;
      case kBinary: {
        const size_t n = count(varint());
        v.s.assign(p_, n);
        p_ += n;
        return v;
      }
      case kUuid:
        if (end_ - p_ < 16) fail("truncated uuid");
        v.s.assign(p_, 16);
        p_ += 16;
        return v;
      case kList:
      case kSet: {
        const uint8_t header = byte();
        v.elem = header & 0x0f;
        uint64_t n = header >> 4;
        if (n == 15) n = varint();
        for (size_t k = count(n); k > 0; --k)
          v.items.push_back(v.elem == kStruct ? read_struct(depth + 1) : read_value(v.elem, depth + 1));
        return v;
      }
      case kMap: {
        const size_t n = count(varint());
        if (n == 0) return v;
        const uint8_t kinds = byte();
        v.key = kinds >> 4;
        v.elem = kinds & 0x0f;
        for (size_t k = 0; k < n; ++k) {
          v.items.push_back(v.key == kStruct ? read_struct(depth + 1) : read_value(v.key, depth + 1));
          v.items.push_back(v.elem == kStruct ? read_struct(depth + 1) : read_value(v.elem, depth + 1));
        }
        return v;
      }
      case kStruct:
        return read_struct(depth);
      default:
        fail("unknown type " + std::to_string(type));
    }
  }

  const char* p_;
  const char* end_;
  std::string what_;
};

class Writer {
 public:
  void write_struct(const Value& v) {
    int16_t last = 0;
    for (const auto& [id, field] : v.fields) {
      const uint8_t type = field.type == kTrue ? uint8_t(field.i ? kTrue : kFalse) : field.type;
      if (id > last && id - last <= 15) {
        byte(static_cast<uint8_t>((id - last) << 4 | type));
      } else {
        byte(type);
        varint(zigzag(id));
      }
      last = id;
      if (field.type != kTrue) write_value(field);
    }
    byte(kStop);
  }
  std::string& bytes() { return out_; }

 private:
  void byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void varint(uint64_t n) {
    while (n >= 0x80) {
      byte(static_cast<uint8_t>(n | 0x80));
      n >>= 7;
    }
    byte(static_cast<uint8_t>(n));
  }
  static uint64_t zigzag(int64_t n) { return (static_cast<uint64_t>(n) << 1) ^ static_cast<uint64_t>(n >> 63); }
  void element(uint8_t declared, const Value& e) {
    if (declared == kTrue || declared == kFalse) byte(e.i ? 1 : 0);
    else write_value(e);
  }
  void write_value(const Value& v) {
    switch (v.type) {
      case kI8:
        byte(static_cast<uint8_t>(v.i));
        return;
      case kI16:
      case kI32:
      case kI64:
        varint(zigzag(v.i));
        return;
      case kDouble:
        for (int k = 0; k < 8; ++k) byte(static_cast<uint8_t>(uint64_t(v.i) >> (8 * k)));
        return;
      case kBinary:
        varint(v.s.size());
        out_ += v.s;
        return;
      case kUuid:
        out_ += v.s;
        return;
      case kList:
      case kSet:
        if (v.items.size() < 15) {
          byte(static_cast<uint8_t>(v.items.size() << 4 | v.elem));
        } else {
          byte(static_cast<uint8_t>(0xf0 | v.elem));
          varint(v.items.size());
        }
        for (const auto& e : v.items) element(v.elem, e);
        return;
      case kMap:
        varint(v.items.size() / 2);
        if (v.items.empty()) return;
        byte(static_cast<uint8_t>(v.key << 4 | v.elem));
        for (size_t k = 0; k + 1 < v.items.size(); k += 2) {
          element(v.key, v.items[k]);
          element(v.elem, v.items[k + 1]);
        }
        return;
      case kStruct:
        write_struct(v);
        return;
      default:
        throw std::logic_error("Parquet footer: cannot encode type " + std::to_string(v.type));
    }
  }
  std::string out_;
};

Value* field(Value& s, int16_t id) {
  for (auto& [fid, v] : s.fields)
    if (fid == id) return &v;
  return nullptr;
}
const Value* field(const Value& s, int16_t id) { return field(const_cast<Value&>(s), id); }

// Sets an integer field, added in id order when absent (the compact encoding prefers
// ascending ids; any order decodes).
void set_int(Value& s, int16_t id, uint8_t type, int64_t value) {
  if (Value* v = field(s, id)) {
    v->i = value;
    return;
  }
  Value v;
  v.type = type;
  v.i = value;
  auto at = s.fields.begin();
  while (at != s.fields.end() && at->first < id) ++at;
  s.fields.insert(at, {id, std::move(v)});
}

void erase(Value& s, int16_t id) {
  std::erase_if(s.fields, [id](const auto& f) { return f.first == id; });
}

std::string encoded(const Value* v) {
  if (!v) return {};
  Writer w;
  Value holder;
  holder.type = kStruct;
  holder.fields.emplace_back(1, *v);
  w.write_struct(holder);
  return w.bytes();
}

// Parquet's field ids (parquet.thrift).
namespace fmd {  // FileMetaData
constexpr int16_t kSchema = 2, kNumRows = 3, kRowGroups = 4, kKeyValue = 5, kColumnOrders = 7, kEncryption = 8,
                  kSigningKey = 9;
}
namespace rg {  // RowGroup
constexpr int16_t kColumns = 1, kFileOffset = 5, kOrdinal = 7;
}
namespace cc {  // ColumnChunk
constexpr int16_t kFilePath = 1, kFileOffset = 2, kMeta = 3, kOffsetIndex = 4, kColumnIndex = 6, kCrypto = 8,
                  kEncryptedMeta = 9;
}
namespace cmd {  // ColumnMetaData
constexpr int16_t kCompressedSize = 7, kDataPage = 9, kIndexPage = 10, kDictionaryPage = 11, kBloomOffset = 14,
                  kBloomLength = 15;
}

constexpr char kMagic[] = "PAR1";

uint32_t le32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= uint32_t(static_cast<uint8_t>(b[at + k])) << (8 * k);
  return v;
}

}  // namespace

struct ParquetSplice::Impl {
  struct File {
    ParquetSpliceSource source;
    Value footer;
    uint64_t footer_start = 0;  // where the column data ends
  };
  std::vector<File> files;
  std::string refusal;
  uint64_t rows = 0;

  // The byte ranges of one column chunk: [start, start + length), and its Bloom filter's.
  struct ChunkRange {
    uint64_t start = 0, length = 0;
    std::optional<std::pair<uint64_t, uint64_t>> bloom;
  };

  // Why the chunk cannot be copied as bytes, or its ranges.
  static std::string chunk_range(const Value& chunk, uint64_t footer_start, ChunkRange& out) {
    if (field(chunk, cc::kFilePath)) return "a column chunk in another file";
    if (field(chunk, cc::kOffsetIndex) || field(chunk, cc::kColumnIndex)) return "page indexes";
    if (field(chunk, cc::kCrypto) || field(chunk, cc::kEncryptedMeta)) return "encrypted columns";
    const Value* meta = field(chunk, cc::kMeta);
    if (!meta) return "a column chunk without metadata";
    const Value* data = field(*meta, cmd::kDataPage);
    const Value* size = field(*meta, cmd::kCompressedSize);
    if (!data || !size) return "a column chunk without its data page offset or size";
    int64_t start = data->i;
    for (int16_t id : {cmd::kDictionaryPage, cmd::kIndexPage})
      if (const Value* v = field(*meta, id); v && v->i > 0 && v->i < start) start = v->i;
    if (start < 4 || size->i < 0 || uint64_t(start) + uint64_t(size->i) > footer_start)
      return "a column chunk outside the file's data";
    out.start = uint64_t(start);
    out.length = uint64_t(size->i);
    out.bloom.reset();
    const Value* bloom = field(*meta, cmd::kBloomOffset);
    if (bloom) {
      const Value* length = field(*meta, cmd::kBloomLength);
      if (!length) return "a Bloom filter of unknown length";
      if (bloom->i < 4 || length->i < 0 || uint64_t(bloom->i) + uint64_t(length->i) > footer_start)
        return "a Bloom filter outside the file's data";
      out.bloom = std::make_pair(uint64_t(bloom->i), uint64_t(length->i));
    }
    return {};
  }

  std::string check() const {
    const Value& first = files.front().footer;
    const std::string schema = encoded(field(first, fmd::kSchema));
    const std::string key_value = encoded(field(first, fmd::kKeyValue));
    const std::string orders = encoded(field(first, fmd::kColumnOrders));
    if (schema.empty()) return files.front().source.name + ": no schema";
    for (const auto& f : files) {
      const std::string& name = f.source.name;
      if (field(f.footer, fmd::kEncryption) || field(f.footer, fmd::kSigningKey)) return name + ": encrypted";
      if (encoded(field(f.footer, fmd::kSchema)) != schema) return name + ": another schema than " + files.front().source.name;
      if (encoded(field(f.footer, fmd::kKeyValue)) != key_value) return name + ": other key-value metadata";
      if (encoded(field(f.footer, fmd::kColumnOrders)) != orders) return name + ": other column orders";
      const Value* groups = field(f.footer, fmd::kRowGroups);
      if (!groups || groups->type != kList) return name + ": no row groups";
      for (const auto& group : groups->items) {
        const Value* columns = field(group, rg::kColumns);
        if (!columns || columns->type != kList) return name + ": a row group without columns";
        for (const auto& chunk : columns->items) {
          ChunkRange range;
          if (std::string why = chunk_range(chunk, f.footer_start, range); !why.empty()) return name + ": " + why;
        }
      }
    }
    return {};
  }
};

ParquetSplice::ParquetSplice(std::vector<ParquetSpliceSource> sources) : impl_(std::make_unique<Impl>()) {
  if (sources.empty()) throw std::invalid_argument("ParquetSplice: no files");
  for (auto& source : sources) {
    if (source.size < 12) throw std::runtime_error(source.name + ": too small for a Parquet file");
    const std::string tail = source.read(source.size - 8, 8);
    if (tail.size() != 8 || tail.compare(4, 4, kMagic) != 0) throw std::runtime_error(source.name + ": not a Parquet file");
    const uint64_t length = le32(tail, 0);
    if (length + 12 > source.size) throw std::runtime_error(source.name + ": footer length past the file's start");
    const uint64_t start = source.size - 8 - length;
    const std::string bytes = source.read(start, length);
    if (bytes.size() != length) throw std::runtime_error(source.name + ": footer shorter than its length");
    Reader reader(bytes, source.name);
    Impl::File file{std::move(source), reader.read_struct(), start};
    const Value* rows = field(file.footer, fmd::kNumRows);
    if (!rows || rows->i < 0) throw std::runtime_error(file.source.name + ": footer without num_rows");
    impl_->rows += uint64_t(rows->i);
    impl_->files.push_back(std::move(file));
  }
  impl_->refusal = impl_->check();
}

ParquetSplice::~ParquetSplice() = default;

const std::string& ParquetSplice::refusal() const { return impl_->refusal; }
uint64_t ParquetSplice::rows() const { return impl_->rows; }

uint64_t ParquetSplice::write(const std::filesystem::path& out) {
  if (!impl_->refusal.empty()) throw std::logic_error("ParquetSplice::write: " + impl_->refusal);
  std::ofstream os(out, std::ios::binary | std::ios::trunc);
  if (!os) throw std::runtime_error("cannot create " + out.string());
  uint64_t pos = 0;
  auto put = [&](const char* p, size_t n) {
    os.write(p, static_cast<std::streamsize>(n));
    pos += n;
  };
  put(kMagic, 4);

  Value footer = impl_->files.front().footer;
  Value groups;
  groups.type = kList;
  groups.elem = kStruct;
  for (auto& f : impl_->files) {
    // The file's column data, once; its footer is already parsed.
    const std::string data = f.source.read(0, f.footer_start);
    if (data.size() != f.footer_start || data.compare(0, 4, kMagic) != 0)
      throw std::runtime_error(f.source.name + ": changed while it was merged");
    Value* file_groups = field(f.footer, fmd::kRowGroups);
    for (auto& group : file_groups->items) {
      std::optional<uint64_t> group_start;
      std::vector<std::pair<Value*, std::pair<uint64_t, uint64_t>>> blooms;  // column metadata, source range
      for (auto& chunk : field(group, rg::kColumns)->items) {
        Impl::ChunkRange range;
        if (std::string why = Impl::chunk_range(chunk, f.footer_start, range); !why.empty())
          throw std::logic_error(f.source.name + ": " + why);
        const int64_t delta = int64_t(pos) - int64_t(range.start);
        if (!group_start) group_start = pos;
        Value& meta = *field(chunk, cc::kMeta);
        for (int16_t id : {cmd::kDataPage, cmd::kIndexPage, cmd::kDictionaryPage})
          if (Value* v = field(meta, id); v && v->i > 0) v->i += delta;
        if (Value* v = field(chunk, cc::kFileOffset); v && v->i > 0) v->i += delta;
        put(data.data() + range.start, range.length);
        if (range.bloom) blooms.push_back({&meta, *range.bloom});
      }
      // The group's Bloom filters after its column data (a reader finds them by offset).
      for (auto& [meta, range] : blooms) {
        set_int(*meta, cmd::kBloomOffset, kI64, int64_t(pos));
        put(data.data() + range.first, range.second);
      }
      if (field(group, rg::kFileOffset) && group_start) set_int(group, rg::kFileOffset, kI64, int64_t(*group_start));
      if (field(group, rg::kOrdinal)) {
        if (groups.items.size() <= 32767) set_int(group, rg::kOrdinal, kI16, int64_t(groups.items.size()));
        else erase(group, rg::kOrdinal);
      }
      groups.items.push_back(std::move(group));
    }
  }
  set_int(footer, fmd::kNumRows, kI64, int64_t(impl_->rows));
  *field(footer, fmd::kRowGroups) = std::move(groups);
  Writer w;
  w.write_struct(footer);
  const std::string& bytes = w.bytes();
  put(bytes.data(), bytes.size());
  char tail[8];
  const auto length = static_cast<uint32_t>(bytes.size());
  for (int k = 0; k < 4; ++k) tail[k] = static_cast<char>(length >> (8 * k));
  std::memcpy(tail + 4, kMagic, 4);
  put(tail, 8);
  os.flush();
  if (!os) throw std::runtime_error("cannot write " + out.string());
  return pos;
}

}  // namespace bf
