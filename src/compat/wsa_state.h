// Internal helpers shared by every part of the Winsock layer: startup state,
// the per-thread last error, and the errno -> WSA code translation.
#pragma once

#include "sockgate/winsock/types.h"

namespace sockgate::winsock {

[[nodiscard]] bool isStarted();

// Sets the thread's last error and returns SOCKET_ERROR, the usual tail of a
// failing Winsock call: `return failWith(WSAEINVAL);`.
int failWith(int wsaError);

// The WSA code Windows reports for a Linux errno (EBADF -> WSAENOTSOCK is the
// caller's business: a non-socket fd is not always EBADF).
[[nodiscard]] int wsaFromErrno(int err);

}  // namespace sockgate::winsock
