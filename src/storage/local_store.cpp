#include "storage/local_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

#include <spdlog/spdlog.h>

#include "common/metrics.h"
#include "common/spool.h"
#include "common/time.h"
#include "common/ulid.h"

namespace fs = std::filesystem;

namespace bf {
namespace {

// Temp files (ours and write_file_durable's) start with this; list() never shows them
// and keys may not use it for a segment.
constexpr std::string_view kTempPrefix = ".tmp-";

std::string errno_text(int err) { return std::strerror(err); }

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int64_t mtime_us(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
}

std::string local_etag(const struct stat& st) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%llx-%llx",
                static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(st.st_mtim.tv_nsec),
                static_cast<unsigned long long>(st.st_size));
  return buf;
}

void fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.fd < 0) throw StorageError("open directory " + dir.string() + ": " + errno_text(errno));
  if (::fsync(fd.fd) != 0) throw StorageError("fsync directory " + dir.string() + ": " + errno_text(errno));
}

void write_all(int fd, const char* data, size_t size, const fs::path& path) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StorageError("write " + path.string() + ": " + errno_text(errno));
    }
    off += static_cast<size_t>(n);
  }
}

// A temp file next to `final_path`, removed on destruction unless released.
class TempFile {
 public:
  explicit TempFile(const fs::path& final_path) {
    const fs::path dir = final_path.parent_path();
    path_ = dir / (std::string(kTempPrefix) + final_path.filename().string() + "-" + new_ulid());
    for (int attempt = 0;; ++attempt) {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd_ >= 0) break;
      // A concurrent remove() may prune the directory we just created: recreate it.
      if (errno == ENOENT && attempt < 3) {
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (!ec) continue;
        throw StorageError("create directory " + dir.string() + ": " + ec.message());
      }
      throw StorageError("create " + path_.string() + ": " + errno_text(errno));
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const fs::path& path() const { return path_; }
  // fsync + close; the file stays until the destructor (or release()).
  void commit() {
    if (::fsync(fd_) != 0) throw StorageError("fsync " + path_.string() + ": " + errno_text(errno));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw StorageError("close " + path_.string() + ": " + errno_text(errno));
  }
  void release() { path_.clear(); }

 private:
  fs::path path_;
  int fd_ = -1;
};

void copy_fd(int in, int out, const fs::path& from, const fs::path& to) {
  // copy_file_range (same filesystem: in-kernel, maybe reflink); read/write otherwise.
  bool use_cfr = true;
  std::vector<char> buf;
  for (;;) {
    if (use_cfr) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n > 0) continue;
      if (n == 0) return;
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
          errno == EPERM) {
        use_cfr = false;  // nothing was copied by the failing call
        continue;
      }
      throw StorageError("copy " + from.string() + " to " + to.string() + ": " + errno_text(errno));
    }
    if (buf.empty()) buf.resize(1 << 20);
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StorageError("read " + from.string() + ": " + errno_text(errno));
    }
    if (n == 0) return;
    write_all(out, buf.data(), static_cast<size_t>(n), to);
  }
}

bool is_temp_name(std::string_view name) { return name.starts_with(kTempPrefix); }

struct Entry {
  std::string name;
  bool dir = false;
  // Sort key: a directory sorts as "name/" so that a depth-first walk yields keys in
  // plain byte order ("a-b" < "a/x" < "a0").
  std::string sort_key() const { return dir ? name + "/" : name; }
};

// Entries of a directory; an absent directory (pruned concurrently) is empty.
std::vector<Entry> read_dir(const fs::path& dir) {
  std::vector<Entry> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return out;
    throw StorageError("open directory " + dir.string() + ": " + errno_text(errno));
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == ".." || is_temp_name(name)) continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st;
      if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type != DT_DIR && type != DT_REG) continue;  // symlinks, sockets, ...: not objects
    out.push_back(Entry{std::string(name), type == DT_DIR});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const Entry& a, const Entry& b) { return a.sort_key() < b.sort_key(); });
  return out;
}

}  // namespace

