// Two network namespaces joined by a veth pair, addressed for IPv4 and IPv6,
// and a TCP transfer between them checked end to end. Built with the host's
// ip(8) (called by path), removed on every exit path by the destructor.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "vm_check.h"

namespace sockgate::vmtest {

inline constexpr char kIp[] = "/usr/sbin/ip";

// Both ends of the link: namespace name and addresses.
struct Side {
  std::string ns;
  std::string v4;
  std::string v6;
};

class NetnsPair {
 public:
  NetnsPair()
      : a_{"sgvm-a-" + std::to_string(getpid()), "10.231.0.1", "fd00:231::1"},
        b_{"sgvm-b-" + std::to_string(getpid()), "10.231.0.2", "fd00:231::2"} {}
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;
  ~NetnsPair() {
    runCommand({kIp, "netns", "del", a_.ns});
    runCommand({kIp, "netns", "del", b_.ns});
  }

  // Creates the namespaces and the link; the error text when it fails.
  std::string create() {
    auto r = runCommand({kIp, "-batch", "-"},
                        "netns add " + a_.ns + "\nnetns add " + b_.ns + "\nlink add sgva netns " +
                            a_.ns + " type veth peer name sgvb netns " + b_.ns + "\n");
    if (r.status != 0) return lastLine(r.output);
    for (const auto& [side, dev] : {std::pair{&a_, "sgva"}, std::pair{&b_, "sgvb"}}) {
      r = ipBatch(*side, std::string("link set lo up\nlink set ") + dev + " up\naddr add " +
                             side->v4 + "/24 dev " + dev + "\naddr add " + side->v6 + "/64 dev " +
                             dev + " nodad\n");
      if (r.status != 0) return lastLine(r.output);
    }
    return {};
  }

  const Side& a() const { return a_; }
  const Side& b() const { return b_; }

  // `ip -n NS -batch -` with the given commands.
  static CommandResult ipBatch(const Side& side, const std::string& commands) {
    return runCommand({kIp, "-n", side.ns, "-batch", "-"}, commands);
  }

