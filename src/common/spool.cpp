#include "common/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/ulid.h"

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

void write_file_durable(const fs::path& path, std::string_view data) {
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
  if (::fsync(fd) != 0) {
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
  fsync_dir(dir.empty() ? fs::path(".") : dir);
}

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

// File format: <meta length, decimal>\n<meta><data>
Spool::Spool(fs::path dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {
  fs::create_directories(dir_);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) {
      fs::remove(entry.path());  // an interrupted write: never acknowledged
    } else if (entry.is_regular_file() && entry.path().extension() == kSuffix) {
      bytes_ += entry.file_size();
    }
  }
}

fs::path Spool::file_for(const std::string& id) const {
  if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos)
    throw std::invalid_argument("invalid spool id '" + id + "'");
  return dir_ / (id + kSuffix);
}

void Spool::put(const std::string& id, std::string_view meta, std::string_view data) {
  fs::path path = file_for(id);
  std::string content = std::to_string(meta.size()) + "\n";
  content.append(meta);
  content.append(data);
  {
    std::lock_guard lock(mu_);
    if (max_bytes_ && bytes_ + content.size() > max_bytes_)
      throw SpoolFull("spool " + dir_.string() + " is full (" + std::to_string(bytes_) + " of " +
                      std::to_string(max_bytes_) + " bytes)");
  }
  std::error_code ec;
  uint64_t previous = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
  write_file_durable(path, content);
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
  size_t nl = content.find('\n');
  size_t meta_len = 0;
  if (nl == std::string::npos || nl > 12) throw std::runtime_error("corrupt spool entry " + id);
  try {
    meta_len = std::stoull(content.substr(0, nl));
  } catch (const std::exception&) {
    throw std::runtime_error("corrupt spool entry " + id);
  }
  if (nl + 1 + meta_len > content.size()) throw std::runtime_error("corrupt spool entry " + id);
  return Item{content.substr(nl + 1, meta_len), content.substr(nl + 1 + meta_len)};
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
