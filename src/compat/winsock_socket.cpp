// WS_socket() and closesocket(), the pair every Winsock program starts and
// ends with. The rules are validateSocket()'s (sockgate/socket_validation.h);
// this file only translates the resolved Windows triple to Linux and the
// kernel's answer back to a WSA code.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "compat/overlapped.h"
#include "compat/wsa_state.h"
#include "sockgate/socket_validation.h"
#include "sockgate/winsock/socket.h"

using namespace sockgate::winsock;

namespace {

// Linux's numbers for Windows families; -1 where Linux has no provider
// (NetBIOS never existed, IrDA was removed in 4.17; IPX and AppleTalk do not
// get past validation).
int linuxFamily(int wsAf) {
  switch (wsAf) {
    case WS_AF_INET:
      return AF_INET;
    case WS_AF_INET6:
      return AF_INET6;
    case WS_AF_BTH:
      return AF_BLUETOOTH;
    default:
      return -1;
  }
}

// The kernel's errno for a socket() whose arguments passed validation.
int wsaFromSocketErrno(int af, int err) {
  switch (err) {
    case EMFILE:
    case ENFILE:
      return WSAEMFILE;
    case ENOBUFS:
    case ENOMEM:
      return WSAENOBUFS;
    case EPERM:
    case EACCES:
      return WSAEACCES;  // a raw socket without CAP_NET_RAW
    case EAFNOSUPPORT:
    case EPFNOSUPPORT:
      return WSAEAFNOSUPPORT;
    case ESOCKTNOSUPPORT:
    case EPROTONOSUPPORT:
      // A kernel without Bluetooth: the family has no provider, as on a
      // Windows machine without an adapter.
      if (af == WS_AF_BTH) return WSAEAFNOSUPPORT;
      return err == ESOCKTNOSUPPORT ? WSAESOCKTNOSUPPORT : WSAEPROTONOSUPPORT;
    case EINVAL:
      return WSAESOCKTNOSUPPORT;  // Wine's mapping (server/sock.c init_socket)
    default:
      // socket(2) documents nothing else. The page's code for a provider
      // that failed is WSAENETDOWN; a general errno mapping would hand out
      // codes socket() never returns (WSAEFAULT, WSASYSCALLFAILURE...).
      return WSAENETDOWN;
  }
}

}  // namespace

extern "C" SOCKET WS_socket(int af, int type, int protocol) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  const auto v = sockgate::validateSocket(af, type, protocol);
  if (!v) return failWith(v.error().wsaError);
  const int family = linuxFamily(v->af);
  if (family < 0) return failWith(WSAEAFNOSUPPORT);
  // No PGM on Linux: the family is there, the type has no provider (what
  // ws2_32 answers when Reliable Multicast is not installed).
  if (v->type == WS_SOCK_RDM) return failWith(WSAESOCKTNOSUPPORT);
  // Type and protocol numbers are the same on both systems (SOCK_* 1..5,
  // IANA protocol numbers, BTHPROTO_RFCOMM == BTPROTO_RFCOMM == 3). No
  // SOCK_CLOEXEC: Windows socket handles are inheritable by default.
  const int fd = ::socket(family, v->type, v->protocol);
  if (fd < 0) return failWith(wsaFromSocketErrno(v->af, errno));
  return fd;
}

extern "C" int closesocket(SOCKET s) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  if (!isSocket(s)) return failWith(WSAENOTSOCK);
  // Overlapped operations still queued on s complete with
  // WSA_OPERATION_ABORTED before the descriptor number can be reused.
  abortPending(s);
  // Linux closes the descriptor even when close() reports EINTR: never retry.
  if (::close(s) != 0 && errno != EINTR) return failWith(wsaFromErrno(errno));
  return 0;
}
