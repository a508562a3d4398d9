// Pipes for splice(), per event loop. A flow holds a pipe only while bytes
// are in flight, so idle flows cost no pipe (and no kernel pipe buffers).
// A pipe that still holds data is never recycled.
#pragma once

#include <vector>

#include "common/unique_fd.h"
#include "sockgate/error.h"

namespace sockgate::proxy {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  explicit operator bool() const { return read.valid(); }
};

class PipePool {
 public:
  // What a pipe is asked to hold. At the default 64 KiB a splice() from a
  // busy socket stops at 16 buffers, so a bulk flow needs about three times
  // the system calls per byte: on the 2-core benchmark machine 1 MiB pipes
  // halved the service's CPU per GB and lifted iperf3 through it from 0.39
  // to 0.54 of direct. A pipe fills only while its destination is slower
  // than its source, so this bounds the bytes a flow holds out of its
  // sockets' buffers.
  //
  // Only for a process the kernel exempts from the per-user pipe allowance
  // (CAP_SYS_ADMIN or CAP_SYS_RESOURCE, as the built-in service has): past
  // that allowance (fs.pipe-user-pages-soft, 64 pipes of 1 MiB) every new
  // pipe of the user gets 2 buffers, far worse than the default. Others
  // keep the default size.
  static constexpr int kPipeBytes = 1 << 20;

  explicit PipePool(size_t maxSpare = 64);
  Result<Pipe> acquire();
  void release(Pipe pipe);  // the caller guarantees the pipe is empty
  [[nodiscard]] size_t spare() const { return spare_.size(); }
  // The size new pipes are asked for; 0 keeps the kernel's default.
  [[nodiscard]] int pipeBytes() const { return pipeBytes_; }

 private:
  size_t maxSpare_;
  int pipeBytes_;
  std::vector<Pipe> spare_;
};

}  // namespace sockgate::proxy
