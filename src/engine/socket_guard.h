// Owns the socket guard's BPF object: cgroup/sock_create attached through a
// bpf_link at the scope cgroup (the kernel detaches it when this process
// dies), acting on the governed cgroup's AF_INET/AF_INET6 sockets, and the
// ring buffer of audited/denied socket() calls. Other families: SeccompGuard.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/socket_policy.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/error.h"

struct sg_guard;
struct bpf_link;
struct ring_buffer;

namespace sockgate {

class SocketGuard {
 public:
  struct Options {
    std::string governedCgroup;  // whose socket() calls are guarded (and below it)
    std::string scopeCgroup;     // where the hook is attached (an ancestor, e.g. the root)
    SocketPolicy rules;
  };

  static Result<std::unique_ptr<SocketGuard>> start(const Options& options);
  ~SocketGuard();
  SocketGuard(const SocketGuard&) = delete;
  SocketGuard& operator=(const SocketGuard&) = delete;

  // Epoll-able fd, readable when events wait.
  [[nodiscard]] int eventsFd() const;
  // Delivers waiting events; returns how many.
  Result<int> drainEvents(const std::function<void(const sg_sock_event&)>& sink);
  [[nodiscard]] std::string formatEvent(const sg_sock_event& e) const {
    return formatSocketEvent(policy_, e);
  }
  [[nodiscard]] const SocketPolicy& policy() const { return policy_; }

 private:
  SocketGuard() = default;
  static int onEvent(void* self, void* data, size_t size);

  SocketPolicy policy_;
  sg_guard* skel_ = nullptr;
  bpf_link* link_ = nullptr;
  ring_buffer* ring_ = nullptr;
  const std::function<void(const sg_sock_event&)>* sink_ = nullptr;
};

}  // namespace sockgate
