// sockmap_read_probe: can this kernel carry a flow's bytes in a sockmap
// without breaking the application's blocking reads?
//
//   sockmap_read_probe        prints one JSON line; exit 0 either way,
//                             2 if the probe itself could not run
//
// Handing a flow's upload to the kernel (an sk_msg program on the
// application's socket) puts that socket in a sockhash, which swaps its
// recvmsg for tcp_bpf_recvmsg. The probe puts one end of a loopback TCP
// pair in a sockhash (no program needed: joining the map is enough) and
// blocks a thread in recv() on it, twice: once until the peer's FIN, and
// once while another thread sends 8 MiB on the same socket to a peer that
// reads slowly (a full-duplex blocking application), then the FIN. A
// correct kernel ends both recv() calls with 0 (EOF); tcp_bpf_recvmsg
// answers a reader woken by the socket's write space with EAGAIN. The
// benchmark prints the answer as the reason the bypass is not on (see
// README, Benchmarks).
#include <bpf/bpf.h>
#include <netinet/in.h>
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
#include <vector>

#include "listen_loopback.h"

namespace {

[[noreturn]] void cannot(const std::string& what) {
  std::printf("{\"probe\": \"error\", \"what\": \"%s: %s\"}\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

struct Pair {
  int reader = -1;  // joins the sockhash
  int writer = -1;  // sends the FIN
};

Pair connectedPair() {
  int lfd = sockgate::bench::listenLoopback(0);
  if (lfd < 0) cannot("listen on 127.0.0.1");
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) cannot("getsockname");
  Pair p;
  p.reader = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(p.reader, reinterpret_cast<sockaddr*>(&a), len) != 0) cannot("connect");
  p.writer = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (p.writer < 0) cannot("accept");
  ::close(lfd);
  return p;
}

struct Outcome {
  ssize_t result = -2;
  int err = 0;
  [[nodiscard]] bool eof() const { return result == 0; }
};

// What a blocking recv() on `p.reader` returns when the peer's FIN comes
// while it waits; with `duplex`, another thread first sends 8 MiB on the
// same socket while the peer reads them slowly.
Outcome recvAtFin(const Pair& p, bool duplex) {
  Outcome o;
  std::thread reader([&] {
    char b;
    o.result = ::recv(p.reader, &b, 1, 0);
    o.err = o.result < 0 ? errno : 0;
  });
  // Long enough for the reader to be asleep in recv() before anything comes.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  if (duplex) {
    constexpr size_t kChunk = 1 << 20, kChunks = 8;
    std::thread sender([&] {
      std::vector<char> buf(kChunk);
      for (size_t i = 0; i < kChunks; ++i) ::send(p.reader, buf.data(), buf.size(), MSG_NOSIGNAL);
    });
    std::vector<char> sink(1 << 16);
    for (size_t total = 0; total < kChunk * kChunks;) {
      ssize_t n = ::recv(p.writer, sink.data(), sink.size(), 0);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
      ::usleep(200);  // slower than the sender: its buffer fills and drains
    }
    sender.join();
  }
  ::shutdown(p.writer, SHUT_WR);
  reader.join();
  return o;
}

std::string json(const Outcome& o) {
  return "{\"result\": " + std::to_string(o.result) + ", \"errno\": \"" +
         (o.err ? std::strerror(o.err) : "") + "\", \"eof\": " + (o.eof() ? "true" : "false") + "}";
}

}  // namespace

int main() {
  // Without the map first: the probe's own check that the setup is sound.
  for (bool duplex : {false, true}) {
    Pair plain = connectedPair();
    Outcome o = recvAtFin(plain, duplex);
    if (!o.eof()) {
      errno = o.err;
      cannot(std::string("recv on a plain socket did not end with EOF") +
             (duplex ? " (duplex)" : ""));
    }
    ::close(plain.reader);
    ::close(plain.writer);
  }

  int map = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "sg_read_probe", sizeof(uint32_t),
                           sizeof(uint64_t), 2, nullptr);
  if (map < 0) cannot("create a sockhash (needs root)");
  Outcome outcomes[2];
  for (uint32_t duplex : {0u, 1u}) {
    Pair p = connectedPair();
    uint64_t value = static_cast<uint64_t>(p.reader);
    if (bpf_map_update_elem(map, &duplex, &value, BPF_ANY) != 0)
      cannot("add a socket to the sockhash");
    outcomes[duplex] = recvAtFin(p, duplex != 0);
    ::close(p.reader);
    ::close(p.writer);
  }
  ::close(map);
  std::printf(
      "{\"probe\": \"blocking recv() on a socket in a sockhash until the peer's FIN\", "
      "\"fin_only\": %s, \"while_another_thread_sends\": %s, \"blocking_reads_intact\": %s}\n",
      json(outcomes[0]).c_str(), json(outcomes[1]).c_str(),
      outcomes[0].eof() && outcomes[1].eof() ? "true" : "false");
  return 0;
}
