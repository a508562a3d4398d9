// Arbitrary (af, type, protocol) triples through validateSocket() and
// WS_socket(): never a crash, always a documented answer, and WS_socket
// never disagrees with the validation it wraps. Any socket made is closed.
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sockgate/socket_validation.h"
#include "sockgate/winsock.h"

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
    if (e != WSAEINVAL && e != WSAEAFNOSUPPORT && e != WSAESOCKTNOSUPPORT && e != WSAEPROTONOSUPPORT) std::abort();
  } else if (r->type < WS_SOCK_STREAM || r->type > WS_SOCK_SEQPACKET || r->af == WS_AF_UNSPEC) {
    std::abort();
  }
  WSASetLastError(0);
  const SOCKET s = WS_socket(v[0], v[1], v[2]);
  if (!r && (s != INVALID_SOCKET || WSAGetLastError() != r.error().wsaError)) std::abort();
  if (s != INVALID_SOCKET) {
    int type = -1;
    socklen_t len = sizeof(type);
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != r->type) std::abort();
    closesocket(s);
  }
  return 0;
}
