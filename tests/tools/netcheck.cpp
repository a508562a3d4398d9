// netcheck: the real client and server programs the integration tests run
// under and beside `sockgate run`.
//
//   netcheck serve-peer PORT             tell each client the address it came from
//   netcheck peer HOST:PORT [--mapped]   connect; print getpeername, our local
//                                        address, and what the server saw
//   netcheck serve-blast PORT            verify each client's stream byte-exact
//                                        and answer with a stream of its own
//   netcheck blast HOST:PORT CONNS BYTES CONNS concurrent connections, BYTES
//                                        each way, every byte checked both ways
//   netcheck serve-echo PORT             echo every byte back
//   netcheck slow-echo HOST:PORT MS      one byte every 20 ms for MS milliseconds,
//                                        each echo checked: a flow that stays open
//   netcheck origdst-proxy PORT          a transparent proxy that knows nothing of
//                                        sockgate: it asks SO_ORIGINAL_DST, as
//                                        proxies written for iptables REDIRECT do,
//                                        and attaches no redirect records
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sockgate/endpoint.h"

using sockgate::Endpoint;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "netcheck: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

// A deterministic byte stream (splitmix64), so each side can check every
// byte it receives without the other side sending a digest.
class Stream {
 public:
  explicit Stream(uint64_t seed) : state_(seed) {}
  void fill(uint8_t* out, size_t n) {
    while (n > 0) {
      if (avail_ == 0) {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        word_ = z ^ (z >> 31);
        avail_ = 8;
      }
      *out++ = static_cast<uint8_t>(word_ >> (8 * (8 - avail_)));
      --avail_;
      --n;
    }
  }

 private:
  uint64_t state_;
  uint64_t word_ = 0;
  int avail_ = 0;
};

bool writeAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool readAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool sendStream(int fd, uint64_t seed, uint64_t bytes) {
  Stream s(seed);
  std::vector<uint8_t> buf(1 << 16);
  while (bytes > 0) {
    size_t n = std::min<uint64_t>(bytes, buf.size());
    s.fill(buf.data(), n);
    if (!writeAll(fd, buf.data(), n)) return false;
    bytes -= n;
  }
  return true;
}

// Reads exactly `bytes` matching the stream, then requires a clean EOF.
std::string checkStream(int fd, uint64_t seed, uint64_t bytes) {
  Stream s(seed);
  std::vector<uint8_t> got(1 << 16), want(1 << 16);
  uint64_t seen = 0;
  for (;;) {
    ssize_t r = ::recv(fd, got.data(), got.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      return "read failed after " + std::to_string(seen) + " bytes: " + std::strerror(errno);
    if (r == 0) break;
    if (seen + static_cast<uint64_t>(r) > bytes) return "more bytes than sent";
    s.fill(want.data(), static_cast<size_t>(r));
    if (std::memcmp(got.data(), want.data(), static_cast<size_t>(r)) != 0)
      return "corrupt bytes near offset " + std::to_string(seen);
    seen += static_cast<uint64_t>(r);
  }
  if (seen != bytes)
    return "got " + std::to_string(seen) + " of " + std::to_string(bytes) + " bytes";
  return {};
}

std::vector<int> listenBoth(uint16_t port) {
  std::vector<int> fds;
  for (int family : {AF_INET, AF_INET6}) {
    Endpoint ep = Endpoint::loopback(family, port);
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ep.sockaddrPtr(), ep.length()) != 0) die("bind " + ep.toString());
    if (::listen(fd, 1024) != 0) die("listen");
    fds.push_back(fd);
  }
  return fds;
}

template <class Handler>
[[noreturn]] void serve(uint16_t port, Handler handle) {
  auto fds = listenBoth(port);
  std::thread v6([fd = fds[1], &handle] {
    for (;;) {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) std::thread(handle, c).detach();
    }
  });
  for (;;) {
    int c = ::accept4(fds[0], nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) std::thread(handle, c).detach();
  }
}

int connectTo(const Endpoint& to, bool mapped) {
  Endpoint target = to;
  if (mapped && to.family() == AF_INET) {
    auto parsed = Endpoint::parse("[::ffff:" + to.address() + "]:" + std::to_string(to.port()));
    target = *parsed;
  }
  int fd = ::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, target.sockaddrPtr(), target.length()) != 0)
    die("connect " + target.toString());
  return fd;
}

constexpr uint64_t kReplySalt = 0x5eed5eed5eed5eedull;

int blast(const Endpoint& to, int conns, uint64_t bytes) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < conns; ++i) {
    threads.emplace_back([&, i] {
      int fd = connectTo(to, false);
      const uint64_t seed = 0x1234567ull * static_cast<uint64_t>(i + 1);
      std::thread sender([&] {
        uint64_t header[2] = {seed, bytes};
        if (!writeAll(fd, reinterpret_cast<uint8_t*>(header), sizeof header) ||
            !sendStream(fd, seed, bytes)) {
          std::fprintf(stderr, "netcheck: conn %d: send failed: %s\n", i, std::strerror(errno));
          ++failures;
        }
        ::shutdown(fd, SHUT_WR);
      });
      std::string problem = checkStream(fd, seed ^ kReplySalt, bytes);
      sender.join();
      if (!problem.empty()) {
        std::fprintf(stderr, "netcheck: conn %d: reply %s\n", i, problem.c_str());
        ++failures;
      }
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  std::printf("%d connections, %d failed, %llu bytes each way each\n", conns, failures.load(),
              static_cast<unsigned long long>(bytes));
  return failures == 0 ? 0 : 1;
}

void serveBlastOne(int fd) {
  uint64_t header[2];
  if (!readAll(fd, reinterpret_cast<uint8_t*>(header), sizeof header)) {
    ::close(fd);
    return;
  }
  const uint64_t seed = header[0], bytes = header[1];
  std::thread replier([&] { sendStream(fd, seed ^ kReplySalt, bytes); });
  std::string problem = checkStream(fd, seed, bytes);
  replier.join();
  if (!problem.empty()) {
    // An honest failure: reset, so the client cannot mistake it for success.
    std::fprintf(stderr, "netcheck: server: request %s\n", problem.c_str());
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  } else {
    ::shutdown(fd, SHUT_WR);
  }
  ::close(fd);
}

// Copies one direction until EOF, then passes the FIN on.
void pipeOneWay(int from, int to) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!writeAll(to, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n))) break;
  }
  ::shutdown(to, SHUT_WR);
}

