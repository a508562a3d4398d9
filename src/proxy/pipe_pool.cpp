#include "proxy/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace sockgate::proxy {

Result<Pipe> PipePool::acquire() {
  if (!spare_.empty()) {
    Pipe p = std::move(spare_.back());
    spare_.pop_back();
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return failErrno("pipe2 for splice");
  // Best effort: EPERM past the user's pipe allowance, which costs speed only.
  (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void PipePool::release(Pipe pipe) {
  if (spare_.size() < maxSpare_) spare_.push_back(std::move(pipe));
}

}  // namespace sockgate::proxy
