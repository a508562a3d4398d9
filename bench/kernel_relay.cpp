// kernel_relay: the least TCP relay there is, twice, to weigh the kernel's
// way of relaying a flow against splice() with everything else equal.
//
//   kernel_relay serve PORT DST_PORT splice|sockmap
//
// Accepts on 127.0.0.1:PORT and, for each connection, connects to
// 127.0.0.1:DST_PORT and relays both ways until both have ended:
//
//   splice   one thread per direction moves the bytes through a pipe with
//            splice(), as the built-in service does;
//   sockmap  both sockets join a sockhash whose sk_skb verdict program
//            (kernel_relay.bpf.c) sends every segment that arrives on one
//            out of the other: the flow "handed to the kernel (sockmap /
//            sk_skb redirect)" of DESIGN.md. User space only waits for the
//            ends, and passes each FIN on once the other socket's TCP has
//            taken every byte. A socket whose peer has already half-closed
//            cannot join a sockmap; such a flow falls back to splice().
//
// The benchmark runs iperf3 through both (README, Benchmarks): it is how
// `make bench` measures whether that hand-over would lift the built-in
// service's bulk throughput, not a guess.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/tcp.h>  // the full tcp_info: glibc's stops before the byte counts
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "kernel_relay.skel.h"
#include "listen_loopback.h"
#include "proxy/pipe_pool.h"
#include "sockgate/endpoint.h"

namespace {

using Clock = std::chrono::steady_clock;

void say(const std::string& what) {
  std::fprintf(stderr, "kernel_relay: %s: %s\n", what.c_str(), std::strerror(errno));
}

uint64_t cookieOf(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof c;
  ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len);
  return c;
}

// splice() one direction until the source ends, then pass the FIN on.
void spliceOneWay(int src, int dst) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    say("pipe2");
    ::shutdown(dst, SHUT_WR);
    return;
  }
  (void)::fcntl(p[1], F_SETPIPE_SZ, sockgate::proxy::PipePool::kPipeBytes);  // as the service's
  for (;;) {
    ssize_t n = ::splice(src, nullptr, p[1], nullptr, 1 << 20, SPLICE_F_MOVE);
    if (n <= 0) break;
    while (n > 0) {
      ssize_t m = ::splice(p[0], nullptr, dst, nullptr, static_cast<size_t>(n), SPLICE_F_MOVE);
      if (m <= 0) break;
      n -= m;
    }
    if (n > 0) break;  // the destination is gone
  }
  ::shutdown(dst, SHUT_WR);
  ::close(p[0]);
  ::close(p[1]);
}

void relayWithSplice(int a, int b) {
  std::thread back(spliceOneWay, b, a);
  spliceOneWay(a, b);
  back.join();
}

// Payload bytes `fd`'s TCP has taken so far: sent once, or still waiting
// to be. The FIN may follow only once this has caught up with what the
// peer wrote, or bytes still in the psock's backlog would be cut off.
uint64_t bytesTakenBy(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
    return UINT64_MAX;  // gone: nothing left to wait for
  return info.tcpi_bytes_sent - info.tcpi_bytes_retrans + info.tcpi_notsent_bytes;
}

class SockmapRelay {
 public:
  bool load() {
    skel_ = kernel_relay__open_and_load();
    if (!skel_) {
      say("load kernel_relay.bpf.o");
      return false;
    }
    if (::bpf_prog_attach(bpf_program__fd(skel_->progs.relay_verdict),
                          bpf_map__fd(skel_->maps.relay_socks), BPF_SK_SKB_STREAM_VERDICT,
                          0) != 0) {
      say("attach the sk_skb verdict program");
      return false;
    }
    return true;
  }

