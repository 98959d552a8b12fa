// DuckDB FileSystem adapter: "bf://<key>" paths served by an ObjectStore.
//
// Reads: a handle caches the object's size/mtime/etag (from the glob listing
// when DuckDB hands it back, else from one HEAD) and answers positional reads
// with ranged GETs. Small reads fetch a read-ahead window; a window that would
// run past EOF is shifted back to end at EOF, so a footer read also brings the
// bytes before it.
// Writes: the object is buffered in a local temp file and uploaded with
// put_file() on Sync/Close; a handle destroyed without Close (an aborted
// query) uploads nothing.
#include "storage/duckdb_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "duckdb/common/exception.hpp"
#include "duckdb/common/file_system.hpp"
#include "duckdb/common/types/timestamp.hpp"
#include "duckdb/common/types/value.hpp"
#include "duckdb/main/database.hpp"
#include "storage/object_store.h"

namespace bf {

// ---------------------------------------------------------------------------
// glob matching

namespace {

// Matches the bracket expression starting at p[i] == '[' against c. Returns
// the index after the closing ']' and whether c matched, or nullopt when the
// bracket is not terminated (then '[' is an ordinary character).
std::optional<std::pair<size_t, bool>> match_bracket(std::string_view p, size_t i, char c) {
  size_t j = i + 1;
  bool negate = false;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
    negate = true;
    ++j;
  }
  bool matched = false;
  bool first = true;
  while (j < p.size() && (p[j] != ']' || first)) {
    first = false;
    char lo = p[j];
    char hi = lo;
    if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
      hi = p[j + 2];
      j += 3;
    } else {
      j += 1;
    }
    if (static_cast<unsigned char>(c) >= static_cast<unsigned char>(lo) &&
        static_cast<unsigned char>(c) <= static_cast<unsigned char>(hi)) {
      matched = true;
    }
  }
  if (j >= p.size()) return std::nullopt;
  return std::make_pair(j + 1, matched != negate);
}