LocalStore::LocalStore(fs::path root) : root_(fs::absolute(std::move(root)).lexically_normal()) {
  std::string s = root_.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  root_ = s;
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw StorageError("local store: cannot create " + root_.string() + ": " + ec.message());
  if (!fs::is_directory(root_)) throw StorageError("local store: " + root_.string() + " is not a directory");
}

size_t LocalStore::remove_stale_temp_files(std::chrono::seconds min_age) {
  const int64_t cutoff_ms = now_us() / 1000 - std::chrono::duration_cast<std::chrono::milliseconds>(min_age).count();
  size_t removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_temp_name(name) || name.size() < 26) continue;
    auto started_ms = ulid_time_ms(std::string_view(name).substr(name.size() - 26));
    if (!started_ms || *started_ms > cutoff_ms) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  if (removed) {
    metrics().counter("bf_storage_stale_temp_files_removed_total", "Temp files of interrupted local-store writes removed")
        .inc(removed);
    spdlog::info("local store {}: removed {} temp files of interrupted writes", root_.string(), removed);
  }
  return removed;
}

fs::path LocalStore::path_for(const std::string& key) const {
  validate_key(key);
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    std::string_view seg(key.data() + start,
                         (slash == std::string::npos ? key.size() : slash) - start);
    if (is_temp_name(seg)) {
      throw InvalidKey("invalid object key '" + key + "': segments starting with '.tmp-' are " +
                       "reserved for temporary files in a local store");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return root_ / key;
}

std::string LocalStore::describe() const { return "local:" + root_.string(); }

void LocalStore::put(const std::string& key, std::string_view data) {
  const fs::path path = path_for(key);
  for (int attempt = 0;; ++attempt) {
    try {
      write_file_durable(path, data);
      return;
    } catch (const std::exception& e) {
      // A concurrent remove() may prune the parent directory between its creation and
      // the temp file's: try again (write_file_durable creates it again).
      std::error_code ec;
      if (attempt < 3 && !fs::exists(path.parent_path(), ec)) continue;
      throw StorageError("local store put '" + key + "': " + e.what());
    }
  }
}

void LocalStore::put_file(const std::string& key, const fs::path& file) {
  const fs::path path = path_for(key);
  Fd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) throw StorageError("local store put_file '" + key + "': open " + file.string() + ": " + errno_text(errno));
  try {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw StorageError("create directory " + path.parent_path().string() + ": " + ec.message());
    TempFile tmp(path);
    copy_fd(in.fd, tmp.fd(), file, tmp.path());
    tmp.commit();
    if (::rename(tmp.path().c_str(), path.c_str()) != 0) {
      throw StorageError("rename to " + path.string() + ": " + errno_text(errno));
    }
    tmp.release();
    fsync_dir(path.parent_path());
  } catch (const std::exception& e) {
    throw StorageError("local store put_file '" + key + "': " + e.what());
  }
}

void LocalStore::create_if_absent(const std::string& key, std::string_view data) {
  const fs::path path = path_for(key);
  try {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw StorageError("create directory " + path.parent_path().string() + ": " + ec.message());
    TempFile tmp(path);
    write_all(tmp.fd(), data.data(), data.size(), tmp.path());
    tmp.commit();
    // link(2) fails with EEXIST if the name exists: the atomic "create if absent".
    if (::link(tmp.path().c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) {
        struct stat st;
        if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
          throw StorageError("key names a directory of other objects (a local store cannot hold "
                             "both 'a' and 'a/b')");
        }
        throw PreconditionFailed("local store create_if_absent '" + key + "': object already exists");
      }
      throw StorageError("link to " + path.string() + ": " + errno_text(errno));
    }
    // The temp name is unlinked by ~TempFile; the object keeps the inode.
    fsync_dir(path.parent_path());
  } catch (const PreconditionFailed&) {
    throw;
  } catch (const std::exception& e) {
    throw StorageError("local store create_if_absent '" + key + "': " + e.what());
  }
}

