#include "piper/piper.h"

#include <spdlog/spdlog.h>


#include <algorithm>
#include <map>
#include <mutex>
#include <optional>

#include "common/batch.h"
#include "common/batch_shape.h"
#include "common/catalog.h"
#include "common/compression.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/ulid.h"
#include "common/worker.h"
#include "piper/transform.h"
#include "storage/layout.h"
#include "storage/ledger.h"
#include "storage/object_store.h"

namespace bf {

PiperOptions parse_piper_options(const ConfigNode& section) {
  PiperOptions o;
  o.interval = section.duration("interval", o.interval);
  o.max_batches_per_run = static_cast<size_t>(section.integer("max_batches_per_run", static_cast<int64_t>(o.max_batches_per_run)));
  if (o.max_batches_per_run == 0) section.fail("max_batches_per_run", "must be at least 1");
  o.quarantine_after = section.duration("quarantine_after", o.quarantine_after);
  return o;
}

namespace {
// The processed/ object's envelope: the batch's field shape, so the packer can
// give DuckDB the columns without a second scan (docs/storage.md).
BatchEnvelope processed_envelope(const std::vector<Event>& events) {
  BatchShape shape;
  for (const Event& e : events) shape.add(e);
  return BatchEnvelope{{"shape", shape.to_json()}};
}

// An empty pipeline over a complete batch (every event carries its receive fields, as
// the proxy's do) changes no event: the processed object is the raw object's
// compressed NDJSON as it is, behind an envelope with the shape. This skips building
// a DOM per event and encoding and compressing it again. nullopt when a pipeline or
// envelope defaults have to touch the events.
std::optional<std::string> unchanged_batch(std::string_view data, size_t& events) {
  if (data.empty()) throw BatchFormatError("empty batch object");
  BatchObject object = split_batch_object(data);
  const auto* complete = object.envelope.if_contains("complete");
  if (!complete || !complete->is_bool() || !complete->get_bool()) return std::nullopt;
  if (object.payload.empty()) throw BatchFormatError("batch object has an envelope but no events");
  // The receiver's shape, built in its validation pass: only the bytes are copied.
  if (const auto* stored = object.envelope.if_contains("shape")) {
    if (auto shape = BatchShape::from_json(*stored)) {
      has_zstd_skippable_frames(object.payload);  // throws unless whole zstd frames (an upload cut short)
      events = shape->events;
      return wrap_batch_object(BatchEnvelope{{"shape", *stored}}, object.payload);
    }
  }
  BatchShape shape;
  events = shape.add_ndjson(decompress(Encoding::zstd, object.payload, size_t(1) << 30));
  return wrap_batch_object(BatchEnvelope{{"shape", shape.to_json()}}, object.payload);
}

// A dataset's compiled pipeline and its component contract series (kind "stage",
// type "piper", labelled tenant/dataset; docs/metrics.md), resolved once.
struct DatasetWork {
  DatasetWork(DatasetRef r, Pipeline p)
      : ref(std::move(r)),
        pipeline(std::move(p)),
        component("stage", "piper", "piper", {{"tenant", ref.tenant}, {"dataset", ref.dataset}}),
        undecodable(component.error("decode", "undecodable")),
        undecodable_events(component.discarded(Discard::unintentional, "undecodable")),
        run_errors(component.error("run", "exception")),
        failed(component.error("transform", "step_failed")),
        step_discards(pipeline.size(), nullptr) {}
  DatasetRef ref;
  Pipeline pipeline;
  // Set while the pipeline cannot compile because a file it reads is missing on
  // this host: the dataset is held (its raw/ objects wait) and each run compiles
  // `steps` again, so it resumes once the file appears.
  struct Held {
    boost::json::array steps;
    PipelineContext context;
    std::string error;
  };
  std::optional<Held> held;
  ComponentMetrics component;
  Counter& undecodable;
  Counter& undecodable_events;
  Counter& run_errors;
  Counter& failed;  // events a step failed on (they go to dead-letter/, not lost)
  // discarded{intentional="true", reason=<step kind>}, resolved when a step first
  // removes events (steps that never do get no series).
  std::vector<Counter*> step_discards;

