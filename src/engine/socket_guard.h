// Owns the socket guard's BPF object and picks its kernel hook by probing:
//
//   - BPF LSM (lsm/socket_create), where the kernel lets us load and attach
//     it: every family of the governed cgroup's processes is guarded in the
//     kernel, and no seccomp filter is needed (coversEveryFamily()).
//   - Otherwise cgroup/sock_create, attached at the scope cgroup: AF_INET and
//     AF_INET6 only (the kernel runs it from inet_create/inet6_create); the
//     other families need SeccompGuard for the command's processes, and
//     fallbackNotice() is the one line to tell the user so.
//
// Either way the attachment is a bpf_link owned by this object (the kernel
// detaches it when this process dies), and audited/denied socket() calls
// arrive on one ring buffer.
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
    std::string scopeCgroup;  // where cgroup/sock_create is attached (an ancestor, e.g. the root)
    SocketPolicy rules;
    bool tryLsm = true;  // false: go straight to the fallback (tests of that path)
  };

  enum class Hook {
    kLsm,         // lsm/socket_create: every family
    kSockCreate,  // cgroup/sock_create: AF_INET/AF_INET6; SeccompGuard for the rest
  };

  static Result<std::unique_ptr<SocketGuard>> start(const Options& options);
  ~SocketGuard();
  SocketGuard(const SocketGuard&) = delete;
  SocketGuard& operator=(const SocketGuard&) = delete;

  [[nodiscard]] Hook hook() const { return hook_; }
  // True with the LSM hook: then do not install a SeccompGuard (it would
  // report the non-inet sockets a second time).
  [[nodiscard]] bool coversEveryFamily() const { return hook_ == Hook::kLsm; }
  // Why the LSM hook is not used, as one line for the user (without a
  // "sockgate: " prefix); empty with the LSM hook, or when tryLsm was false.
  [[nodiscard]] const std::string& fallbackNotice() const { return notice_; }
  // The LSM attempt's error (load or attach), when there was one.
  [[nodiscard]] int lsmError() const { return lsmError_; }

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
  // Opens, fills and loads the object with or without the LSM program, and
  // attaches the one hook; on failure leaves nothing behind.
  Status load(const Options& options, Hook hook);
  void unload();

  SocketPolicy policy_;
  Hook hook_ = Hook::kSockCreate;
  std::string notice_;
  int lsmError_ = 0;
  sg_guard* skel_ = nullptr;
  bpf_link* link_ = nullptr;
  ring_buffer* ring_ = nullptr;
  const std::function<void(const sg_sock_event&)>* sink_ = nullptr;
};

}  // namespace sockgate
