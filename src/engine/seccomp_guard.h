// The socket guard for the families cgroup/sock_create never sees (AF_PACKET,
// AF_NETLINK, AF_UNIX, ...), used only when SocketGuard could not load its
// BPF LSM hook (!SocketGuard::coversEveryFamily()): a classic-BPF seccomp
// filter, installed in the guarded command's process before exec and
// inherited by everything it forks, hands each socket()/socketpair() of
// those families to this process as a user notification (native, x32 and
// i386 `int $0x80` entries, i386 socketcall included); we match the policy,
// record an event, and either let the call continue or fail it with EPERM.
//
// Life cycle, around fork():
//   parent, before fork:  auto g = SeccompGuard::prepare(policy);
//   child, before exec:   if (int err = g->installInChild(g->childFd())) _exit(...);
//   parent, after fork:   g->closeChildEnd(); g->receiveListener(timeout);
//                         epoll on g->listenerFd(); on EPOLLIN: g->handle(sink)
//   parent, at exit:      destroy g (closing the listener makes every
//                         pending and later trapped socket() fail with ENOSYS).
#pragma once

#include <linux/filter.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "engine/socket_policy.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/error.h"

namespace sockgate {

// The seccomp filter for a policy (pure; unit-tested through the kernel).
// Empty when the policy names no family besides AF_INET/AF_INET6. AF_INET
// and AF_INET6 are never trapped: cgroup/sock_create guards them.
std::vector<sock_filter> buildSocketSeccompFilter(const SocketPolicy& policy);

class SeccompGuard {
 public:
  static Result<std::unique_ptr<SeccompGuard>> prepare(const SocketPolicy& policy);
  ~SeccompGuard() = default;
  SeccompGuard(const SeccompGuard&) = delete;
  SeccompGuard& operator=(const SeccompGuard&) = delete;

  // Whether the policy needs the filter at all (else every call below is a
  // successful no-op and listenerFd() is -1).
  [[nodiscard]] bool needed() const { return !filter_.empty(); }

  // The socketpair end the child sends the listener over.
  [[nodiscard]] int childFd() const { return childEnd_.get(); }

  // In the forked child, before exec: async-signal-safe (raw syscalls only,
  // no allocation). Installs the filter with a new listener and sends the
  // listener over sendFd with SCM_RIGHTS. Returns 0 or an errno value.
  //
  // No PR_SET_NO_NEW_PRIVS: as root (CAP_SYS_ADMIN) seccomp does not need
  // it, and setting it would make exec ignore file capabilities, so ping
  // (cap_net_raw=ep) would lose CAP_NET_RAW when run by a non-root user.
  int installInChild(int sendFd) const noexcept;

  // In the parent after fork.
  void closeChildEnd() { childEnd_.reset(); }
  Status receiveListener(std::chrono::milliseconds timeout);
  [[nodiscard]] int listenerFd() const { return listener_.get(); }

  // Answers one pending notification (call when listenerFd() is readable).
  // Returns false when none was pending (the target died, or EINTR/ENOENT).
  Result<bool> handle(const std::function<void(const sg_sock_event&)>& sink);

  [[nodiscard]] std::string formatEvent(const sg_sock_event& e) const {
    return formatSocketEvent(policy_, e);
  }

 private:
  SeccompGuard() = default;

  SocketPolicy policy_;
  std::vector<sock_filter> filter_;
  sock_fprog prog_{};
  UniqueFd parentEnd_, childEnd_, listener_;
  std::string cgroupMount_;
};

}  // namespace sockgate
