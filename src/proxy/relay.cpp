#include "proxy/relay.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>

namespace sockgate::proxy {

namespace {
// Ask for more than a pipe holds: splice stops when the pipe is full.
constexpr size_t kSpliceChunk = 1 << 20;
constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
}  // namespace

Relay::Outcome Relay::pump(PipePool& pool) {
  if (finished_) return Outcome::Finished;
  for (;;) {
    bool progressed = false;

    if (!srcEof_) {
      if (!pipe_) {
        auto p = pool.acquire();
        if (!p) {
          error_ = p.error().code;
          return Outcome::SrcReset;
        }
        pipe_ = std::move(*p);
      }
      ssize_t n = ::splice(src_, nullptr, pipe_.write.get(), nullptr, kSpliceChunk, kFlags);
      if (n > 0) {
        pending_ += static_cast<size_t>(n);
        progressed = true;
      } else if (n == 0) {
        srcEof_ = true;
        progressed = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN) {
        // EAGAIN is ambiguous (src empty, or pipe full); anything else is
        // the source failing: ECONNRESET, ETIMEDOUT, ...
        error_ = errno;
        return Outcome::SrcReset;
      }
    }

    if (pending_ > 0) {
      ssize_t n = ::splice(pipe_.read.get(), nullptr, dst_, nullptr, pending_, kFlags);
      if (n > 0) {
        pending_ -= static_cast<size_t>(n);
        bytes_ += static_cast<uint64_t>(n);
        progressed = true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno != EAGAIN) {
        error_ = errno;  // EPIPE, ECONNRESET: the destination is gone
        return Outcome::DstReset;
      }
    }

    if (pending_ == 0 && pipe_) pool.release(std::move(pipe_));

    if (srcEof_ && pending_ == 0) {
      ::shutdown(dst_, SHUT_WR);  // half-close: pass the FIN on
      finished_ = true;
      return Outcome::Finished;
    }
    if (!progressed) return Outcome::Blocked;
  }
}

}  // namespace sockgate::proxy
