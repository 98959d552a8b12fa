#pragma once
// File-descriptor accounting for client connections (DESIGN.md §7: connections are a
// bounded resource and running out of them must never end the process).
//
// Three layers, from the outside in:
//  - raise_open_files_limit(): at process start the RLIMIT_NOFILE soft limit is raised
//    to the hard limit.
//  - ConnectionBudget: one process-wide pool of connection slots, the soft limit minus
//    `reserved_fds` that are kept for spools, the object store, DuckDB and logs. Every
//    HTTP server and TCP listener takes a slot per open connection, on top of its own
//    max_connections, so the sum of all caps can never starve the rest of the process.
//  - SpareFd: if accept() still fails with EMFILE/ENFILE (some other part of the
//    process used the reserve), the acceptor releases one spare descriptor, takes the
//    pending connection off the backlog, refuses it and re-arms the spare, instead of
//    spinning on a listening socket that stays readable.
// No Asio here: usable from any net/*.cpp.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

namespace bf {

struct OpenFilesLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Raises the RLIMIT_NOFILE soft limit to the hard limit (when the hard limit is
// "unlimited", to the kernel's nr_open). Returns the limits in force afterwards; logs
// a warning when the raise fails. Safe to call more than once.
OpenFilesLimit raise_open_files_limit();
OpenFilesLimit current_open_files_limit();

class ConnectionBudget {
 public:
  static constexpr uint64_t kDefaultReservedFds = 256;

  // The process-wide budget shared by every server and listener.
  static ConnectionBudget& process();

  // Sets the reserve and recomputes the capacity from the current soft limit:
  // capacity = soft - reserved, but never less than soft / 2 (a tiny limit still
  // serves some connections; a warning says the reserve did not fit).
  void configure(uint64_t reserved_fds);
  uint64_t capacity() const;
  uint64_t reserved_fds() const;
  uint64_t in_use() const { return used_.load(std::memory_order_relaxed); }

  // Takes one slot; false when the budget is exhausted.
  bool try_acquire();
  void release();

  // A server or listener declares its max_connections when it starts (and withdraws it
  // when it stops); when the declared caps add up to more than the capacity a warning
  // names the one that crossed it: the process-wide budget will refuse first.
  void declare_cap(const std::string& who, uint64_t cap);
  void withdraw_cap(uint64_t cap);

 private:
  ConnectionBudget();
  void publish();
  mutable std::mutex mu_;
  uint64_t reserved_ = kDefaultReservedFds;
  std::atomic<uint64_t> capacity_{0};
  std::atomic<uint64_t> used_{0};
  uint64_t declared_ = 0;
};

// RAII holder of one ConnectionBudget slot.
class BudgetSlot {
 public:
  BudgetSlot() = default;
  static BudgetSlot acquire() {
    BudgetSlot s;
    s.held_ = ConnectionBudget::process().try_acquire();
    return s;
  }
  BudgetSlot(BudgetSlot&& o) noexcept : held_(o.held_) { o.held_ = false; }
  BudgetSlot& operator=(BudgetSlot&& o) noexcept {
    if (this != &o) {
      reset();
      held_ = o.held_;
      o.held_ = false;
    }
    return *this;
  }
  BudgetSlot(const BudgetSlot&) = delete;
  BudgetSlot& operator=(const BudgetSlot&) = delete;
  ~BudgetSlot() { reset(); }
  explicit operator bool() const { return held_; }
  void reset() {
    if (held_) ConnectionBudget::process().release();
    held_ = false;
  }

 private:
  bool held_ = false;
};

// One descriptor (on /dev/null) kept open for emergencies, see above. Not thread-safe:
// use it from the acceptor's own strand/thread.
class SpareFd {
 public:
  SpareFd();
  ~SpareFd();
  SpareFd(const SpareFd&) = delete;
  SpareFd& operator=(const SpareFd&) = delete;
  bool armed() const { return fd_ >= 0; }
  // Takes up to `max` pending connections off the (non-blocking) listening socket
  // `listen_fd` using the spare descriptor, sends each `reply` (may be empty) without
  // blocking, and closes it. Returns how many were refused.
  size_t refuse_pending(int listen_fd, std::string_view reply, size_t max);

 private:
  void arm();
  int fd_ = -1;
};

// True for errors that mean "out of descriptors or memory right now" (EMFILE, ENFILE,
// ENOBUFS, ENOMEM, ENOSPC, EDQUOT): a request that hits one is answered 503 with
// Retry-After instead of 500, an acceptor that hits one backs off.
bool is_resource_exhaustion(const std::error_code& ec);
// Short name for a metric label: "emfile", "enfile", "enobufs", "enomem", "enospc", "other".
const char* resource_error_label(const std::error_code& ec);

// Sends `data` on a connected socket without blocking (MSG_DONTWAIT|MSG_NOSIGNAL),
// stops sending, discards what the peer already sent (so the close is less likely to
// reset the connection before the peer reads the reply) and closes `fd`.
void send_and_close(int fd, std::string_view data);

}  // namespace bf
