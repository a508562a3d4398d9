// One direction of a proxied flow, from `src` to `dst`. Small transfers are
// copied through the caller's buffer with recv()/send(); once a read fills
// that buffer the direction is bulk and moves through a pipe with splice(),
// so its bytes no longer enter user space. Non-blocking; pump() moves what
// it can and says why it stopped.
//
// Why both: measured on the benchmark machine, a 1 KiB HTTP exchange costs
// three splice() calls per direction (in, out, and one that says EAGAIN)
// against two cheaper calls when copied, because a short recv() proves the
// socket drained; keep-alive requests/s rose by a few per cent. Bulk stays on
// splice(), which copies nothing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "proxy/pipe_pool.h"

namespace sockgate::proxy {

class Relay {
 public:
  enum class Outcome {
    Blocked,   // waiting for src to be readable or dst to be writable
    Finished,  // src hit EOF, everything was delivered, dst got a FIN
    SrcReset,  // src reset (or failed): reset dst too
    DstReset,  // dst reset (or failed): reset src too
  };

  // The copy buffer a caller should give pump(): what one read may copy
  // before its direction is bulk. HTTP requests and answers of a few KiB
  // stay well below it.
  static constexpr size_t kCopyBufferSize = 64 << 10;

  Relay(int src, int dst) : src_(src), dst_(dst) {}

  // `copy` is scratch shared by every relay of one thread: nothing stays in
  // it between calls.
  Outcome pump(PipePool& pool, std::span<char> copy);
  // The caller's poller reported a FIN from src (EPOLLRDHUP, no error): a
  // short read then means end of stream, which saves the read that would
  // return 0. It holds for every later pump, so an edge the caller consumed
  // while this direction could not read (destination full, connect still
  // pending) is not lost.
  void noteSrcHangup() { srcHangup_ = true; }

  [[nodiscard]] uint64_t bytes() const { return bytes_; }
  // Bytes wait for dst (in the pipe, or copied aside because dst was full):
  // only dst becoming writable lets this direction move again.
  [[nodiscard]] bool waitingForDst() const { return pending_ > 0 || !held_.empty(); }
  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] bool bulk() const { return bulk_; }
  [[nodiscard]] int error() const { return error_; }  // errno behind a reset outcome

 private:
  enum class Flush { Done, Blocked, DstFailed };
  // Sends data[sent, len) to dst as far as it takes it, advancing `sent`.
  // `more`: the caller sends a FIN right after (MSG_MORE), so the data
  // waits for it and both leave in one segment.
  Flush sendToDst(const char* data, size_t len, size_t& sent, bool more = false);
  Flush flushHeld();
  Outcome pumpSplice(PipePool& pool);
  Outcome pumpCopy(std::span<char> copy);
  Outcome finish();

  int src_;
  int dst_;
  Pipe pipe_;
  size_t pending_ = 0;      // bytes in the pipe, not yet written to dst
  std::vector<char> held_;  // read but not yet taken by dst; only while it is full
  size_t heldSent_ = 0;     // of held_
  uint64_t bytes_ = 0;
  bool bulk_ = false;
  bool srcHangup_ = false;
  bool srcEof_ = false;
  bool finished_ = false;
  int error_ = 0;
};

}  // namespace sockgate::proxy