  void count_output(const PipelineOutput& out) {
    if (!out.dead_letters.empty()) failed.inc(out.dead_letters.size());
    for (size_t i = 0; i < out.dropped_by_step.size(); ++i) {
      if (!out.dropped_by_step[i]) continue;
      if (!step_discards[i]) step_discards[i] = &component.discarded(Discard::intentional, pipeline.kind(i));
      step_discards[i]->inc(out.dropped_by_step[i]);
    }
  }
};
}  // namespace

PipelineContext pipeline_context(const Catalog& catalog, const DatasetRef& ref) {
  PipelineContext context{ref.dataset, {}};
  for (const auto& d : catalog.datasets()) {
    if (d.ref.account == ref.account && d.ref.tenant == ref.tenant && d.ref.dataset != ref.dataset)
      context.siblings.push_back(d.ref.dataset);
  }
  return context;
}

namespace {
// The batch id of the events a batch routed to `target`: derived from the input batch
// id and both datasets, so a re-run after a crash overwrites the same object.
std::string routed_batch_id(const std::string& batch_id, const DatasetRef& from, const std::string& target) {
  return derived_ulid(batch_id, "route\x1f" + from.dataset + "\x1f" + target);
}
}  // namespace

struct Piper::Impl {
  PiperOptions options;
  std::shared_ptr<ObjectStore> store;
  // Each dataset's compiled pipeline and metrics; set_catalog replaces the list (a
  // dataset whose pipeline did not change compiles again, cheaply, into a new entry).
  using Pipelines = std::vector<std::shared_ptr<DatasetWork>>;
  std::mutex pipelines_mu;
  std::shared_ptr<const Pipelines> pipelines;

  static std::shared_ptr<DatasetWork> compile(const DatasetRef& ref, const boost::json::array& steps,
                                              const PipelineContext& context) {
    auto work = std::make_shared<DatasetWork>(ref, Pipeline::compile(steps, "dataset " + ref.str(), &context));
    work->pipeline.count_as({{"tenant", ref.tenant}, {"dataset", ref.dataset}});
    return work;
  }
  // The dataset's pipeline, or — a file it reads is missing — the dataset held
  // (PipelineFileError). Other compile errors throw.
  static std::shared_ptr<DatasetWork> compile_or_hold(const Catalog& catalog, const DatasetInfo& d) {
    PipelineContext context = pipeline_context(catalog, d.ref);
    try {
      return compile(d.ref, d.pipeline, context);
    } catch (const PipelineFileError& e) {
      auto work = std::make_shared<DatasetWork>(d.ref, Pipeline{});
      work->held = DatasetWork::Held{d.pipeline, std::move(context), e.what()};
      spdlog::error("piper: holding dataset {}: {} (its raw/ objects wait until the file appears)", d.ref.str(), e.what());
      return work;
    }
  }
  // Every dataset's pipeline; the first that does not compile (but for a missing file) throws.
  static std::shared_ptr<const Pipelines> compile_all(const Catalog& catalog) {
    auto out = std::make_shared<Pipelines>();
    for (const auto& d : catalog.datasets()) out->push_back(compile_or_hold(catalog, d));
    return out;
  }
  // Every dataset's pipeline, one at a time: a dataset whose pipeline does not compile
  // keeps the one it had in `previous`, or (a new dataset) is not processed, its raw/
  // objects left where they are; each such dataset is counted, logged and listed.
  static std::shared_ptr<const Pipelines> compile_each(const Catalog& catalog, const Pipelines& previous,
                                                       std::vector<std::string>& failures) {
    auto out = std::make_shared<Pipelines>();
    for (const auto& d : catalog.datasets()) {
      try {
        out->push_back(compile_or_hold(catalog, d));
        if (out->back()->held) failures.push_back(out->back()->held->error + " (held: its raw/ objects wait until the file appears)");
      } catch (const std::exception& e) {
        auto old = std::find_if(previous.begin(), previous.end(), [&](const auto& w) { return w->ref == d.ref; });
        const bool kept = old != previous.end();
        if (kept) out->push_back(*old);
        failures.push_back(std::string(e.what()) + (kept ? " (it keeps its previous pipeline)" : " (it is not processed until its pipeline compiles; its raw/ objects wait)"));
        spdlog::error("piper: new pipeline refused: {}", failures.back());
        metrics().counter("bf_piper_pipeline_rejected_total",
                          "New pipelines that did not compile (the dataset keeps its previous one, or waits)",
                          {{"tenant", d.ref.tenant}, {"dataset", d.ref.dataset}}).inc();
      }
    }
    return out;
  }
  std::shared_ptr<const Pipelines> current() {
    std::lock_guard lock(pipelines_mu);
    return pipelines;
  }
  // A held dataset's pipeline compiled again: the new work once its file is there
  // (swapped into the list the run started from, unless a new catalog came since),
  // else null — the dataset stays held, counted.
  std::shared_ptr<DatasetWork> unhold(const std::shared_ptr<const Pipelines>& list, const DatasetWork& work) {
    const DatasetWork::Held& held = *work.held;
    try {
      auto ready = compile(work.ref, held.steps, held.context);
      spdlog::info("piper: dataset {}: its pipeline compiles now; processing resumes", work.ref.str());
      std::lock_guard lock(pipelines_mu);
      if (pipelines == list) {
        auto next = std::make_shared<Pipelines>(*list);
        for (auto& w : *next)
          if (w.get() == &work) w = ready;
        pipelines = std::move(next);
      }
      return ready;
    } catch (const std::exception& e) {
      if (e.what() != held.error) spdlog::error("piper: holding dataset {}: {}", work.ref.str(), e.what());
      metrics().counter("bf_piper_pipeline_held_total",
                        "Runs that held a dataset back because a file its pipeline reads is missing (its raw/ objects wait)",
                        {{"tenant", work.ref.tenant}, {"dataset", work.ref.dataset}}).inc();
      return nullptr;
    }
  }
  std::unique_ptr<PeriodicWorker> worker;
  std::unique_ptr<DatasetLeases> leases;
  // The oldest raw/ object a run found waiting (its lag, reported to control).
  int64_t oldest_waiting_us = 0;
  std::function<void()> written_callback;

