// One direction of a proxied flow: bytes from `src` to `dst` through a pipe
// with splice(), so they never enter user space. Non-blocking; pump() moves
// what it can and says why it stopped.
#pragma once

#include <cstdint>

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

  Relay(int src, int dst) : src_(src), dst_(dst) {}

  Outcome pump(PipePool& pool);

  [[nodiscard]] uint64_t bytes() const { return bytes_; }
  // Bytes sit in the pipe because dst was full: only dst becoming writable
  // lets this direction move again.
  [[nodiscard]] bool waitingForDst() const { return pending_ > 0; }
  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] int error() const { return error_; }  // errno behind a reset outcome
  // After Blocked: true when bytes wait for dst to drain, false when the
  // relay waits for src to send more.
  [[nodiscard]] bool waitsForDst() const { return pending_ > 0; }

 private:
  int src_;
  int dst_;
  Pipe pipe_;
  size_t pending_ = 0;  // bytes in the pipe, not yet written to dst
  uint64_t bytes_ = 0;
  bool srcEof_ = false;
  bool finished_ = false;
  int error_ = 0;
};

}  // namespace sockgate::proxy
