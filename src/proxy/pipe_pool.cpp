#include "proxy/pipe_pool.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <unistd.h>

#include "common/capability.h"

namespace sockgate::proxy {

PipePool::PipePool(size_t maxSpare)
    : maxSpare_(maxSpare),
      pipeBytes_(hasEffectiveCapability(CAP_SYS_ADMIN) || hasEffectiveCapability(CAP_SYS_RESOURCE)
                     ? kPipeBytes
                     : 0) {}

Result<Pipe> PipePool::acquire() {
  if (!spare_.empty()) {
    Pipe p = std::move(spare_.back());
    spare_.pop_back();
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return failErrno("pipe2 for splice");
  // Best effort: a size above fs.pipe-max-size without CAP_SYS_RESOURCE
  // is refused, which costs speed only.
  if (pipeBytes_ > 0) (void)::fcntl(fds[1], F_SETPIPE_SZ, pipeBytes_);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void PipePool::release(Pipe pipe) {
  if (spare_.size() < maxSpare_) spare_.push_back(std::move(pipe));
}

}  // namespace sockgate::proxy
