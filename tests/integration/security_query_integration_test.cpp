// The security query against real processes, sockets and XFRM state, as
// root inside the private network namespace in_netns.sh makes. Peers are
// children with known pids that exec /bin/sleep, so "the reported peer is
// the real client" is checked by pid, pidfd and executable.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "common/pidfd.h"
#include "common/unique_fd.h"
#include "security/process_info.h"
#include "sockgate/security.h"
#include "sockgate/winsock.h"

namespace sockgate {
namespace {

using namespace std::chrono_literals;

std::string sleepPath() {
  char buf[PATH_MAX];
  return realpath("/bin/sleep", buf) != nullptr ? buf : "/bin/sleep";
}

// A child we started: killed and reaped on every exit path.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { stop(); }
  [[nodiscard]] pid_t pid() const { return pid_; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Waits until the child runs /bin/sleep (it connected before exec).
  [[nodiscard]] bool waitForSleep() const {
    const std::string want = sleepPath();
    for (int i = 0; i < 500; ++i) {
      char buf[PATH_MAX];
      const ssize_t n =
          readlink(("/proc/" + std::to_string(pid_) + "/exe").c_str(), buf, sizeof(buf));
      if (n > 0 && std::string(buf, static_cast<size_t>(n)) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  pid_t pid_;
};

[[noreturn]] void execSleep() {
  execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
  _exit(127);
}

// Forks a child that runs `body` (which must not return on success) and then
// becomes /bin/sleep holding whatever fds body left open.
template <class Body>
std::unique_ptr<Child> spawn(Body body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    execSleep();
  }
  return std::make_unique<Child>(pid);
}

UniqueFd tcpListener(int family, const char* address) {
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, address, &in->sin_addr);
    len = sizeof(*in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, address, &in6->sin6_addr);
    len = sizeof(*in6);
  }
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  EXPECT_EQ(listen(fd.get(), 16), 0);
  return fd;
}

sockaddr_storage localAddress(int fd, socklen_t* len) {
  sockaddr_storage ss{};
  *len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), len);
  return ss;
}

// Connects from a fresh socket of `family` to the listener's address (with
// `connectTo` overriding the address, for dual-stack).
int connectTo(int family, const sockaddr_storage& to, socklen_t len) {
  const int fd = socket(family, SOCK_STREAM, 0);  // no CLOEXEC: the child keeps it across exec
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), len) != 0) return -1;
  return fd;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int status = pclose(p);
  if (status != 0) out = "FAILED(" + std::to_string(status) + "): " + out;
  return out;
}

pid_t pidOf(int pidfd) {
  auto pid = security::pidOfPidfd(pidfd);
  return pid ? *pid : -1;
}

class SecurityQuery : public ::testing::Test {
 protected:
  void SetUp() override {
    // Private netns: nothing here is visible outside, and it dies with us.
    ASSERT_EQ(run("ip xfrm policy flush"), "");
  }
  void TearDown() override { run("ip xfrm policy flush"); }
};

// ---- AF_UNIX -------------------------------------------------------------------

TEST_F(SecurityQuery, UnixPeerIsTheConnectingChildWithItsCredentials) {
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "sockgate-sec-test-" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: no file to clean up
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  auto child = spawn([&] {
    const gid_t groups[] = {4242, 4343};
    if (setgroups(2, groups) != 0 || setgid(4200) != 0 || setuid(4100) != 0) _exit(3);
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(4);
  });
  UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  ASSERT_TRUE(child->waitForSleep());

  auto result = querySocketSecurity(accepted.get());
  ASSERT_TRUE(result.has_value()) << result.error().message();
  ASSERT_TRUE(result->peer.has_value());
  const PeerProcess& peer = *result->peer;
  EXPECT_EQ(peer.source, PeerSource::kUnixCredentials);
  EXPECT_EQ(peer.pid, child->pid());
  EXPECT_EQ(peer.uid, 4100u);
  EXPECT_EQ(peer.gid, 4200u);
  EXPECT_EQ(peer.groups, (std::vector<gid_t>{4242, 4343}));
  EXPECT_EQ(peer.executable, sleepPath());
  EXPECT_EQ(peer.command, "sleep");
  EXPECT_FALSE(peer.cgroup.empty());
  EXPECT_FALSE(result->peerLabel.has_value());  // no LSM on this host: "no label"
  EXPECT_EQ(result->flags, 0u);
  // The pidfd is the child: same pid in fdinfo, signal 0 reaches it, and it
  // turns readable when the child dies.
  ASSERT_TRUE(peer.pidfd.valid());
  EXPECT_EQ(pidOf(peer.pidfd.get()), child->pid());
  EXPECT_EQ(pidfdSendSignal(peer.pidfd.get(), 0, nullptr, 0), 0);
  child->stop();
  pollfd p{peer.pidfd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 1000), 1);
}

