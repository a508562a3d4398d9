// One relay direction over real loopback TCP sockets (no privileges needed):
// bytes arrive intact, backpressure holds, half-close and resets propagate,
// on both of its paths (copies for small transfers, splice() for bulk).
#include "proxy/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

namespace sockgate::proxy {
namespace {

struct TcpPair {
  UniqueFd a, b;  // a connected to b
};

TcpPair tcpPair() {
  UniqueFd l(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  EXPECT_EQ(::listen(l.get(), 1), 0);
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  TcpPair p;
  p.a.reset(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(::connect(p.a.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  p.b.reset(::accept(l.get(), nullptr, nullptr));
  return p;
}

void nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// client -> [x' relay y] -> server
struct Rig {
  TcpPair left = tcpPair();   // left.a: application, left.b: service side
  TcpPair right = tcpPair();  // right.a: service's outbound, right.b: destination
  PipePool pool;
  std::vector<char> copy = std::vector<char>(Relay::kCopyBufferSize);
  Relay relay{left.b.get(), right.a.get()};
  Relay::Outcome pump() { return relay.pump(pool, copy); }
  Rig() {
    nonblocking(left.b.get());
    nonblocking(right.a.get());
  }
  Relay::Outcome pumpUntilSettled() {
    Relay::Outcome o = Relay::Outcome::Blocked;
    for (int i = 0; i < 50; ++i) {
      o = pump();
      if (o != Relay::Outcome::Blocked) return o;
      pollfd p{left.b.get(), POLLIN, 0};
      ::poll(&p, 1, 10);
    }
    return o;
  }
};

std::string readAvailable(int fd, size_t want) {
  std::string out;
  char buf[65536];
  while (out.size() < want) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(Relay, MovesBytesIntactAndCountsThem) {
  Rig rig;
  std::string data(200000, '\0');
  std::mt19937 rng(1);
  for (auto& c : data) c = static_cast<char>(rng());
  ASSERT_EQ(::write(rig.left.a.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  std::string got;
  for (int i = 0; i < 200 && got.size() < data.size(); ++i) {
    rig.pump();
    pollfd p{rig.right.b.get(), POLLIN, 10};
    if (::poll(&p, 1, 10) > 0) got += readAvailable(rig.right.b.get(), 1);
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(rig.relay.bytes(), data.size());
  EXPECT_TRUE(rig.relay.bulk()) << "200 kB at once is more than the copy buffer";
  EXPECT_EQ(rig.pool.spare(), 1u) << "an empty pipe goes back to the pool";
}

TEST(Relay, HalfClosePassesTheFinOn) {
  Rig rig;
  ASSERT_EQ(::write(rig.left.a.get(), "bye", 3), 3);
  ::shutdown(rig.left.a.get(), SHUT_WR);
  EXPECT_EQ(rig.pumpUntilSettled(), Relay::Outcome::Finished);
  EXPECT_EQ(readAvailable(rig.right.b.get(), 100), "bye") << "read ends at EOF after the FIN";
  // the other direction is still open: the destination can still answer
  ASSERT_EQ(::write(rig.right.b.get(), "ok", 2), 2);
  EXPECT_EQ(readAvailable(rig.right.a.get(), 2), "ok");
}

// Writes `total` bytes into the rig faster than its destination reads
// them, and checks they all arrive, in order.
void expectBackpressureHolds(Rig& rig, size_t total) {
  std::string chunk(1 << 16, 'z');
  nonblocking(rig.left.a.get());
  size_t written = 0;
  std::string got;
  for (int round = 0; round < 100000 && got.size() < total; ++round) {
    if (written < total) {
      ssize_t n = ::write(rig.left.a.get(), chunk.data(), std::min(chunk.size(), total - written));
      if (n > 0) written += static_cast<size_t>(n);
    }
    auto o = rig.pump();
    ASSERT_EQ(o, Relay::Outcome::Blocked);
    // drain the destination only every few rounds: the relay must cope
    if (round % 8 == 0) {
      pollfd p{rig.right.b.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) {
        char buf[1 << 16];
        ssize_t n = ::read(rig.right.b.get(), buf, sizeof buf);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
      }
    }
  }
  EXPECT_EQ(got.size(), total);
  EXPECT_EQ(got.find_first_not_of('z'), std::string::npos);
}

TEST(Relay, BackpressureStopsReadingUntilTheDestinationDrains) {
  Rig rig;
  expectBackpressureHolds(rig, 8 << 20);
  EXPECT_TRUE(rig.relay.bulk()) << "reads that fill the copy buffer turn to splice()";
}

TEST(Relay, BackpressureOnTheCopyPathKeepsTheRestAside) {
  Rig rig;
  rig.copy.resize(32 << 20);  // no read fills it: every byte is copied
  expectBackpressureHolds(rig, 8 << 20);
  EXPECT_FALSE(rig.relay.bulk());
  EXPECT_FALSE(rig.relay.waitingForDst()) << "nothing left aside once the destination drained";
}

TEST(Relay, SmallTransfersAreCopiedWithoutAPipe) {
  Rig rig;
  const std::string request = "GET /small.html HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(rig.left.a.get(), request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  pollfd p{rig.left.b.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  EXPECT_EQ(rig.pump(), Relay::Outcome::Blocked);
  EXPECT_EQ(readAvailable(rig.right.b.get(), request.size()), request);
  EXPECT_FALSE(rig.relay.bulk());
  EXPECT_EQ(rig.pool.spare(), 0u) << "no pipe was taken for a copy";
  EXPECT_EQ(rig.relay.bytes(), request.size());
}

TEST(Relay, ReportedHangupEndsTheStreamAfterAShortRead) {
  Rig rig;
  ASSERT_EQ(::write(rig.left.a.get(), "bye", 3), 3);
  ::shutdown(rig.left.a.get(), SHUT_WR);
  pollfd p{rig.left.b.get(), POLLRDHUP, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  ASSERT_TRUE(p.revents & POLLRDHUP);
  rig.relay.noteSrcHangup();
  // One pump: the data and the FIN go on, without a read that returns 0.
  EXPECT_EQ(rig.pump(), Relay::Outcome::Finished);
  EXPECT_EQ(readAvailable(rig.right.b.get(), 100), "bye") << "read ends at EOF after the FIN";
}

uint32_t segmentsSent(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  return info.tcpi_segs_out;
}

// A server's last bytes and its FIN usually arrive together (an HTTP answer
// with Connection: close): they leave the relay together too, so the peer
// takes one segment and one wakeup for both, not two.
TEST(Relay, LastBytesAndTheFinLeaveInOneSegment) {
  Rig rig;
  const std::string answer(1258, 'a');
  ASSERT_EQ(::write(rig.left.a.get(), answer.data(), answer.size()),
            static_cast<ssize_t>(answer.size()));
  ::shutdown(rig.left.a.get(), SHUT_WR);
  pollfd p{rig.left.b.get(), POLLRDHUP, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  rig.relay.noteSrcHangup();
  const uint32_t before = segmentsSent(rig.right.a.get());
  EXPECT_EQ(rig.pump(), Relay::Outcome::Finished);
  EXPECT_EQ(segmentsSent(rig.right.a.get()) - before, 1u) << "data and FIN in one segment";
  EXPECT_EQ(readAvailable(rig.right.b.get(), answer.size() + 1), answer) << "then EOF";
}

// The hangup is reported while the direction cannot read (its destination
// is full); the edge is gone by the time it can. The first pump that empties
// what was kept aside must still end the stream, or the flow would wait for
// an edge that never comes.
TEST(Relay, HangupNotedWhileTheDestinationIsFullStillEndsTheStream) {
  Rig rig;
  int small = 4096;
  ::setsockopt(rig.right.a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(rig.right.b.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  rig.copy.resize(4 << 20);  // copy path throughout
  nonblocking(rig.left.a.get());
  const std::string head(100000, 'h');
  ssize_t n = ::write(rig.left.a.get(), head.data(), head.size());
  ASSERT_GT(n, 0);
  std::string sent(head.data(), static_cast<size_t>(n));
  for (int i = 0; i < 100 && !rig.relay.waitingForDst(); ++i) {
    rig.pump();
    ::usleep(1000);
  }
  ASSERT_TRUE(rig.relay.waitingForDst()) << "the destination never filled up";
  ASSERT_EQ(::write(rig.left.a.get(), "tail", 4), 4);
  sent += "tail";
  ::shutdown(rig.left.a.get(), SHUT_WR);
  pollfd p{rig.left.b.get(), POLLRDHUP, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  rig.relay.noteSrcHangup();
  ASSERT_EQ(rig.pump(), Relay::Outcome::Blocked);  // still full: nothing read

  std::string got;
  Relay::Outcome o = Relay::Outcome::Blocked;
  for (int i = 0; i < 10000 && o == Relay::Outcome::Blocked; ++i) {
    got += readAvailable(rig.right.b.get(), 1);
    o = rig.pump();
    if (o == Relay::Outcome::Blocked) {
      ASSERT_TRUE(rig.relay.waitingForDst()) << "caught up with src but did not end the stream";
    }
  }
  EXPECT_EQ(o, Relay::Outcome::Finished);
  got += readAvailable(rig.right.b.get(), sent.size());
  EXPECT_EQ(got, sent);
}

TEST(Relay, SourceResetIsReported) {
  Rig rig;
  linger l{1, 0};
  ::setsockopt(rig.left.a.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  rig.left.a.reset();  // RST
  EXPECT_EQ(rig.pumpUntilSettled(), Relay::Outcome::SrcReset);
  EXPECT_EQ(rig.relay.error(), ECONNRESET);
}

TEST(Relay, DestinationGoneIsReported) {
  Rig rig;
  linger l{1, 0};
  ::setsockopt(rig.right.b.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  rig.right.b.reset();  // destination resets
  ::usleep(20000);
  // splice into a reset socket raises SIGPIPE unless blocked, as the loop does
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  ASSERT_EQ(::write(rig.left.a.get(), "data", 4), 4);
  EXPECT_EQ(rig.pumpUntilSettled(), Relay::Outcome::DstReset);
}

}  // namespace
}  // namespace sockgate::proxy