  void relay(int a, int b) {
    const uint64_t ca = cookieOf(a), cb = cookieOf(b);
    const int peers = bpf_map__fd(skel_->maps.relay_peer);
    const int socks = bpf_map__fd(skel_->maps.relay_socks);
    const int targets = bpf_map__fd(skel_->maps.relay_targets);
    uint64_t fa = static_cast<uint64_t>(a), fb = static_cast<uint64_t>(b);
    // In this order: see kernel_relay.bpf.c.
    if (::bpf_map_update_elem(targets, &ca, &fa, BPF_ANY) != 0 ||
        ::bpf_map_update_elem(targets, &cb, &fb, BPF_ANY) != 0 ||
        ::bpf_map_update_elem(peers, &ca, &cb, BPF_ANY) != 0 ||
        ::bpf_map_update_elem(peers, &cb, &ca, BPF_ANY) != 0 ||
        ::bpf_map_update_elem(socks, &ca, &fa, BPF_ANY) != 0 ||
        ::bpf_map_update_elem(socks, &cb, &fb, BPF_ANY) != 0) {
      // Only established sockets may join: one whose peer has already
      // sent its FIN (CLOSE_WAIT) gets EOPNOTSUPP. splice() still works.
      if (errno != EOPNOTSUPP) say("join the sockhash");
      forget(ca, cb);
      relayWithSplice(a, b);
      return;
    }
    // Bytes that arrived before the sockets joined wait in the receive
    // queue until the next segment; setting SO_RCVLOWAT runs data_ready,
    // which hands them (in order, first) to the verdict program now.
    int one = 1;
    ::setsockopt(a, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    ::setsockopt(b, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);

    bool ended[2] = {false, false};
    while (!ended[0] || !ended[1]) {
      pollfd f[2] = {{a, static_cast<short>(ended[0] ? 0 : POLLRDHUP), 0},
                     {b, static_cast<short>(ended[1] ? 0 : POLLRDHUP), 0}};
      if (::poll(f, 2, -1) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (ended[i] || !(f[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) continue;
        ended[i] = true;
        const int dst = i == 0 ? b : a;
        waitUntilSent(dst, i == 0 ? a : b, f[i].revents & POLLRDHUP);
        ::shutdown(dst, SHUT_WR);
      }
    }
    forget(ca, cb);
  }

 private:
  // Until dst's TCP has taken every byte src received (src's own count of
  // received bytes), or 5 s.
  static void waitUntilSent(int dst, int src, bool fin) {
    tcp_info in{};
    socklen_t len = sizeof in;
    if (::getsockopt(src, IPPROTO_TCP, TCP_INFO, &in, &len) != 0) return;
    // The count includes a FIN that came.
    const uint64_t received = in.tcpi_bytes_received - (fin && in.tcpi_bytes_received > 0 ? 1 : 0);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (bytesTakenBy(dst) < received && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }

  void forget(uint64_t ca, uint64_t cb) {
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_socks), &ca);
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_socks), &cb);
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_targets), &ca);
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_targets), &cb);
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_peer), &ca);
    ::bpf_map_delete_elem(bpf_map__fd(skel_->maps.relay_peer), &cb);
  }

  kernel_relay* skel_ = nullptr;
};

int serve(uint16_t port, uint16_t dstPort, bool sockmap) {
  SockmapRelay kernel;
  if (sockmap && !kernel.load()) return 2;
  int lfd = sockgate::bench::listenLoopback(port);
  if (lfd < 0) {
    say("listen on 127.0.0.1:" + std::to_string(port));
    return 2;
  }
  const sockgate::Endpoint dst = sockgate::Endpoint::loopback(AF_INET, dstPort);
  for (;;) {
    int a = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (a < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      say("accept");
      return 1;
    }
    int b = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b < 0 || ::connect(b, dst.sockaddrPtr(), dst.length()) != 0) {
      say("connect to " + dst.toString());
      ::close(a);
      if (b >= 0) ::close(b);
      continue;
    }
    std::thread([a, b, sockmap, &kernel] {
      if (sockmap)
        kernel.relay(a, b);
      else
        relayWithSplice(a, b);
      ::close(a);
      ::close(b);
    }).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // a peer that left is an EPIPE, handled where it happens
  const std::string mode = argc == 5 ? argv[4] : "";
  if (argc != 5 || std::string(argv[1]) != "serve" || (mode != "splice" && mode != "sockmap")) {
    std::fprintf(stderr, "usage: kernel_relay serve PORT DST_PORT splice|sockmap\n");
    return 2;
  }
  return serve(static_cast<uint16_t>(std::atoi(argv[2])), static_cast<uint16_t>(std::atoi(argv[3])),
               mode == "sockmap");
}
