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
  // sockets' buffers. 1 MiB is also the unprivileged limit
  // (/proc/sys/fs/pipe-max-size); where the kernel refuses, a pipe keeps
  // the size it has.
  static constexpr int kPipeBytes = 1 << 20;

  explicit PipePool(size_t maxSpare = 64) : maxSpare_(maxSpare) {}
  Result<Pipe> acquire();
  void release(Pipe pipe);  // the caller guarantees the pipe is empty
  [[nodiscard]] size_t spare() const { return spare_.size(); }

 private:
  size_t maxSpare_;
  std::vector<Pipe> spare_;
};

}  // namespace sockgate::proxy
