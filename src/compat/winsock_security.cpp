// WSAQuerySocketSecurity over sockgate::querySocketSecurity. Every rule of
// the Winsock page is checked here, in the order a caller would hit them; the
// query itself is the C++ API's.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "compat/wsa_state.h"
#include "sockgate/security.h"
#include "sockgate/winsock/security.h"

namespace {

using sockgate::winsock::failWith;

constexpr ULONG kTemplateSize = sizeof(SOCKET_SECURITY_QUERY_TEMPLATE);
constexpr ULONG kInfoSize = sizeof(SOCKET_SECURITY_QUERY_INFO);

// The Windows sockaddr_in / sockaddr_in6 share Linux's layout after the
// family field; only the family numbers differ (AF_INET6 is 23).
struct PeerAddressCheck {
  int wsaError = 0;
  std::optional<sockgate::Endpoint> endpoint;
};

PeerAddressCheck convertPeerAddress(const SOCKADDR_STORAGE& storage, bool required) {
  PeerAddressCheck out;
  const auto* raw = reinterpret_cast<const uint8_t*>(&storage);
  if (storage.ss_family == WS_AF_UNSPEC && !required) return out;
  sockaddr_storage linux{};
  socklen_t len = 0;
  if (storage.ss_family == WS_AF_INET) {
    std::memcpy(&linux, raw, sizeof(sockaddr_in));
    linux.ss_family = AF_INET;
    len = sizeof(sockaddr_in);
  } else if (storage.ss_family == WS_AF_INET6) {
    std::memcpy(&linux, raw, sizeof(sockaddr_in6));
    linux.ss_family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    out.wsaError = WSAEAFNOSUPPORT;
    return out;
  }
  // A v4-mapped address names an IPv4 peer (and is fine for an AF_INET socket).
  const auto endpoint =
      sockgate::Endpoint::fromSockaddr(reinterpret_cast<const sockaddr*>(&linux), len).unmapped();
  // "must specify an address family of AF_INET or AF_INET6 along with peer
  // IP address and port number".
  if (required && (endpoint.isAnyAddress() || endpoint.port() == 0)) {
    out.wsaError = WSAEINVAL;
    return out;
  }
  out.endpoint = endpoint;
  return out;
}

bool allZero(const SOCKET_SECURITY_QUERY_TEMPLATE& t) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&t);
  return std::all_of(bytes, bytes + sizeof(t), [](uint8_t b) { return b == 0; });
}

int socketOption(int fd, int option, int* value) {
  socklen_t len = sizeof(*value);
  return ::getsockopt(fd, SOL_SOCKET, option, value, &len) == 0 ? 0 : errno;
}

// Windows handles are never 0 when valid; a pidfd could be fd 0 if the
// caller closed stdin, so move it off 0.
UINT64 handleFromPidfd(sockgate::UniqueFd pidfd) {
  if (!pidfd) return 0;
  if (pidfd.get() == 0) {
    sockgate::UniqueFd moved(::fcntl(pidfd.get(), F_DUPFD_CLOEXEC, 1));
    if (!moved) return 0;
    pidfd = std::move(moved);
  }
  return static_cast<UINT64>(pidfd.release());
}

}  // namespace

