// The few TCP_INFO fields the query needs, read through the kernel's own
// struct (glibc's <netinet/tcp.h> copy predates tcpi_segs_in).
#pragma once

#include <cstdint>

#include "sockgate/error.h"

namespace sockgate::security {

struct TcpState {
  uint8_t state = 0;    // TCP_ESTABLISHED (1) ... TCP_CLOSE (7), TCP_LISTEN (10)
  uint32_t segsIn = 0;  // segments received, 0 if the socket never heard from a peer
};

inline constexpr uint8_t kTcpClose = 7;

[[nodiscard]] Result<TcpState> readTcpState(int fd);

}  // namespace sockgate::security
