#pragma once
// Concatenates Parquet files that share one layout into one file without decoding a
// page (docs/storage.md#compaction): each column chunk and its Bloom filter are
// copied byte for byte, and the footer is rebuilt from the files' footers with the
// offsets moved. Compaction uses it for parts whose _time ranges do not overlap and
// whose columns are already the registered ones: a merge then costs the copy, not
// a decode, a sort and a zstd re-encode of every page.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bf {

struct ParquetSpliceSource {
  std::string name;  // for errors
  uint64_t size = 0;  // the file's bytes
  // Returns the file's bytes [offset, offset + length).
  std::function<std::string(uint64_t offset, uint64_t length)> read;
};

class ParquetSplice {
 public:
  // Reads every file's footer (two small reads each). Throws on a file that is not
  // Parquet or whose footer does not decode.
  explicit ParquetSplice(std::vector<ParquetSpliceSource> files);
  ~ParquetSplice();
  ParquetSplice(const ParquetSplice&) = delete;
  ParquetSplice& operator=(const ParquetSplice&) = delete;

  // Empty when the files can be spliced; else why not: another schema, key-value
  // metadata or column order than the first file's, encryption, page indexes,
  // column data in other files, or offsets outside the file.
  const std::string& refusal() const;
  uint64_t rows() const;  // the files' rows together, from their footers

  // Writes the files' row groups, in the order given, as one Parquet file at `out`
  // (replaced if it exists), reading one file at a time. Returns the bytes written.
  uint64_t write(const std::filesystem::path& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
