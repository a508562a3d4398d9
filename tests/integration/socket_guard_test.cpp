// The socket guard end to end, as `sockgate run` uses it: a child joins the
// governed cgroup, installs the seccomp filter when the guard needs one, and
// execs real Debian tools (tcpdump, ping, python3). Each test runs twice:
//   - Probed: the guard tries BPF LSM first; it guards every family in the
//     kernel where that loads (Debian 6.1 in the VM tier), and falls back
//     where it is refused (the development host: EPERM);
//   - Fallback: cgroup/sock_create for AF_INET/AF_INET6 and seccomp user
//     notification for the other families, on every kernel.
// SG_EXPECT_BPF_LSM=1 or 0 makes the probe's outcome part of the test.
#include "engine/socket_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/seccomp_guard.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

struct GuardedRun {
  int exitCode = -1;
  std::string output;  // stdout and stderr
  std::vector<sg_sock_event> events;
  std::vector<std::string> lines;  // formatted events
  pid_t pid = -1;
};

enum class Mode { kProbed, kFallback };

class SocketGuardTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    auto mount = findCgroup2Mount();
    ASSERT_TRUE(mount) << mount.error().message();
    mount_ = *mount;
    auto cg = Cgroup::create(mount_ + "/sg-guard-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(cg) << cg.error().message();
    cgroup_.emplace(std::move(*cg));
  }
  void TearDown() override {
    if (cgroup_) {
      (void)cgroup_->signalAll(SIGKILL);
      for (int i = 0; i < 100 && !cgroup_->processes().empty(); ++i) ::usleep(10000);
      EXPECT_TRUE(cgroup_->remove());
    }
  }

  Result<std::unique_ptr<SocketGuard>> startGuard(const SocketPolicy& policy) {
    auto g = SocketGuard::start({cgroup_->path(), mount_, policy, GetParam() == Mode::kProbed});
    if (g) hook_ = (*g)->hook();
    return g;
  }

  // Where a socket of this family is decided, with the hook started last.
  uint32_t sourceFor(uint32_t family) const {
    if (hook_ == SocketGuard::Hook::kLsm) return SG_SOCK_FROM_LSM;
    return family == AF_INET || family == AF_INET6 ? SG_SOCK_FROM_BPF : SG_SOCK_FROM_SECCOMP;
  }

  // Runs argv in the governed cgroup under the policy (none: unguarded).
  GuardedRun run(const std::optional<std::string>& policyText,
                 const std::vector<std::string>& argv) {
    GuardedRun result;
    std::unique_ptr<SocketGuard> guard;
    std::unique_ptr<SeccompGuard> seccomp;
    SocketPolicy policy;
    if (policyText) {
      auto p = parseSocketPolicy(*policyText);
      EXPECT_TRUE(p) << p.error().message();
      if (!p) return result;
      policy = *p;
      auto g = startGuard(policy);
      EXPECT_TRUE(g) << g.error().message();
      if (!g) return result;
      guard = std::move(*g);
      if (!guard->coversEveryFamily()) {         // as sockgate run does
        auto s = SeccompGuard::prepare(policy);  // before fork
        EXPECT_TRUE(s) << s.error().message();
        if (!s) return result;
        if ((*s)->needed()) seccomp = std::move(*s);
      }
    }
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const std::string procs = cgroup_->path() + "/cgroup.procs";
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {  // async-signal-safe from here to exec
      int cg = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (cg < 0 || ::write(cg, "0", 1) != 1) ::_exit(120);
      if (seccomp && seccomp->installInChild(seccomp->childFd()) != 0) ::_exit(121);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    result.pid = pid;
    ::close(out[1]);
    UniqueFd outFd(out[0]);
    if (seccomp) {
      seccomp->closeChildEnd();
      auto st = seccomp->receiveListener(5s);
      EXPECT_TRUE(st) << st.error().message();
    }
    auto sink = [&](const sg_sock_event& e) {
      result.events.push_back(e);
      result.lines.push_back(formatSocketEvent(policy, e));
    };
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    bool outOpen = true;
    int status = 0;
    bool exited = false;
    while (!exited || outOpen) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out: " << argv[0];
        (void)cgroup_->signalAll(SIGKILL);
        break;
      }
      pollfd p[3] = {{outFd.get(), POLLIN, 0},
                     {seccomp ? seccomp->listenerFd() : -1, POLLIN, 0},
                     {guard ? guard->eventsFd() : -1, POLLIN, 0}};
      if (!outOpen) p[0].fd = -1;
      ::poll(p, 3, 100);
      if (p[0].revents) {
        char buf[4096];
        ssize_t n = ::read(outFd.get(), buf, sizeof buf);
        if (n > 0)
          result.output.append(buf, static_cast<size_t>(n));
        else
          outOpen = false;
      }
      if (p[1].revents & POLLIN) {
        auto h = seccomp->handle(sink);
        EXPECT_TRUE(h) << h.error().message();
      }
      if (guard) (void)guard->drainEvents(sink);
      if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    }
    if (!exited) ::waitpid(pid, &status, 0);
    if (guard) (void)guard->drainEvents(sink);
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
  }

  static const sg_sock_event* find(const GuardedRun& r, const char* comm, uint32_t family,
                                   uint32_t action) {
    for (const auto& e : r.events)
      if (std::strncmp(e.comm, comm, SG_COMM_LEN) == 0 && e.family == family && e.action == action)
        return &e;
    return nullptr;
  }

  static std::string dump(const GuardedRun& r) {
    std::string s = "exit " + std::to_string(r.exitCode) + "\noutput:\n" + r.output + "events:\n";
    for (const auto& l : r.lines) s += "  " + l + "\n";
    return s;
  }

  std::string mount_;
  std::optional<Cgroup> cgroup_;
  SocketGuard::Hook hook_ = SocketGuard::Hook::kSockCreate;
};

