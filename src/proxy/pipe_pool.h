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
  explicit PipePool(size_t maxSpare = 64) : maxSpare_(maxSpare) {}
  Result<Pipe> acquire();
  void release(Pipe pipe);  // the caller guarantees the pipe is empty
  [[nodiscard]] size_t spare() const { return spare_.size(); }

 private:
  size_t maxSpare_;
  std::vector<Pipe> spare_;
};

}  // namespace sockgate::proxy
