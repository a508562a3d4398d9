// connect_cost: what connect() costs an application, measured from inside it.
//
//   connect_cost serve PORT      accept on 127.0.0.1:PORT and close at once
//   connect_cost run HOST:PORT N N times socket() + connect() + close(); prints
//                                one JSON line with ns per connect()
//   connect_cost run HOST:PORT N --bare-hook CGROUP
//                                the same with the least eBPF connect hook
//                                there is (two instructions: allow) attached to
//                                CGROUP, the cgroup it runs in, for the loop
//
// The benchmark runs `run` four ways: outside any governed cgroup (no hook),
// with the bare hook (the anchor: what any cgroup connect hook costs by
// being there at all), under sockgate's hooks with a service whose filter
// does not match, and matching (redirected to a second `serve`). Each
// iteration is timed on its own and the median reported, so a compile job
// that preempts the loop on this shared machine moves the mean, not the
// figure.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
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

// A cgroup/connect4 program that lets every connect() through, attached
// with a bpf_link to `cgroup`: the kernel detaches it when this process ends.
int attachBareHook(const char* cgroup) {
  const bpf_insn allow[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},  // r0 = 1
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
  int prog = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "bare_connect4", "GPL", allow, 2, &opts);
  if (prog < 0) die("load the bare connect4 program");
  int cg = ::open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) die("open the cgroup for the bare hook");
  int link = bpf_link_create(prog, cg, BPF_CGROUP_INET4_CONNECT, nullptr);
  if (link < 0) die("attach the bare connect4 program");
  ::close(cg);
  return link;
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
  const bool bare = argc == 6 && std::string(argv[4]) == "--bare-hook";
  if (mode == "run" && (argc == 4 || bare)) {
    auto to = Endpoint::parse(argv[2]);
    if (!to) {
      std::fprintf(stderr, "connect_cost: %s\n", to.error().message().c_str());
      return 2;
    }
    int link = bare ? attachBareHook(argv[5]) : -1;
    int rc = run(*to, std::atol(argv[3]));
    if (link >= 0) ::close(link);
    return rc;
  }
  std::fprintf(stderr, "usage: connect_cost serve PORT | run HOST:PORT N [--bare-hook CGROUP]\n");
  return 2;
}