// One path segment: '*' (any run), '?' (one char), '[...]'.
bool segment_match(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      const char pc = p[pi];
      if (pc == '*') {
        star_p = pi++;
        star_s = si;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (pc == '[') {
        if (auto r = match_bracket(p, pi, s[si])) {
          if (r->second) {
            pi = r->first;
            ++si;
            continue;
          }
        } else if (s[si] == '[') {
          ++pi;
          ++si;
          continue;
        }
      } else if (pc == s[si]) {
        ++pi;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::vector<std::string_view> split_segments(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

bool object_glob_match(const std::string& pattern, const std::string& key) {
  const auto pat = split_segments(pattern);
  const auto seg = split_segments(key);
  const size_t P = pat.size(), K = seg.size();
  // dp[i][j]: pat[i..] matches seg[j..]. O(P*K) whatever the number of "**".
  std::vector<std::vector<char>> dp(P + 1, std::vector<char>(K + 1, 0));
  dp[P][K] = 1;
  for (size_t i = P; i-- > 0;) {
    for (size_t j = K + 1; j-- > 0;) {
      if (pat[i] == "**") {
        if (i + 1 == P) {
          dp[i][j] = j < K;  // a trailing "**" needs at least one more segment
        } else {
          dp[i][j] = dp[i + 1][j] || (j < K && dp[i][j + 1]);
        }
      } else {
        dp[i][j] = j < K && dp[i + 1][j + 1] && segment_match(pat[i], seg[j]);
      }
    }
  }
  return dp[0][0] != 0;
}

// ---------------------------------------------------------------------------
// the file system

namespace {

using duckdb::FileHandle;
using duckdb::FileOpener;
using duckdb::FileOpenFlags;
using duckdb::idx_t;
using duckdb::OpenFileInfo;
using duckdb::optional_ptr;

constexpr std::string_view kScheme = "bf://";
constexpr const char* kExtSize = "bf_size";
constexpr const char* kExtMtime = "bf_mtime_us";
constexpr const char* kExtEtag = "bf_etag";

bool has_scheme(const std::string& path) {
  return path.size() >= kScheme.size() &&
         std::equal(kScheme.begin(), kScheme.end(), path.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

std::string key_of(const std::string& path) {
  return has_scheme(path) ? path.substr(kScheme.size()) : path;
}

// A directory path as a list prefix: "" (the root) or "a/b/".
std::string dir_prefix(const std::string& path) {
  std::string p = key_of(path);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (!p.empty()) p += '/';
  return p;
}

// The checks of validate_key(), kept local so the adapter rejects bad keys
// with DuckDB's exception types before they reach a store.
std::optional<std::string> bad_key_reason(std::string_view key) {
  if (key.empty()) return "empty object key";
  if (key.front() == '/') return "object key must not start with '/'";
  if (key.find('\0') != std::string_view::npos || key.find('\\') != std::string_view::npos)
    return "object key must not contain NUL or backslash";
  for (auto seg : split_segments(key)) {
    if (seg == "." || seg == "..") return "object key must not contain '.' or '..' segments";
  }
  return std::nullopt;
}

// Rethrows anything that is not already a DuckDB exception as an IOException
// naming the operation and the path.
[[noreturn]] void rethrow_as_io(const char* what, const std::string& path) {
  try {
    throw;
  } catch (const duckdb::Exception&) {
    throw;
  } catch (const std::exception& e) {
    throw duckdb::IOException(std::string(what) + " \"" + path + "\" failed: " + e.what());
  }
}

class ObjectFileSystem;

class ObjectFileHandle final : public FileHandle {
 public:
  ObjectFileHandle(duckdb::FileSystem& fs, const std::string& path, FileOpenFlags flags, std::string key_p)
      : FileHandle(fs, path, flags), key(std::move(key_p)) {}
  ~ObjectFileHandle() override { discard_temp(); }

  void Close() override;

  void discard_temp() {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    if (!temp_path.empty()) {
      ::unlink(temp_path.c_str());
      temp_path.clear();
    }
  }

  std::string key;
  uint64_t size = 0;  // read handles
  int64_t mtime_us = 0;
  std::string etag;
  uint64_t pos = 0;  // for the sequential Read/Write calls

  std::mutex cache_mu;  // read-ahead window, shared by parallel readers
  std::shared_ptr<const std::string> cache;
  uint64_t cache_off = 0;

  bool writing = false;  // write handles: a local temp file mirrors the object
  int fd = -1;
  std::string temp_path;
  bool dirty = false;
  bool closed = false;
};

class ObjectFileSystem final : public duckdb::FileSystem {
 public:
  ObjectFileSystem(std::shared_ptr<ObjectStore> store, ObjectFsOptions options)
      : store_(std::move(store)), opt_(std::move(options)) {
    if (!opt_.stats) opt_.stats = std::make_shared<ObjectFsStats>();
  }

  std::string GetName() const override { return "ObjectStoreFileSystem"; }
  bool CanHandleFile(const std::string& fpath) override { return has_scheme(fpath); }

  duckdb::unique_ptr<FileHandle> OpenFile(const std::string& path, FileOpenFlags flags,
                                          optional_ptr<FileOpener> opener) override {
    return OpenFileExtended(OpenFileInfo(path), flags, opener);
  }

  // ---- reads
  void Read(FileHandle& handle, void* buffer, int64_t nr_bytes, idx_t location) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    if (nr_bytes < 0) throw duckdb::IOException("negative read size on \"" + h.path + "\"");
    if (h.writing) {
      pread_all(h, static_cast<char*>(buffer), static_cast<uint64_t>(nr_bytes), location);
      return;
    }
    read_at(h, static_cast<char*>(buffer), static_cast<uint64_t>(nr_bytes), location);
  }

  int64_t Read(FileHandle& handle, void* buffer, int64_t nr_bytes) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    const uint64_t size = file_size(h);
    const uint64_t n = h.pos >= size ? 0 : std::min<uint64_t>(static_cast<uint64_t>(nr_bytes), size - h.pos);
    if (n > 0) Read(handle, buffer, static_cast<int64_t>(n), h.pos);
    h.pos += n;
    return static_cast<int64_t>(n);
  }

  // ---- writes
  void Write(FileHandle& handle, void* buffer, int64_t nr_bytes, idx_t location) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    if (!h.writing) throw duckdb::IOException("\"" + h.path + "\" is not open for writing");
    const char* p = static_cast<const char*>(buffer);
    uint64_t left = static_cast<uint64_t>(nr_bytes);
    uint64_t off = location;
    while (left > 0) {
      ssize_t w = ::pwrite(h.fd, p, left, static_cast<off_t>(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw duckdb::IOException("writing the local buffer of \"" + h.path + "\" failed: " + std::strerror(errno));
      }
      p += w;
      off += static_cast<uint64_t>(w);
      left -= static_cast<uint64_t>(w);
    }
    h.dirty = true;
  }

  int64_t Write(FileHandle& handle, void* buffer, int64_t nr_bytes) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    Write(handle, buffer, nr_bytes, h.pos);
    h.pos += static_cast<uint64_t>(nr_bytes);
    return nr_bytes;
  }

  void Truncate(FileHandle& handle, int64_t new_size) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    if (!h.writing) throw duckdb::IOException("\"" + h.path + "\" is not open for writing");
    if (::ftruncate(h.fd, new_size) != 0)
      throw duckdb::IOException("truncating \"" + h.path + "\" failed: " + std::strerror(errno));
    h.dirty = true;
  }

  void FileSync(FileHandle& handle) override {
    auto& h = handle.Cast<ObjectFileHandle>();
    if (h.writing && h.dirty) upload(h);
  }

  bool Trim(FileHandle&, idx_t, idx_t) override { return false; }

  // ---- handle metadata
  int64_t GetFileSize(FileHandle& handle) override {
    return static_cast<int64_t>(file_size(handle.Cast<ObjectFileHandle>()));
  }
  duckdb::timestamp_t GetLastModifiedTime(FileHandle& handle) override {
    return duckdb::timestamp_t(handle.Cast<ObjectFileHandle>().mtime_us);
  }
  std::string GetVersionTag(FileHandle& handle) override { return handle.Cast<ObjectFileHandle>().etag; }
  duckdb::FileType GetFileType(FileHandle&) override { return duckdb::FileType::FILE_TYPE_REGULAR; }
  bool OnDiskFile(FileHandle&) override { return false; }
  bool CanSeek() override { return true; }
  void Seek(FileHandle& handle, idx_t location) override { handle.Cast<ObjectFileHandle>().pos = location; }
  void Reset(FileHandle& handle) override { handle.Cast<ObjectFileHandle>().pos = 0; }
  idx_t SeekPosition(FileHandle& handle) override { return handle.Cast<ObjectFileHandle>().pos; }

  // ---- namespace operations
  bool FileExists(const std::string& filename, optional_ptr<FileOpener>) override {
    const std::string key = key_of(filename);
    if (bad_key_reason(key)) return false;
    try {
      return head(key).has_value();
    } catch (...) {
      rethrow_as_io("checking", filename);
    }
  }

  bool IsPipe(const std::string&, optional_ptr<FileOpener>) override { return false; }

  bool DirectoryExists(const std::string& directory, optional_ptr<FileOpener>) override {
    const std::string prefix = dir_prefix(directory);
    if (prefix.empty()) return true;
    {
      std::lock_guard lk(dirs_mu_);
      if (created_dirs_.count(prefix)) return true;
    }
    try {
      opt_.stats->lists++;
      return !store_->list(prefix, "", 1).objects.empty();
    } catch (...) {
      rethrow_as_io("listing", directory);
    }
  }

  // Object stores have no directories; remember the ones DuckDB creates so
  // that DirectoryExists agrees until objects appear under them.
  void CreateDirectory(const std::string& directory, optional_ptr<FileOpener>) override {
    check_writable(directory);
    const std::string prefix = dir_prefix(directory);
    if (prefix.empty()) return;
    std::lock_guard lk(dirs_mu_);
    created_dirs_.insert(prefix);
  }

  void CreateDirectoriesRecursive(const std::string& path, optional_ptr<FileOpener> opener) override {
    const std::string prefix = dir_prefix(path);
    for (size_t slash = prefix.find('/'); slash != std::string::npos; slash = prefix.find('/', slash + 1)) {
      CreateDirectory(std::string(kScheme) + prefix.substr(0, slash), opener);
    }
  }

  void RemoveDirectory(const std::string& directory, optional_ptr<FileOpener>) override {
    check_writable(directory);
    const std::string prefix = dir_prefix(directory);
    if (prefix.empty()) throw duckdb::PermissionException("refusing to remove the root of the object store");
    try {
      for (const auto& obj : list_all(prefix)) store_->remove(obj.key);
    } catch (...) {
      rethrow_as_io("removing directory", directory);
    }
    std::lock_guard lk(dirs_mu_);
    for (auto it = created_dirs_.lower_bound(prefix); it != created_dirs_.end() && it->rfind(prefix, 0) == 0;) {
      it = created_dirs_.erase(it);
    }
  }

  bool ListFiles(const std::string& directory, const std::function<void(const std::string&, bool)>& callback,
                 FileOpener*) override {
    const std::string prefix = dir_prefix(directory);
    std::vector<ObjectInfo> objects;
    try {
      objects = list_all(prefix);
    } catch (...) {
      rethrow_as_io("listing", directory);
    }
    bool known = false;
    {
      std::lock_guard lk(dirs_mu_);
      known = created_dirs_.count(prefix) > 0;
    }
    std::string last_dir;
    for (const auto& obj : objects) {
      std::string rest = obj.key.substr(prefix.size());
      const size_t slash = rest.find('/');
      if (slash == std::string::npos) {
        callback(rest, false);
      } else {
        std::string dir = rest.substr(0, slash);
        if (dir != last_dir) {  // keys are sorted, so a directory's keys are adjacent
          callback(dir, true);
          last_dir = std::move(dir);
        }
      }
    }
    return !objects.empty() || known || prefix.empty();
  }

  void MoveFile(const std::string& source, const std::string& target, optional_ptr<FileOpener>) override {
    check_writable(target);
    const std::string from = checked_key(source);
    const std::string to = checked_key(target);
    try {
      auto info = head(from);
      if (!info) throw duckdb::IOException("Cannot move \"" + source + "\": no such object");
      copy_object(from, to, info->size);
      store_->remove(from);
    } catch (...) {
      rethrow_as_io("moving", source);
    }
  }

  void RemoveFile(const std::string& filename, optional_ptr<FileOpener>) override {
    check_writable(filename);
    const std::string key = checked_key(filename);
    try {
      store_->remove(key);
    } catch (...) {
      rethrow_as_io("removing", filename);
    }
  }

  bool TryRemoveFile(const std::string& filename, optional_ptr<FileOpener> opener) override {
    if (!FileExists(filename, opener)) return false;
    RemoveFile(filename, opener);
    return true;
  }

  duckdb::vector<OpenFileInfo> Glob(const std::string& path, FileOpener*) override {
    const std::string pattern = key_of(path);
    duckdb::vector<OpenFileInfo> result;
    try {
      const size_t wild = pattern.find_first_of("*?[");
      if (wild == std::string::npos) {
        if (bad_key_reason(pattern)) return result;
        if (auto info = head(pattern)) result.push_back(file_info(*info));
        return result;
      }
      for (const auto& obj : list_all(pattern.substr(0, wild))) {
        if (object_glob_match(pattern, obj.key)) result.push_back(file_info(obj));
      }
    } catch (...) {
      rethrow_as_io("listing", path);
    }
    return result;
  }

  std::string PathSeparator(const std::string&) override { return "/"; }

  // reached from FileHandle::Close()
  void close_handle(ObjectFileHandle& h) {
    if (h.closed) return;
    h.closed = true;
    if (!h.writing) {
      std::lock_guard lk(h.cache_mu);
      h.cache.reset();
      return;
    }
    struct Cleanup {
      ObjectFileHandle& h;
      ~Cleanup() { h.discard_temp(); }
    } cleanup{h};
    if (h.dirty) upload(h);
  }

 protected:
  bool SupportsOpenFileExtended() const override { return true; }

  duckdb::unique_ptr<FileHandle> OpenFileExtended(const OpenFileInfo& file, FileOpenFlags flags,
                                                  optional_ptr<FileOpener>) override {
    const std::string& path = file.path;
    if (flags.Compression() != duckdb::FileCompressionType::UNCOMPRESSED &&
        flags.Compression() != duckdb::FileCompressionType::AUTO_DETECT) {
      throw duckdb::NotImplementedException("ObjectStoreFileSystem opens files uncompressed only");
    }
    const std::string key = checked_key(path);
    opt_.stats->opens++;
    auto handle = duckdb::make_uniq<ObjectFileHandle>(*this, path, flags, key);
    try {
      if (flags.OpenForWriting()) {
        if (!open_for_write(*handle, flags)) return nullptr;
        return handle;
      }
      // Size/mtime/etag from the listing that produced this path, if any.
      if (file.extended_info) {
        const auto& o = file.extended_info->options;
        auto s = o.find(kExtSize), m = o.find(kExtMtime), e = o.find(kExtEtag);
        if (s != o.end() && m != o.end() && e != o.end()) {
          handle->size = static_cast<uint64_t>(s->second.GetValue<int64_t>());
          handle->mtime_us = m->second.GetValue<int64_t>();
          handle->etag = e->second.ToString();
          return handle;
        }
      }
      auto info = head(key);
      if (!info) {
        if (flags.ReturnNullIfNotExists()) return nullptr;
        throw duckdb::IOException("Cannot open file \"" + path + "\": no such object in " + store_->describe());
      }
      handle->size = info->size;
      handle->mtime_us = info->mtime_us;
      handle->etag = info->etag;
      return handle;
    } catch (...) {
      rethrow_as_io("opening", path);
    }
  }

 private:
  void check_writable(const std::string& path) const {
    if (opt_.read_only) {
      throw duckdb::PermissionException("\"" + path + "\": the object store is read-only for this database");
    }
  }

  std::string checked_key(const std::string& path) const {
    std::string key = key_of(path);
    if (auto why = bad_key_reason(key)) throw duckdb::IOException("invalid object path \"" + path + "\": " + *why);
    return key;
  }

  std::optional<ObjectInfo> head(const std::string& key) {
    opt_.stats->heads++;
    return store_->head(key);
  }

  std::string get(const std::string& key, uint64_t offset, uint64_t length) {
    opt_.stats->gets++;
    opt_.stats->get_bytes += length;
    return store_->get(key, ByteRange{offset, length});
  }

  std::vector<ObjectInfo> list_all(const std::string& prefix) {
    std::vector<ObjectInfo> out;
    std::string token;
    do {
      opt_.stats->lists++;
      ListPage page = store_->list(prefix, token, 1000);
      for (auto& o : page.objects) out.push_back(std::move(o));
      token = std::move(page.next_token);
    } while (!token.empty());
    return out;
  }

  OpenFileInfo file_info(const ObjectInfo& obj) const {
    OpenFileInfo info(std::string(kScheme) + obj.key);
    info.extended_info = duckdb::make_shared_ptr<duckdb::ExtendedOpenFileInfo>();
    auto& o = info.extended_info->options;
    o[kExtSize] = duckdb::Value::BIGINT(static_cast<int64_t>(obj.size));
    o[kExtMtime] = duckdb::Value::BIGINT(obj.mtime_us);
    o[kExtEtag] = duckdb::Value(obj.etag);
    return info;
  }

  static uint64_t file_size(ObjectFileHandle& h) {
    if (!h.writing) return h.size;
    struct stat st{};
    if (::fstat(h.fd, &st) != 0) throw duckdb::IOException("stat of the local buffer of \"" + h.path + "\" failed");
    return static_cast<uint64_t>(st.st_size);
  }

  void read_at(ObjectFileHandle& h, char* out, uint64_t n, uint64_t loc) {
    if (n == 0) return;
    if (loc > h.size || n > h.size - loc) {
      throw duckdb::IOException("Could not read " + std::to_string(n) + " bytes at offset " + std::to_string(loc) +
                                " from \"" + h.path + "\" (size " + std::to_string(h.size) + ")");
    }
    {
      std::shared_ptr<const std::string> c;
      uint64_t off = 0;
      {
        std::lock_guard lk(h.cache_mu);
        c = h.cache;
        off = h.cache_off;
      }
      if (c && loc >= off && loc + n <= off + c->size()) {
        opt_.stats->cache_hits++;
        std::memcpy(out, c->data() + (loc - off), n);
        return;
      }
    }
    try {
      const uint64_t window = opt_.read_ahead;
      if (n >= window) {
        std::string data = get(h.key, loc, n);
        if (data.size() != n) throw duckdb::IOException("short read from \"" + h.path + "\"; did the object change?");
        std::memcpy(out, data.data(), n);
        return;
      }
      uint64_t end = std::min<uint64_t>(h.size, loc + window);
      uint64_t start = end - loc >= window ? loc : (end > window ? end - window : 0);
      auto data = std::make_shared<const std::string>(get(h.key, start, end - start));
      if (data->size() != end - start)
        throw duckdb::IOException("short read from \"" + h.path + "\"; did the object change?");
      std::memcpy(out, data->data() + (loc - start), n);
      std::lock_guard lk(h.cache_mu);
      h.cache = std::move(data);
      h.cache_off = start;
    } catch (...) {
      rethrow_as_io("reading", h.path);
    }
  }

  static void pread_all(ObjectFileHandle& h, char* out, uint64_t n, uint64_t loc) {
    while (n > 0) {
      ssize_t r = ::pread(h.fd, out, n, static_cast<off_t>(loc));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw duckdb::IOException("could not read " + std::to_string(n) + " bytes from \"" + h.path + "\"");
      out += r;
      loc += static_cast<uint64_t>(r);
      n -= static_cast<uint64_t>(r);
    }
  }

  void make_temp(ObjectFileHandle& h) {
    std::filesystem::path dir = opt_.temp_dir.empty() ? std::filesystem::temp_directory_path()
                                                      : std::filesystem::path(opt_.temp_dir);
    std::string tmpl = (dir / "bf-duckdb-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw duckdb::IOException("cannot create a local buffer file in " + dir.string() + ": " + std::strerror(errno));
    h.fd = fd;
    h.temp_path = tmpl;
  }

  // Returns false when DuckDB asked for nullptr (NULL_IF_EXISTS).
  bool open_for_write(ObjectFileHandle& h, FileOpenFlags flags) {
    check_writable(h.path);
    h.writing = true;
    std::optional<ObjectInfo> existing;
    const bool truncate = flags.OverwriteExistingFile();
    if (!truncate || flags.ExclusiveCreate() || flags.ReturnNullIfExists()) existing = head(h.key);
    if (existing && flags.ReturnNullIfExists()) return false;
    if (existing && flags.ExclusiveCreate())
      throw duckdb::IOException("Cannot create \"" + h.path + "\": the object already exists");
    if (!existing && !truncate && !flags.CreateFileIfNotExists())
      throw duckdb::IOException("Cannot open file \"" + h.path + "\": no such object in " + store_->describe());
    make_temp(h);
    if (existing && !truncate) {
      // Opening an existing object without truncation keeps its content.
      copy_to_fd(h.key, existing->size, h.fd);
      h.dirty = false;
      if (flags.OpenForAppending()) h.pos = existing->size;
    } else {
      h.dirty = true;  // a new or truncated object exists after Close even if empty
    }
    return true;
  }

  void copy_to_fd(const std::string& key, uint64_t size, int fd) {
    constexpr uint64_t chunk = 16ull << 20;
    for (uint64_t off = 0; off < size; off += chunk) {
      std::string data = get(key, off, std::min(chunk, size - off));
      const char* p = data.data();
      size_t left = data.size();
      uint64_t at = off;
      while (left > 0) {
        ssize_t w = ::pwrite(fd, p, left, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw duckdb::IOException(std::string("writing a local buffer failed: ") + std::strerror(errno));
        p += w;
        at += static_cast<uint64_t>(w);
        left -= static_cast<size_t>(w);
      }
    }
  }

  void copy_object(const std::string& from, const std::string& to, uint64_t size) {
    if (size <= (64ull << 20)) {
      std::string data = size ? get(from, 0, size) : std::string();
      opt_.stats->puts++;
      store_->put(to, data);
      return;
    }
    ObjectFileHandle tmp(*this, std::string(kScheme) + to, FileOpenFlags(), to);
    make_temp(tmp);
    copy_to_fd(from, size, tmp.fd);
    opt_.stats->puts++;
    store_->put_file(to, tmp.temp_path);
  }

  void upload(ObjectFileHandle& h) {
    try {
      opt_.stats->puts++;
      store_->put_file(h.key, h.temp_path);
      h.dirty = false;
    } catch (...) {
      rethrow_as_io("uploading", h.path);
    }
  }

  std::shared_ptr<ObjectStore> store_;
  ObjectFsOptions opt_;
  std::mutex dirs_mu_;
  std::set<std::string> created_dirs_;
};

void ObjectFileHandle::Close() { static_cast<ObjectFileSystem&>(file_system).close_handle(*this); }

}  // namespace

void register_object_fs(duckdb::DatabaseInstance& db, std::shared_ptr<ObjectStore> store, ObjectFsOptions options) {
  db.GetFileSystem().RegisterSubSystem(duckdb::make_uniq<ObjectFileSystem>(std::move(store), std::move(options)));
}

}  // namespace bf
