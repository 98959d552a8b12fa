#pragma once
// A file an enrichment step reads (an MMDB database, a lookup table), loaded when
// the pipeline compiles and again when the file changes. Steps take one snapshot
// per batch (get()), so a reload never changes a batch half-way.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "piper/enrich/result_counters.h"

namespace bf {

// What tells one version of a file from the next without reading it.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
  // nullopt (and `error` set) when the file cannot be stat'ed; `missing` says
  // whether that is because it does not exist.
  static std::optional<FileIdentity> of(const std::string& path, std::string* error = nullptr, bool* missing = nullptr);
};

// The file does not exist (yet): the step turns it into a PipelineFileError.
struct EnrichFileMissing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Decides when to reload: the file is looked at (stat) at most once per `every`.
// A replaced file (a new inode: written elsewhere and renamed over, the safe way)
// is reloaded at the next look; a file changed in place only once it looked the
// same twice in a row, since its writer may not be done yet.
class FileWatch {
 public:
  FileWatch(std::string path, FileIdentity loaded, std::chrono::milliseconds every = std::chrono::seconds(1));
  // The identity to load now, if a load is due.
  std::optional<FileIdentity> due(std::chrono::steady_clock::time_point now);
  // The outcome of loading what due() returned: in use now, or failed (not tried
  // again until the file changes once more).
  void loaded(const FileIdentity& id) { current_ = id; }
  void failed(const FileIdentity& id) { rejected_ = id; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds every_;
  std::chrono::steady_clock::time_point next_look_;
  FileIdentity current_;
  std::optional<FileIdentity> pending_, rejected_;
};

enum : size_t { kReloadOk, kReloadFailed };  // results of bf_piper_enrich_reloads_total
// Logs and counts a failed reload; the old version stays in use.
void report_reload_failure(const std::string& path, const std::string& error, ResultCounters& reloads);

template <class T>
class ReloadingFile {
 public:
  // Reads the file and returns what the step uses; throws std::exception with a
  // message saying what is wrong with the file.
  using Loader = std::function<std::shared_ptr<const T>(const std::string& path)>;

  // Loads at once: throws what `load` throws (the pipeline does not compile), or
  // EnrichFileMissing when there is no such file.
  ReloadingFile(const std::string& path, Loader load) : load_(std::move(load)), watch_(path, identify(path)) {
    current_ = load_(path);
  }

  // The version to use for one batch: checks the file when a look is due and
  // swaps in the new version if it loads; a failed load keeps the old one.
  std::shared_ptr<const T> get() {
    std::lock_guard lock(mu_);
    if (auto id = watch_.due(std::chrono::steady_clock::now())) {
      try {
        auto next = load_(watch_.path());
        // The file may have changed again while it was read: keep what was read,
        // note the identity seen before, so the newer version loads next time.
        current_ = std::move(next);
        watch_.loaded(*id);
        reloads_.add(kReloadOk);
      } catch (const std::exception& e) {
        watch_.failed(*id);
        report_reload_failure(watch_.path(), e.what(), reloads_);
      }
    }
    return current_;
  }
  void count_as(const Labels& labels) { reloads_.count_as(labels); }

 private:
  static FileIdentity identify(const std::string& path) {
    std::string error;
    bool missing = false;
    auto id = FileIdentity::of(path, &error, &missing);
    if (!id && missing) throw EnrichFileMissing(error);
    if (!id) throw std::runtime_error(error);
    return *id;
  }
  std::mutex mu_;
  Loader load_;
  FileWatch watch_;
  std::shared_ptr<const T> current_;
  ResultCounters reloads_{"bf_piper_enrich_reloads_total",
                          "Reloads of an enrichment step's file after it changed (failed: the old version stays in use)",
                          {"ok", "failed"}};
};

}  // namespace bf
