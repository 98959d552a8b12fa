#include "piper/enrich/result_counters.h"

namespace bf {

ResultCounters::ResultCounters(std::string name, std::string help, std::vector<std::string> results)
    : name_(std::move(name)), help_(std::move(help)), results_(std::move(results)) {
  for (size_t i = 0; i < results_.size(); ++i) {
    own_.push_back(std::make_unique<Counter>());
    series_.push_back(own_.back().get());
  }
}

void ResultCounters::count_as(const Labels& labels) {
  Labels l = labels;
  l.emplace_back("result", "");
  for (size_t i = 0; i < results_.size(); ++i) {
    l.back().second = results_[i];
    series_[i] = &metrics().counter(name_, help_, l);
  }
}

}  // namespace bf
