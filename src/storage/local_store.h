#pragma once
#include <chrono>
#include <filesystem>

#include "storage/object_store.h"

namespace bf {

// A directory as an object store: writes are temp-file + fsync + rename, so a
// reader never sees a partial object.
class LocalStore final : public ObjectStore {
 public:
  explicit LocalStore(std::filesystem::path root);
  void put(const std::string& key, std::string_view data) override;
  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void create_if_absent(const std::string& key, std::string_view data) override;
  std::string get(const std::string& key, std::optional<ByteRange> range = std::nullopt) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  // Same defaults as ObjectStore's, so calls through the concrete type read the same.
  ListPage list(const std::string& prefix, const std::string& token = "",
                int max_keys = 1000) override;
  void remove(const std::string& key) override;
  std::string describe() const override;

  // Removes temp files of writes that were interrupted (a killed process) and are
  // older than min_age (their name carries a ULID of when they were started, so a
  // write in progress in another process is left alone). Returns how many.
  size_t remove_stale_temp_files(std::chrono::seconds min_age = std::chrono::minutes(15));

 private:
  std::filesystem::path path_for(const std::string& key) const;
  std::filesystem::path root_;
};

}  // namespace bf
