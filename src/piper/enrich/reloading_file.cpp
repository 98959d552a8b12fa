#include "piper/enrich/reloading_file.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace bf {

std::optional<FileIdentity> FileIdentity::of(const std::string& path, std::string* error, bool* missing) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (missing) *missing = errno == ENOENT || errno == ENOTDIR;
    if (error) *error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    if (error) *error = path + ": not a regular file";
    return std::nullopt;
  }
  FileIdentity id;
  id.device = st.st_dev;
  id.inode = st.st_ino;
  id.size = st.st_size;
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

FileWatch::FileWatch(std::string path, FileIdentity loaded, std::chrono::milliseconds every)
    : path_(std::move(path)), every_(every), next_look_(std::chrono::steady_clock::now() + every), current_(loaded) {}

std::optional<FileIdentity> FileWatch::due(std::chrono::steady_clock::time_point now) {
  if (now < next_look_) return std::nullopt;
  next_look_ = now + every_;
  auto id = FileIdentity::of(path_);
  if (!id || *id == current_ || (rejected_ && *id == *rejected_)) {  // gone for now, unchanged, or known bad
    pending_.reset();
    return std::nullopt;
  }
  if (id->inode != current_.inode || id->device != current_.device || (pending_ && *pending_ == *id)) {
    pending_.reset();
    return id;
  }
  pending_ = id;  // changed in place: wait until it holds still
  return std::nullopt;
}

void report_reload_failure(const std::string& path, const std::string& error, ResultCounters& reloads) {
  reloads.add(kReloadFailed);
  spdlog::warn("piper: could not reload {} (keeping the version in use): {}", path, error);
}

}  // namespace bf
