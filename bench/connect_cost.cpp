// connect_cost: what connect() costs an application, measured from inside it.
//
//   connect_cost serve PORT      accept on 127.0.0.1:PORT and close at once
//   connect_cost run HOST:PORT N N times socket() + connect() + close(); prints
//                                one JSON line with ns per connect()
//   connect_cost run HOST:PORT N --hook KIND CGROUP
//                                the same with a least hook attached to
//                                CGROUP, the cgroup it runs in, for the loop:
//                                bare     connect4 of two instructions (allow)
//                                state    connect4 that creates socket storage
//                                         for the flow (connect_floor.bpf.c)
//                                state+tracepoint  and a program on the TCP
//                                         state tracepoint that finds that
//                                         storage when the flow is established
//
// The benchmark runs `run` four ways: outside any governed cgroup (no hook),
// with the bare hook (the anchor: what any cgroup connect hook costs by
// being there at all), under sockgate's hooks with a service whose filter
// does not match, and matching (redirected to a second `serve`); and the
// two floors, which say what any redirect that keeps state with the socket
// and learns the flow's 4-tuple when it is established pays at the least. Each
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

#include "connect_floor.skel.h"
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

int openCgroup(const char* path) {
  int cg = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) die("open the cgroup for the hook");
  return cg;
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
  int cg = openCgroup(cgroup);
  int link = bpf_link_create(prog, cg, BPF_CGROUP_INET4_CONNECT, nullptr);
  if (link < 0) die("attach the bare connect4 program");
  ::close(cg);
  return link;
}

// The floors, attached with bpf_links: they go when this process ends.
connect_floor* attachFloor(const char* cgroup, bool tracepoint) {
  connect_floor* skel = connect_floor__open_and_load();
  if (!skel) die("load connect_floor");
  int cg = openCgroup(cgroup);
  if (!bpf_program__attach_cgroup(skel->progs.floor_connect4, cg)) die("attach floor_connect4");
  ::close(cg);
  if (tracepoint && !bpf_program__attach(skel->progs.floor_established))
    die("attach floor_established to sock/inet_sock_set_state");
  return skel;
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
  const std::string hook = argc >= 7 && std::string(argv[4]) == "--hook" ? argv[5] : "";
  const bool hookOk =
      (hook == "bare" || hook == "state" || hook == "state+tracepoint") && argc == 7;
  if (mode == "run" && (argc == 4 || hookOk)) {
    auto to = Endpoint::parse(argv[2]);
    if (!to) {
      std::fprintf(stderr, "connect_cost: %s\n", to.error().message().c_str());
      return 2;
    }
    int link = hook == "bare" ? attachBareHook(argv[6]) : -1;
    connect_floor* floor = nullptr;
    if (hook == "state" || hook == "state+tracepoint")
      floor = attachFloor(argv[6], hook == "state+tracepoint");
    int rc = run(*to, std::atol(argv[3]));
    if (link >= 0) ::close(link);
    connect_floor__destroy(floor);
    return rc;
  }
  std::fprintf(stderr,
               "usage: connect_cost serve PORT | run HOST:PORT N "
               "[--hook bare|state|state+tracepoint CGROUP]\n");
  return 2;
}
