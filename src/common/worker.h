#pragma once
// A background thread that runs a step every interval until stopped; stop() wakes it.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace bf {

// Names the calling thread (pthread_setname_np) so that `top -H`, perf and gdb show
// which stage is busy: "bf-proxy-tcp", "bf-receiver", ... Linux keeps 15 bytes; a
// longer name is cut. Best effort: a failure is ignored.
void set_thread_name(std::string_view name);

class Counter;

// Its thread is named "bf-<name>" ("bf-piper", "bf-packer").
class PeriodicWorker {
 public:
  PeriodicWorker(std::string name, std::chrono::milliseconds interval, std::function<void()> step);
  ~PeriodicWorker();
  void start();
  void stop();  // waits for the running step to finish
  // Runs the step again as soon as the current one (if any) finishes, without
  // waiting for the interval: a stage that has new input for this one calls it.
  void wake();

 private:
  void loop();
  std::string name_;
  std::chrono::milliseconds interval_;
  std::function<void()> step_;
  Counter& errors_;  // bf_worker_errors_total{worker=name}
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
};

}  // namespace bf
