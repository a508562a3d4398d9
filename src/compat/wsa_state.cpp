#include "compat/wsa_state.h"

#include <atomic>
#include <cerrno>
#include <cstring>

#include "sockgate/winsock/startup.h"

namespace sockgate::winsock {
namespace {
std::atomic<int> gStartupCount{0};
thread_local int tLastError = 0;
}  // namespace

bool isStarted() { return gStartupCount.load(std::memory_order_acquire) > 0; }

int failWith(int wsaError) {
  tLastError = wsaError;
  return SOCKET_ERROR;
}

int wsaFromErrno(int err) {
  switch (err) {
    case 0:
      return 0;
    case EINTR:
      return WSAEINTR;
    case EBADF:
      return WSAEBADF;
    case EACCES:
    case EPERM:
      return WSAEACCES;
    case EFAULT:
      return WSAEFAULT;
    case EINVAL:
      return WSAEINVAL;
    case EMFILE:
    case ENFILE:
      return WSAEMFILE;
    case EAGAIN:
      return WSAEWOULDBLOCK;
    case EINPROGRESS:
      return WSAEINPROGRESS;
    case EALREADY:
      return WSAEALREADY;
    case ENOTSOCK:
      return WSAENOTSOCK;
    case EDESTADDRREQ:
      return WSAEDESTADDRREQ;
    case EMSGSIZE:
      return WSAEMSGSIZE;
    case EPROTOTYPE:
      return WSAEPROTOTYPE;
    case ENOPROTOOPT:
      return WSAENOPROTOOPT;
    case EPROTONOSUPPORT:
      return WSAEPROTONOSUPPORT;
    case ESOCKTNOSUPPORT:
      return WSAESOCKTNOSUPPORT;
    case EOPNOTSUPP:
      return WSAEOPNOTSUPP;
    case EPFNOSUPPORT:
      return WSAEPFNOSUPPORT;
    case EAFNOSUPPORT:
      return WSAEAFNOSUPPORT;
    case EADDRINUSE:
      return WSAEADDRINUSE;
    case EADDRNOTAVAIL:
      return WSAEADDRNOTAVAIL;
    case ENETDOWN:
      return WSAENETDOWN;
    case ENETUNREACH:
      return WSAENETUNREACH;
    case ENETRESET:
      return WSAENETRESET;
    case ECONNABORTED:
      return WSAECONNABORTED;
    case ECONNRESET:
    case EPIPE:
      return WSAECONNRESET;
    case ENOBUFS:
    case ENOMEM:
      return WSAENOBUFS;
    case EISCONN:
      return WSAEISCONN;
    case ENOTCONN:
      return WSAENOTCONN;
    case ESHUTDOWN:
      return WSAESHUTDOWN;
    case ETIMEDOUT:
      return WSAETIMEDOUT;
    case ECONNREFUSED:
      return WSAECONNREFUSED;
    case EHOSTUNREACH:
      return WSAEHOSTUNREACH;
    default:
      return WSASYSCALLFAILURE;
  }
}

}  // namespace sockgate::winsock

using sockgate::winsock::failWith;

extern "C" int WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData) {
  // Winsock 1.0 .. 2.2 exist; WSAStartup returns its error directly.
  const unsigned major = wVersionRequested & 0xff;
  const unsigned minor = (wVersionRequested >> 8) & 0xff;
  if (major == 0) return WSAVERNOTSUPPORTED;
  if (lpWSAData == nullptr) return WSAEFAULT;
  std::memset(lpWSAData, 0, sizeof(*lpWSAData));
  const bool above = major > 2 || (major == 2 && minor > 2);
  lpWSAData->wVersion = above ? MAKEWORD(2, 2) : wVersionRequested;
  lpWSAData->wHighVersion = MAKEWORD(2, 2);
  std::strncpy(lpWSAData->szDescription, "sockgate Winsock compatibility layer",
               WSADESCRIPTION_LEN);
  std::strncpy(lpWSAData->szSystemStatus, "Running", WSASYS_STATUS_LEN);
  sockgate::winsock::gStartupCount.fetch_add(1, std::memory_order_acq_rel);
  return 0;
}

extern "C" int WSACleanup(void) {
  int count = sockgate::winsock::gStartupCount.load(std::memory_order_acquire);
  while (count > 0) {
    if (sockgate::winsock::gStartupCount.compare_exchange_weak(count, count - 1)) return 0;
  }
  return failWith(WSANOTINITIALISED);
}

extern "C" int WSAGetLastError(void) { return sockgate::winsock::tLastError; }

extern "C" void WSASetLastError(int iError) { sockgate::winsock::tLastError = iError; }