  size_t process_dataset(DatasetWork& work) {
    const DatasetRef& ref = work.ref;
    ComponentMetrics& contract = work.component;
    Labels labels{{"tenant", ref.tenant}, {"dataset", ref.dataset}};
    if (leases->hold(ref) == DatasetLeases::Hold::busy) {
      metrics().counter("bf_piper_lease_busy_total", "Runs that skipped a dataset whose lease another piper holds",
                        labels).inc();
      return 0;
    }
    // Checked before every write: a piper that lost the lease stops at once and
    // leaves the rest of raw/ to the new holder.
    auto still_ours = [&] {
      if (leases->check(ref)) return true;
      spdlog::warn("piper: dataset {}: lease lost, stopping this run", ref.str());
      metrics().counter("bf_piper_fenced_total", "Runs stopped because the lease was lost", labels).inc();
      return false;
    };
    auto& batches = metrics().counter("bf_piper_batches_total", "Batches processed", labels);
    auto& events_in = metrics().counter("bf_piper_events_in_total", "Events read from raw/", labels);
    auto& events_out = metrics().counter("bf_piper_events_out_total", "Events written to processed/", labels);
    auto& dead_letters = metrics().counter("bf_piper_dead_letter_events_total",
                                           "Events a pipeline step failed on, written to dead-letter/", labels);
    size_t done = 0;
    std::string token;
    do {
      ListPage page = store->list(raw_prefix(ref), token, 1000);
      token = page.next_token;
      for (const auto& obj : page.objects) oldest_waiting_us = std::min(oldest_waiting_us, obj.mtime_us);
      for (const auto& obj : page.objects) {
        if (done >= options.max_batches_per_run) return done;
        auto batch_id = batch_id_of(obj.key);
        if (!batch_id) {
          metrics().counter("bf_piper_skipped_objects_total", "Objects in raw/ that are not batches", labels).inc();
          continue;
        }
        std::string data;
        try {
          data = store->get(obj.key);
        } catch (const NotFound&) {
          continue;  // taken by another piper
        }
        // The batch's events live in one arena (DESIGN.md §3), declared before them so
        // that it outlives every event and every value copied from one in this pass.
        BatchArena arena;
        std::vector<Event> events;
        std::optional<std::string> processed;
        size_t count = 0;
        try {
          if (work.pipeline.size() == 0) processed = unchanged_batch(data, count);
          if (!processed) events = decode_batch(data, size_t(1) << 30, arena.storage());
        } catch (const std::exception& e) {
          // A corrupt object must not block the dataset: move it aside, counted —
          // unless it is young enough to be an aborted upload its writer will redo.
          if (now_us() - obj.mtime_us < options.quarantine_after.count() * 1000) {
            metrics().counter("bf_piper_unreadable_waiting_total", "Undecodable raw objects left for their writer's retry", labels).inc();
            continue;
          }
          if (!still_ours()) return done;
          spdlog::error("piper: quarantining {}: {}", obj.key, e.what());
          store->put("quarantine/" + obj.key, data);
          store->remove(obj.key);
          metrics().counter("bf_piper_quarantined_total", "Raw objects that could not be decoded", labels).inc();
          work.undecodable.inc();
          work.undecodable_events.inc(declared_event_count(data));
          continue;
        }
        // count: events read; out: events written (a pipeline may drop, fail or add some).
        size_t out = count;
        std::vector<Event> dead;
        std::vector<std::pair<std::string, std::vector<Event>>> routed;
        if (!processed) {
          count = events.size();
          PipelineOutput result = work.pipeline.run(std::move(events));
          work.count_output(result);
          dead = std::move(result.dead_letters);
          routed = std::move(result.routed);
          out = result.events.size();
          // A batch the pipeline emptied (all dropped or failed) leaves no processed/ object.
          if (!result.events.empty()) processed = encode_batch(result.events, processed_envelope(result.events));
        }
        events_in.inc(count);
        contract.received_events.inc(count);
        contract.received_bytes.inc(data.size());
        // Same batch id: a rerun after a crash overwrites instead of duplicating.
        if (!still_ours()) return done;
        // Routed events first, under ids derived from this batch's: a crash anywhere
        // below redoes them under the same keys. A routed batch the target's packer
        // already committed (the ledger says so) is not written again.
        for (auto& [target, routed_events] : routed) {
          const DatasetRef to{ref.account, ref.tenant, target};
          const std::string id = routed_batch_id(*batch_id, ref, target);
          Labels route_labels = labels;
          route_labels.emplace_back("target", target);
          auto record = get_batch_record(*store, to, id);
          if (record && record->committed()) {
            metrics().counter("bf_piper_routed_duplicate_batches_total",
                              "Routed batches not written again because the target already committed them", route_labels).inc();
          } else {
            std::string object = encode_batch(routed_events, processed_envelope(routed_events));
            store->put(processed_key(to, id), object);
            contract.sent_bytes.inc(object.size());
          }
          metrics().counter("bf_piper_routed_events_total", "Events route steps sent to another dataset", route_labels)
              .inc(routed_events.size());
          contract.sent_events.inc(routed_events.size());
          if (!still_ours()) return done;
        }
        if (!dead.empty()) {  // written first: a crash before the raw delete redoes both
          store->put(dead_letter_key(ref, *batch_id), encode_batch(dead));
          dead_letters.inc(dead.size());
          if (!still_ours()) return done;
        }
        if (processed) {
          store->put(processed_key(ref, *batch_id), *processed);
          contract.sent_bytes.inc(processed->size());
        }
        events_out.inc(out);
        contract.sent_events.inc(out);
        if (!still_ours()) return done;  // the new holder has the raw object (and overwrites the same key)
        store->remove(obj.key);
        batches.inc();
        ++done;
        if (written_callback) written_callback();
      }
    } while (!token.empty());
    return done;
  }
};

Piper::Piper(PiperOptions options, std::shared_ptr<const Catalog> catalog, std::shared_ptr<ObjectStore> store,
             WorkerLeases leases)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->leases = std::make_unique<DatasetLeases>("piper", std::move(leases));
  impl_->store = std::move(store);
  impl_->pipelines = Impl::compile_all(*catalog);
}

