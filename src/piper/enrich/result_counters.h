#pragma once
// Counters of one enrichment step split by a `result` label (hit, miss, …): one
// metric family, one series per result. They count into series of their own until
// count_as gives them the step's labels (tenant, dataset, step, kind).
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"

namespace bf {

class ResultCounters {
 public:
  ResultCounters(std::string name, std::string help, std::vector<std::string> results);
  void count_as(const Labels& labels);
  void add(size_t result, uint64_t n = 1) {
    if (n) series_[result]->inc(n);
  }

 private:
  std::string name_, help_;
  std::vector<std::string> results_;
  std::vector<std::unique_ptr<Counter>> own_;
  std::vector<Counter*> series_;
};

}  // namespace bf
