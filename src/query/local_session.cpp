#include "query/local_session.h"

#include <unistd.h>

#include "common/catalog.h"
#include "common/config.h"
#include "common/log.h"
#include "common/ulid.h"
#include "storage/object_store.h"

namespace bf {

LocalQuerySession::LocalQuerySession(const std::string& config_path) {
  ConfigNode root = ConfigNode::load_file(config_path);
  init_logging(root.child("log").str("level", "warn"));
  store = make_object_store(parse_storage_options(root.child("storage")));
  catalog = std::make_shared<Catalog>(Catalog::parse(root));
  options = parse_query_options(root.child("query"));
  // The other components' sections are theirs to check; a typo in them is still
  // caught by `bytefreezer run --dry-run`.
  for (const char* s : {"log", "admin", "proxy", "receiver", "piper", "packer", "limits", "leases", "control"})
    root.mark_read(s);
  root.check_unknown();
  temp_root = std::filesystem::temp_directory_path() /
              ("bytefreezer-query-" + std::to_string(::getpid()) + "-" + new_ulid());
  options.temp_dir = temp_root.string();
}

LocalQuerySession::~LocalQuerySession() {
  std::error_code ec;
  std::filesystem::remove_all(temp_root, ec);
}

}  // namespace bf
