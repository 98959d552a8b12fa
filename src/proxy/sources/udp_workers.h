#pragma once
// A UDP source with one socket and one receive thread per worker: the workers bind
// the same port with SO_REUSEPORT and the kernel spreads datagrams over them by
// sender, so one exporter's datagrams (and its templates) stay on one worker. Each
// worker has its own Ingest (handle(datagram, peer) per datagram, flush() per read
// of up to 16 datagrams by recvmmsg), so workers share no state and take no lock.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/listeners.h"
#include "proxy/source.h"

namespace bf {

template <class Ingest>
class UdpWorkersSource final : public Source {
 public:
  using MakeIngest = std::function<std::unique_ptr<Ingest>()>;
  UdpWorkersSource(std::string name, UdpListenerOptions udp, int workers, MakeIngest make)
      : name_(std::move(name)), udp_(std::move(udp)), workers_(workers < 1 ? 1 : workers) {
    for (int i = 0; i < workers_; ++i) ingests_.push_back(make());
  }
  ~UdpWorkersSource() override { stop(); }

  void start() override {
    for (int i = 0; i < workers_; ++i) {
      UdpListenerOptions o = udp_;
      o.reuse_port = workers_ > 1;
      if (i > 0) {  // the port the first socket got (listen port 0 picks one)
        const auto hp = split_host_port(udp_.listen);
        const bool v6 = hp.first.find(':') != std::string::npos;
        o.listen = (v6 ? "[" + hp.first + "]" : hp.first) + ":" + std::to_string(listeners_[0]->port());
      }
      Ingest* ingest = ingests_[static_cast<size_t>(i)].get();
      // All workers report under the source's name (the counters add up).
      listeners_.push_back(std::make_unique<UdpListener>(
          name_, std::move(o), [ingest](std::string_view m, const std::string& peer) { ingest->handle(m, peer); },
          [ingest] { ingest->flush(); }));
      listeners_.back()->start();
    }
  }
  void stop() override {
    for (auto& l : listeners_) l->stop();
  }
  std::string name() const override { return name_; }
  uint16_t port() const override { return listeners_.empty() ? 0 : listeners_[0]->port(); }

 private:
  std::string name_;
  UdpListenerOptions udp_;
  int workers_;
  std::vector<std::unique_ptr<Ingest>> ingests_;
  std::vector<std::unique_ptr<UdpListener>> listeners_;
};

}  // namespace bf
