#pragma once
// Object key layout of DESIGN.md §3, in one place. Every ID that goes into a key
// is validated here, so no unvalidated ID reaches the store.
#include <optional>
#include <string>

#include "common/catalog.h"

namespace bf {

// raw/{account}/{tenant}/{dataset}/{yyyy}/{mm}/{dd}/{hh}/{batch_id}.ndjson.zst — the hour
// is the batch id's ULID time, so retries of a batch map to the same key.
std::string raw_key(const DatasetRef& ref, const std::string& batch_id);
std::string processed_key(const DatasetRef& ref, const std::string& batch_id);
std::string raw_prefix(const DatasetRef& ref);        // "raw/a/t/d/"
std::string processed_prefix(const DatasetRef& ref);  // "processed/a/t/d/"
// parquet/account=a/tenant=t/dataset=d/
std::string parquet_prefix(const DatasetRef& ref);
// parquet/.../year=YYYY/month=MM/day=DD/hour=HH/part-{ulid}.parquet
std::string parquet_part_key(const DatasetRef& ref, int64_t hour_us, const std::string& part_id);
std::string schema_key(const DatasetRef& ref);        // _meta/a/t/d/schema.json

// The batch id at the end of a raw/ or processed/ key, if the key has that shape.
std::optional<std::string> batch_id_of(const std::string& key);

}  // namespace bf