void proxyOriginalDestination(int client) {
  sockaddr_storage orig{};
  socklen_t len = sizeof orig;
  int domain = 0;
  socklen_t dlen = sizeof domain;
  ::getsockopt(client, SOL_SOCKET, SO_DOMAIN, &domain, &dlen);
  int level = domain == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  if (::getsockopt(client, level, 80 /* SO_ORIGINAL_DST */, &orig, &len) != 0) {
    std::fprintf(stderr, "netcheck: origdst-proxy: SO_ORIGINAL_DST: %s\n", std::strerror(errno));
    ::close(client);
    return;
  }
  Endpoint to = Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&orig), len);
  int up = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(up, to.sockaddrPtr(), to.length()) != 0) {
    std::fprintf(stderr, "netcheck: origdst-proxy: connect %s: %s\n", to.toString().c_str(),
                 std::strerror(errno));
    ::close(up);
    ::close(client);
    return;
  }
  std::printf("origdst-proxy: %s -> %s\n", sockgate::remoteEndpoint(client)->toString().c_str(),
              to.toString().c_str());
  std::fflush(stdout);
  std::thread back([&] { pipeOneWay(up, client); });
  pipeOneWay(client, up);
  back.join();
  ::close(up);
  ::close(client);
}

void echoBack(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!writeAll(fd, reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n))) break;
  }
  ::close(fd);
}

int slowEcho(const Endpoint& to, int millis) {
  int fd = connectTo(to, false);
  std::printf("connected\n");
  std::fflush(stdout);
  int sent = 0;
  for (int elapsed = 0; elapsed < millis; elapsed += 20, ++sent) {
    uint8_t b = static_cast<uint8_t>(sent);
    uint8_t back = 0;
    if (!writeAll(fd, &b, 1) || !readAll(fd, &back, 1) || back != b) {
      std::fprintf(stderr, "netcheck: slow-echo: byte %d lost: %s\n", sent, std::strerror(errno));
      return 1;
    }
    if (sent == 0) {
      // Only an echoed byte proves every hop, proxies' own upstream connects
      // included, exists; "connected" alone can precede them.
      std::printf("echoing\n");
      std::fflush(stdout);
    }
    ::usleep(20000);
  }
  ::close(fd);
  std::printf("%d bytes echoed\n", sent);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "serve-peer") {
    serve(static_cast<uint16_t>(std::stoi(args[1])), [](int fd) {
      std::string line = sockgate::remoteEndpoint(fd)->toString() + "\n";
      writeAll(fd, reinterpret_cast<const uint8_t*>(line.data()), line.size());
      ::close(fd);
    });
  }
  if (args.size() >= 2 && args[0] == "peer") {
    auto to = Endpoint::parse(args[1]);
    if (!to) die(to.error().message());
    int fd = connectTo(*to, args.size() > 2 && args[2] == "--mapped");
    std::string saw;
    char buf[256];
    ssize_t r;
    while ((r = ::read(fd, buf, sizeof buf)) > 0) saw.append(buf, static_cast<size_t>(r));
    std::printf("getpeername=%s\nlocal=%s\nserver-saw=%s",
                sockgate::remoteEndpoint(fd)->toString().c_str(),
                sockgate::localEndpoint(fd)->toString().c_str(), saw.c_str());
    return 0;
  }
  if (args.size() == 2 && args[0] == "serve-blast") {
    serve(static_cast<uint16_t>(std::stoi(args[1])), serveBlastOne);
  }
  if (args.size() == 2 && args[0] == "serve-echo") {
    serve(static_cast<uint16_t>(std::stoi(args[1])), echoBack);
  }
  if (args.size() == 3 && args[0] == "slow-echo") {
    auto to = Endpoint::parse(args[1]);
    if (!to) die(to.error().message());
    return slowEcho(*to, std::stoi(args[2]));
  }
  if (args.size() == 2 && args[0] == "origdst-proxy") {
    serve(static_cast<uint16_t>(std::stoi(args[1])), proxyOriginalDestination);
  }
  if (args.size() == 4 && args[0] == "blast") {
    auto to = Endpoint::parse(args[1]);
    if (!to) die(to.error().message());
    return blast(*to, std::stoi(args[2]), std::stoull(args[3]));
  }
  std::fprintf(stderr,
               "usage: netcheck serve-peer PORT | peer HOST:PORT [--mapped] | "
               "serve-blast PORT | blast HOST:PORT CONNS BYTES | origdst-proxy PORT | serve-echo "
               "PORT | slow-echo HOST:PORT MS\n");
  return 2;
}
