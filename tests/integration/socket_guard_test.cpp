// The socket guard end to end, as `sockgate run` uses it: a child joins the
// governed cgroup, installs the seccomp filter and execs real Debian tools
// (tcpdump, ping); cgroup/sock_create guards its AF_INET/AF_INET6 sockets,
// the seccomp listener in this process everything else.
#include <fcntl.h>
#include <netinet/in.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/seccomp_guard.h"
#include "engine/socket_guard.h"

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

class SocketGuardTest : public ::testing::Test {
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

  // Runs argv in the governed cgroup under the policy (none: unguarded).
  GuardedRun run(const std::optional<std::string>& policyText, const std::vector<std::string>& argv) {
    GuardedRun result;
    std::unique_ptr<SocketGuard> guard;
    std::unique_ptr<SeccompGuard> seccomp;
    SocketPolicy policy;
    if (policyText) {
      auto p = parseSocketPolicy(*policyText);
      EXPECT_TRUE(p) << p.error().message();
      if (!p) return result;
      policy = *p;
      auto g = SocketGuard::start({cgroup_->path(), mount_, policy});
      EXPECT_TRUE(g) << g.error().message();
      if (!g) return result;
      guard = std::move(*g);
      auto s = SeccompGuard::prepare(policy);  // before fork
      EXPECT_TRUE(s) << s.error().message();
      if (!s) return result;
      seccomp = std::move(*s);
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
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    bool outOpen = true;
    int status = 0;
    bool exited = false;
    while (!exited || outOpen) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out: " << argv[0];
        ::kill(pid, SIGKILL);
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
      if (std::strncmp(e.comm, comm, SG_COMM_LEN) == 0 && e.family == family &&
          e.action == action)
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
};

TEST_F(SocketGuardTest, DenyStopsTcpdump) {
  GuardedRun r = run("deny packet,raw", {"tcpdump", "-i", "lo", "-c", "1"});
  EXPECT_NE(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("Operation not permitted"), std::string::npos) << dump(r);
  const sg_sock_event* e = find(r, "tcpdump", AF_PACKET, SG_SOCK_DENY);
  ASSERT_NE(e, nullptr) << dump(r);
  EXPECT_EQ(e->tgid, static_cast<uint32_t>(r.pid));
  EXPECT_EQ(e->source, static_cast<uint32_t>(SG_SOCK_FROM_SECCOMP));
  EXPECT_EQ(e->cgroup_id, cgroup_->id());
  EXPECT_EQ(e->uid, 0u);
}

TEST_F(SocketGuardTest, DenyStopsPing) {
  GuardedRun r = run("deny packet,raw", {"ping", "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_NE(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("Operation not permitted"), std::string::npos) << dump(r);
  const sg_sock_event* e = find(r, "ping", AF_INET, SG_SOCK_DENY);
  ASSERT_NE(e, nullptr) << dump(r);
  EXPECT_EQ(e->tgid, static_cast<uint32_t>(r.pid));
  EXPECT_EQ(e->type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(e->source, static_cast<uint32_t>(SG_SOCK_FROM_BPF));
  EXPECT_EQ(e->cgroup_id, cgroup_->id());
  const std::string line = "pid " + std::to_string(r.pid) +
                           " (ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied by "
                           "'deny packet,raw'";
  EXPECT_NE(std::find(r.lines.begin(), r.lines.end(), line), r.lines.end()) << dump(r);
}

TEST_F(SocketGuardTest, WithoutPolicyPingSucceeds) {
  GuardedRun r = run(std::nullopt, {"ping", "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_EQ(r.exitCode, 0) << dump(r);
}

TEST_F(SocketGuardTest, TcpUdpAndUnixUnaffected) {
  // A TCP connection over loopback, UDP both ways and a UNIX socketpair,
  // with the seccomp filter trapping (and continuing) the AF_UNIX socket.
  const char* script =
      "import socket\n"
      "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n"
      "c = socket.create_connection(l.getsockname()); a, _ = l.accept()\n"
      "c.sendall(b'x'); assert a.recv(1) == b'x'\n"
      "u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(('::1', 0))\n"
      "v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "print('ok')\n";
  GuardedRun r = run("deny packet,raw", {"python3", "-c", script});
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("ok"), std::string::npos) << dump(r);
  EXPECT_TRUE(r.events.empty()) << dump(r);
}

TEST_F(SocketGuardTest, AuditRecordsAndLetsThrough) {
  // tcpdump captures one of ping's packets and exits: both must succeed.
  GuardedRun r = run("audit raw,packet",
              {"sh", "-c", "tcpdump -i lo -c 1 -n icmp & sleep 1; ping -c 3 -i 0.3 127.0.0.1; wait $!"});
  EXPECT_EQ(r.exitCode, 0) << dump(r);
  EXPECT_NE(r.output.find("1 packet captured"), std::string::npos) << dump(r);
  const sg_sock_event* t = find(r, "tcpdump", AF_PACKET, SG_SOCK_AUDIT);
  ASSERT_NE(t, nullptr) << dump(r);
  EXPECT_EQ(t->type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(t->rule, 0u);  // the first audit target that matches: 'raw' (AF_PACKET SOCK_RAW)
  EXPECT_EQ(t->source, static_cast<uint32_t>(SG_SOCK_FROM_SECCOMP));
  const sg_sock_event* p = find(r, "ping", AF_INET, SG_SOCK_AUDIT);
  ASSERT_NE(p, nullptr) << dump(r);
  EXPECT_NE(p->tgid, static_cast<uint32_t>(r.pid));  // ping is a child of sh
  EXPECT_NE(p->tgid, t->tgid);
  for (const auto& e : r.events) EXPECT_EQ(e.action, static_cast<uint32_t>(SG_SOCK_AUDIT));
}

TEST_F(SocketGuardTest, NotGovernedIsNotGuarded) {
  // The hook sees every socket of the scope; only the governed cgroup's are acted on.
  auto p = parseSocketPolicy("deny raw");
  ASSERT_TRUE(p);
  auto g = SocketGuard::start({cgroup_->path(), mount_, *p});
  ASSERT_TRUE(g) << g.error().message();
  int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) ::close(fd);
  int n = 0;
  auto d = (*g)->drainEvents([&](const sg_sock_event&) { ++n; });
  ASSERT_TRUE(d);
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace sockgate::testing
