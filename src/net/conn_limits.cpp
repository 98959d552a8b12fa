#include "net/conn_limits.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/log.h"
#include "common/metrics.h"

namespace bf {

OpenFilesLimit current_open_files_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return {1024, 1024};
  auto conv = [](rlim_t v) -> uint64_t { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); };
  return {conv(rl.rlim_cur), conv(rl.rlim_max)};
}

OpenFilesLimit raise_open_files_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::warn("getrlimit(RLIMIT_NOFILE) failed: {}", std::strerror(errno));
    return current_open_files_limit();
  }
  rlim_t target = rl.rlim_max;
  if (target == RLIM_INFINITY) {
    // setrlimit refuses values above fs.nr_open.
    target = 1 << 20;
    std::ifstream in("/proc/sys/fs/nr_open");
    uint64_t nr_open = 0;
    if (in >> nr_open && nr_open > 0) target = static_cast<rlim_t>(nr_open);
  }
  if (rl.rlim_cur < target) {
    const rlim_t before = rl.rlim_cur;
    rl.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      spdlog::warn("cannot raise the open files limit from {} to {}: {}", static_cast<uint64_t>(before),
                   static_cast<uint64_t>(target), std::strerror(errno));
    } else {
      spdlog::debug("open files limit raised from {} to {}", static_cast<uint64_t>(before),
                    static_cast<uint64_t>(target));
    }
  }
  return current_open_files_limit();
}

// ---------------------------------------------------------------------------------
// ConnectionBudget

ConnectionBudget::ConnectionBudget() { configure(kDefaultReservedFds); }

ConnectionBudget& ConnectionBudget::process() {
  static ConnectionBudget budget;
  return budget;
}

void ConnectionBudget::configure(uint64_t reserved_fds) {
  const uint64_t soft = current_open_files_limit().soft;
  uint64_t cap;
  if (soft > reserved_fds && soft - reserved_fds >= soft / 2) {
    cap = soft - reserved_fds;
  } else {
    cap = soft / 2;
    spdlog::warn(
        "open files limit {} leaves no room for {} reserved descriptors; connections are "
        "limited to {} in total (raise `ulimit -n` or lower limits.reserved_fds)",
        soft, reserved_fds, cap);
  }
  {
    std::lock_guard lock(mu_);
    reserved_ = reserved_fds;
    capacity_.store(cap, std::memory_order_relaxed);
  }
  publish();
}

uint64_t ConnectionBudget::capacity() const { return capacity_.load(std::memory_order_relaxed); }

uint64_t ConnectionBudget::reserved_fds() const {
  std::lock_guard lock(mu_);
  return reserved_;
}

bool ConnectionBudget::try_acquire() {
  uint64_t cur = used_.load(std::memory_order_relaxed);
  do {
    if (cur >= capacity_.load(std::memory_order_relaxed)) return false;
  } while (!used_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  publish();
  return true;
}

void ConnectionBudget::release() {
  used_.fetch_sub(1, std::memory_order_relaxed);
  publish();
}

void ConnectionBudget::publish() {
  static Gauge& cap = metrics().gauge("bf_connection_budget_capacity",
                                      "Client connections the whole process may hold (open files limit minus limits.reserved_fds)");
  static Gauge& used = metrics().gauge("bf_connection_budget_used", "Client connections open in the whole process");
  cap.set(static_cast<int64_t>(capacity_.load(std::memory_order_relaxed)));
  used.set(static_cast<int64_t>(used_.load(std::memory_order_relaxed)));
}

void ConnectionBudget::declare_cap(const std::string& who, uint64_t cap) {
  std::lock_guard lock(mu_);
  const uint64_t before = declared_;
  declared_ += cap;
  const uint64_t capacity = capacity_.load(std::memory_order_relaxed);
  if (before <= capacity && declared_ > capacity) {
    spdlog::warn(
        "{}: max_connections {} brings the sum of all connection caps to {}, more than the {} "
        "the open files limit allows (limit minus limits.reserved_fds {}); the process-wide "
        "budget will refuse connections before the per-server caps do",
        who, cap, declared_, capacity, reserved_);
  }
}

void ConnectionBudget::withdraw_cap(uint64_t cap) {
  std::lock_guard lock(mu_);
  declared_ -= std::min(declared_, cap);
}

// ---------------------------------------------------------------------------------
// SpareFd

SpareFd::SpareFd() { arm(); }

SpareFd::~SpareFd() {
  if (fd_ >= 0) ::close(fd_);
}

void SpareFd::arm() {
  if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

size_t SpareFd::refuse_pending(int listen_fd, std::string_view reply, size_t max) {
  size_t refused = 0;
  while (refused < max) {
    if (fd_ < 0) {
      arm();
      if (fd_ < 0) break;  // could not re-arm: someone else took the descriptor
    }
    ::close(fd_);
    fd_ = -1;
    const int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      arm();
      break;  // EAGAIN: backlog empty; EMFILE: another thread took the descriptor
    }
    send_and_close(conn, reply);
    ++refused;
    arm();
  }
  return refused;
}

// ---------------------------------------------------------------------------------

namespace {
bool is_edquot(const std::error_code& ec) {
  return (ec.category() == std::generic_category() || ec.category() == std::system_category()) &&
         ec.value() == EDQUOT;
}
}  // namespace

bool is_resource_exhaustion(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory ||
         ec == std::errc::no_space_on_device || is_edquot(ec);
}

const char* resource_error_label(const std::error_code& ec) {
  if (ec == std::errc::too_many_files_open) return "emfile";
  if (ec == std::errc::too_many_files_open_in_system) return "enfile";
  if (ec == std::errc::no_buffer_space) return "enobufs";
  if (ec == std::errc::not_enough_memory) return "enomem";
  if (ec == std::errc::no_space_on_device || is_edquot(ec)) return "enospc";
  return "other";
}

void send_and_close(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.remove_prefix(static_cast<size_t>(n));
  }
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  for (int i = 0; i < 16; ++i) {
    const ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) break;
  }
  ::close(fd);
}

}  // namespace bf
