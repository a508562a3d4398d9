// A test's own TCP listener and a bounded accept(), for tests that play the
// destination or the service themselves. Header-only: it reports through
// gtest, which the support library does not link.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>

#include "sockgate/endpoint.h"
#include "sockgate/unique_fd.h"

namespace sockgate::testing {

inline UniqueFd listenOn(const Endpoint& ep) {
  UniqueFd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ep.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  EXPECT_EQ(::bind(fd.get(), ep.sockaddrPtr(), ep.length()), 0) << ep.toString();
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  return fd;
}

// The next connection, or an invalid fd if none comes within `timeout`.
inline UniqueFd acceptWithin(int listenFd, std::chrono::milliseconds timeout) {
  pollfd p{listenFd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return UniqueFd();
  return UniqueFd(::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC));
}

}  // namespace sockgate::testing
