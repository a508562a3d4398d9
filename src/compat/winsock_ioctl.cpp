// WSAIoctl for the three WFP connection-redirect control codes, and the
// Winsock getsockopt/setsockopt for IP_WFP_REDIRECT_*: the Windows buffer
// rules and error codes on top of sockgate/redirect.h, which owns the
// socket-option protocol. The rules are listed in sockgate/winsock/ioctl.h.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "compat/overlapped.h"
#include "compat/user_memory.h"
#include "compat/wsa_state.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"
#include "sockgate/winsock/ioctl.h"

namespace sockgate::winsock {
namespace {

// A records blob is 160 bytes today; anything far larger is not one, and we
// do not allocate whatever a caller claims.
constexpr DWORD kLargestInput = 64 * 1024;

bool isQuery(DWORD code) {
  return code == SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS ||
         code == SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT;
}

// The WSA code for an error of the C++ API on socket s. ENOPROTOOPT is the
// kernel's answer for a socket that carries no redirect data.
int wsaFromRedirectError(const Error& e, int noData) {
  switch (e.code) {
    case ENOPROTOOPT:
      return noData;
    case EBADF:
    case ENOTSOCK:
      return WSAENOTSOCK;
    case EAFNOSUPPORT:
      return WSAEINVAL;  // not applicable to this type of socket
    default:
      return wsaFromErrno(e.code);
  }
}

Result<std::vector<uint8_t>> queryBlob(SOCKET s, bool records) {
  return records ? queryRedirectRecordsBlob(s) : queryRedirectContextBlob(s);
}

struct Outcome {
  DWORD status = 0;  // 0 or a WSA code
  DWORD bytes = 0;   // bytes written, or the size needed with ERROR_INSUFFICIENT_BUFFER
};

// Performs a validated call; runs on the caller's thread or on the
// overlapped worker, so it writes only to the buffers it was given.
Outcome perform(SOCKET s, DWORD code, const void* in, DWORD cbIn, void* out, DWORD cbOut) {
  if (isQuery(code)) {
    sockaddr_storage peer{};
    socklen_t peerLen = sizeof peer;
    if (::getpeername(s, reinterpret_cast<sockaddr*>(&peer), &peerLen) != 0) {
      if (errno == ENOTCONN) return {WSAENOTCONN, 0};
      if (errno == EBADF || errno == ENOTSOCK) return {WSAENOTSOCK, 0};
      return {static_cast<DWORD>(wsaFromErrno(errno)), 0};
    }
    auto blob = queryBlob(s, code == SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS);
    if (!blob) return {static_cast<DWORD>(wsaFromRedirectError(blob.error(), WSAEOPNOTSUPP)), 0};
    const auto size = static_cast<DWORD>(blob->size());
    if (cbOut < size) return {ERROR_INSUFFICIENT_BUFFER, size};
    if (!copyToUser(out, blob->data(), size)) return {WSAEFAULT, 0};
    return {0, size};
  }
  // SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS
  std::vector<uint8_t> blob(cbIn);
  if (!copyFromUser(blob.data(), in, cbIn)) return {WSAEFAULT, 0};
  auto attached = attachRedirectRecords(s, blob);
  if (!attached)
    return {static_cast<DWORD>(wsaFromRedirectError(attached.error(), WSAEOPNOTSUPP)), 0};
  return {0, 0};
}

// The Winsock socket-option level that matches a socket's family.
Result<int> winsockLevelOf(SOCKET s) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
    return failErrno("getsockopt(SO_DOMAIN)");
  if (domain == AF_INET) return WS_IPPROTO_IP_LEVEL;
  if (domain == AF_INET6) return WS_IPPROTO_IPV6_LEVEL;
  return fail(EAFNOSUPPORT, "not an IPv4/IPv6 socket");
}

// Level and option checks shared by WS_getsockopt and WS_setsockopt; 0 or
// the WSA code.
int checkOption(SOCKET s, int level, int optname) {
  if (level != WS_IPPROTO_IP_LEVEL && level != WS_IPPROTO_IPV6_LEVEL && level != WS_SOL_SOCKET)
    return WSAEINVAL;
  if (level == WS_SOL_SOCKET ||
      (optname != IP_WFP_REDIRECT_RECORDS && optname != IP_WFP_REDIRECT_CONTEXT))
    return WSAENOPROTOOPT;  // a real option, but not one this layer emulates
  auto socketLevel = winsockLevelOf(s);
  if (!socketLevel) return wsaFromRedirectError(socketLevel.error(), WSAENOPROTOOPT);
  if (*socketLevel != level) return WSAEINVAL;  // IP_* on an IPv6 socket, or the reverse
  return 0;
}

}  // namespace
}  // namespace sockgate::winsock

using namespace sockgate::winsock;

