// WS_socket() on the real kernel: sockets it creates are what the Windows
// triple asks for (SO_DOMAIN/SO_TYPE/SO_PROTOCOL), every refusal is
// validateSocket()'s or a documented kernel one, and WSAEMFILE / WSAEACCES
// come from the kernel itself, in forked children (an fd limit; a real
// privilege drop to nobody). The errors that cannot be provoked on demand
// (ENOBUFS, ENOMEM, ENFILE...) are returned by socket(2) through a seccomp
// filter, again in a child.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "sockgate/socket_validation.h"
#include "sockgate/winsock.h"

namespace {

class WinsockSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);
  }
  void TearDown() override { WSACleanup(); }
};

int sockOpt(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  EXPECT_EQ(getsockopt(fd, SOL_SOCKET, opt, &v, &len), 0) << errno;
  return v;
}

struct Made {
  int domain, type, protocol;
};

Made expectSocket(int af, int type, int protocol) {
  const SOCKET s = WS_socket(af, type, protocol);
  EXPECT_NE(s, INVALID_SOCKET) << af << "," << type << "," << protocol << ": " << WSAGetLastError();
  if (s == INVALID_SOCKET) return {-1, -1, -1};
  Made m{sockOpt(s, SO_DOMAIN), sockOpt(s, SO_TYPE), sockOpt(s, SO_PROTOCOL)};
  EXPECT_EQ(closesocket(s), 0);
  return m;
}

void expectError(int af, int type, int protocol, int wsaError) {
  WSASetLastError(0);
  EXPECT_EQ(WS_socket(af, type, protocol), INVALID_SOCKET) << af << "," << type << "," << protocol;
  EXPECT_EQ(WSAGetLastError(), wsaError) << af << "," << type << "," << protocol;
}

bool hasCapability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

// Runs body in a forked child; returns its exit status (or -1 on a signal).
int inChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(WinsockSocketNoStartup, NotInitialised) {
  WSASetLastError(0);
  EXPECT_EQ(WS_socket(WS_AF_INET, WS_SOCK_STREAM, 0), INVALID_SOCKET);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  // Before the arguments are looked at.
  EXPECT_EQ(WS_socket(-1, -1, -1), INVALID_SOCKET);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
}

TEST(WinsockSocketNoStartup, CloseSocketNotInitialisedLeavesTheSocketOpen) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  WSASetLastError(0);
  EXPECT_EQ(closesocket(fd), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  EXPECT_EQ(fcntl(fd, F_GETFD), 0) << "closed anyway";
  close(fd);
}