 private:
  Side a_;
  Side b_;
};

// Switches the calling thread into a named namespace and back on scope exit.
class InNetns {
 public:
  explicit InNetns(const std::string& ns)
      : original_(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
    UniqueFd target(open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    ok_ = original_ && target && setns(target.get(), CLONE_NEWNET) == 0;
  }
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;
  ~InNetns() {
    if (original_) setns(original_.get(), CLONE_NEWNET);
  }
  bool ok() const { return ok_; }

 private:
  UniqueFd original_;
  bool ok_ = false;
};

struct TransferResult {
  bool ok = false;
  std::string detail;
};

inline uint64_t fnv1a(uint64_t h, const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

inline bool fillAddr(int family, const std::string& ip, uint16_t port, sockaddr_storage& ss,
                     socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  if (family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    len = sizeof *s;
    return inet_pton(AF_INET, ip.c_str(), &s->sin_addr) == 1;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  len = sizeof *s;
  return inet_pton(AF_INET6, ip.c_str(), &s->sin6_addr) == 1;
}

// A TCP connection from side `from` to a listener in side `to`, both ends
// non-blocking. One thread: each socket is created in its namespace and the
// handshake is driven with poll(). `beforeConnect`, when given, runs in
// `from`'s namespace on the unconnected client socket with the listener's
// port, and returns an error text to abort (e.g. a per-socket IPsec policy
// needs the local port, so it binds first).
struct TcpConnection {
  UniqueFd client;
  UniqueFd server;
  std::string error;  // empty when connected
};

inline TcpConnection tcpConnect(
    const Side& from, const Side& to, int family, std::chrono::milliseconds timeout,
    const std::function<std::string(int fd, uint16_t port)>& beforeConnect = {}) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  const auto left = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  TcpConnection c;
  const auto failed = [&c](std::string why) {
    c.client.reset();
    c.server.reset();
    c.error = std::move(why);
    return std::move(c);
  };
  const std::string& toAddr = family == AF_INET ? to.v4 : to.v6;
  sockaddr_storage ss;
  socklen_t len = 0;
  if (!fillAddr(family, toAddr, 0, ss, len)) return failed("bad address " + toAddr);

  UniqueFd listener;
  {
    InNetns in(to.ns);
    if (!in.ok()) return failed("cannot enter " + to.ns);
    listener.reset(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listener || bind(listener.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(listener.get(), 1) != 0 ||
        getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      return failed(std::string("listen: ") + std::strerror(errno));
  }
  const uint16_t port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  {
    InNetns in(from.ns);
    if (!in.ok()) return failed("cannot enter " + from.ns);
    c.client.reset(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.client) return failed(std::string("socket: ") + std::strerror(errno));
    if (beforeConnect) {
      std::string err = beforeConnect(c.client.get(), port);
      if (!err.empty()) return failed(std::move(err));
    }
    if (connect(c.client.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
      return failed(std::string("connect: ") + std::strerror(errno));
  }
  pollfd pc{c.client.get(), POLLOUT, 0};
  if (poll(&pc, 1, left()) != 1) return failed("connect timed out");
  int err = 0;
  socklen_t errLen = sizeof err;
  getsockopt(c.client.get(), SOL_SOCKET, SO_ERROR, &err, &errLen);
  if (err != 0) return failed(std::string("connect: ") + std::strerror(err));
  pollfd pl{listener.get(), POLLIN, 0};
  if (poll(&pl, 1, left()) != 1) return failed("accept timed out");
  c.server.reset(accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!c.server) return failed(std::string("accept: ") + std::strerror(errno));
  return c;
}

// Sends `bytes` of pseudo-random data over TCP from side `from` to a
// listener in side `to` and checks that exactly those bytes arrived, in
// order.
inline TransferResult tcpTransfer(const Side& from, const Side& to, int family, size_t bytes,
                                  std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  const auto left = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  TcpConnection conn = tcpConnect(from, to, family, timeout);
  if (!conn.error.empty()) return {false, conn.error};
  const UniqueFd& client = conn.client;
  const UniqueFd& server = conn.server;

  std::vector<unsigned char> data(bytes);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<unsigned char>(x);
  }
  const uint64_t sentHash = fnv1a(0xcbf29ce484222325ULL, data.data(), data.size());
  uint64_t recvHash = 0xcbf29ce484222325ULL;
  size_t sent = 0, received = 0;
  bool eof = false;
  unsigned char buf[65536];
  while (!eof) {
    pollfd fds[2] = {{server.get(), POLLIN, 0}, {client.get(), POLLOUT, 0}};
    const bool sending = sent < bytes;
    const int n = poll(fds, sending ? 2 : 1, left());
    if (n == 0)
      return {false, "stalled after " + std::to_string(received) + " of " + std::to_string(bytes) +
                         " bytes"};
    if (n < 0 && errno != EINTR) return {false, std::string("poll: ") + std::strerror(errno)};
    if (sending && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = send(client.get(), data.data() + sent, bytes - sent, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) return {false, std::string("send: ") + std::strerror(errno)};
      if (w > 0) sent += static_cast<size_t>(w);
      if (sent == bytes) shutdown(client.get(), SHUT_WR);
    }
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      const ssize_t r = recv(server.get(), buf, sizeof buf, 0);
      if (r < 0 && errno != EAGAIN) return {false, std::string("recv: ") + std::strerror(errno)};
      if (r == 0) eof = true;
      if (r > 0) {
        recvHash = fnv1a(recvHash, buf, static_cast<size_t>(r));
        received += static_cast<size_t>(r);
      }
    }
  }
  if (received != bytes || recvHash != sentHash)
    return {false, "received " + std::to_string(received) + " of " + std::to_string(bytes) +
                       " bytes, " + (recvHash == sentHash ? "same" : "different") + " checksum"};
  return {true, {}};
}

}  // namespace sockgate::vmtest