TEST_P(SocketGuardTest, ProbeSaysWhichHookAndWhy) {
  auto p = parseSocketPolicy("audit packet");
  ASSERT_TRUE(p);
  auto g = startGuard(*p);
  ASSERT_TRUE(g) << g.error().message();
  const SocketGuard& guard = **g;
  if (GetParam() == Mode::kFallback) {
    EXPECT_EQ(guard.hook(), SocketGuard::Hook::kSockCreate);
    EXPECT_FALSE(guard.coversEveryFamily());
    EXPECT_EQ(guard.fallbackNotice(), "");
    return;
  }
  std::cout << "measured: BPF LSM socket_create "
            << (guard.hook() == SocketGuard::Hook::kLsm
                    ? std::string("loads and attaches")
                    : "refused (" + errnoName(guard.lsmError()) + ")")
            << "\n";
  if (const char* expect = std::getenv("SG_EXPECT_BPF_LSM"); expect && *expect) {
    EXPECT_EQ(guard.hook() == SocketGuard::Hook::kLsm, std::string(expect) == "1");
  }
  if (guard.hook() == SocketGuard::Hook::kLsm) {
    EXPECT_TRUE(guard.coversEveryFamily());
    EXPECT_EQ(guard.fallbackNotice(), "");
  } else {
    EXPECT_FALSE(guard.coversEveryFamily());
    EXPECT_NE(guard.lsmError(), 0);
    EXPECT_EQ(guard.fallbackNotice(),
              "BPF LSM programs are refused by this kernel (" + errnoName(guard.lsmError()) +
                  "); packet and other non-inet sockets are guarded by seccomp for the "
                  "command's processes instead");
  }
}

