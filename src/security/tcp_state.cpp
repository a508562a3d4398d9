#include "security/tcp_state.h"

#include <linux/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#ifndef SOL_TCP
#define SOL_TCP 6
#endif

namespace sockgate::security {

Result<TcpState> readTcpState(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, SOL_TCP, TCP_INFO, &info, &len) != 0)
    return failErrno("getsockopt TCP_INFO");
  TcpState out;
  out.state = info.tcpi_state;
  // Older kernels return a shorter struct; the unfilled tail stays 0.
  out.segsIn = info.tcpi_segs_in;
  return out;
}

}  // namespace sockgate::security
