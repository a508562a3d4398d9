// connect_cost: what connect() costs an application, measured from inside it.
//
//   connect_cost serve PORT      accept on 127.0.0.1:PORT and close at once
//   connect_cost run HOST:PORT N N times socket() + connect() + close(); prints
//                                one JSON line with ns per connect()
//
// The benchmark runs `run` three ways: outside any governed cgroup (no hook),
// under the hook with a service whose filter does not match, and matching
// (redirected to a second `serve`). Each iteration is timed on its own and
// the median reported, so a compile job that preempts the loop on this
// shared machine moves the mean, not the figure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "listen_loopback.h"
#include "sockgate/endpoint.h"

using sockgate::Endpoint;

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "connect_cost: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int serve(uint16_t port) {
  int fd = sockgate::bench::listenLoopback(port);
  if (fd < 0) die("listen on 127.0.0.1");
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0)
      ::close(c);
    else if (errno != EINTR && errno != ECONNABORTED)
      die("accept");
  }
}

// SO_LINGER {1,0}: close() sends RST, so the loop leaves no TIME_WAIT behind
// and N is not bounded by the ephemeral port range.
int run(const Endpoint& to, long n) {
  const long warmup = std::max(200L, n / 20);
  std::vector<uint32_t> connectNs;
  std::vector<uint32_t> loopNs;
  connectNs.reserve(static_cast<size_t>(n));
  loopNs.reserve(static_cast<size_t>(n));
  const linger rst{1, 0};
  uint64_t totalConnect = 0;
  for (long i = 0; i < warmup + n; ++i) {
    uint64_t t0 = nowNs();
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    uint64_t t1 = nowNs();
    if (::connect(fd, to.sockaddrPtr(), to.length()) != 0) die("connect");
    uint64_t t2 = nowNs();
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    ::close(fd);
    uint64_t t3 = nowNs();
    if (i < warmup) continue;
    connectNs.push_back(static_cast<uint32_t>(t2 - t1));
    loopNs.push_back(static_cast<uint32_t>(t3 - t0));
    totalConnect += t2 - t1;
  }
  auto median = [](std::vector<uint32_t>& v) {
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  auto p99 = [](std::vector<uint32_t>& v) {
    size_t k = v.size() * 99 / 100;
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
  };
  std::printf(
      "{\"n\": %ld, \"connect_median_ns\": %u, \"connect_p99_ns\": %u, "
      "\"connect_mean_ns\": %.1f, \"loop_median_ns\": %u}\n",
      n, median(connectNs), p99(connectNs),
      static_cast<double>(totalConnect) / static_cast<double>(n), median(loopNs));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 3) return serve(static_cast<uint16_t>(std::atoi(argv[2])));
  if (mode == "run" && argc == 4) {
    auto to = Endpoint::parse(argv[2]);
    if (!to) {
      std::fprintf(stderr, "connect_cost: %s\n", to.error().message().c_str());
      return 2;
    }
    return run(*to, std::atol(argv[3]));
  }
  std::fprintf(stderr, "usage: connect_cost serve PORT | run HOST:PORT N\n");
  return 2;
}
