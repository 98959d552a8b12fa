#pragma once
// What `bytefreezer query --config` and `bytefreezer ask --config` share: the
// config file read strictly (every section known), the store and catalog it
// names, and a private spill root for this process — a one-shot query must never
// clear the spill directories of a query server that runs with the same config.
#include <filesystem>
#include <memory>
#include <string>

#include "query/query_service.h"

namespace bf {

class Catalog;
class ObjectStore;

struct LocalQuerySession {
  explicit LocalQuerySession(const std::string& config_path);
  ~LocalQuerySession();  // removes the private spill root
  LocalQuerySession(const LocalQuerySession&) = delete;
  LocalQuerySession& operator=(const LocalQuerySession&) = delete;

  std::shared_ptr<ObjectStore> store;
  std::shared_ptr<Catalog> catalog;
  QueryOptions options;
  std::filesystem::path temp_root;
};

}  // namespace bf
