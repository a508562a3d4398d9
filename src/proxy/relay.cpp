#include "proxy/relay.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>

namespace sockgate::proxy {

namespace {
// Ask for more than a pipe holds: splice stops when the pipe is full.
constexpr size_t kSpliceChunk = 1 << 20;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
// No SIGPIPE from a destination that is gone: EPIPE says it.
constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;
}  // namespace

Relay::Outcome Relay::pump(PipePool& pool, std::span<char> copy) {
  if (finished_) return Outcome::Finished;
  switch (flushHeld()) {
    case Flush::Blocked:
      return Outcome::Blocked;
    case Flush::DstFailed:
      return Outcome::DstReset;
    case Flush::Done:
      break;
  }
  if (!bulk_ && !copy.empty()) {
    Outcome o = pumpCopy(copy);
    // Turned bulk with nothing left aside: src may hold more, and with
    // edge-triggered polling no new edge would say so. Splice it now.
    if (!bulk_ || o != Outcome::Blocked || waitingForDst()) return o;
  }
  return pumpSplice(pool);
}

Relay::Flush Relay::sendToDst(const char* data, size_t len, size_t& sent, bool more) {
  while (sent < len) {
    ssize_t n = ::send(dst_, data + sent, len - sent, kSendFlags | (more ? MSG_MORE : 0));
    if (n > 0) {
      sent += static_cast<size_t>(n);
      bytes_ += static_cast<uint64_t>(n);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      return Flush::Blocked;
    } else {
      error_ = errno;  // EPIPE, ECONNRESET: the destination is gone
      return Flush::DstFailed;
    }
  }
  return Flush::Done;
}

Relay::Flush Relay::flushHeld() {
  if (held_.empty()) return Flush::Done;
  Flush f = sendToDst(held_.data(), held_.size(), heldSent_);
  if (f == Flush::Done) {  // drained: an idle flow keeps no buffer
    std::vector<char>().swap(held_);
    heldSent_ = 0;
  }
  return f;
}

Relay::Outcome Relay::finish() {
  ::shutdown(dst_, SHUT_WR);  // half-close: pass the FIN on
  finished_ = true;
  return Outcome::Finished;
}

Relay::Outcome Relay::pumpCopy(std::span<char> copy) {
  for (;;) {
    if (srcEof_) return finish();
    ssize_t n = ::recv(src_, copy.data(), copy.size(), MSG_DONTWAIT);
    if (n == 0) {
      srcEof_ = true;
      continue;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Outcome::Blocked;
      error_ = errno;  // ECONNRESET, ETIMEDOUT, ...
      return Outcome::SrcReset;
    }
    const auto got = static_cast<size_t>(n);
    // A read that filled the buffer: more is coming than copying suits.
    // A short one emptied the receive queue.
    const bool shortRead = got < copy.size();
    // The last bytes before a reported FIN (a short read after a hangup is
    // the end, see below): finish() follows at once, so MSG_MORE lets the
    // FIN join them and the peer gets an answer and its end in one segment
    // and one wakeup, as they left the server - one segment fewer per
    // connection-per-request exchange, as HAProxy sends it. Should dst take
    // only part, the rest goes later without MSG_MORE, which pushes all.
    const bool last = srcHangup_ && shortRead;
    size_t sent = 0;
    const Flush f = sendToDst(copy.data(), got, sent, last);
    if (f == Flush::DstFailed) return Outcome::DstReset;
    if (!shortRead) bulk_ = true;
    if (f == Flush::Blocked) {
      // dst is full: keep the rest aside (the scratch is shared) and stop
      // reading until dst drains, which is the backpressure.
      held_.assign(copy.data() + sent, copy.data() + got);
      heldSent_ = 0;
      return Outcome::Blocked;
    }
    if (bulk_) return Outcome::Blocked;  // pump() splices the rest
    // A short read emptied the receive queue: with edge-triggered polling
    // the next byte raises a new edge, so reading again would only say
    // EAGAIN. The data before a FIN is queued before the FIN is seen, so
    // after a reported hangup the stream has ended.
    if (srcHangup_) {
      srcEof_ = true;
      continue;
    }
    return Outcome::Blocked;
  }
}

Relay::Outcome Relay::pumpSplice(PipePool& pool) {
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
      ssize_t n = ::splice(src_, nullptr, pipe_.write.get(), nullptr, kSpliceChunk, kSpliceFlags);
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
      ssize_t n = ::splice(pipe_.read.get(), nullptr, dst_, nullptr, pending_, kSpliceFlags);
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

    if (srcEof_ && pending_ == 0) return finish();
    if (!progressed) return Outcome::Blocked;
  }
}

}  // namespace sockgate::proxy
