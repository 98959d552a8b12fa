#include "common/spool.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <optional>
#include <system_error>

#include "common/crc32c.h"
#include "common/metrics.h"
#include "common/ulid.h"
#include "common/worker.h"

namespace fs = std::filesystem;

namespace bf {
namespace {

constexpr const char* kSuffix = ".batch";

// A std::system_error (a std::runtime_error) carrying errno, so that callers can tell
// "out of descriptors" (EMFILE) or "disk full" from other failures.
[[noreturn]] void fail_errno(const std::string& what, const fs::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail_errno("open dir", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail_errno("fsync dir", dir);
}

}  // namespace

namespace {

void write_file(const fs::path& path, std::string_view data, bool durable) {
  fs::path dir = path.parent_path();
  if (!dir.empty()) fs::create_directories(dir);
  fs::path tmp = dir / (".tmp-" + path.filename().string() + "-" + new_ulid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("create", tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      fail_errno("write", tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (durable && ::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    fail_errno("fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail_errno("rename", path);
  }
  if (durable) fsync_dir(dir.empty() ? fs::path(".") : dir);
}

}  // namespace

void write_file_durable(const fs::path& path, std::string_view data) { write_file(path, data, true); }
void write_file_atomic(const fs::path& path, std::string_view data) { write_file(path, data, false); }

std::string read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno("cannot read", path);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail_errno("cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Entry format: "BF2 <meta length> <data length> <crc32c of meta+data, 8 hex>\n<meta><data>".
// Entries of the first version ("<meta length>\n<meta><data>", no checksum) are still read.
namespace {

constexpr std::string_view kMagic = "BF2 ";

struct Header {
  size_t header_len = 0, meta_len = 0, data_len = 0;
  std::optional<uint32_t> crc;  // absent in version 1
};

// Parses the header from the first bytes of an entry; nullopt if malformed.
std::optional<Header> parse_header(std::string_view head, uint64_t file_size) {
  const size_t nl = head.find('\n');
  if (nl == std::string_view::npos || nl > 64) return std::nullopt;
  Header h;
  h.header_len = nl + 1;
  std::string line(head.substr(0, nl));
  if (std::string_view(line).substr(0, kMagic.size()) == kMagic) {
    unsigned long long m = 0, d = 0;
    unsigned crc = 0;
    char extra = 0;
    if (std::sscanf(line.c_str() + kMagic.size(), "%llu %llu %8x%c", &m, &d, &crc, &extra) != 3) return std::nullopt;
    h.meta_len = m;
    h.data_len = d;
    h.crc = crc;
  } else {
    if (line.empty() || line.size() > 12 || line.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    h.meta_len = std::stoull(line);
    if (h.header_len + h.meta_len > file_size) return std::nullopt;
    h.data_len = file_size - h.header_len - h.meta_len;
  }
  if (h.header_len + h.meta_len + h.data_len != file_size) return std::nullopt;
  return h;
}

std::string read_head(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot read " + path.string());
  char buf[80];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

Counter& quarantined_counter(const fs::path& dir) {
  return metrics().counter("bf_spool_quarantined_total", "Spool entries found corrupt and moved to quarantine/",
                           {{"spool", dir.filename().string()}});
}

}  // namespace

Spool::Spool(fs::path dir, uint64_t max_bytes) : Spool(std::move(dir), SpoolOptions{max_bytes}) {}

Spool::Spool(fs::path dir, SpoolOptions options) : dir_(std::move(dir)), options_(options) {
  if (options_.fsync_interval.count() <= 0) options_.fsync_interval = std::chrono::milliseconds(1);
  fs::create_directories(dir_);
  std::vector<std::pair<std::string, std::string>> cut;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) {
      fs::remove(entry.path());  // an interrupted write: never acknowledged
    } else if (entry.is_regular_file() && entry.path().extension() == kSuffix) {
      const uint64_t size = entry.file_size();
      if (!parse_header(read_head(entry.path()), size)) {
        cut.emplace_back(entry.path().stem().string(), "header does not match the entry's size (cut short or overwritten)");
      }
      bytes_ += size;
    }
  }
  for (const auto& [id, why] : cut) quarantine(id, why);
  if (options_.fsync == SpoolFsync::interval)
    sync_thread_ = std::thread([this] {
      set_thread_name("bf-spool-sync");
      sync_loop();
    });
}

Spool::~Spool() {
  {
    std::lock_guard lock(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  try {
    sync();
  } catch (const std::exception& e) {
    spdlog::error("spool {}: final fsync failed: {}", dir_.string(), e.what());
  }
}

void Spool::sync_loop() {
  std::unique_lock lock(sync_mu_);
  while (!sync_stop_) {
    sync_cv_.wait_for(lock, options_.fsync_interval, [this] { return sync_stop_; });
    if (sync_stop_) break;
    lock.unlock();
    try {
      sync();
    } catch (const std::exception& e) {
      spdlog::error("spool {}: group fsync failed (will retry): {}", dir_.string(), e.what());
    }
    lock.lock();
  }
}

void Spool::sync() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(sync_mu_);
    ids.swap(unsynced_);
  }
  if (ids.empty()) return;
  std::vector<std::string> failed;
  for (const auto& id : ids) {
    const fs::path path = file_for(id);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) failed.push_back(id);  // ENOENT: already sent and removed
      continue;
    }
    if (::fsync(fd) != 0) failed.push_back(id);
    ::close(fd);
  }
  try {
    fsync_dir(dir_);
  } catch (...) {
    std::lock_guard lock(sync_mu_);
    unsynced_.insert(unsynced_.begin(), ids.begin(), ids.end());
    throw;
  }
  if (!failed.empty()) {
    {
      std::lock_guard lock(sync_mu_);
      unsynced_.insert(unsynced_.begin(), failed.begin(), failed.end());
    }
    throw std::runtime_error(std::to_string(failed.size()) + " entries could not be fsync'ed");
  }
}

size_t Spool::unsynced() const {
  std::lock_guard lock(sync_mu_);
  return unsynced_.size();
}

fs::path Spool::file_for(const std::string& id) const {
  if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos)
    throw std::invalid_argument("invalid spool id '" + id + "'");
  return dir_ / (id + kSuffix);
}

void Spool::put(const std::string& id, std::string_view meta, std::string_view data, PutOptions put) {
  fs::path path = file_for(id);
  uint32_t crc = crc32c(data, crc32c(meta));
  char header[80];
  std::snprintf(header, sizeof header, "BF2 %zu %zu %08x\n", meta.size(), data.size(), crc);
  std::string content;
  content.reserve(std::strlen(header) + meta.size() + data.size());
  content += header;
  content.append(meta);
  content.append(data);
  {
    std::lock_guard lock(mu_);
    if (options_.max_bytes && !put.ignore_limit && bytes_ + content.size() > options_.max_bytes)
      throw SpoolFull("spool " + dir_.string() + " is full (" + std::to_string(bytes_) + " of " +
                      std::to_string(options_.max_bytes) + " bytes)");
  }
  std::error_code ec;
  uint64_t previous = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
  const bool deferred = put.commit == Commit::deferred && options_.fsync == SpoolFsync::interval;
  if (deferred) {
    write_file_atomic(path, content);
    std::lock_guard lock(sync_mu_);
    unsynced_.push_back(id);
  } else {
    write_file_durable(path, content);
  }
  std::lock_guard lock(mu_);
  bytes_ = bytes_ + content.size() - previous;
}

bool Spool::contains(const std::string& id) const { return fs::exists(file_for(id)); }

std::vector<Spool::Entry> Spool::list() const {
  std::vector<Entry> out;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (!entry.is_regular_file() || entry.path().extension() != kSuffix) continue;
    std::error_code ec;
    uint64_t size = entry.file_size(ec);
    if (ec) continue;  // removed concurrently
    out.push_back(Entry{entry.path().stem().string(), size});
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  return out;
}

Spool::Item Spool::read(const std::string& id) const {
  std::string content = read_file(file_for(id));
  auto h = parse_header(std::string_view(content).substr(0, 80), content.size());
  if (!h) throw SpoolCorrupt("corrupt spool entry " + id + ": header does not match the entry's size");
  std::string_view body(content.data() + h->header_len, h->meta_len + h->data_len);
  if (h->crc && crc32c(body) != *h->crc) throw SpoolCorrupt("corrupt spool entry " + id + ": checksum mismatch");
  return Item{std::string(body.substr(0, h->meta_len)), std::string(body.substr(h->meta_len))};
}

std::string Spool::read_meta(const std::string& id) const {
  const fs::path path = file_for(id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno("cannot read", path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) fail_errno("cannot read", path);
  char head[80];
  ssize_t n;
  do {
    n = ::pread(fd, head, sizeof head, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) fail_errno("cannot read", path);
  auto h = parse_header(std::string_view(head, static_cast<size_t>(n)), static_cast<uint64_t>(size));
  if (!h) throw SpoolCorrupt("corrupt spool entry " + id + ": header does not match the entry's size");
  std::string meta(h->meta_len, '\0');
  size_t off = 0;
  while (off < meta.size()) {
    const ssize_t r = ::pread(fd, meta.data() + off, meta.size() - off, static_cast<off_t>(h->header_len + off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_errno("cannot read", path);
    if (r == 0) throw SpoolCorrupt("corrupt spool entry " + id + ": cut short");
    off += static_cast<size_t>(r);
  }
  return meta;
}

void Spool::quarantine(const std::string& id, const std::string& reason) {
  const fs::path path = file_for(id);
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return;  // gone meanwhile
  fs::create_directories(quarantine_dir());
  write_file_durable(quarantine_dir() / (id + ".reason"), reason + "\n");
  fs::rename(path, quarantine_dir() / (id + kSuffix));
  {
    std::lock_guard lock(mu_);
    bytes_ -= std::min(bytes_, size);
  }
  quarantined_counter(dir_).inc();
  spdlog::error("spool {}: entry {} moved to {}: {}", dir_.string(), id, quarantine_dir().string(), reason);
}

Spool::CheckReport Spool::check(bool repair) {
  CheckReport report;
  for (const auto& e : list()) {
    ++report.entries;
    report.bytes += e.size;
    try {
      read(e.id);
    } catch (const SpoolCorrupt& c) {
      ++report.corrupt;
      report.problems.push_back(e.id + ": " + c.what());
      if (repair) {
        quarantine(e.id, c.what());
        ++report.quarantined;
      }
    }
  }
  return report;
}

void Spool::remove(const std::string& id) {
  fs::path path = file_for(id);
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  if (ec) return;
  if (fs::remove(path, ec)) {
    std::lock_guard lock(mu_);
    bytes_ -= std::min(bytes_, size);
  }
}

uint64_t Spool::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace bf