TEST_F(SecurityQuery, UnixPeerWithoutPidfdWhenNotAsked) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  QueryOptions options;
  options.wantPidfd = false;
  auto result = querySocketSecurity(a.get(), options);
  ASSERT_TRUE(result && result->peer);
  EXPECT_EQ(result->peer->pid, getpid());
  EXPECT_FALSE(result->peer->pidfd.valid());
}

// ---- loopback TCP / UDP -----------------------------------------------------------

struct TcpCase {
  int listenFamily;
  const char* listenAddress;
  int clientFamily;
  const char* connectAddress;
};

class LoopbackTcp : public SecurityQuery, public ::testing::WithParamInterface<TcpCase> {};

TEST_P(LoopbackTcp, PeerIsTheClientChild) {
  const TcpCase c = GetParam();
  UniqueFd listener = tcpListener(c.listenFamily, c.listenAddress);
  socklen_t len = 0;
  sockaddr_storage to = localAddress(listener.get(), &len);
  // Dual-stack case: connect over IPv4 to the [::] listener's port.
  if (c.clientFamily != c.listenFamily) {
    const uint16_t port = reinterpret_cast<sockaddr_in6*>(&to)->sin6_port;
    to = {};
    auto* in = reinterpret_cast<sockaddr_in*>(&to);
    in->sin_family = AF_INET;
    in->sin_port = port;
    inet_pton(AF_INET, c.connectAddress, &in->sin_addr);
    len = sizeof(*in);
  }
  auto child = spawn([&] {
    if (connectTo(c.clientFamily, to, len) < 0) _exit(4);
  });
  UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  listener.reset();
  ASSERT_TRUE(child->waitForSleep());

  auto result = querySocketSecurity(accepted.get());
  ASSERT_TRUE(result.has_value()) << result.error().message();
  ASSERT_TRUE(result->peer.has_value()) << formatSecurityTable(*result);
  EXPECT_EQ(result->peer->source, PeerSource::kSockDiag);
  EXPECT_EQ(result->peer->pid, child->pid());
  EXPECT_EQ(result->peer->executable, sleepPath());
  EXPECT_EQ(result->peer->uid, 0u);
  ASSERT_TRUE(result->peer->pidfd.valid());
  EXPECT_EQ(pidOf(result->peer->pidfd.get()), child->pid());
  ASSERT_TRUE(result->flow.has_value());
  EXPECT_EQ(result->flow->protocol, IPPROTO_TCP);
  EXPECT_EQ(result->flow->local.family(), c.clientFamily);  // v4-mapped normalised
  ASSERT_TRUE(result->ipsec.has_value());                   // root: XFRM readable
  EXPECT_EQ(result->flags, 0u);
  EXPECT_EQ(result->protocol, SecurityProtocol::kNone);
  ASSERT_TRUE(result->ktls.has_value() == false);  // no "tls" ULP on a plain socket
}

