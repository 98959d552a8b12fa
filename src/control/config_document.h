#pragma once
// Config distribution (docs/control.md, "Config distribution"): the document control
// hands a data-plane component — accounts, tenants, datasets with their settings, and
// the key hashes that service checks — and the Catalog a component builds from it.
// The document is deterministic, so its hash is its ETag.
#include <string>
#include <string_view>

#include "common/catalog.h"

namespace bf::control {

class ControlStore;

// What a service is given. Key hashes go only where they are checked: ingest keys to
// the receiver, query keys to the query server; "all" (bytefreezer run, in-process)
// gets both; connectors go to the connector service (and "all"). Revoked keys are left out.
bool is_config_audience(std::string_view service);  // a service name or "all"
std::string config_document(ControlStore& store, std::string_view service);
// "\"<32 hex of SHA-256>\"" (a strong ETag, quotes included).
std::string config_etag(std::string_view document);
// Parses and checks a document (ids, pipelines' shape); throws ConfigError naming the item.
Catalog catalog_from_config_document(std::string_view document);

}  // namespace bf::control
