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
// dead-letter/{account}/{tenant}/{dataset}/{yyyy}/{mm}/{dd}/{hh}/{batch_id}.ndjson.zst: the
// events of a raw batch that a pipeline step failed on, each with _error (piper).
std::string dead_letter_key(const DatasetRef& ref, const std::string& batch_id);
std::string dead_letter_prefix(const DatasetRef& ref);  // "dead-letter/a/t/d/"
std::string raw_prefix(const DatasetRef& ref);        // "raw/a/t/d/"
std::string processed_prefix(const DatasetRef& ref);  // "processed/a/t/d/"
// parquet/account=a/tenant=t/dataset=d/
std::string parquet_prefix(const DatasetRef& ref);
// parquet/.../year=YYYY/month=MM/day=DD/hour=HH/part-{ulid}.parquet
std::string parquet_part_key(const DatasetRef& ref, int64_t hour_us, const std::string& part_id);
// parquet/.../dataset=d/_quarantine/part-{ulid}.parquet: events whose _time is outside the
// packer's time bounds. Outside the year=/month=/… tree (a Hive reader of the dataset
// would refuse the mixed partition keys), and '_' makes Hive, Spark and Trino skip it.
std::string parquet_quarantine_part_key(const DatasetRef& ref, const std::string& part_id);
bool is_quarantine_part(const std::string& key);
// The hour (µs since the epoch) a part key's year=/month=/day=/hour= segments name;
// nullopt for a key without them (a quarantine part).
std::optional<int64_t> parquet_part_hour_us(const std::string& key);
std::string schema_key(const DatasetRef& ref);        // _meta/a/t/d/schema.json

// The batch ledger (storage/ledger.h): one small record per batch id, under the
// hour of the id's ULID time, so a lookup touches one key and expiry drops hours.
// _meta/a/t/d/batches/yyyy/mm/dd/hh/{batch_id}.json
std::string batch_record_key(const DatasetRef& ref, const std::string& batch_id);
std::string batch_records_prefix(const DatasetRef& ref);  // _meta/a/t/d/batches/
// Packer commits: _meta/a/t/d/commits/{commit_id}.json until folded into
// _meta/a/t/d/parts.json, the list of committed Parquet parts readers use.
std::string commit_manifest_key(const DatasetRef& ref, const std::string& commit_id);
std::string commit_manifests_prefix(const DatasetRef& ref);
std::string committed_parts_key(const DatasetRef& ref);
// Parts a compaction commit replaced, kept for readers still in flight until the
// packer deletes them (packer.compaction.grace): _meta/a/t/d/replaced/{commit_id}.json
std::string replaced_parts_key(const DatasetRef& ref, const std::string& commit_id);
std::string replaced_parts_prefix(const DatasetRef& ref);

// The batch id at the end of a raw/ or processed/ key, if the key has that shape.
std::optional<std::string> batch_id_of(const std::string& key);

}  // namespace bf