INSTANTIATE_TEST_SUITE_P(Families, LoopbackTcp,
                         ::testing::Values(TcpCase{AF_INET, "127.0.0.1", AF_INET, "127.0.0.1"},
                                           TcpCase{AF_INET6, "::1", AF_INET6, "::1"},
                                           TcpCase{AF_INET6, "::", AF_INET, "127.0.0.1"}));

TEST_F(SecurityQuery, ClientSidePeerIsTheServerProcess) {
  UniqueFd listener = tcpListener(AF_INET, "127.0.0.1");
  socklen_t len = 0;
  const sockaddr_storage to = localAddress(listener.get(), &len);
  UniqueFd client(connectTo(AF_INET, to, len));
  ASSERT_TRUE(client);
  UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  auto result = querySocketSecurity(client.get());
  ASSERT_TRUE(result && result->peer);
  EXPECT_EQ(result->peer->pid, getpid());
}

TEST_F(SecurityQuery, UdpPeerFromTheTemplateAddress) {
  UniqueFd peerSocket(socket(AF_INET, SOCK_DGRAM, 0));  // inherited by the child, closed here
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(peerSocket.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = 0;
  const sockaddr_storage peerAddress = localAddress(peerSocket.get(), &len);
  auto child = spawn([] {});
  peerSocket.reset();
  ASSERT_TRUE(child->waitForSleep());

  UniqueFd ours(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(bind(ours.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  QueryOptions options;
  options.peer = Endpoint::fromSockaddr(reinterpret_cast<const sockaddr*>(&peerAddress), len);
  auto result = querySocketSecurity(ours.get(), options);
  ASSERT_TRUE(result.has_value()) << result.error().message();
  ASSERT_TRUE(result->peer.has_value()) << formatSecurityTable(*result);
  EXPECT_EQ(result->peer->pid, child->pid());
  EXPECT_EQ(result->flow->remote, *options.peer);

  // Without a template an unconnected UDP socket has no peer to ask about.
  auto noPeer = querySocketSecurity(ours.get());
  ASSERT_FALSE(noPeer.has_value());
  EXPECT_EQ(noPeer.error().code, ENOTCONN);
}

TEST_F(SecurityQuery, ResetConnectionIsEconnreset) {
  UniqueFd listener = tcpListener(AF_INET, "127.0.0.1");
  socklen_t len = 0;
  const sockaddr_storage to = localAddress(listener.get(), &len);
  UniqueFd client(connectTo(AF_INET, to, len));
  ASSERT_TRUE(client);
  {
    UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    linger l{1, 0};  // close() sends RST
    ASSERT_EQ(setsockopt(accepted.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
  }
  pollfd p{client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  auto result = querySocketSecurity(client.get());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ECONNRESET);
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG infoLen = sizeof(info);
  EXPECT_EQ(WSAQuerySocketSecurity(client.get(), nullptr, 0, &info, &infoLen, nullptr, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAECONNRESET);
}

TEST_F(SecurityQuery, UdpPortUnreachableIsEconnreset) {
  // A port nobody listens on: bind, learn it, close.
  sockaddr_in closed{};
  closed.sin_family = AF_INET;
  closed.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  {
    UniqueFd probe(socket(AF_INET, SOCK_DGRAM, 0));
    ASSERT_EQ(bind(probe.get(), reinterpret_cast<sockaddr*>(&closed), sizeof(closed)), 0);
    socklen_t len = sizeof(closed);
    getsockname(probe.get(), reinterpret_cast<sockaddr*>(&closed), &len);
  }
  UniqueFd udp(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(udp.get(), reinterpret_cast<sockaddr*>(&closed), sizeof(closed)), 0);
  ASSERT_EQ(send(udp.get(), "x", 1, 0), 1);
  pollfd p{udp.get(), 0, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);  // POLLERR arrives with the ICMP
  SOCKET_SECURITY_QUERY_TEMPLATE tmpl{};
  tmpl.PeerAddress.ss_family = WS_AF_INET;
  std::memcpy(reinterpret_cast<char*>(&tmpl.PeerAddress) + 2, &closed.sin_port, 2);
  std::memcpy(reinterpret_cast<char*>(&tmpl.PeerAddress) + 4, &closed.sin_addr, 4);
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG infoLen = sizeof(info);
  EXPECT_EQ(
      WSAQuerySocketSecurity(udp.get(), &tmpl, sizeof(tmpl), &info, &infoLen, nullptr, nullptr),
      SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAECONNRESET);
}

// ---- socket of another process ---------------------------------------------------------

TEST_F(SecurityQuery, SocketOfAnotherProcessByPidFdAndByTuple) {
  UniqueFd listener = tcpListener(AF_INET, "127.0.0.1");
  socklen_t len = 0;
  const sockaddr_storage to = localAddress(listener.get(), &len);
  int childFd = -1;
  auto child = spawn([&] {
    childFd = connectTo(AF_INET, to, len);
    if (childFd != 3) {  // make the fd number predictable for the test
      if (dup2(childFd, 3) < 0) _exit(5);
    }
  });
  UniqueFd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(child->waitForSleep());
  sockaddr_storage peer{};
  socklen_t peerLen = sizeof(peer);
  getpeername(accepted.get(), reinterpret_cast<sockaddr*>(&peer), &peerLen);
  const Endpoint clientEnd = Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), peerLen);
  const Endpoint serverEnd = Endpoint::fromSockaddr(reinterpret_cast<const sockaddr*>(&to), len);

  auto byTuple = socketByTuple(clientEnd, serverEnd);
  ASSERT_TRUE(byTuple.has_value()) << byTuple.error().message();
  EXPECT_EQ(byTuple->pid, child->pid());
  // The duplicate is the child's socket: same local end.
  sockaddr_storage dupLocal{};
  socklen_t dupLen = sizeof(dupLocal);
  getsockname(byTuple->socket.get(), reinterpret_cast<sockaddr*>(&dupLocal), &dupLen);
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&dupLocal), dupLen), clientEnd);

  auto byFd = socketOfProcess(child->pid(), byTuple->fd);
  ASSERT_TRUE(byFd.has_value()) << byFd.error().message();
  // Querying the child's socket: its peer is us, the server.
  auto result = querySocketSecurity(byFd->get());
  ASSERT_TRUE(result && result->peer);
  EXPECT_EQ(result->peer->pid, getpid());

  auto missing = socketByTuple(clientEnd, *Endpoint::parse("127.0.0.1:1"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
}

// ---- IPsec: policies on the real kernel (no ESP/AH SAs can exist here) -------------

class XfrmPolicies : public SecurityQuery {
 protected:
  void connectPair() {
    UniqueFd listener = tcpListener(AF_INET, "127.0.0.1");
    socklen_t len = 0;
    const sockaddr_storage to = localAddress(listener.get(), &len);
    client_.reset(connectTo(AF_INET, to, len));
    ASSERT_TRUE(client_);
    server_.reset(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    serverPort_ = ntohs(reinterpret_cast<const sockaddr_in*>(&to)->sin_port);
    sockaddr_in c{};
    socklen_t clen = sizeof(c);
    getsockname(client_.get(), reinterpret_cast<sockaddr*>(&c), &clen);
    clientPort_ = ntohs(c.sin_port);
  }
  // 1,000 policies for other ports, in one ip -batch run.
  void installUnrelated(int count) {
    const std::string path = "/tmp/sockgate-xfrm-batch-" + std::to_string(getpid());
    {
      std::ofstream batch(path);
      for (int i = 0; i < count; ++i) {
        const int port = 20000 + i == serverPort_ ? 19999 : 20000 + i;
        batch << "xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto tcp dport " << port
              << " dir out tmpl proto esp mode transport\n";
      }
    }
    EXPECT_EQ(run("ip -batch " + path), "");
    std::remove(path.c_str());
  }
  UniqueFd client_;
  UniqueFd server_;
  uint16_t serverPort_ = 0;
  uint16_t clientPort_ = 0;
};

TEST_F(XfrmPolicies, HostKernelCannotInstallEspStatesSoTheseTestsCoverPoliciesOnly) {
  // Documented limitation of this host (reference/vm-testing.md); if this
  // starts succeeding, the SA cases should move here from the VM tier.
  const std::string out =
      run("ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi 0x100 mode transport "
          "enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff auth 'hmac(sha256)' "
          "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  run("ip xfrm state flush");
  if (out.rfind("FAILED", 0) != 0) GTEST_SKIP() << "this kernel has ESP: run the SA cases here too";
  SUCCEED();
}

TEST_F(XfrmPolicies, CoveringPolicyWithoutSaIsNotSecuredAmongThousandUnrelated) {
  connectPair();
  installUnrelated(1000);
  const std::string sel = "src 127.0.0.1/32 dst 127.0.0.1/32 proto tcp";
  ASSERT_EQ(run("ip xfrm policy add " + sel + " dport " + std::to_string(serverPort_) +
                " dir out index 0x10001 priority 100 tmpl proto esp mode transport"),
            "");
  ASSERT_EQ(run("ip xfrm policy add " + sel + " sport " + std::to_string(serverPort_) +
                " dir in index 0x10000 priority 100 tmpl proto esp mode transport"),
            "");
  auto result = querySocketSecurity(client_.get());
  ASSERT_TRUE(result.has_value()) << result.error().message();
  ASSERT_TRUE(result->ipsec.has_value()) << formatSecurityTable(*result);
  const IpsecStatus& ipsec = *result->ipsec;
  EXPECT_GE(ipsec.policiesSeen, 1002u);
  EXPECT_TRUE(ipsec.outbound.policyFound);
  EXPECT_EQ(ipsec.outbound.policyIndex, 0x10001u);
  EXPECT_TRUE(ipsec.outbound.requiresIpsec);
  EXPECT_FALSE(ipsec.outbound.allTemplatesHaveSa);
  EXPECT_TRUE(ipsec.inbound.policyFound);
  EXPECT_EQ(ipsec.inbound.policyIndex, 0x10000u);
  EXPECT_FALSE(ipsec.secured);
  EXPECT_EQ(result->flags, 0u);
  EXPECT_EQ(result->protocol, SecurityProtocol::kNone);

  // The server's end of the same connection is the reverse flow: the "out"
  // policy above (dport = server port) does not cover its outbound packets.
  auto server = querySocketSecurity(server_.get());
  ASSERT_TRUE(server && server->ipsec);
  EXPECT_FALSE(server->ipsec->outbound.policyFound);

  // A higher-priority bypass policy (a broader selector: the kernel refuses
  // two policies with the same selector) shadows the ESP one.
  ASSERT_EQ(
      run("ip xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 dir out index 0x20001 priority 10"),
      "");
  auto shadowed = querySocketSecurity(client_.get());
  ASSERT_TRUE(shadowed && shadowed->ipsec);
  EXPECT_EQ(shadowed->ipsec->outbound.policyIndex, 0x20001u);
  EXPECT_FALSE(shadowed->ipsec->outbound.requiresIpsec);

  // Through the Winsock call: not secured, protocol DEFAULT.
  SOCKET_SECURITY_QUERY_TEMPLATE tmpl{};
  tmpl.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC;
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG infoLen = sizeof(info);
  ASSERT_EQ(
      WSAQuerySocketSecurity(client_.get(), &tmpl, sizeof(tmpl), &info, &infoLen, nullptr, nullptr),
      0);
  EXPECT_EQ(info.Flags, 0u);
  EXPECT_EQ(info.SecurityProtocol, SOCKET_SECURITY_PROTOCOL_DEFAULT);
}

TEST_F(XfrmPolicies, PerSocketPolicyPinnedToTheFlowIsAttributed) {
  connectPair();
  struct {
    xfrm_userpolicy_info info;
    xfrm_user_tmpl tmpl;
  } policy{};
  auto& sel = policy.info.sel;
  sel.family = AF_INET;
  sel.saddr.a4 = htonl(INADDR_LOOPBACK);
  sel.daddr.a4 = htonl(INADDR_LOOPBACK);
  sel.prefixlen_s = sel.prefixlen_d = 32;
  sel.proto = IPPROTO_TCP;
  sel.sport = htons(clientPort_);
  sel.sport_mask = 0xffff;
  sel.dport = htons(serverPort_);
  sel.dport_mask = 0xffff;
  policy.info.dir = XFRM_POLICY_OUT;
  policy.info.action = XFRM_POLICY_ALLOW;
  policy.info.lft.soft_byte_limit = policy.info.lft.hard_byte_limit = XFRM_INF;
  policy.info.lft.soft_packet_limit = policy.info.lft.hard_packet_limit = XFRM_INF;
  policy.tmpl.id.proto = IPPROTO_ESP;
  policy.tmpl.family = AF_INET;
  policy.tmpl.mode = XFRM_MODE_TRANSPORT;
  policy.tmpl.aalgos = policy.tmpl.ealgos = policy.tmpl.calgos = ~0U;
  ASSERT_EQ(setsockopt(client_.get(), IPPROTO_IP, IP_XFRM_POLICY, &policy, sizeof(policy)), 0)
      << strerror(errno);
  auto result = querySocketSecurity(client_.get());
  ASSERT_TRUE(result && result->ipsec)
      << (result ? formatSecurityTable(*result) : result.error().message());
  EXPECT_TRUE(result->ipsec->outbound.policyFound);
  EXPECT_TRUE(result->ipsec->outbound.socketPolicy);
  EXPECT_TRUE(result->ipsec->outbound.requiresIpsec);
  EXPECT_FALSE(result->ipsec->secured);  // and no SA can exist on this kernel

  // A wildcard per-socket policy on another socket is reported, not attributed.
  UniqueFd other(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto wildcard = policy;
  wildcard.info.sel = {};
  wildcard.info.sel.family = AF_INET;
  ASSERT_EQ(setsockopt(other.get(), IPPROTO_IP, IP_XFRM_POLICY, &wildcard, sizeof(wildcard)), 0);
  auto server = querySocketSecurity(server_.get());
  ASSERT_TRUE(server && server->ipsec);
  EXPECT_FALSE(server->ipsec->outbound.policyFound);
  bool noted = false;
  for (const auto& n : server->ipsec->notes)
    noted |= n.find("per-socket policy") != std::string::npos;
  EXPECT_TRUE(noted) << formatSecurityTable(*server);
}

// ---- WSAQuerySocketSecurity: every documented rule -------------------------------

class WinsockQuery : public SecurityQuery {
 protected:
  void SetUp() override {
    SecurityQuery::SetUp();
    listener_ = tcpListener(AF_INET, "127.0.0.1");
    socklen_t len = 0;
    const sockaddr_storage to = localAddress(listener_.get(), &len);
    child_ = spawn([&] {
      if (connectTo(AF_INET, to, len) < 0) _exit(4);
    });
    tcp_.reset(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(tcp_);
    ASSERT_TRUE(child_->waitForSleep());
    udp_.reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(udp_.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
    socklen_t ulen = sizeof(udpAddress_);
    getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&udpAddress_), &ulen);
  }
  SOCKET_SECURITY_QUERY_TEMPLATE udpTemplate() const {
    SOCKET_SECURITY_QUERY_TEMPLATE t{};
    t.PeerAddress.ss_family = WS_AF_INET;
    std::memcpy(reinterpret_cast<char*>(&t.PeerAddress) + 2, &udpAddress_.sin_port, 2);
    std::memcpy(reinterpret_cast<char*>(&t.PeerAddress) + 4, &udpAddress_.sin_addr, 4);
    return t;
  }
  int query(SOCKET s, const SOCKET_SECURITY_QUERY_TEMPLATE* t, ULONG tlen,
            SOCKET_SECURITY_QUERY_INFO* info, ULONG* len) {
    WSASetLastError(0);
    return WSAQuerySocketSecurity(s, t, tlen, info, len, nullptr, nullptr);
  }
  UniqueFd listener_;
  std::unique_ptr<Child> child_;
  UniqueFd tcp_;
  UniqueFd udp_;
  sockaddr_in udpAddress_{};
};

TEST_F(WinsockQuery, TcpWithoutTemplateReturnsOnlyFlags) {
  SOCKET_SECURITY_QUERY_INFO info;
  std::memset(&info, 0xee, sizeof(info));
  ULONG len = sizeof(info);
  ASSERT_EQ(query(tcp_.get(), nullptr, 0, &info, &len), 0);
  EXPECT_EQ(len, sizeof(info));
  EXPECT_EQ(info.Flags, 0u);
  EXPECT_EQ(info.SecurityProtocol, SOCKET_SECURITY_PROTOCOL_DEFAULT);
  EXPECT_EQ(info.PeerApplicationAccessTokenHandle, 0u);
  EXPECT_EQ(info.PeerMachineAccessTokenHandle, 0u);
}

TEST_F(WinsockQuery, AllZeroTemplateReturnsOnlyFlags) {
  SOCKET_SECURITY_QUERY_TEMPLATE t{};
  SOCKET_SECURITY_QUERY_INFO info;
  std::memset(&info, 0xee, sizeof(info));
  ULONG len = sizeof(info);
  ASSERT_EQ(query(tcp_.get(), &t, sizeof(t), &info, &len), 0);
  EXPECT_EQ(info.PeerApplicationAccessTokenHandle, 0u);
  EXPECT_EQ(info.SecurityProtocol, SOCKET_SECURITY_PROTOCOL_DEFAULT);
}

TEST_F(WinsockQuery, AccessMaskReturnsAPidfdOfThePeerTheCallerOwns) {
  SOCKET_SECURITY_QUERY_TEMPLATE t{};
  t.PeerTokenAccessMask = 0x8;  // TOKEN_QUERY
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  ASSERT_EQ(query(tcp_.get(), &t, sizeof(t), &info, &len), 0);
  ASSERT_NE(info.PeerApplicationAccessTokenHandle, 0u);
  const int pidfd = static_cast<int>(info.PeerApplicationAccessTokenHandle);
  EXPECT_EQ(pidOf(pidfd), child_->pid());
  EXPECT_EQ(info.PeerMachineAccessTokenHandle, 0u);
  EXPECT_EQ(close(pidfd), 0);  // ours to close
}

TEST_F(WinsockQuery, ZeroAccessMaskReturnsNoHandles) {
  SOCKET_SECURITY_QUERY_TEMPLATE t{};
  t.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC;
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  ASSERT_EQ(query(tcp_.get(), &t, sizeof(t), &info, &len), 0);
  EXPECT_EQ(info.PeerApplicationAccessTokenHandle, 0u);
}

TEST_F(WinsockQuery, NullInfoQueriesTheSize) {
  ULONG len = 0;
  EXPECT_EQ(query(tcp_.get(), nullptr, 0, nullptr, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
  EXPECT_EQ(len, sizeof(SOCKET_SECURITY_QUERY_INFO));
}

TEST_F(WinsockQuery, SmallBufferFailsWithTheRequiredSize) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info) - 1;
  EXPECT_EQ(query(tcp_.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
  EXPECT_EQ(len, sizeof(info));
}

TEST_F(WinsockQuery, NullLengthIsFault) {
  SOCKET_SECURITY_QUERY_INFO info{};
  EXPECT_EQ(query(tcp_.get(), nullptr, 0, &info, nullptr), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
}

TEST_F(WinsockQuery, NullTemplateWithALengthIsFault) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(query(udp_.get(), nullptr, sizeof(SOCKET_SECURITY_QUERY_TEMPLATE), &info, &len),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
}

TEST_F(WinsockQuery, UdpNeedsATemplate) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(query(udp_.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
  const auto t = udpTemplate();
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t) - 1, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
  EXPECT_EQ(query(tcp_.get(), &t, sizeof(t) - 1, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEMSGSIZE);
}

TEST_F(WinsockQuery, UdpTemplateNeedsAnInetAddressAndPort) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  auto t = udpTemplate();
  t.PeerAddress.ss_family = WS_AF_UNIX;
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEAFNOSUPPORT);
  t.PeerAddress.ss_family = 10;  // Linux AF_INET6 is not the Windows value 23
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEAFNOSUPPORT);
  t = udpTemplate();
  std::memset(reinterpret_cast<char*>(&t.PeerAddress) + 2, 0, 2);  // port 0
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  t = udpTemplate();
  std::memset(reinterpret_cast<char*>(&t.PeerAddress) + 4, 0, 4);  // address 0.0.0.0
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  t = udpTemplate();
  t.PeerTokenAccessMask = 1;
  ASSERT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), 0);
  // The peer is our own UDP socket (the template names it).
  ASSERT_NE(info.PeerApplicationAccessTokenHandle, 0u);
  EXPECT_EQ(pidOf(static_cast<int>(info.PeerApplicationAccessTokenHandle)), getpid());
  close(static_cast<int>(info.PeerApplicationAccessTokenHandle));
}

TEST_F(WinsockQuery, Ipv6UdpTakesTheWindowsFamilyValue) {
  UniqueFd udp6(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(bind(udp6.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t alen = sizeof(a);
  getsockname(udp6.get(), reinterpret_cast<sockaddr*>(&a), &alen);
  SOCKET_SECURITY_QUERY_TEMPLATE t{};
  t.PeerAddress.ss_family = WS_AF_INET6;
  std::memcpy(reinterpret_cast<char*>(&t.PeerAddress) + 2, &a.sin6_port, 2);
  std::memcpy(reinterpret_cast<char*>(&t.PeerAddress) + 8, &a.sin6_addr, 16);
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  ASSERT_EQ(query(udp6.get(), &t, sizeof(t), &info, &len), 0) << WSAGetLastError();
  // An IPv6 peer for an IPv4 socket cannot be.
  EXPECT_EQ(query(udp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEAFNOSUPPORT);
}

TEST_F(WinsockQuery, WrongFamilyOrTypeIsInvalid) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_EQ(query(a.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  UniqueFd raw(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  ASSERT_TRUE(raw);
  EXPECT_EQ(query(raw.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  UniqueFd netlink(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(query(netlink.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
}

TEST_F(WinsockQuery, NonSocketIsNotASocket) {
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  UniqueFd file(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(query(file.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
  EXPECT_EQ(query(1 << 20, nullptr, 0, &info, &len), SOCKET_ERROR);  // not even open
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
}

TEST_F(WinsockQuery, Ipsec2IsNotOffered) {
  SOCKET_SECURITY_QUERY_TEMPLATE t{};
  t.SecurityProtocol = SOCKET_SECURITY_PROTOCOL_IPSEC2;
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(query(tcp_.get(), &t, sizeof(t), &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
}

TEST_F(WinsockQuery, UnconnectedTcpIsNotConnected) {
  UniqueFd fresh(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(query(fresh.get(), nullptr, 0, &info, &len), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTCONN);
}

TEST_F(WinsockQuery, OverlappedArgumentsAreIgnored) {
  WSAOVERLAPPED overlapped{};
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  int called = 0;
  static int* calledPtr = &called;
  calledPtr = &called;
  EXPECT_EQ(WSAQuerySocketSecurity(tcp_.get(), nullptr, 0, &info, &len, &overlapped,
                                   [](DWORD, DWORD, LPWSAOVERLAPPED, DWORD) { ++*calledPtr; }),
            0);
  EXPECT_EQ(called, 0);
  EXPECT_EQ(overlapped.Internal, 0u);
}

}  // namespace
}  // namespace sockgate