TEST_P(SocketGuardTest, DenyStopsTcpdump) {
  GuardedRun r = run("deny packet,raw", {"tcpdump", "-i", "lo", "-c", "1"});
  EXPECT_NE(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("Operation not permitted"), std::string::npos) << dump(r);
  const sg_sock_event* e = find(r, "tcpdump", AF_PACKET, SG_SOCK_DENY);
  ASSERT_NE(e, nullptr) << dump(r);
  EXPECT_EQ(e->tgid, static_cast<uint32_t>(r.pid));
  EXPECT_EQ(e->type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(e->rule, 0u);      // 'packet', the first deny target that matches
  EXPECT_EQ(e->protocol, 0u);  // libpcap opens with 0 and binds to ETH_P_ALL later
  EXPECT_EQ(e->source, sourceFor(AF_PACKET));
  EXPECT_EQ(e->cgroup_id, cgroup_->id());
  EXPECT_EQ(e->uid, 0u);
  const std::string line = "pid " + std::to_string(r.pid) +
                           " (tcpdump) uid 0: socket(AF_PACKET, SOCK_RAW, 0) denied by "
                           "'deny packet,raw'";
  EXPECT_NE(std::find(r.lines.begin(), r.lines.end(), line), r.lines.end()) << dump(r);
}

TEST_P(SocketGuardTest, DenyStopsPing) {
  GuardedRun r = run("deny packet,raw", {"ping", "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_NE(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("Operation not permitted"), std::string::npos) << dump(r);
  const sg_sock_event* e = find(r, "ping", AF_INET, SG_SOCK_DENY);
  ASSERT_NE(e, nullptr) << dump(r);
  EXPECT_EQ(e->tgid, static_cast<uint32_t>(r.pid));
  EXPECT_EQ(e->type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(e->rule, 1u);
  EXPECT_EQ(e->source, sourceFor(AF_INET));
  EXPECT_EQ(e->cgroup_id, cgroup_->id());
  const std::string line = "pid " + std::to_string(r.pid) +
                           " (ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied by "
                           "'deny packet,raw'";
  EXPECT_NE(std::find(r.lines.begin(), r.lines.end(), line), r.lines.end()) << dump(r);
}

TEST_P(SocketGuardTest, WithoutPolicyPingSucceeds) {
  GuardedRun r = run(std::nullopt, {"ping", "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("1 received"), std::string::npos) << dump(r);
}

// tcpdump captures one of ping's packets and exits; bounded by timeout(1).
const std::vector<std::string> kSniffPing = {
    "sh", "-c",
    "timeout 20 tcpdump -i lo -c 1 -n icmp & sleep 1; ping -c 3 -i 0.3 127.0.0.1; wait $!"};

TEST_P(SocketGuardTest, WithoutPolicyTcpdumpCaptures) {
  GuardedRun r = run(std::nullopt, kSniffPing);
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("1 packet captured"), std::string::npos) << dump(r);
}

TEST_P(SocketGuardTest, TcpAndUdpUnaffected) {
  // TCP and UDP over IPv4 and IPv6 loopback, bytes checked, under a policy
  // that denies raw and packet sockets and so also traps (and lets go) the
  // AF_UNIX socket at the end.
  const char* script =
      "import socket\n"
      "for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n"
      "    l = socket.socket(fam); l.bind((host, 0)); l.listen()\n"
      "    c = socket.socket(fam); c.connect(l.getsockname()[:2]); a, _ = l.accept()\n"
      "    c.sendall(b'tcp'); assert a.recv(3) == b'tcp'\n"
      "    u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, 0))\n"
      "    v = socket.socket(fam, socket.SOCK_DGRAM); v.sendto(b'udp', u.getsockname()[:2])\n"
      "    assert u.recv(3) == b'udp'\n"
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "print('ok')\n";
  GuardedRun r = run("deny packet,raw", {"python3", "-c", script});
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("ok"), std::string::npos) << dump(r);
  EXPECT_TRUE(r.events.empty()) << dump(r);
}

TEST_P(SocketGuardTest, AuditRecordsAndLetsThrough) {
  GuardedRun r = run("audit raw,packet", kSniffPing);
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("1 packet captured"), std::string::npos) << dump(r);
  const sg_sock_event* t = find(r, "tcpdump", AF_PACKET, SG_SOCK_AUDIT);
  ASSERT_NE(t, nullptr) << dump(r);
  EXPECT_EQ(t->type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(t->rule, 0u);  // the first audit target that matches: 'raw' (AF_PACKET SOCK_RAW)
  EXPECT_EQ(t->source, sourceFor(AF_PACKET));
  const sg_sock_event* p = find(r, "ping", AF_INET, SG_SOCK_AUDIT);
  ASSERT_NE(p, nullptr) << dump(r);
  EXPECT_EQ(p->source, sourceFor(AF_INET));
  EXPECT_NE(p->tgid, static_cast<uint32_t>(r.pid));  // ping and tcpdump are children of sh
  EXPECT_NE(p->tgid, t->tgid);
  EXPECT_NE(t->tgid, static_cast<uint32_t>(r.pid));
  for (const auto& e : r.events) EXPECT_EQ(e.action, static_cast<uint32_t>(SG_SOCK_AUDIT));
}

TEST_P(SocketGuardTest, SocketpairAndFlagsDoNotSlipThrough) {
  // python asks for every socket with SOCK_CLOEXEC; socketpair() makes two.
  const char* script =
      "import socket, sys\n"
      "try:\n"
      "    socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
      "except PermissionError as e:\n"
      "    print('socketpair:', e.strerror); sys.exit(3)\n";
  GuardedRun r = run("deny unix/dgram", {"python3", "-c", script});
  EXPECT_EQ(r.exitCode, 3) << dump(r);
  EXPECT_NE(r.output.find("socketpair: Operation not permitted"), std::string::npos) << dump(r);
  const sg_sock_event* e = find(r, "python3", AF_UNIX, SG_SOCK_DENY);
  ASSERT_NE(e, nullptr) << dump(r);
  EXPECT_EQ(e->type, static_cast<uint32_t>(SOCK_DGRAM));
  EXPECT_EQ(e->source, sourceFor(AF_UNIX));
}

TEST_P(SocketGuardTest, NotGovernedIsNotGuarded) {
  // Only the governed cgroup's sockets are acted on (this process is not in it).
  auto p = parseSocketPolicy("deny raw, packet");
  ASSERT_TRUE(p);
  auto g = startGuard(*p);
  ASSERT_TRUE(g) << g.error().message();
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) ::close(fd);
  fd = ::socket(AF_PACKET, SOCK_RAW, 0);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) ::close(fd);
  int n = 0;
  auto d = (*g)->drainEvents([&](const sg_sock_event&) { ++n; });
  ASSERT_TRUE(d);
  EXPECT_EQ(n, 0);
}

INSTANTIATE_TEST_SUITE_P(Hooks, SocketGuardTest, ::testing::Values(Mode::kProbed, Mode::kFallback),
                         [](const ::testing::TestParamInfo<Mode>& param) {
                           return param.param == Mode::kProbed ? "Probed" : "Fallback";
                         });

}  // namespace
}  // namespace sockgate::testing
