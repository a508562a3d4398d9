// WS_socket() on the real kernel: sockets it creates are what the Windows
// triple asks for (SO_DOMAIN/SO_TYPE/SO_PROTOCOL), every refusal is
// validateSocket()'s or a documented kernel one, and WSAEMFILE / WSAEACCES
// come from the kernel itself, in forked children (an fd limit; a real
// privilege drop to nobody).
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fcntl.h>

#include <cerrno>
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
  expectError(10, WS_SOCK_STREAM, 0, WSAEAFNOSUPPORT);  // Linux's AF_INET6 number is not a Windows family
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
        const std::string where = std::to_string(af) + "," + std::to_string(type) + "," + std::to_string(p);
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
          ASSERT_EQ(domain, v->af == WS_AF_INET ? AF_INET : v->af == WS_AF_INET6 ? AF_INET6 : AF_BLUETOOTH)
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
            ASSERT_TRUE(v->af == WS_AF_NETBIOS || v->af == WS_AF_IRDA || v->af == WS_AF_BTH) << where;
            break;
          case WSAESOCKTNOSUPPORT: ASSERT_EQ(v->type, WS_SOCK_RDM) << where; break;
          case WSAEPROTONOSUPPORT:
            // Linux has no raw socket for IPPROTO_IP: Windows sniffers' triple.
            ASSERT_EQ(v->type, WS_SOCK_RAW) << where;
            ASSERT_EQ(v->protocol, 0) << where;
            break;
          case WSAEACCES: ASSERT_FALSE(rawAllowed) << where; ASSERT_EQ(v->type, WS_SOCK_RAW) << where; break;
          default: FAIL() << where << ": undocumented " << err;
        }
      }
  EXPECT_GT(created, 0u);
}

TEST_F(WinsockSocket, OutOfDescriptorsIsWSAEMFILE) {
  const int rc = inChild([] {
    const rlimit lim{16, 16};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    // Fill every descriptor below the limit.
    while (dup(0) >= 0) {
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
    if (data[0].effective != 0 || data[1].effective != 0 || data[0].permitted != 0 || data[1].permitted != 0)
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