std::vector<std::string> Piper::set_catalog(std::shared_ptr<const Catalog> catalog) {
  std::vector<std::string> failures;
  auto next = Impl::compile_each(*catalog, *impl_->current(), failures);
  std::lock_guard lock(impl_->pipelines_mu);
  impl_->pipelines = std::move(next);
  return failures;
}

Piper::~Piper() { stop(); }

size_t Piper::run_once() {
  size_t total = 0;
  const auto pipelines = impl_->current();  // a new catalog applies from the next run
  const int64_t started = now_us();
  impl_->oldest_waiting_us = started;
  int64_t held = 0;
  for (std::shared_ptr<DatasetWork> work : *pipelines) {
    const DatasetRef& ref = work->ref;
    try {
      if (work->held && !(work = impl_->unhold(pipelines, *work))) {
        ++held;
        continue;
      }
      total += impl_->process_dataset(*work);
    } catch (const std::exception& e) {
      spdlog::error("piper: dataset {}: {}", ref.str(), e.what());
      metrics().counter("bf_piper_errors_total", "Failed piper runs (retried next interval)",
                        {{"tenant", ref.tenant}, {"dataset", ref.dataset}}).inc();
      work->run_errors.inc();
    }
  }
  metrics().gauge("bf_piper_datasets_held", "Datasets the last run held because a file their pipeline reads is missing")
      .set(held);
  // Held datasets' objects are not listed: their wait shows in bf_piper_pipeline_held_total.
  metrics().gauge("bf_piper_lag_milliseconds",
                  "How long the oldest raw/ object the last run found had been waiting (0: none waited)")
      .set(std::max<int64_t>(0, started - impl_->oldest_waiting_us) / 1000);
  return total;
}

void Piper::start() {
  impl_->worker = std::make_unique<PeriodicWorker>("piper", impl_->options.interval, [this] { run_once(); });
  impl_->worker->start();
}

void Piper::wake() {
  if (impl_->worker) impl_->worker->wake();
}

void Piper::on_written(std::function<void()> callback) { impl_->written_callback = std::move(callback); }

void Piper::stop() {
  if (impl_->worker) impl_->worker->stop();
  impl_->leases->release_all();
}

}  // namespace bf
