#include "common/executable_cache.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>

#include "common/pidfd.h"
#include "common/process.h"

namespace sockgate {

ExecutableCache::ExecutableCache(size_t maxEntries)
    : maxEntries_(maxEntries), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

std::string ExecutableCache::read(pid_t tgid) {
  ++reads_;
  return executableOf(tgid);
}

std::string ExecutableCache::lookup(pid_t tgid, std::string_view comm) {
  if (auto it = entries_.find(tgid); it != entries_.end()) {
    Entry& e = it->second;
    if (std::ranges::find(e.comms, comm) != e.comms.end()) return e.executable;
    // A name not seen from this process: another of its threads, or an exec.
    std::string exe = read(tgid);
    if (exe != e.executable) {
      e.executable = exe;
      e.comms.clear();
    }
    if (e.comms.size() < kMaxNames) e.comms.emplace_back(comm);
    return exe;
  }
  // The pidfd first: a path read after it belongs to the process it names
  // (or to none, if that one already exited - then nothing is cached).
  UniqueFd pidfd(pidfdOpen(tgid, 0));
  std::string exe = read(tgid);
  if (!pidfd || !epoll_ || exe.empty()) return exe;
  if (entries_.size() >= maxEntries_) {
    // Bounded: a host forking many short-lived clients must not grow it
    // without end. Which one goes matters little; it is read again if seen.
    forget(entries_.begin()->first);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(tgid);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd.get(), &ev) != 0) return exe;
  entries_.emplace(tgid, Entry{std::move(pidfd), {std::string(comm)}, exe});
  return exe;
}

void ExecutableCache::forget(pid_t tgid) {
  auto it = entries_.find(tgid);
  if (it == entries_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
  entries_.erase(it);
}

void ExecutableCache::reap() {
  epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) forget(static_cast<pid_t>(events[i].data.u64));
    if (n < 64) return;
  }
}

}  // namespace sockgate
