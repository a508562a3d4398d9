// WSAIoctl, WS_getsockopt/WS_setsockopt and overlapped completion on real
// sockets that carry no redirect flow (no kernel hooks needed): argument
// validation, the error codes that do not depend on a redirected flow, and
// the overlapped machinery (pending, event, completion routine, abort on
// closesocket). tests/integration/winsock_ioctl_test.cpp does the rest on a
// real redirected flow.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "compat/overlapped.h"
#include "sockgate/winsock.h"

namespace {

using namespace std::chrono_literals;
using sockgate::UniqueFd;

constexpr DWORD kQueries[] = {SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS,
                              SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT};

struct Connection {
  UniqueFd listener, client, server;
};

// A plain loopback TCP connection: connected, but no redirect flow.
Connection loopbackConnection(int family = AF_INET) {
  Connection c;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  c.listener.reset(::socket(family, SOCK_STREAM, 0));
  EXPECT_EQ(::bind(c.listener.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  EXPECT_EQ(::listen(c.listener.get(), 4), 0);
  EXPECT_EQ(::getsockname(c.listener.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
  c.client.reset(::socket(family, SOCK_STREAM, 0));
  EXPECT_EQ(::connect(c.client.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  c.server.reset(::accept(c.listener.get(), nullptr, nullptr));
  return c;
}

// A page the process may not write (or, with PROT_NONE, read).
class Page {
 public:
  explicit Page(int prot) : p_(::mmap(nullptr, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  ~Page() { ::munmap(p_, 4096); }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

template <class F>
bool waitUntil(F ready) {
  for (int i = 0; i < 500; i++) {
    if (ready()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return ready();
}

// Releases the worker however the test ends.
struct HeldWorker {
  HeldWorker() { sockgate::winsock::holdOverlappedWorkerForTesting(true); }
  ~HeldWorker() { release(); }
  void release() { sockgate::winsock::holdOverlappedWorkerForTesting(false); }
};

class WinsockIoctl : public ::testing::Test {
 protected:
  void SetUp() override {
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);
  }
  void TearDown() override { WSACleanup(); }

  // Calls WSAIoctl non-overlapped; returns WSAGetLastError() or 0.
  static int query(SOCKET s, DWORD code, void* out, DWORD cbOut, DWORD* returned) {
    WSASetLastError(0);
    int rc = WSAIoctl(s, code, nullptr, 0, out, cbOut, returned, nullptr, nullptr);
    return rc == 0 ? 0 : WSAGetLastError();
  }
};

TEST_F(WinsockIoctl, NotASocket) {
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  UniqueFd r(pipeFds[0]), w(pipeFds[1]);
  char buf[64];
  DWORD n = 0;
  for (DWORD code : kQueries) {
    EXPECT_EQ(query(r.get(), code, buf, sizeof buf, &n), WSAENOTSOCK);
    EXPECT_EQ(query(-1, code, buf, sizeof buf, &n), WSAENOTSOCK);
    EXPECT_EQ(query(100000, code, buf, sizeof buf, &n), WSAENOTSOCK);
  }
  EXPECT_EQ(WSAIoctl(r.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, buf, sizeof buf, nullptr, 0,
                     &n, nullptr, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
}

TEST_F(WinsockIoctl, UnknownControlCodeIsInvalid) {
  auto c = loopbackConnection();
  char buf[64];
  DWORD n = 0;
  for (DWORD code : {0u, SIO_QUERY_SECURITY, 0x980000DFu, _WSAIOW(IOC_VENDOR, 219)})
    EXPECT_EQ(query(c.server.get(), code, buf, sizeof buf, &n), WSAEINVAL) << std::hex << code;
}

TEST_F(WinsockIoctl, NonOverlappedCallNeedsBytesReturned) {
  auto c = loopbackConnection();
  char buf[64];
  for (DWORD code : kQueries)
    EXPECT_EQ(query(c.server.get(), code, buf, sizeof buf, nullptr), WSAEFAULT);
}

TEST_F(WinsockIoctl, BufferSmallerThanAUlongIsInvalidWithZeroReturned) {
  auto c = loopbackConnection();
  char buf[4];
  for (DWORD code : kQueries) {
    for (DWORD cb : {1u, 2u, 3u}) {
      DWORD n = 77;
      EXPECT_EQ(query(c.server.get(), code, buf, cb, &n), WSAEINVAL) << cb;
      EXPECT_EQ(n, 0u);
    }
  }
}

TEST_F(WinsockIoctl, NullOrUnwritableMemoryIsAFault) {
  auto c = loopbackConnection();
  Page readOnly(PROT_READ);
  for (DWORD code : kQueries) {
    DWORD n = 0;
    EXPECT_EQ(query(c.server.get(), code, nullptr, 64, &n), WSAEFAULT);
    // lpcbBytesReturned that cannot be written
    EXPECT_EQ(query(c.server.get(), code, nullptr, 2, readOnly.as<DWORD>()), WSAEFAULT);
    char buf[64];
    EXPECT_EQ(query(c.server.get(), code, buf, sizeof buf, readOnly.as<DWORD>()), WSAEFAULT);
    // an overlapped structure that cannot be written
    EXPECT_EQ(WSAIoctl(c.server.get(), code, nullptr, 0, buf, sizeof buf, nullptr,
                       readOnly.as<WSAOVERLAPPED>(), nullptr),
              SOCKET_ERROR);
    EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  }
  DWORD n = 0;
  EXPECT_EQ(WSAIoctl(c.client.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 160, nullptr,
                     0, &n, nullptr, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
}

TEST_F(WinsockIoctl, UnconnectedSocketIsNotConnected) {
  UniqueFd fresh(::socket(AF_INET, SOCK_STREAM, 0));
  auto c = loopbackConnection();
  char buf[64];
  for (DWORD code : kQueries) {
    DWORD n = 9;
    EXPECT_EQ(query(fresh.get(), code, buf, sizeof buf, &n), WSAENOTCONN);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(query(c.listener.get(), code, buf, sizeof buf, &n), WSAENOTCONN);
    EXPECT_EQ(query(fresh.get(), code, nullptr, 0, &n), WSAENOTCONN) << "size query too";
  }
}

TEST_F(WinsockIoctl, ConnectedSocketWithoutARecordIsNotSupported) {
  for (int family : {AF_INET, AF_INET6}) {
    auto c = loopbackConnection(family);
    char buf[2048];
    for (DWORD code : kQueries) {
      DWORD n = 9;
      EXPECT_EQ(query(c.server.get(), code, buf, sizeof buf, &n), WSAEOPNOTSUPP);
      EXPECT_EQ(n, 0u);
      EXPECT_EQ(query(c.client.get(), code, nullptr, 0, &n), WSAEOPNOTSUPP);
    }
  }
}

TEST_F(WinsockIoctl, NonIpSocketIsNotApplicable) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  char buf[64];
  DWORD n = 0;
  for (DWORD code : kQueries) EXPECT_EQ(query(a.get(), code, buf, sizeof buf, &n), WSAEINVAL);
}

TEST_F(WinsockIoctl, SetValidatesItsArguments) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  char blob[160] = {};
  char out[8];
  DWORD n = 0;
  auto set = [&](void* in, DWORD cbIn, void* o, DWORD cbOut) {
    WSASetLastError(0);
    return WSAIoctl(s.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, in, cbIn, o, cbOut, &n,
                    nullptr, nullptr) == 0
               ? 0
               : WSAGetLastError();
  };
  EXPECT_EQ(set(blob, sizeof blob, out, sizeof out), WSAEINVAL) << "cbOutBuffer must be 0";
  EXPECT_EQ(set(nullptr, sizeof blob, nullptr, 0), WSAEFAULT);
  EXPECT_EQ(set(blob, 0, nullptr, 0), WSAEINVAL);
  EXPECT_EQ(set(blob, 1u << 20, nullptr, 0), WSAEINVAL);
  Page noAccess(PROT_NONE);
  EXPECT_EQ(set(noAccess.as<char>(), 160, nullptr, 0), WSAEFAULT);
}

TEST_F(WinsockIoctl, EveryCallNeedsWsaStartup) {
  auto c = loopbackConnection();
  WSACleanup();
  DWORD n = 0;
  char buf[64];
  EXPECT_EQ(query(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, buf, sizeof buf, &n),
            WSANOTINITIALISED);
  int len = sizeof buf;
  EXPECT_EQ(WS_getsockopt(c.server.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, &len),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  EXPECT_EQ(closesocket(c.server.get()), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  WSADATA data;
  ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);
}

TEST_F(WinsockIoctl, OverlappedCallCompletesLaterThroughTheEvent) {
  auto c = loopbackConnection();
  WSAEVENT ev = WSACreateEvent();
  WSAOVERLAPPED ov{};
  ov.hEvent = ev;
  char buf[256];
  DWORD n = 55;
  ASSERT_EQ(WSAIoctl(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf,
                     sizeof buf, &n, &ov, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  EXPECT_EQ(n, 0u) << "the size is unknown until completion";
  ASSERT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 5000, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_TRUE(HasOverlappedIoCompleted(&ov));
  DWORD transferred = 7, flags = 7;
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, &transferred, FALSE, &flags));
  EXPECT_EQ(WSAGetLastError(), WSAEOPNOTSUPP) << "the operation's own error";
  EXPECT_EQ(transferred, 0u);
  EXPECT_EQ(flags, 0u);
  EXPECT_EQ(ov.Internal, static_cast<ULONG_PTR>(WSAEOPNOTSUPP));
  WSACloseEvent(ev);
}

TEST_F(WinsockIoctl, OverlappedArgumentErrorsAreReportedAtOnce) {
  auto c = loopbackConnection();
  WSAOVERLAPPED ov{};
  char buf[4];
  DWORD n = 5;
  EXPECT_EQ(WSAIoctl(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf, 2,
                     &n, &ov, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(WSAIoctl(c.server.get(), 0x12345678, nullptr, 0, buf, 4, nullptr, &ov, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
}

TEST_F(WinsockIoctl, PendingUntilTheWorkerRunsIt) {
  auto c = loopbackConnection();
  WSAEVENT ev = WSACreateEvent();
  WSAOVERLAPPED ov{};
  ov.hEvent = ev;
  char buf[256];
  HeldWorker held;
  ASSERT_EQ(WSAIoctl(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf,
                     sizeof buf, nullptr, &ov, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  EXPECT_FALSE(HasOverlappedIoCompleted(&ov));
  DWORD transferred = 0, flags = 0;
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, &transferred, FALSE, &flags));
  EXPECT_EQ(WSAGetLastError(), WSA_IO_INCOMPLETE);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 50, FALSE), WSA_WAIT_TIMEOUT);

  // fWait TRUE blocks until the operation is done
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held.release();
  });
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, &transferred, TRUE, &flags));
  EXPECT_EQ(WSAGetLastError(), WSAEOPNOTSUPP);
  releaser.join();
  EXPECT_TRUE(HasOverlappedIoCompleted(&ov));
  WSACloseEvent(ev);
}

TEST_F(WinsockIoctl, WaitingForAnOperationWithoutAnEventIsInvalid) {
  auto c = loopbackConnection();
  WSAOVERLAPPED ov{};
  char buf[256];
  HeldWorker held;
  ASSERT_EQ(WSAIoctl(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf,
                     sizeof buf, nullptr, &ov, nullptr),
            SOCKET_ERROR);
  DWORD transferred = 0, flags = 0;
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, &transferred, TRUE, &flags));
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, nullptr, FALSE, &flags));
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  EXPECT_FALSE(WSAGetOverlappedResult(c.server.get(), &ov, &transferred, FALSE, nullptr));
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  held.release();
  sockgate::winsock::waitOverlapped(&ov);
}

struct RoutineCall {
  int calls = 0;
  DWORD error = 0, bytes = 0, flags = 0;
  LPWSAOVERLAPPED overlapped = nullptr;
  std::thread::id thread;
};
RoutineCall* gRoutineSink = nullptr;

void CALLBACK_routine(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD flags) {
  RoutineCall* sink = gRoutineSink;
  sink->calls++;
  sink->error = error;
  sink->bytes = bytes;
  sink->flags = flags;
  sink->overlapped = ov;
  sink->thread = std::this_thread::get_id();
}

TEST_F(WinsockIoctl, CompletionRoutineRunsOnTheIssuingThreadInAnAlertableWait) {
  auto c = loopbackConnection();
  RoutineCall call;
  gRoutineSink = &call;
  WSAOVERLAPPED ov{};
  ov.hEvent = reinterpret_cast<WSAEVENT>(0x1234);  // context for the routine, not an event
  char buf[256];
  ASSERT_EQ(WSAIoctl(c.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf,
                     sizeof buf, nullptr, &ov, CALLBACK_routine),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  ASSERT_TRUE(waitUntil([&] { return HasOverlappedIoCompleted(&ov); }));
  EXPECT_EQ(SleepEx(20, FALSE), 0u);
  EXPECT_EQ(call.calls, 0) << "not before an alertable wait";
  EXPECT_EQ(SleepEx(5000, TRUE), WAIT_IO_COMPLETION);
  EXPECT_EQ(call.calls, 1);
  EXPECT_EQ(call.error, static_cast<DWORD>(WSAEOPNOTSUPP));
  EXPECT_EQ(call.bytes, 0u);
  EXPECT_EQ(call.flags, 0u);
  EXPECT_EQ(call.overlapped, &ov);
  EXPECT_EQ(call.thread, std::this_thread::get_id());
  EXPECT_EQ(ov.hEvent, reinterpret_cast<WSAEVENT>(0x1234)) << "hEvent is the caller's";
  gRoutineSink = nullptr;
}

TEST_F(WinsockIoctl, ClosesocketAbortsWhatIsStillPending) {
  auto c = loopbackConnection();
  auto other = loopbackConnection();
  RoutineCall call;
  gRoutineSink = &call;
  WSAEVENT ev = WSACreateEvent();
  WSAOVERLAPPED withEvent{}, withRoutine{}, elsewhere{};
  withEvent.hEvent = ev;
  WSAEVENT otherEv = WSACreateEvent();
  elsewhere.hEvent = otherEv;
  char buf1[256], buf2[256], buf3[256];
  std::memset(buf1, 0xAB, sizeof buf1);
  HeldWorker held;
  const SOCKET s = c.server.release();
  ASSERT_EQ(WSAIoctl(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf1, sizeof buf1,
                     nullptr, &withEvent, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAIoctl(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf2, sizeof buf2,
                     nullptr, &withRoutine, CALLBACK_routine),
            SOCKET_ERROR);
  ASSERT_EQ(WSAIoctl(other.server.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0,
                     buf3, sizeof buf3, nullptr, &elsewhere, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);

  ASSERT_EQ(closesocket(s), 0);
  // aborted at once, although the worker is still held
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_EQ(withEvent.Internal, static_cast<ULONG_PTR>(WSA_OPERATION_ABORTED));
  EXPECT_EQ(withEvent.InternalHigh, 0u);
  EXPECT_EQ(static_cast<unsigned char>(buf1[0]), 0xAB) << "an aborted query writes nothing";
  EXPECT_EQ(SleepEx(5000, TRUE), WAIT_IO_COMPLETION);
  EXPECT_EQ(call.calls, 1);
  EXPECT_EQ(call.error, static_cast<DWORD>(WSA_OPERATION_ABORTED));
  EXPECT_EQ(call.overlapped, &withRoutine);
  // another socket's operation is not touched
  EXPECT_FALSE(HasOverlappedIoCompleted(&elsewhere));
  held.release();
  ASSERT_EQ(WSAWaitForMultipleEvents(1, &otherEv, FALSE, 5000, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_EQ(elsewhere.Internal, static_cast<ULONG_PTR>(WSAEOPNOTSUPP));
  EXPECT_EQ(closesocket(s), SOCKET_ERROR) << "already closed";
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
  WSACloseEvent(ev);
  WSACloseEvent(otherEv);
  gRoutineSink = nullptr;
}

TEST_F(WinsockIoctl, GetsockoptChecksLevelOptionAndLength) {
  auto c4 = loopbackConnection(AF_INET);
  auto c6 = loopbackConnection(AF_INET6);
  char buf[2048];
  auto get = [&](SOCKET s, int level, int name, char* out, int* len) {
    WSASetLastError(0);
    return WS_getsockopt(s, level, name, out, len) == 0 ? 0 : WSAGetLastError();
  };
  int len = sizeof buf;
  EXPECT_EQ(get(c4.server.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, &len),
            WSAENOPROTOOPT)
      << "no redirect flow";
  EXPECT_EQ(get(c6.server.get(), WS_IPPROTO_IPV6_LEVEL, IPV6_WFP_REDIRECT_RECORDS, buf, &len),
            WSAENOPROTOOPT);
  EXPECT_EQ(get(c6.server.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, &len),
            WSAEINVAL)
      << "IPv4 level on an IPv6 socket";
  EXPECT_EQ(get(c4.server.get(), WS_IPPROTO_IPV6_LEVEL, IPV6_WFP_REDIRECT_CONTEXT, buf, &len),
            WSAEINVAL);
  EXPECT_EQ(get(c4.server.get(), 99, IP_WFP_REDIRECT_CONTEXT, buf, &len), WSAEINVAL);
  EXPECT_EQ(get(c4.server.get(), WS_IPPROTO_IP_LEVEL, 1, buf, &len), WSAENOPROTOOPT);
  EXPECT_EQ(get(c4.server.get(), WS_SOL_SOCKET, IP_WFP_REDIRECT_CONTEXT, buf, &len),
            WSAENOPROTOOPT);
  EXPECT_EQ(get(c4.server.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, nullptr),
            WSAEFAULT);
  len = 16;
  EXPECT_EQ(get(c4.server.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, nullptr, &len),
            WSAEFAULT);
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  UniqueFd r(pipeFds[0]), w(pipeFds[1]);
  EXPECT_EQ(get(r.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, &len), WSAENOTSOCK);

  EXPECT_EQ(WS_setsockopt(c4.client.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_CONTEXT, buf, 160),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOPROTOOPT) << "the context is not settable";
  EXPECT_EQ(
      WS_setsockopt(c4.client.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_RECORDS, nullptr, 160),
      SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  EXPECT_EQ(WS_setsockopt(c4.client.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_RECORDS, buf, 0),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
}

}  // namespace