std::string LocalStore::get(const std::string& key, std::optional<ByteRange> range) {
  const fs::path path = path_for(key);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) throw NotFound("local store get '" + key + "': no such object");
    throw StorageError("local store get '" + key + "': " + errno_text(errno));
  }
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) throw StorageError("local store get '" + key + "': " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw NotFound("local store get '" + key + "': no such object");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = 0, length = size;
  if (range) {
    offset = std::min(range->offset, size);
    length = std::min(range->length, size - offset);
  }
  std::string out;
  out.resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd.fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StorageError("local store get '" + key + "': read: " + errno_text(errno));
    }
    if (n == 0) break;  // truncated underneath us (cannot happen with rename-only writes)
    done += static_cast<uint64_t>(n);
  }
  out.resize(done);
  return out;
}

std::optional<ObjectInfo> LocalStore::head(const std::string& key) {
  const fs::path path = path_for(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw StorageError("local store head '" + key + "': " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  return ObjectInfo{key, static_cast<uint64_t>(st.st_size), mtime_us(st), local_etag(st)};
}

ListPage LocalStore::list(const std::string& prefix, const std::string& token, int max_keys) {
  if (max_keys <= 0) max_keys = 1000;
  ListPage page;
  const size_t want = static_cast<size_t>(max_keys) + 1;  // one more: is there another page?

  // Walk from the deepest directory the prefix names completely ("raw/a/" -> raw/a).
  std::string base;
  if (auto slash = prefix.rfind('/'); slash != std::string::npos) base = prefix.substr(0, slash + 1);
  if (!base.empty()) {
    try {
      validate_key(base.substr(0, base.size() - 1));
    } catch (const InvalidKey&) {
      return page;  // no valid key can start with this prefix
    }
  }

  std::function<void(const fs::path&, const std::string&)> walk =
      [&](const fs::path& dir, const std::string& key_prefix) {
        for (const Entry& e : read_dir(dir)) {
          if (page.objects.size() >= want) return;
          std::string key = key_prefix + e.name;
          if (e.dir) {
            std::string sub = key + "/";
            // Skip subtrees that cannot hold a key with `prefix`, or hold only keys <= token.
            if (!(sub.starts_with(prefix) || prefix.starts_with(sub))) continue;
            if (!token.empty() && sub < token && !token.starts_with(sub)) continue;
            walk(dir / e.name, sub);
          } else {
            if (!key.starts_with(prefix)) continue;
            if (!token.empty() && key <= token) continue;
            struct stat st;
            if (::stat((dir / e.name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
            page.objects.push_back(
                ObjectInfo{std::move(key), static_cast<uint64_t>(st.st_size), mtime_us(st), local_etag(st)});
          }
        }
      };
  try {
    walk(base.empty() ? root_ : root_ / base.substr(0, base.size() - 1), base);
  } catch (const StorageError&) {
    throw;
  } catch (const std::exception& e) {
    throw StorageError("local store list '" + prefix + "': " + e.what());
  }
  if (page.objects.size() > static_cast<size_t>(max_keys)) {
    page.objects.resize(static_cast<size_t>(max_keys));
    page.next_token = page.objects.back().key;
  }
  return page;
}

void LocalStore::remove(const std::string& key) {
  const fs::path path = path_for(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return;  // no such object
    if (errno == EPERM) {  // Linux: unlink on a directory
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
    }
    throw StorageError("local store remove '" + key + "': " + errno_text(errno));
  }
  // Best effort: make the unlink durable, then prune empty parents up to (not incl.) root.
  fs::path dir = path.parent_path();
  try {
    fsync_dir(dir);
  } catch (const StorageError&) {
  }
  while (dir != root_ && dir.string().size() > root_.string().size()) {
    if (::rmdir(dir.c_str()) != 0) break;  // not empty (or raced): stop
    dir = dir.parent_path();
  }
}

}  // namespace bf