extern "C" int WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer,
                        LPVOID lpvOutBuffer, DWORD cbOutBuffer, LPDWORD lpcbBytesReturned,
                        LPWSAOVERLAPPED lpOverlapped,
                        LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  if (!isSocket(s)) return failWith(WSAENOTSOCK);
  const bool query = isQuery(dwIoControlCode);
  if (!query && dwIoControlCode != SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS)
    return failWith(WSAEINVAL);
  if (lpOverlapped == nullptr && lpcbBytesReturned == nullptr) return failWith(WSAEFAULT);
  auto setReturned = [&](DWORD value) {
    return lpcbBytesReturned == nullptr || copyToUser(lpcbBytesReturned, &value, sizeof value);
  };

  if (query) {
    if (cbOutBuffer > 0 && cbOutBuffer < sizeof(ULONG)) {
      // Less than a ULONG: the parameter rules' WSAEINVAL with 0 returned.
      if (!setReturned(0)) return failWith(WSAEFAULT);
      return failWith(WSAEINVAL);
    }
    if (cbOutBuffer > 0 && lpvOutBuffer == nullptr) return failWith(WSAEFAULT);
  } else {
    if (cbOutBuffer != 0) return failWith(WSAEINVAL);
    if (lpvInBuffer == nullptr) return failWith(WSAEFAULT);
    if (cbInBuffer == 0 || cbInBuffer > kLargestInput) return failWith(WSAEINVAL);
  }

  if (lpOverlapped != nullptr) {
    if (lpCompletionRoutine != nullptr &&
        !userReadable(reinterpret_cast<const void*>(lpCompletionRoutine), 1))
      return failWith(WSAEFAULT);
    // Mark it pending through a checked write: this also proves the
    // structure is writable before the worker relies on it.
    WSAOVERLAPPED init{};
    if (!copyFromUser(&init, lpOverlapped, sizeof init)) return failWith(WSAEFAULT);
    init.Internal = STATUS_PENDING;
    init.InternalHigh = 0;
    if (!copyToUser(lpOverlapped, &init, sizeof init)) return failWith(WSAEFAULT);
    // The size is not known until the operation completes.
    if (!setReturned(0)) return failWith(WSAEFAULT);
    startOverlapped(s, lpOverlapped, lpCompletionRoutine, [=] {
      auto done = perform(s, dwIoControlCode, lpvInBuffer, cbInBuffer, lpvOutBuffer, cbOutBuffer);
      return std::pair{done.status, done.bytes};
    });
    return failWith(WSA_IO_PENDING);
  }

  const Outcome done =
      perform(s, dwIoControlCode, lpvInBuffer, cbInBuffer, lpvOutBuffer, cbOutBuffer);
  const bool reportsSize = done.status == 0 || done.status == ERROR_INSUFFICIENT_BUFFER;
  if (!setReturned(reportsSize ? done.bytes : 0)) return failWith(WSAEFAULT);
  if (done.status != 0) return failWith(static_cast<int>(done.status));
  return 0;
}

extern "C" int WS_getsockopt(SOCKET s, int level, int optname, char* optval, int* optlen) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  if (!isSocket(s)) return failWith(WSAENOTSOCK);
  if (const int bad = checkOption(s, level, optname)) return failWith(bad);
  int capacity = 0;
  if (optlen == nullptr || !copyFromUser(&capacity, optlen, sizeof capacity) || capacity < 0)
    return failWith(WSAEFAULT);
  if (optval == nullptr && capacity > 0) return failWith(WSAEFAULT);

  auto blob = queryBlob(s, optname == IP_WFP_REDIRECT_RECORDS);
  if (!blob) return failWith(wsaFromRedirectError(blob.error(), WSAENOPROTOOPT));
  const int size = static_cast<int>(blob->size());
  if (capacity < size) {
    // "optlen too small" is WSAEFAULT for getsockopt; the size needed is
    // reported so that a caller can retry with a large enough buffer.
    if (!copyToUser(optlen, &size, sizeof size)) return failWith(WSAEFAULT);
    return failWith(WSAEFAULT);
  }
  if (!copyToUser(optval, blob->data(), blob->size()) || !copyToUser(optlen, &size, sizeof size))
    return failWith(WSAEFAULT);
  return 0;
}

extern "C" int WS_setsockopt(SOCKET s, int level, int optname, const char* optval, int optlen) {
  if (!isStarted()) return failWith(WSANOTINITIALISED);
  if (!isSocket(s)) return failWith(WSAENOTSOCK);
  if (const int bad = checkOption(s, level, optname)) return failWith(bad);
  if (optname == IP_WFP_REDIRECT_CONTEXT) return failWith(WSAENOPROTOOPT);  // set by the redirect
  if (optval == nullptr || optlen <= 0) return failWith(WSAEFAULT);
  if (static_cast<DWORD>(optlen) > kLargestInput) return failWith(WSAEINVAL);
  std::vector<uint8_t> blob(static_cast<size_t>(optlen));
  if (!copyFromUser(blob.data(), optval, blob.size())) return failWith(WSAEFAULT);
  auto attached = sockgate::attachRedirectRecords(s, blob);
  if (!attached) return failWith(wsaFromRedirectError(attached.error(), WSAENOPROTOOPT));
  return 0;
}
