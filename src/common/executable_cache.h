// The executable behind each process that opens flows, read once per
// process instead of once per flow: readlink(/proc/PID/exe) was about 3 %
// of the built-in service's CPU at one connection per request.
//
// A pid alone could name another process after the first exits, so every
// entry holds a pidfd, and the pidfds sit in an epoll set of the cache's
// own: when one turns readable the process has exited, and reap() forgets
// it. The owner polls readyFd() with its other descriptors, so an entry
// costs nothing per flow while its process lives. A process that execs
// keeps its pid, so a thread name (comm, reported with each flow) not seen
// from that process reads the path again: another thread's name is learnt,
// a changed path replaces the entry. An exec that keeps a known name is
// the one change it does not see until the process exits.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/unique_fd.h"

namespace sockgate {

class ExecutableCache {
 public:
  static constexpr size_t kMaxEntries = 4096;
  static constexpr size_t kMaxNames = 16;  // thread names learnt per process

  explicit ExecutableCache(size_t maxEntries = kMaxEntries);

  // The executable's path, "" when the process is gone or unreadable.
  // `comm` is the process name known from elsewhere (the redirect context).
  std::string lookup(pid_t tgid, std::string_view comm);

  // Readable when a cached process has exited; then call reap().
  [[nodiscard]] int readyFd() const { return epoll_.get(); }
  void reap();

  [[nodiscard]] size_t size() const { return entries_.size(); }
  [[nodiscard]] uint64_t reads() const { return reads_; }  // readlinks done, for tests

 private:
  struct Entry {
    UniqueFd pidfd;
    std::vector<std::string> comms;  // names seen from it since its path was read
    std::string executable;
  };
  std::string read(pid_t tgid);
  void forget(pid_t tgid);

  size_t maxEntries_;
  UniqueFd epoll_;
  std::unordered_map<pid_t, Entry> entries_;
  uint64_t reads_ = 0;
};

}  // namespace sockgate
