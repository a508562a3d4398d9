// The seccomp half of the socket guard, through the kernel: a forked child
// installs the filter built for a policy and makes real socket() and
// socketpair() calls by every entry x86_64 offers (native, x32, i386 int
// $0x80 direct and socketcall); this process answers the notifications with
// SeccompGuard::handle. What the child's calls return and which events come
// out are what a guarded command and its user would see.
#include "engine/seccomp_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace sockgate {
namespace {

using namespace std::chrono_literals;

enum class Entry { kNative, kNativePair, kX32, kI386, kI386Socketcall };

struct Call {
  Entry entry;
  int family, type, protocol;
};

constexpr long kX32Bit = 0x40000000L;

// i386 system call from this 64-bit process: what a 32-bit program does, and
// what any program can do to sidestep a filter that looks at x86_64 only.
long int80(long nr, long a, long b, long c) {
  long ret;
  asm volatile("int $0x80"
               : "=a"(ret)
               : "a"(nr), "b"(a), "c"(b), "d"(c)
               : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

// 0 on success (the socket is closed again), else the errno.
int makeSocket(const Call& c, uint32_t* low) {
  long r = -1;
  int sv[2];
  switch (c.entry) {
    case Entry::kNative:
      r = ::socket(c.family, c.type, c.protocol);
      break;
    case Entry::kNativePair:
      r = ::socketpair(c.family, c.type, c.protocol, sv);
      if (r == 0) {
        ::close(sv[0]);
        ::close(sv[1]);
      }
      return r == 0 ? 0 : errno;
    case Entry::kX32:
      r = ::syscall(__NR_socket | kX32Bit, c.family, c.type, c.protocol);
      break;
    case Entry::kI386:
      r = int80(359, c.family, c.type, c.protocol);  // socket
      if (r < 0) return static_cast<int>(-r);
      break;
    case Entry::kI386Socketcall:
      low[0] = static_cast<uint32_t>(c.family);
      low[1] = static_cast<uint32_t>(c.type);
      low[2] = static_cast<uint32_t>(c.protocol);
      r = int80(102, 1 /* SYS_SOCKET */, static_cast<long>(reinterpret_cast<uintptr_t>(low)), 0);
      if (r < 0) return static_cast<int>(-r);
      break;
  }
  if (r < 0) return errno;
  ::close(static_cast<int>(r));
  return 0;
}

bool i386Available() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(int80(20 /* getpid */, 0, 0, 0) > 0 ? 0 : 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Outcome {
  std::vector<int> errors;  // per call: 0 or errno
  std::vector<sg_sock_event> events;
  pid_t pid = -1;
};

Outcome runGuarded(const std::string& policyText, const std::vector<Call>& calls) {
  Outcome out;
  auto policy = parseSocketPolicy(policyText);
  EXPECT_TRUE(policy) << policy.error().message();
  if (!policy) return out;
  auto guard = SeccompGuard::prepare(*policy);
  EXPECT_TRUE(guard) << guard.error().message();
  if (!guard) return out;
  EXPECT_TRUE((*guard)->needed());
  // socketcall's argument block must have a 32-bit address
  void* low =
      ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
  EXPECT_NE(low, MAP_FAILED);
  int results[2];
  EXPECT_EQ(::pipe2(results, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(results[0]);
    // Unit tests may run unprivileged, and without CAP_SYS_ADMIN seccomp
    // wants no_new_privs; this throwaway child execs nothing.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(120);
    if ((*guard)->installInChild((*guard)->childFd()) != 0) ::_exit(121);
    for (const auto& c : calls) {
      int err = makeSocket(c, static_cast<uint32_t*>(low));
      if (::write(results[1], &err, sizeof err) != sizeof err) ::_exit(122);
    }
    ::_exit(0);
  }
  out.pid = pid;
  ::close(results[1]);
  UniqueFd resultFd(results[0]);
  (*guard)->closeChildEnd();
  auto st = (*guard)->receiveListener(5s);
  EXPECT_TRUE(st) << st.error().message();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  bool open = true;
  while (open && std::chrono::steady_clock::now() < deadline) {
    pollfd p[2] = {{resultFd.get(), POLLIN, 0}, {(*guard)->listenerFd(), POLLIN, 0}};
    ::poll(p, 2, 100);
    if (p[1].revents & POLLIN) {
      auto h = (*guard)->handle([&](const sg_sock_event& e) { out.events.push_back(e); });
      EXPECT_TRUE(h) << h.error().message();
    }
    if (p[0].revents) {
      int err = 0;
      if (::read(resultFd.get(), &err, sizeof err) == sizeof err)
        out.errors.push_back(err);
      else
        open = false;
    }
  }
  if (open) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  ::munmap(low, 4096);
  EXPECT_EQ(out.errors.size(), calls.size());
  out.errors.resize(calls.size(), -1);
  return out;
}

const sg_sock_event* eventFor(const Outcome& o, uint32_t family, uint32_t type) {
  for (const auto& e : o.events)
    if (e.family == family && e.type == type) return &e;
  return nullptr;
}

TEST(SeccompFilterTest, EmptyWhenOnlyInetIsNamed) {
  auto p = parseSocketPolicy("deny inet/raw; audit inet6");
  ASSERT_TRUE(p);
  EXPECT_TRUE(buildSocketSeccompFilter(*p).empty());
  auto g = SeccompGuard::prepare(*p);
  ASSERT_TRUE(g);
  EXPECT_FALSE((*g)->needed());
  EXPECT_EQ((*g)->installInChild(-1), 0);  // nothing to install
}

TEST(SeccompFilterTest, NamedFamiliesAreDecidedByThePolicy) {
  const int ethAll = htons(ETH_P_ALL);
  const std::vector<Call> calls = {
      {Entry::kNative, AF_PACKET, SOCK_RAW, ethAll},                         // 0 deny packet
      {Entry::kNative, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE},  // 1 deny netlink/raw
      {Entry::kNative, AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE},               // 2 trapped, no rule
      {Entry::kNative, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0},             // 3 audit unix
      {Entry::kNativePair, AF_UNIX, SOCK_SEQPACKET, 0},    // 4 audit unix (socketpair)
      {Entry::kNative, AF_INET, SOCK_DGRAM, 0},            // 5 not trapped
      {Entry::kX32, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},  // 6 x32: deny
  };
  Outcome o = runGuarded("deny packet, netlink/raw; audit unix", calls);
  EXPECT_EQ(o.errors[0], EPERM);
  EXPECT_EQ(o.errors[1], EPERM);
  EXPECT_EQ(o.errors[2], 0);
  EXPECT_EQ(o.errors[3], 0);
  EXPECT_EQ(o.errors[4], 0);
  EXPECT_EQ(o.errors[5], 0);
  EXPECT_EQ(o.errors[6], EPERM);  // not ENOSYS: refused before the kernel looked at x32

  ASSERT_EQ(o.events.size(), 5u);
  const sg_sock_event* packet = eventFor(o, AF_PACKET, SOCK_RAW);
  ASSERT_NE(packet, nullptr);
  EXPECT_EQ(packet->action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(packet->rule, 0u);
  EXPECT_EQ(packet->protocol, static_cast<uint32_t>(ethAll));
  EXPECT_EQ(packet->tgid, static_cast<uint32_t>(o.pid));
  EXPECT_EQ(packet->tid, static_cast<uint32_t>(o.pid));
  EXPECT_EQ(packet->uid, ::getuid());
  EXPECT_EQ(packet->gid, ::getgid());
  EXPECT_EQ(packet->source, static_cast<uint32_t>(SG_SOCK_FROM_SECCOMP));
  EXPECT_NE(packet->time_ns, 0u);
  EXPECT_EQ(std::string(packet->comm, strnlen(packet->comm, SG_COMM_LEN)),
            "seccomp_guard_t");  // comm: the executable's name, cut to 15
  const sg_sock_event* netlink = eventFor(o, AF_NETLINK, SOCK_RAW);
  ASSERT_NE(netlink, nullptr);
  EXPECT_EQ(netlink->action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(netlink->rule, 1u);
  const sg_sock_event* unixStream = eventFor(o, AF_UNIX, SOCK_STREAM);
  ASSERT_NE(unixStream, nullptr);
  EXPECT_EQ(unixStream->action, static_cast<uint32_t>(SG_SOCK_AUDIT));
  EXPECT_EQ(unixStream->rule, 2u);
  EXPECT_NE(eventFor(o, AF_UNIX, SOCK_SEQPACKET), nullptr);  // socketpair
  EXPECT_EQ(eventFor(o, AF_INET, SOCK_DGRAM), nullptr);
}

TEST(SeccompFilterTest, AnyFamilyTrapsAllButInet) {
  const std::vector<Call> calls = {
      {Entry::kNative, AF_INET, SOCK_DGRAM, 0},   // 0 not trapped
      {Entry::kNative, AF_INET6, SOCK_RAW, 58},   // 1 not trapped: cgroup/sock_create's
      {Entry::kNative, AF_UNIX, SOCK_DGRAM, 0},   // 2 trapped, no rule
      {Entry::kNative, AF_NETLINK, SOCK_RAW, 0},  // 3 deny */raw
      {Entry::kNative, AF_PACKET, SOCK_RAW, 0},   // 4 deny */raw
  };
  Outcome o = runGuarded("deny */raw", calls);
  EXPECT_EQ(o.errors[0], 0);
  EXPECT_EQ(o.errors[2], 0);
  EXPECT_EQ(o.errors[3], EPERM);
  EXPECT_EQ(o.errors[4], EPERM);
  ASSERT_EQ(o.events.size(), 2u);
  EXPECT_NE(eventFor(o, AF_NETLINK, SOCK_RAW), nullptr);
  EXPECT_NE(eventFor(o, AF_PACKET, SOCK_RAW), nullptr);
  for (const auto& e : o.events) EXPECT_EQ(e.action, static_cast<uint32_t>(SG_SOCK_DENY));
}

TEST(SeccompFilterTest, I386EntriesAreGuardedToo) {
  if (!i386Available()) GTEST_SKIP() << "this kernel runs no i386 system calls (no IA32 emulation)";
  const std::vector<Call> calls = {
      {Entry::kI386, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},            // 0 deny
      {Entry::kI386, AF_UNIX, SOCK_STREAM, 0},                        // 1 audit
      {Entry::kI386Socketcall, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},  // 2 deny, args in memory
      {Entry::kI386Socketcall, AF_UNIX, SOCK_DGRAM, 0},               // 3 audit
      {Entry::kI386Socketcall, AF_INET, SOCK_DGRAM, 0},               // 4 read, no rule
  };
  Outcome o = runGuarded("deny netlink; audit unix", calls);
  EXPECT_EQ(o.errors[0], EPERM);
  EXPECT_EQ(o.errors[1], 0);
  EXPECT_EQ(o.errors[2], EPERM);
  EXPECT_EQ(o.errors[3], 0);
  EXPECT_EQ(o.errors[4], 0);
  ASSERT_EQ(o.events.size(), 4u);
  EXPECT_EQ(o.events[0].family, static_cast<uint32_t>(AF_NETLINK));
  EXPECT_EQ(o.events[0].action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(o.events[1].family, static_cast<uint32_t>(AF_UNIX));
  EXPECT_EQ(o.events[1].action, static_cast<uint32_t>(SG_SOCK_AUDIT));
  EXPECT_EQ(o.events[2].family, static_cast<uint32_t>(AF_NETLINK));
  EXPECT_EQ(o.events[2].type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(o.events[2].protocol, static_cast<uint32_t>(NETLINK_ROUTE));
  EXPECT_EQ(o.events[2].action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(o.events[3].type, static_cast<uint32_t>(SOCK_DGRAM));
  EXPECT_EQ(o.events[3].action, static_cast<uint32_t>(SG_SOCK_AUDIT));
}

TEST(SeccompFilterTest, NoListenerWithoutTheFilter) {
  // A child that dies before sending the listener: the parent hears of it
  // at once instead of waiting for the timeout.
  auto p = parseSocketPolicy("deny packet");
  ASSERT_TRUE(p);
  auto g = SeccompGuard::prepare(*p);
  ASSERT_TRUE(g);
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  (*g)->closeChildEnd();
  const auto start = std::chrono::steady_clock::now();
  auto st = (*g)->receiveListener(10s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, EPROTO);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace sockgate
