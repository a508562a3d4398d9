// Arbitrary (af, type, protocol) triples through validateSocket() and
// WS_socket(): never a crash, always a documented answer, and WS_socket
// never disagrees with the validation it wraps. Any socket made is closed.
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sockgate/socket_validation.h"
#include "sockgate/winsock.h"

namespace {

int sockOpt(SOCKET s, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  return getsockopt(s, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// What WS_socket may add to an accepted triple: the Linux reasons the page
// has a code for (docs/winsock.md, "socket()").
bool documentedLinuxRefusal(const sockgate::ResolvedSocket& r, int e) {
  switch (e) {
    case WSAEAFNOSUPPORT:
      return r.af == WS_AF_NETBIOS || r.af == WS_AF_IRDA || r.af == WS_AF_BTH;
    case WSAESOCKTNOSUPPORT:
      return r.type == WS_SOCK_RDM;
    case WSAEPROTONOSUPPORT:
      return r.type == WS_SOCK_RAW && r.protocol == 0;
    case WSAEACCES:
      return r.type == WS_SOCK_RAW;
    case WSAEMFILE:
    case WSAENOBUFS:
    case WSAENETDOWN:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool started = [] {
    WSADATA d;
    return WSAStartup(MAKEWORD(2, 2), &d) == 0;
  }();
  if (!started) std::abort();
  int v[3] = {0, 0, 0};
  std::memcpy(v, data, size < sizeof(v) ? size : sizeof(v));
  const auto r = sockgate::validateSocket(v[0], v[1], v[2]);
  const auto rule = r ? r->rule : r.error().rule;
  bool known = false;
  for (auto name : sockgate::socketRuleNames()) known = known || name == rule;
  if (!known) std::abort();
  if (!r) {
    const int e = r.error().wsaError;
    if (e != WSAEINVAL && e != WSAEAFNOSUPPORT && e != WSAESOCKTNOSUPPORT &&
        e != WSAEPROTONOSUPPORT)
      std::abort();
  } else {
    const int af = r->af;
    const bool family = af == WS_AF_INET || af == WS_AF_INET6 || af == WS_AF_NETBIOS ||
                        af == WS_AF_IRDA || af == WS_AF_BTH;
    if (!family || r->type < WS_SOCK_STREAM || r->type > WS_SOCK_SEQPACKET) std::abort();
    // Fields the caller gave are kept; only zero ones are filled in.
    if ((v[0] != 0 && v[0] != af) || (v[1] != 0 && v[1] != r->type) ||
        (v[2] != 0 && v[2] != r->protocol))
      std::abort();
  }
  WSASetLastError(0);
  const SOCKET s = WS_socket(v[0], v[1], v[2]);
  const int err = WSAGetLastError();
  if (!r) {
    if (s != INVALID_SOCKET || err != r.error().wsaError) std::abort();
    return 0;
  }
  if (s == INVALID_SOCKET) {
    if (!documentedLinuxRefusal(*r, err)) std::abort();
    return 0;
  }
  const int domain = sockOpt(s, SO_DOMAIN);
  const int expected = r->af == WS_AF_INET    ? AF_INET
                       : r->af == WS_AF_INET6 ? AF_INET6
                                              : AF_BLUETOOTH;
  if (domain != expected || sockOpt(s, SO_TYPE) != r->type) std::abort();
  if (domain != AF_BLUETOOTH && sockOpt(s, SO_PROTOCOL) != r->protocol) std::abort();
  if (closesocket(s) != 0) std::abort();
  return 0;
}
