#pragma once
// The piper: reads raw/ per dataset, runs the dataset's pipeline, writes
// processed/ under the same batch id, then deletes the raw object.
// Several pipers may run: each works on a dataset only while it holds the
// dataset's lease "piper/<account>/<tenant>/<dataset>", and checks it before
// each processed/ write and raw/ delete (docs/reliability.md, "Leases and fencing").
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/lease_store.h"

namespace bf {

class Catalog;
class ConfigNode;
class ObjectStore;
struct DatasetRef;
struct PipelineContext;

// What a pipeline of `ref` is compiled against: the other datasets of its tenant are
// the targets its route steps may name.
PipelineContext pipeline_context(const Catalog& catalog, const DatasetRef& ref);

struct PiperOptions {
  std::chrono::milliseconds interval{2000};
  size_t max_batches_per_run = 1000;   // per dataset
  // An undecodable raw object younger than this is left for its writer's retry to
  // replace (an upload the store kept although it was aborted); older, it is quarantined.
  std::chrono::milliseconds quarantine_after{120000};
};
PiperOptions parse_piper_options(const ConfigNode& section);

class Piper {
 public:
  // Compiles every dataset's pipeline; throws PipelineError naming the dataset — but
  // a dataset whose pipeline reads a file missing on this host (PipelineFileError) is
  // held instead: not processed (its raw/ objects wait), compiled again every run,
  // resumed once the file appears; counted in bf_piper_pipeline_held_total.
  // leases.store null: no coordination (only for a single piper per store).
  Piper(PiperOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
        WorkerLeases leases = {});
  ~Piper();
  // Processes what is in raw/ now; returns the number of batches processed.
  size_t run_once();
  void start();
  // Stops the worker and releases the leases held.
  void stop();
  // Runs again at once instead of at the next interval (new objects in raw/).
  void wake();
  // A new catalog (from control), applied dataset by dataset: the next run uses the new
  // pipelines. A dataset whose new pipeline reads a file missing on this host is held
  // (as above); one whose new pipeline does not compile otherwise keeps its previous
  // pipeline, or, when it had none, is not processed until one compiles (its raw/
  // objects wait); the others change regardless.
  // Returns those errors, each naming its dataset (also logged and counted on /metrics).
  std::vector<std::string> set_catalog(std::shared_ptr<const Catalog> catalog);
  // Called after each batch reaches processed/; set before start().
  void on_written(std::function<void()> callback);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bf
