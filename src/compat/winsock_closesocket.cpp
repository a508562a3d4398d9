// A minimal closesocket(): abort the socket's pending overlapped operations,
// then close it. The Winsock socket() part owns the full version; it calls
// the same sockgate::winsock::abortPending before closing.
#include "sockgate/winsock/closesocket.h"

#include <unistd.h>

#include <cerrno>

#include "compat/overlapped.h"
#include "compat/wsa_state.h"

using namespace sockgate::winsock;

extern "C" int closesocket(SOCKET s) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  if (!isSocket(s)) return failWith(WSAENOTSOCK);
  abortPending(s);
  // Linux closes the descriptor even when close() reports EINTR: never retry.
  if (::close(s) != 0 && errno != EINTR) return failWith(wsaFromErrno(errno));
  return 0;
}