// closesocket() closes what WS_socket() made, and nothing that is not a socket.
TEST_F(WinsockSocket, CloseSocketClosesSocketsOnly) {
  int pipeFds[2];
  ASSERT_EQ(pipe(pipeFds), 0);
  WSASetLastError(0);
  EXPECT_EQ(closesocket(pipeFds[0]), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
  EXPECT_EQ(fcntl(pipeFds[0], F_GETFD), 0) << "a pipe was closed";
  close(pipeFds[0]);
  close(pipeFds[1]);

  const SOCKET s = WS_socket(WS_AF_INET6, WS_SOCK_DGRAM, 0);
  ASSERT_NE(s, INVALID_SOCKET) << WSAGetLastError();
  ASSERT_EQ(closesocket(s), 0);
  errno = 0;
  EXPECT_EQ(fcntl(s, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  WSASetLastError(0);
  EXPECT_EQ(closesocket(s), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
  EXPECT_EQ(closesocket(INVALID_SOCKET), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
}

TEST_F(WinsockSocket, CreatesWhatTheWindowsTripleAsks) {
  struct Case {
    int af, type, protocol;
    Made linux;
  };
  const std::vector<Case> cases = {
      {WS_AF_INET, WS_SOCK_STREAM, 0, {AF_INET, SOCK_STREAM, IPPROTO_TCP}},
      {WS_AF_INET, WS_SOCK_STREAM, WS_IPPROTO_TCP, {AF_INET, SOCK_STREAM, IPPROTO_TCP}},
      {WS_AF_INET, 0, 0, {AF_INET, SOCK_STREAM, IPPROTO_TCP}},
      {WS_AF_UNSPEC, 0, WS_IPPROTO_TCP, {AF_INET, SOCK_STREAM, IPPROTO_TCP}},
      {WS_AF_INET, WS_SOCK_DGRAM, 0, {AF_INET, SOCK_DGRAM, IPPROTO_UDP}},
      {WS_AF_UNSPEC, WS_SOCK_DGRAM, WS_IPPROTO_UDP, {AF_INET, SOCK_DGRAM, IPPROTO_UDP}},
      {WS_AF_UNSPEC, 0, WS_IPPROTO_UDP, {AF_INET, SOCK_DGRAM, IPPROTO_UDP}},
      // AF_INET6 is 23 on Windows and 10 on Linux.
      {WS_AF_INET6, WS_SOCK_STREAM, 0, {AF_INET6, SOCK_STREAM, IPPROTO_TCP}},
      {WS_AF_INET6, 0, WS_IPPROTO_UDP, {AF_INET6, SOCK_DGRAM, IPPROTO_UDP}},
  };
  for (const auto& c : cases) {
    const Made m = expectSocket(c.af, c.type, c.protocol);
    EXPECT_EQ(m.domain, c.linux.domain) << c.af;
    EXPECT_EQ(m.type, c.linux.type) << c.af;
    EXPECT_EQ(m.protocol, c.linux.protocol) << c.af;
  }
}

TEST_F(WinsockSocket, RawSocketsWithThePrivilege) {
  if (!hasCapability(CAP_NET_RAW)) GTEST_SKIP() << "needs CAP_NET_RAW";
  struct Case {
    int af, type, protocol;
    Made linux;
  };
  const std::vector<Case> cases = {
      {WS_AF_INET, WS_SOCK_RAW, WS_IPPROTO_ICMP, {AF_INET, SOCK_RAW, IPPROTO_ICMP}},
      {WS_AF_UNSPEC, 0, WS_IPPROTO_IGMP, {AF_INET, SOCK_RAW, IPPROTO_IGMP}},
      {WS_AF_UNSPEC, WS_SOCK_RAW, WS_IPPROTO_ICMPV6, {AF_INET6, SOCK_RAW, IPPROTO_ICMPV6}},
      {WS_AF_INET6, 0, WS_IPPROTO_ICMPV6, {AF_INET6, SOCK_RAW, IPPROTO_ICMPV6}},
      {WS_AF_INET, WS_SOCK_RAW, WS_IPPROTO_RAW, {AF_INET, SOCK_RAW, IPPROTO_RAW}},
      // Wine's test_WSASocket: what Windows gives for these two.
      {WS_AF_UNSPEC, 0, WS_IPPROTO_RAW, {AF_INET, SOCK_RAW, IPPROTO_RAW}},
      {WS_AF_INET, WS_SOCK_RAW, WS_IPPROTO_TCP, {AF_INET, SOCK_RAW, IPPROTO_TCP}},
  };
  for (const auto& c : cases) {
    const Made m = expectSocket(c.af, c.type, c.protocol);
    EXPECT_EQ(m.domain, c.linux.domain);
    EXPECT_EQ(m.type, c.linux.type);
    EXPECT_EQ(m.protocol, c.linux.protocol);
  }
}

TEST_F(WinsockSocket, ValidationErrorsAreValidateSocketsAndFamiliesWithoutProvider) {
  expectError(WS_AF_UNSPEC, 0, 0, WSAEINVAL);
  expectError(WS_AF_INET, WS_SOCK_STREAM, WS_IPPROTO_UDP, WSAEPROTONOSUPPORT);
  expectError(WS_AF_INET, -1, 0, WSAESOCKTNOSUPPORT);
  expectError(-1, WS_SOCK_STREAM, WS_IPPROTO_UDP, WSAEAFNOSUPPORT);
  expectError(10, WS_SOCK_STREAM, 0,
              WSAEAFNOSUPPORT);  // Linux's AF_INET6 number is not a Windows family
  expectError(WS_AF_IPX, WS_SOCK_DGRAM, 0, WSAEAFNOSUPPORT);
  expectError(WS_AF_APPLETALK, WS_SOCK_STREAM, 0, WSAEAFNOSUPPORT);
  // Valid on Windows with the provider installed; no provider on Linux.
  expectError(WS_AF_NETBIOS, WS_SOCK_DGRAM, 0, WSAEAFNOSUPPORT);
  expectError(WS_AF_IRDA, WS_SOCK_STREAM, 0, WSAEAFNOSUPPORT);
  expectError(WS_AF_INET, WS_SOCK_RDM, WS_IPPROTO_RM, WSAESOCKTNOSUPPORT);
}

TEST_F(WinsockSocket, BluetoothWhenTheKernelHasIt) {
  const int probe = ::socket(AF_BLUETOOTH, SOCK_STREAM, 3 /* BTPROTO_RFCOMM */);
  if (probe >= 0) {
    close(probe);
    const Made m = expectSocket(WS_AF_BTH, WS_SOCK_STREAM, BTHPROTO_RFCOMM);
    EXPECT_EQ(m.domain, AF_BLUETOOTH);
    EXPECT_EQ(m.type, SOCK_STREAM);
  } else {
    expectError(WS_AF_BTH, WS_SOCK_STREAM, BTHPROTO_RFCOMM, WSAEAFNOSUPPORT);
  }
}

// Every triple of the grid: the answer is validateSocket's refusal, a socket
// that is exactly the resolved triple, or a documented kernel refusal.
TEST_F(WinsockSocket, WholeGridAgreesWithValidation) {
  std::vector<int> protocols;
  for (int p = -2; p <= 300; ++p) protocols.push_back(p);
  protocols.push_back(0xdead);
  const bool rawAllowed = hasCapability(CAP_NET_RAW);
  size_t created = 0;
  for (int af = -2; af <= 40; ++af)
    for (int type = -2; type <= 8; ++type)
      for (int p : protocols) {
        const std::string where =
            std::to_string(af) + "," + std::to_string(type) + "," + std::to_string(p);
        const auto v = sockgate::validateSocket(af, type, p);
        WSASetLastError(0);
        const SOCKET s = WS_socket(af, type, p);
        const int err = WSAGetLastError();
        if (!v) {
          ASSERT_EQ(s, INVALID_SOCKET) << where;
          ASSERT_EQ(err, v.error().wsaError) << where;
          continue;
        }
        if (s != INVALID_SOCKET) {
          ++created;
          const int domain = sockOpt(s, SO_DOMAIN);
          ASSERT_EQ(domain, v->af == WS_AF_INET    ? AF_INET
                            : v->af == WS_AF_INET6 ? AF_INET6
                                                   : AF_BLUETOOTH)
              << where;
          ASSERT_EQ(sockOpt(s, SO_TYPE), v->type) << where;
          if (domain != AF_BLUETOOTH) {
            ASSERT_EQ(sockOpt(s, SO_PROTOCOL), v->protocol) << where;
          }
          ASSERT_EQ(closesocket(s), 0) << where;
          continue;
        }
        switch (err) {
          case WSAEAFNOSUPPORT:
            ASSERT_TRUE(v->af == WS_AF_NETBIOS || v->af == WS_AF_IRDA || v->af == WS_AF_BTH)
                << where;
            break;
          case WSAESOCKTNOSUPPORT:
            ASSERT_EQ(v->type, WS_SOCK_RDM) << where;
            break;
          case WSAEPROTONOSUPPORT:
            // Linux has no raw socket for IPPROTO_IP: Windows sniffers' triple.
            ASSERT_EQ(v->type, WS_SOCK_RAW) << where;
            ASSERT_EQ(v->protocol, 0) << where;
            break;
          case WSAEACCES:
            ASSERT_FALSE(rawAllowed) << where;
            ASSERT_EQ(v->type, WS_SOCK_RAW) << where;
            break;
          default:
            FAIL() << where << ": undocumented " << err;
        }
      }
  EXPECT_GT(created, 0u);
}

TEST_F(WinsockSocket, OutOfDescriptorsIsWSAEMFILE) {
  const int rc = inChild([] {
    const rlimit lim{16, 16};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    // Fill every descriptor below the limit (not with dup(0): stdin may be closed).
    while (open("/dev/null", O_RDONLY) >= 0) {
    }
    if (errno != EMFILE) return 11;
    WSASetLastError(0);
    if (WS_socket(WS_AF_INET, WS_SOCK_STREAM, WS_IPPROTO_TCP) != INVALID_SOCKET) return 12;
    if (WSAGetLastError() != WSAEMFILE) return 13;
    // A freed descriptor makes it work again: the limit was the reason.
    close(15);
    const SOCKET s = WS_socket(WS_AF_INET, WS_SOCK_DGRAM, 0);
    if (s == INVALID_SOCKET) return 14;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kAuditArch = 0;
#endif

// From now on every socket(2) of this process fails with err: the kernel
// answers the call itself, as it would when out of memory or file slots.
bool failSocketCallsWith(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// Every errno socket(2) documents, and one it does not, for arguments that
// passed validation: the WSA code the page lists for it.
TEST_F(WinsockSocket, KernelErrnosBecomeThePagesCodes) {
  if (kAuditArch == 0) GTEST_SKIP() << "no seccomp arch constant for this machine";
  struct Case {
    int af, type, protocol;
    int err;
    int wsaError;
  };
  constexpr int kInet = WS_AF_INET, kStream = WS_SOCK_STREAM, kTcp = WS_IPPROTO_TCP;
  const std::vector<Case> cases = {
      {kInet, kStream, kTcp, ENOBUFS, WSAENOBUFS},
      {kInet, kStream, kTcp, ENOMEM, WSAENOBUFS},
      {kInet, kStream, kTcp, EMFILE, WSAEMFILE},
      {kInet, kStream, kTcp, ENFILE, WSAEMFILE},  // the system-wide table: no descriptor either
      {kInet, WS_SOCK_RAW, WS_IPPROTO_ICMP, EPERM, WSAEACCES},
      {kInet, WS_SOCK_RAW, WS_IPPROTO_ICMP, EACCES, WSAEACCES},
      {WS_AF_INET6, kStream, kTcp, EAFNOSUPPORT, WSAEAFNOSUPPORT},  // ipv6.disable=1
      {kInet, WS_SOCK_RAW, 0, EPROTONOSUPPORT, WSAEPROTONOSUPPORT},
      {kInet, kStream, kTcp, ESOCKTNOSUPPORT, WSAESOCKTNOSUPPORT},
      {kInet, kStream, kTcp, EINVAL, WSAESOCKTNOSUPPORT},
      // A kernel without Bluetooth sockets: the family has no provider.
      {WS_AF_BTH, kStream, BTHPROTO_RFCOMM, ESOCKTNOSUPPORT, WSAEAFNOSUPPORT},
      {WS_AF_BTH, kStream, BTHPROTO_RFCOMM, EPROTONOSUPPORT, WSAEAFNOSUPPORT},
      {kInet, kStream, kTcp, ENETDOWN, WSAENETDOWN},
      {kInet, kStream, kTcp, EIO, WSAENETDOWN},  // not in socket(2): still a code the page lists
  };
  constexpr int kWsaBase = 10000;  // WSABASEERR: every WSA code here is base + 1..107
  constexpr int kCreated = 200, kNoFilter = 201, kRealSocketWorks = 202;
  for (const auto& c : cases) {
    const int rc = inChild([&c] {
      if (!failSocketCallsWith(c.err)) return kNoFilter;
      // The filter answers, not the network stack: a plain socket fails the same way.
      if (::socket(AF_INET, SOCK_DGRAM, 0) >= 0 || errno != c.err) return kRealSocketWorks;
      WSASetLastError(0);
      if (WS_socket(c.af, c.type, c.protocol) != INVALID_SOCKET) return kCreated;
      return WSAGetLastError() - kWsaBase;
    });
    EXPECT_EQ(rc + kWsaBase, c.wsaError) << "errno " << c.err << " for " << c.af << "," << c.type
                                         << "," << c.protocol << " (child exit " << rc << ")";
  }
}

// A raw socket for a process that really lost the privilege: the kernel's
// EPERM becomes WSAEACCES (Windows: raw sockets need an administrator).
TEST_F(WinsockSocket, RawSocketWithoutPrivilegeIsWSAEACCES) {
  constexpr int kSkip = 77;
  const int rc = inChild([] {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return 20;
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return 21;
    if (getuid() == 0) {
      if (setgroups(0, nullptr) != 0) return 22;
      if (setgid(65534) != 0) return 23;
      if (setuid(65534) != 0) return 24;  // clears permitted and effective capabilities
    }
    if (getuid() == 0 || geteuid() == 0) return 25;
    if (hasCapability(CAP_NET_RAW)) return kSkip;  // a non-root user given CAP_NET_RAW
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) return 26;
    if (data[0].effective != 0 || data[1].effective != 0 || data[0].permitted != 0 ||
        data[1].permitted != 0)
      return 27;
    // The kernel refuses it by itself...
    if (::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0) return 28;
    if (errno != EPERM && errno != EACCES) return 29;
    // ...and WS_socket says so in Winsock terms.
    WSASetLastError(0);
    if (WS_socket(WS_AF_INET, WS_SOCK_RAW, WS_IPPROTO_ICMP) != INVALID_SOCKET) return 30;
    if (WSAGetLastError() != WSAEACCES) return 31;
    WSASetLastError(0);
    if (WS_socket(WS_AF_UNSPEC, 0, WS_IPPROTO_ICMPV6) != INVALID_SOCKET) return 32;
    if (WSAGetLastError() != WSAEACCES) return 33;
    // Ordinary sockets still work for the same process.
    const SOCKET s = WS_socket(WS_AF_INET, WS_SOCK_STREAM, 0);
    if (s == INVALID_SOCKET) return 34;
    return 0;
  });
  if (rc == kSkip) GTEST_SKIP() << "the unprivileged user keeps CAP_NET_RAW";
  EXPECT_EQ(rc, 0);
}

}  // namespace
