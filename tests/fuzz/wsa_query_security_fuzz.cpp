// Arbitrary templates, template lengths, buffer sizes and NULL choices fed to
// WSAQuerySocketSecurity on real sockets (a loopback TCP pair, a UDP socket,
// a non-socket): every path must answer with a code, never crash, and any
// returned pidfd handle is the caller's to close.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sockgate/winsock.h"

namespace {

struct Sockets {
  int tcp = -1;
  int udp = -1;
  int file = -1;
  Sockets() {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(listener, 1);
    socklen_t len = sizeof(a);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    connect(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    accept(listener, nullptr, nullptr);  // kept open: the peer of tcp
    udp = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_port = 0;
    bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    file = dup(0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Sockets sockets;
  if (size < 8) return 0;
  const uint8_t which = data[0] % 3;
  const uint8_t nulls = data[1];
  uint16_t templateLen = 0;
  uint16_t infoLen = 0;
  std::memcpy(&templateLen, data + 2, 2);
  std::memcpy(&infoLen, data + 4, 2);
  data += 8;
  size -= 8;
  // Template bytes come from the input; the buffer handed over is as large
  // as the length claims, so only the rules (not our harness) are fuzzed.
  const size_t templateBytes = templateLen % 512;
  std::vector<uint8_t> tmpl(std::max<size_t>(templateBytes, sizeof(SOCKET_SECURITY_QUERY_TEMPLATE)),
                            0);
  std::memcpy(tmpl.data(), data, std::min(size, tmpl.size()));
  std::vector<uint8_t> info(std::max<size_t>(infoLen % 64, 1));
  ULONG infoSize = static_cast<ULONG>(infoLen % 64);
  const SOCKET s = which == 0 ? sockets.tcp : which == 1 ? sockets.udp : sockets.file;
  const auto* templatePtr =
      (nulls & 1) ? nullptr : reinterpret_cast<const SOCKET_SECURITY_QUERY_TEMPLATE*>(tmpl.data());
  auto* infoPtr =
      (nulls & 2) ? nullptr : reinterpret_cast<SOCKET_SECURITY_QUERY_INFO*>(info.data());
  ULONG* infoLenPtr = (nulls & 4) ? nullptr : &infoSize;
  if (infoPtr != nullptr && infoSize > info.size()) infoSize = static_cast<ULONG>(info.size());
  const int rc = WSAQuerySocketSecurity(s, templatePtr, static_cast<ULONG>(templateBytes), infoPtr,
                                        infoLenPtr, nullptr, nullptr);
  if (rc == 0 && infoPtr != nullptr) {
    SOCKET_SECURITY_QUERY_INFO out;
    std::memcpy(&out, info.data(), sizeof(out));
    if (out.PeerApplicationAccessTokenHandle != 0)
      close(static_cast<int>(out.PeerApplicationAccessTokenHandle));
  }
  return 0;
}
