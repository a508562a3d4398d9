// hold_conns: many idle connections through a proxy, to weigh what each one
// costs the proxy while nothing moves.
//
//   hold_conns serve PORT       accept on 127.0.0.1:PORT, send each client one
//                               byte, then hold the connection open
//   hold_conns hold HOST:PORT N print "ready"; on a line from stdin open N
//                               connections and read the byte on each (so
//                               every flow is proven end to end), print
//                               "held N"; on EOF of stdin close them all
//
// The byte also means every flow moved data once: a proxy that allocates
// buffers on first use and keeps them is weighed with them.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "listen_loopback.h"
#include "sockgate/endpoint.h"

using sockgate::Endpoint;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "hold_conns: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

// 10,000 connections need more descriptors than the usual soft limit.
void raiseFdLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

int serve(uint16_t port) {
  raiseFdLimit();
  int lfd = sockgate::bench::listenLoopback(port);
  if (lfd < 0) die("listen on 127.0.0.1");
  std::printf("ready\n");
  std::fflush(stdout);
  // Held connections are only closed when the peer goes away: watch them for
  // EOF so a finished round frees its descriptors for the next one.
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        if (::send(c, "x", 1, MSG_NOSIGNAL) != 1) {
          ::close(c);
          continue;
        }
        epoll_event cev{};
        cev.events = EPOLLIN | EPOLLRDHUP;
        cev.data.fd = c;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
      } else {
        char buf[64];
        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) ::close(fd);
      }
    }
  }
}

int hold(const Endpoint& to, long n) {
  raiseFdLimit();
  std::printf("ready\n");
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line)) return 0;

  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(n));
  const timeval tenSeconds{10, 0};
  for (long i = 0; i < n; ++i) {
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket #" + std::to_string(i));
    if (::connect(fd, to.sockaddrPtr(), to.length()) != 0) die("connect #" + std::to_string(i));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tenSeconds, sizeof tenSeconds);
    fds.push_back(fd);
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    char b = 0;
    if (::recv(fds[i], &b, 1, MSG_WAITALL) != 1 || b != 'x')
      die("no byte from the server on connection #" + std::to_string(i));
  }
  std::printf("held %zu\n", fds.size());
  std::fflush(stdout);
  while (std::getline(std::cin, line)) {
  }
  for (int fd : fds) ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 3) return serve(static_cast<uint16_t>(std::atoi(argv[2])));
  if (mode == "hold" && argc == 4) {
    auto to = sockgate::Endpoint::parse(argv[2]);
    if (!to) {
      std::fprintf(stderr, "hold_conns: %s\n", to.error().message().c_str());
      return 2;
    }
    return hold(*to, std::atol(argv[3]));
  }
  std::fprintf(stderr, "usage: hold_conns serve PORT | hold HOST:PORT N\n");
  return 2;
}
