// pidfd system calls. glibc 2.36's <sys/pidfd.h> declares them without
// extern "C" (fixed in 2.37), so C++ cannot link against it: call them
// directly.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>

namespace sockgate {

inline int pidfdOpen(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}

inline int pidfdGetfd(int pidfd, int targetfd, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, targetfd, flags));
}

inline int pidfdSendSignal(int pidfd, int sig, siginfo_t* info, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

}  // namespace sockgate
