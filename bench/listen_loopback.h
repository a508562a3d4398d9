// The benchmark servers' listener: 127.0.0.1:PORT, blocking, a backlog deep
// enough for wrk and connect_cost bursts.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "sockgate/endpoint.h"

namespace sockgate::bench {

// The listening fd, or -1 with errno set (the caller names what failed).
inline int listenLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const Endpoint where = Endpoint::loopback(AF_INET, port);
  if (::bind(fd, where.sockaddrPtr(), where.length()) != 0 || ::listen(fd, 4096) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace sockgate::bench
