#include "compat/user_memory.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sockgate::winsock {
namespace {

// A seccomp profile may forbid process_vm_*; then the copy is a plain
// memcpy and a bad pointer faults as it would in C.
bool unavailable(int err) { return err == ENOSYS || err == EPERM; }

bool vmCopy(void* dst, const void* src, size_t n, bool toUser) {
  if (n == 0) return true;
  if (dst == nullptr || src == nullptr) return false;
  iovec local{};
  iovec remote{};
  if (toUser) {
    local = {const_cast<void*>(src), n};
    remote = {dst, n};
  } else {
    local = {dst, n};
    remote = {const_cast<void*>(src), n};
  }
  const pid_t pid = ::getpid();  // not cached: right in a forked child too
  for (;;) {
    ssize_t done = toUser ? ::process_vm_writev(pid, &local, 1, &remote, 1, 0)
                          : ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (done == static_cast<ssize_t>(n)) return true;
    if (done >= 0) return false;  // a partial copy: the range ends in a hole
    if (errno == EINTR) continue;
    if (unavailable(errno)) {
      std::memcpy(dst, src, n);
      return true;
    }
    return false;
  }
}

}  // namespace

bool copyToUser(void* dst, const void* src, size_t n) { return vmCopy(dst, src, n, true); }
bool copyFromUser(void* dst, const void* src, size_t n) { return vmCopy(dst, src, n, false); }

bool userReadable(const void* p, size_t n) {
  if (p == nullptr) return false;
  std::vector<unsigned char> scratch(n);
  return copyFromUser(scratch.data(), p, n);
}

bool userWritable(void* p, size_t n) {
  if (p == nullptr) return false;
  // Read the bytes and write the same bytes back: a write check that
  // changes nothing (the caller owns this memory and may be using it).
  std::vector<unsigned char> scratch(n);
  return copyFromUser(scratch.data(), p, n) && copyToUser(p, scratch.data(), n);
}

}  // namespace sockgate::winsock