extern "C" INT WSAQuerySocketSecurity(SOCKET Socket,
                                      const SOCKET_SECURITY_QUERY_TEMPLATE* SecurityQueryTemplate,
                                      ULONG SecurityQueryTemplateLen,
                                      SOCKET_SECURITY_QUERY_INFO* SecurityQueryInfo,
                                      ULONG* SecurityQueryInfoLen, LPWSAOVERLAPPED /*Overlapped*/,
                                      LPWSAOVERLAPPED_COMPLETION_ROUTINE /*CompletionRoutine*/) {
  if (SecurityQueryInfoLen == nullptr) return failWith(WSAEFAULT);

  int family = 0;
  int type = 0;
  int protocol = 0;
  if (const int err = socketOption(Socket, SO_DOMAIN, &family); err != 0) {
    return failWith(err == ENOTSOCK || err == EBADF ? WSAENOTSOCK
                                                    : sockgate::winsock::wsaFromErrno(err));
  }
  if (socketOption(Socket, SO_TYPE, &type) != 0 ||
      socketOption(Socket, SO_PROTOCOL, &protocol) != 0) {
    return failWith(sockgate::winsock::wsaFromErrno(errno));
  }
  if ((family != AF_INET && family != AF_INET6) || (type != SOCK_STREAM && type != SOCK_DGRAM)) {
    return failWith(WSAEINVAL);
  }
  const bool isTcp = protocol == IPPROTO_TCP;

  // The template: optional (NULL, length 0) only for TCP.
  SOCKET_SECURITY_QUERY_TEMPLATE query{};
  bool haveTemplate = false;
  if (SecurityQueryTemplate == nullptr) {
    if (SecurityQueryTemplateLen != 0) return failWith(WSAEFAULT);
    if (!isTcp) return failWith(WSAEMSGSIZE);
  } else if (SecurityQueryTemplateLen == 0 && isTcp) {
    // "may be zero if the Socket parameter was created with IPPROTO_TCP".
  } else {
    if (SecurityQueryTemplateLen < kTemplateSize) return failWith(WSAEMSGSIZE);
    std::memcpy(&query, SecurityQueryTemplate, kTemplateSize);
    haveTemplate = true;
  }
  const bool defaultQuery = !haveTemplate || allZero(query);
  // Read as an integer: a caller's out-of-range value in an enum object is
  // undefined behaviour to load (found by wsa_query_security_fuzz).
  uint32_t requestedProtocol = 0;
  std::memcpy(&requestedProtocol, &query, sizeof(requestedProtocol));
  if (requestedProtocol != SOCKET_SECURITY_PROTOCOL_DEFAULT &&
      requestedProtocol != SOCKET_SECURITY_PROTOCOL_IPSEC) {
    // IPSEC2 needs the _IPSEC2 structures, which sockgate does not provide.
    return failWith(WSAEINVAL);
  }
  const PeerAddressCheck peer = convertPeerAddress(query.PeerAddress, !isTcp);
  if (peer.wsaError != 0) return failWith(peer.wsaError);
  if (peer.endpoint && family == AF_INET && peer.endpoint->family() == AF_INET6)
    return failWith(WSAEAFNOSUPPORT);

  // Sizing: a NULL or short buffer gets the size it needs.
  if (SecurityQueryInfo == nullptr || *SecurityQueryInfoLen < kInfoSize) {
    *SecurityQueryInfoLen = kInfoSize;
    return failWith(WSAEMSGSIZE);
  }

  const bool wantHandles = !defaultQuery && query.PeerTokenAccessMask != 0;
  sockgate::QueryOptions options;
  // A connected TCP socket names its peer; the template's address is for
  // connectionless sockets (as WSAImpersonateSocketPeer ignores PeerAddr).
  if (!isTcp) options.peer = peer.endpoint;
  options.wantPeerProcess = wantHandles;
  options.wantPidfd = wantHandles;
  options.wantKtls = false;
  options.wantLabel = false;
  options.wantIpsec = true;
  auto result = sockgate::querySocketSecurity(Socket, options);
  if (!result) {
    const int err = result.error().code;
    return failWith(err == ENOTSOCK || err == EBADF ? WSAENOTSOCK
                                                    : sockgate::winsock::wsaFromErrno(err));
  }

  SOCKET_SECURITY_QUERY_INFO info{};
  info.Flags = result->flags;
  if (!defaultQuery) {
    info.SecurityProtocol = result->protocol == sockgate::SecurityProtocol::kIpsec
                                ? SOCKET_SECURITY_PROTOCOL_IPSEC
                                : SOCKET_SECURITY_PROTOCOL_DEFAULT;
    if (wantHandles && result->peer)
      info.PeerApplicationAccessTokenHandle = handleFromPidfd(std::move(result->peer->pidfd));
  }
  std::memcpy(SecurityQueryInfo, &info, kInfoSize);
  *SecurityQueryInfoLen = kInfoSize;
  return 0;
}
