// The Winsock layer and the C ABI on REAL redirected flows: the engine's
// hooks redirect a child in a governed cgroup to this test process, which is
// the registered service (tgid = getpid()), and every documented return path
// of the three SIO_*_WFP_CONNECTION_REDIRECT_* codes is taken on the
// accepted socket: size query, too small, smaller than a ULONG, success, not
// a socket, not connected, no record, fault, unknown code, set (allowed, and
// refused for a process that is not a service), overlapped with an event,
// with a completion routine in an alertable wait, and aborted by closesocket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>

#include "compat/overlapped.h"
#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"
#include "sockgate/sockgate.h"
#include "sockgate/winsock.h"
#include "support/http_server.h"
#include "support/listen_accept.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kServiceId = 5;
constexpr DWORD kContextSize = SG_CONTEXT_HEADER_LEN + 16;  // "hello-tag" padded to 16
constexpr DWORD kRecordsSize = sizeof(sg_redirect_records);

int waitChild(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

// Two pages, the second inaccessible: a buffer that starts in the first and
// runs into the second is "not totally contained" in valid memory.
class Guarded {
 public:
  Guarded() {
    base_ = static_cast<char*>(
        ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ::mprotect(base_ + 4096, 4096, PROT_NONE);
  }
  ~Guarded() { ::munmap(base_, 8192); }
  char* endOfGood(size_t n) const { return base_ + 4096 - n; }
  char* bad() const { return base_ + 4096; }

 private:
  char* base_;
};

struct HeldWorker {
  HeldWorker() { winsock::holdOverlappedWorkerForTesting(true); }
  ~HeldWorker() { release(); }
  void release() { winsock::holdOverlappedWorkerForTesting(false); }
};

struct RoutineCall {
  int calls = 0;
  DWORD error = 0, bytes = 0;
  LPWSAOVERLAPPED overlapped = nullptr;
  std::thread::id thread;
};
RoutineCall* gRoutine = nullptr;
void onComplete(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD /*flags*/) {
  gRoutine->calls++;
  gRoutine->error = error;
  gRoutine->bytes = bytes;
  gRoutine->overlapped = ov;
  gRoutine->thread = std::this_thread::get_id();
}

class WinsockRedirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mount = findCgroup2Mount();
    ASSERT_TRUE(mount);
    auto cg = Cgroup::create(*mount + "/sg-winsock-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(cg) << cg.error().message();
    cgroup_.emplace(std::move(*cg));
    auto engine = RedirectEngine::start({cgroup_->path(), *mount});
    ASSERT_TRUE(engine) << engine.error().message();
    engine_ = std::move(*engine);
    servicePort_ = freeTcpPort();
    svc4_ = listenOn(Endpoint::loopback(AF_INET, servicePort_));
    svc6_ = listenOn(Endpoint::loopback(AF_INET6, servicePort_));
    ServiceSpec s;
    s.id = kServiceId;
    s.name = "winsock-test";
    s.listen4 = Endpoint::loopback(AF_INET, servicePort_);
    s.listen6 = Endpoint::loopback(AF_INET6, servicePort_);
    s.tgid = static_cast<uint32_t>(::getpid());  // this process is the service
    const char tag[] = "hello-tag";
    s.tag.assign(tag, tag + 9);
    ASSERT_TRUE(engine_->setServices({&s, 1}));
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);
  }

  void TearDown() override {
    WSACleanup();
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    engine_.reset();
    if (cgroup_) {
      (void)cgroup_->signalAll(SIGKILL);
      EXPECT_TRUE(cgroup_->remove());
    }
  }

  // A child in the governed cgroup connects to `to`, sends one byte, waits
  // for EOF; the accepted (redirected) socket is returned.
  UniqueFd redirectedFlow(const Endpoint& to) {
    const std::string procs = cgroup_->path() + "/cgroup.procs";
    pid_t pid = ::fork();
    if (pid == 0) {
      int cg = ::open(procs.c_str(), O_WRONLY);
      if (cg < 0 || ::write(cg, "0", 1) != 1) ::_exit(100);
      int fd = ::socket(to.family(), SOCK_STREAM, 0);
      if (::connect(fd, to.sockaddrPtr(), to.length()) != 0) ::_exit(errno);
      if (::write(fd, "x", 1) != 1) ::_exit(101);
      char c;
      while (::read(fd, &c, 1) > 0) {
      }
      ::_exit(0);
    }
    children_.push_back(pid);
    lastChild_ = pid;
    UniqueFd conn = acceptWithin(to.family() == AF_INET ? svc4_.get() : svc6_.get(), 5s);
    EXPECT_TRUE(conn) << "the connect was not redirected to the service";
    return conn;
  }

  // Runs `body` in a forked child that is NOT the registered service (and
  // not in the governed cgroup); returns its exit code.
  template <class F>
  int inNonService(F body) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int code = waitChild(pid);
    return code;
  }

  static int ioctlError(SOCKET s, DWORD code, void* in, DWORD cbIn, void* out, DWORD cbOut,
                        DWORD* returned) {
    WSASetLastError(0);
    return WSAIoctl(s, code, in, cbIn, out, cbOut, returned, nullptr, nullptr) == 0
               ? 0
               : WSAGetLastError();
  }

  std::vector<uint8_t> recordsOf(SOCKET s) {
    std::vector<uint8_t> blob(kRecordsSize);
    DWORD n = 0;
    EXPECT_EQ(ioctlError(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, blob.data(),
                         static_cast<DWORD>(blob.size()), &n),
              0);
    blob.resize(n);
    return blob;
  }

  std::vector<sg_event> events() {
    std::vector<sg_event> out;
    (void)engine_->drainEvents([&](const sg_event& e) { out.push_back(e); });
    return out;
  }

  std::optional<Cgroup> cgroup_;
  std::unique_ptr<RedirectEngine> engine_;
  uint16_t servicePort_ = 0;
  UniqueFd svc4_, svc6_;
  std::vector<pid_t> children_;
  pid_t lastChild_ = -1;
};

TEST_F(WinsockRedirectTest, QueriesFollowTheDocumentedBufferProtocol) {
  const auto dest = *Endpoint::parse("127.0.0.1:9");
  UniqueFd conn = redirectedFlow(dest);
  ASSERT_TRUE(conn);
  const SOCKET s = conn.get();
  struct Case {
    DWORD code, size;
  };
  for (auto [code, size] : {Case{SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, kContextSize},
                            Case{SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, kRecordsSize}}) {
    SCOPED_TRACE(code);
    std::vector<uint8_t> buf(1024, 0xEE);
    DWORD n = 12345;
    // cbOutBuffer 0: the size query
    EXPECT_EQ(ioctlError(s, code, nullptr, 0, nullptr, 0, &n), ERROR_INSUFFICIENT_BUFFER);
    EXPECT_EQ(n, size);
    EXPECT_EQ(ioctlError(s, code, nullptr, 0, buf.data(), 0, &n), ERROR_INSUFFICIENT_BUFFER);
    EXPECT_EQ(n, size);
    // smaller than a ULONG
    for (DWORD cb : {1u, 2u, 3u}) {
      n = 777;
      EXPECT_EQ(ioctlError(s, code, nullptr, 0, buf.data(), cb, &n), WSAEINVAL);
      EXPECT_EQ(n, 0u);
    }
    // at least a ULONG, but too small
    for (DWORD cb : {4u, 50u, size - 1}) {
      n = 0;
      EXPECT_EQ(ioctlError(s, code, nullptr, 0, buf.data(), cb, &n), ERROR_INSUFFICIENT_BUFFER);
      EXPECT_EQ(n, size);
      EXPECT_EQ(buf[0], 0xEE) << "nothing written on failure";
    }
    // large enough: success, a non-zero size, the blob the C++ API reads
    n = 0;
    EXPECT_EQ(ioctlError(s, code, nullptr, 0, buf.data(), static_cast<DWORD>(buf.size()), &n), 0);
    EXPECT_EQ(n, size);
    auto expected = code == SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT ? queryRedirectContextBlob(s)
                                                                      : queryRedirectRecordsBlob(s);
    ASSERT_TRUE(expected);
    EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + n), *expected);
    // exactly large enough
    std::vector<uint8_t> exact(size);
    EXPECT_EQ(ioctlError(s, code, nullptr, 0, exact.data(), size, &n), 0);
    EXPECT_EQ(exact, *expected);
  }
  // The context is the redirect's: destination, the child, our tag.
  std::vector<uint8_t> ctx(kContextSize);
  DWORD n = 0;
  ASSERT_EQ(ioctlError(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, ctx.data(),
                       kContextSize, &n),
            0);
  auto parsed = parseRedirectContext(ctx);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->originalDestination, dest);
  EXPECT_EQ(parsed->originTgid, static_cast<uint32_t>(lastChild_));
  EXPECT_EQ(parsed->serviceId, kServiceId);
  EXPECT_EQ(std::string(parsed->tag.begin(), parsed->tag.end()), "hello-tag");
}

TEST_F(WinsockRedirectTest, IPv6FlowAnswersTheSame) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("[::1]:9"));
  ASSERT_TRUE(conn);
  DWORD n = 0;
  EXPECT_EQ(
      ioctlError(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, nullptr, 0, &n),
      ERROR_INSUFFICIENT_BUFFER);
  EXPECT_EQ(n, kContextSize);
  std::vector<char> buf(2048);
  int len = 0;
  EXPECT_EQ(
      WS_getsockopt(conn.get(), WS_IPPROTO_IPV6_LEVEL, IPV6_WFP_REDIRECT_CONTEXT, buf.data(), &len),
      SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  EXPECT_EQ(len, static_cast<int>(kContextSize)) << "the size needed is reported";
  len = static_cast<int>(buf.size());
  ASSERT_EQ(
      WS_getsockopt(conn.get(), WS_IPPROTO_IPV6_LEVEL, IPV6_WFP_REDIRECT_CONTEXT, buf.data(), &len),
      0);
  EXPECT_EQ(len, static_cast<int>(kContextSize));
  auto parsed =
      parseRedirectContext({reinterpret_cast<uint8_t*>(buf.data()), static_cast<size_t>(len)});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->originalDestination.toString(), "[::1]:9");
  len = static_cast<int>(buf.size());
  ASSERT_EQ(
      WS_getsockopt(conn.get(), WS_IPPROTO_IPV6_LEVEL, IPV6_WFP_REDIRECT_RECORDS, buf.data(), &len),
      0);
  EXPECT_EQ(len, static_cast<int>(kRecordsSize));
  EXPECT_EQ(
      WS_getsockopt(conn.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_RECORDS, buf.data(), &len),
      SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL) << "IPv4 level on an IPv6 socket";
}

TEST_F(WinsockRedirectTest, OutputThatIsNotValidMemoryIsAFault) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  Guarded mem;
  DWORD n = 0;
  for (DWORD code :
       {SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS}) {
    EXPECT_EQ(ioctlError(conn.get(), code, nullptr, 0, mem.bad(), 1024, &n), WSAEFAULT);
    EXPECT_EQ(ioctlError(conn.get(), code, nullptr, 0, mem.endOfGood(64), 1024, &n), WSAEFAULT)
        << "a buffer that runs off the end of valid memory";
    EXPECT_EQ(ioctlError(conn.get(), code, nullptr, 0, nullptr, 1024, &n), WSAEFAULT);
    EXPECT_EQ(ioctlError(conn.get(), code, nullptr, 0, nullptr, 0, nullptr), WSAEFAULT)
        << "lpcbBytesReturned NULL in a call that is not overlapped";
    char ok[1024];
    EXPECT_EQ(ioctlError(conn.get(), code, nullptr, 0, ok, sizeof ok,
                         reinterpret_cast<DWORD*>(mem.bad())),
              WSAEFAULT);
  }
  // SET reading its input from invalid memory
  UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(ioctlError(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, mem.endOfGood(16),
                       kRecordsSize, nullptr, 0, &n),
            WSAEFAULT);
}

TEST_F(WinsockRedirectTest, NotASocketNotConnectedNoRecordUnknownCode) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  char buf[1024];
  DWORD n = 0;
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  UniqueFd r(pipeFds[0]), w(pipeFds[1]);
  // a plain (not redirected) connection to the service: this process is
  // not governed, and a connection to a service is never redirected
  UniqueFd plain(::socket(AF_INET, SOCK_STREAM, 0));
  const auto svc = Endpoint::loopback(AF_INET, servicePort_);
  ASSERT_EQ(::connect(plain.get(), svc.sockaddrPtr(), svc.length()), 0);
  UniqueFd plainAccepted = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(plainAccepted);
  UniqueFd unconnected(::socket(AF_INET, SOCK_STREAM, 0));

  for (DWORD code :
       {SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS}) {
    SCOPED_TRACE(code);
    EXPECT_EQ(ioctlError(r.get(), code, nullptr, 0, buf, sizeof buf, &n), WSAENOTSOCK);
    EXPECT_EQ(ioctlError(unconnected.get(), code, nullptr, 0, buf, sizeof buf, &n), WSAENOTCONN);
    EXPECT_EQ(ioctlError(plainAccepted.get(), code, nullptr, 0, buf, sizeof buf, &n),
              WSAEOPNOTSUPP);
    EXPECT_EQ(ioctlError(plainAccepted.get(), code, nullptr, 0, nullptr, 0, &n), WSAEOPNOTSUPP);
  }
  EXPECT_EQ(ioctlError(conn.get(), SIO_QUERY_SECURITY, nullptr, 0, buf, sizeof buf, &n), WSAEINVAL);
  EXPECT_EQ(ioctlError(conn.get(), 0x980000DF, nullptr, 0, buf, sizeof buf, &n), WSAEINVAL);
  // the flow itself still answers
  EXPECT_EQ(ioctlError(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf,
                       sizeof buf, &n),
            0);
}

TEST_F(WinsockRedirectTest, SetRecordsContinuesTheChainToTheDestination) {
  const uint16_t destPort = freeTcpPort();
  UniqueFd destListener = listenOn(Endpoint::loopback(AF_INET, destPort));
  const auto dest = Endpoint::loopback(AF_INET, destPort);
  UniqueFd conn = redirectedFlow(dest);
  ASSERT_TRUE(conn);
  auto records = recordsOf(conn.get());
  ASSERT_EQ(records.size(), kRecordsSize);
  (void)events();

  UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
  DWORD n = 99;
  char outBuf[8];
  EXPECT_EQ(ioctlError(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, records.data(),
                       kRecordsSize, outBuf, sizeof outBuf, &n),
            WSAEINVAL)
      << "cbOutBuffer must be 0";
  std::vector<uint8_t> garbage(kRecordsSize, 0x41);
  EXPECT_EQ(ioctlError(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, garbage.data(),
                       kRecordsSize, nullptr, 0, &n),
            WSAEINVAL)
      << "not a records blob";
  ASSERT_EQ(ioctlError(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, records.data(),
                       kRecordsSize, nullptr, 0, &n),
            0);
  EXPECT_EQ(n, 0u);
  ASSERT_EQ(::connect(out.get(), dest.sockaddrPtr(), dest.length()), 0);
  UniqueFd atDest = acceptWithin(destListener.get(), 5s);
  EXPECT_TRUE(atDest) << "the outbound connection must reach the destination";
  EXPECT_FALSE(acceptWithin(svc4_.get(), 200ms)) << "and not come back to the service";
  auto outRecords = readRedirectRecords(out.get());
  ASSERT_TRUE(outRecords) << outRecords.error().message();
  EXPECT_EQ(outRecords->chain, std::vector<uint32_t>{kServiceId});
  bool chainDone = false;
  for (auto& e : events()) chainDone |= e.decision == SG_DECISION_CHAIN_DONE;
  EXPECT_TRUE(chainDone);

  // too late once connected
  EXPECT_EQ(ioctlError(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, records.data(),
                       kRecordsSize, nullptr, 0, &n),
            WSAEISCONN);
  // the socket-option form attaches the same way
  UniqueFd out2(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(WS_setsockopt(out2.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_RECORDS,
                          reinterpret_cast<const char*>(records.data()), kRecordsSize),
            0);
  auto attached = readRedirectRecords(out2.get());
  ASSERT_TRUE(attached);
  EXPECT_EQ(attached->flowId, outRecords->flowId);
}

TEST_F(WinsockRedirectTest, SetIsRefusedWithAccessDeniedForAProcessThatIsNotAService) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  auto records = recordsOf(conn.get());
  ASSERT_EQ(records.size(), kRecordsSize);
  (void)events();
  const int ioctlResult = inNonService([&] {
    UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
    DWORD n = 0;
    if (WSAIoctl(out.get(), SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS, records.data(), kRecordsSize,
                 nullptr, 0, &n, nullptr, nullptr) != SOCKET_ERROR)
      return 1;
    return WSAGetLastError() == WSAEACCES ? 0 : 2;
  });
  EXPECT_EQ(ioctlResult, 0) << "1: the set succeeded; 2: wrong error";
  const int sockoptResult = inNonService([&] {
    UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
    if (WS_setsockopt(out.get(), WS_IPPROTO_IP_LEVEL, IP_WFP_REDIRECT_RECORDS,
                      reinterpret_cast<const char*>(records.data()), kRecordsSize) != SOCKET_ERROR)
      return 1;
    return WSAGetLastError() == WSAEACCES ? 0 : 2;
  });
  EXPECT_EQ(sockoptResult, 0);
  const int capiResult = inNonService([&] {
    UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
    return sg_attach_redirect_records(out.get(), records.data(), records.size()) == -EPERM ? 0 : 1;
  });
  EXPECT_EQ(capiResult, 0);
  int forged = 0;
  for (auto& e : events()) forged += e.decision == SG_DECISION_FORGED;
  EXPECT_EQ(forged, 3) << "the kernel saw and refused each attempt";
}

TEST_F(WinsockRedirectTest, OverlappedWithEventAndGetOverlappedResult) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  WSAEVENT ev = WSACreateEvent();
  ASSERT_NE(ev, WSA_INVALID_EVENT);
  WSAOVERLAPPED ov{};
  ov.hEvent = ev;
  std::vector<uint8_t> buf(1024);
  DWORD n = 5;
  ASSERT_EQ(WSAIoctl(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf.data(),
                     1024, &n, &ov, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  ASSERT_EQ(WSAWaitForMultipleEvents(1, &ev, TRUE, 5000, FALSE), WSA_WAIT_EVENT_0);
  DWORD transferred = 0, flags = 9;
  ASSERT_TRUE(WSAGetOverlappedResult(conn.get(), &ov, &transferred, FALSE, &flags))
      << WSAGetLastError();
  EXPECT_EQ(transferred, kContextSize);
  EXPECT_EQ(flags, 0u);
  auto parsed = parseRedirectContext({buf.data(), transferred});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->originTgid, static_cast<uint32_t>(lastChild_));

  // the overlapped size query: fails with the size in the transfer count
  WSAResetEvent(ev);
  WSAOVERLAPPED sizing{};
  sizing.hEvent = ev;
  ASSERT_EQ(WSAIoctl(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, nullptr, 0,
                     nullptr, &sizing, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  EXPECT_FALSE(WSAGetOverlappedResult(conn.get(), &sizing, &transferred, TRUE, &flags));
  EXPECT_EQ(WSAGetLastError(), ERROR_INSUFFICIENT_BUFFER);
  EXPECT_EQ(transferred, kRecordsSize);

  // pending: WSA_IO_INCOMPLETE until the worker gets to it
  WSAResetEvent(ev);
  WSAOVERLAPPED held{};
  held.hEvent = ev;
  {
    HeldWorker hold;
    ASSERT_EQ(WSAIoctl(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0,
                       buf.data(), 1024, nullptr, &held, nullptr),
              SOCKET_ERROR);
    EXPECT_FALSE(WSAGetOverlappedResult(conn.get(), &held, &transferred, FALSE, &flags));
    EXPECT_EQ(WSAGetLastError(), WSA_IO_INCOMPLETE);
  }
  EXPECT_TRUE(WSAGetOverlappedResult(conn.get(), &held, &transferred, TRUE, &flags));
  EXPECT_EQ(transferred, kRecordsSize);
  WSACloseEvent(ev);
}

TEST_F(WinsockRedirectTest, OverlappedWithCompletionRoutineRunsInAlertableWaits) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  RoutineCall call;
  gRoutine = &call;
  std::vector<uint8_t> buf(1024);
  WSAOVERLAPPED ov{};
  ASSERT_EQ(WSAIoctl(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf.data(),
                     1024, nullptr, &ov, onComplete),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  for (int i = 0; i < 500 && !HasOverlappedIoCompleted(&ov); i++) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(HasOverlappedIoCompleted(&ov));
  EXPECT_EQ(call.calls, 0) << "the routine waits for an alertable wait";
  EXPECT_EQ(SleepEx(5000, TRUE), WAIT_IO_COMPLETION);
  EXPECT_EQ(call.calls, 1);
  EXPECT_EQ(call.error, 0u);
  EXPECT_EQ(call.bytes, kRecordsSize);
  EXPECT_EQ(call.overlapped, &ov);
  EXPECT_EQ(call.thread, std::this_thread::get_id());
  auto records = parseRedirectRecords({buf.data(), call.bytes});
  ASSERT_TRUE(records);
  EXPECT_EQ(records->chain, std::vector<uint32_t>{kServiceId});

  // and through WSAWaitForMultipleEvents(fAlertable)
  WSAEVENT never = WSACreateEvent();
  WSAOVERLAPPED ov2{};
  ASSERT_EQ(WSAIoctl(conn.get(), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf.data(),
                     1024, nullptr, &ov2, onComplete),
            SOCKET_ERROR);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &never, FALSE, 5000, TRUE), WSA_WAIT_IO_COMPLETION);
  EXPECT_EQ(call.calls, 2);
  EXPECT_EQ(call.error, 0u);
  EXPECT_EQ(call.bytes, kContextSize);
  EXPECT_EQ(call.overlapped, &ov2);
  WSACloseEvent(never);
  gRoutine = nullptr;
}

TEST_F(WinsockRedirectTest, ClosesocketAbortsPendingOperations) {
  UniqueFd conn = redirectedFlow(*Endpoint::parse("127.0.0.1:9"));
  ASSERT_TRUE(conn);
  const pid_t child = lastChild_;
  RoutineCall call;
  gRoutine = &call;
  WSAEVENT ev = WSACreateEvent();
  WSAOVERLAPPED withEvent{}, withRoutine{};
  withEvent.hEvent = ev;
  std::vector<uint8_t> buf1(1024, 0xCC), buf2(1024, 0xCC);
  HeldWorker hold;
  const SOCKET s = conn.release();
  ASSERT_EQ(WSAIoctl(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT, nullptr, 0, buf1.data(), 1024,
                     nullptr, &withEvent, nullptr),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);
  ASSERT_EQ(WSAIoctl(s, SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS, nullptr, 0, buf2.data(), 1024,
                     nullptr, &withRoutine, onComplete),
            SOCKET_ERROR);
  ASSERT_EQ(WSAGetLastError(), WSA_IO_PENDING);

  ASSERT_EQ(closesocket(s), 0);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_EQ(withEvent.Internal, static_cast<ULONG_PTR>(WSA_OPERATION_ABORTED));
  EXPECT_EQ(SleepEx(5000, TRUE), WAIT_IO_COMPLETION);
  EXPECT_EQ(call.calls, 1);
  EXPECT_EQ(call.error, static_cast<DWORD>(WSA_OPERATION_ABORTED));
  EXPECT_EQ(call.bytes, 0u);
  hold.release();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(buf1[0], 0xCC);
  EXPECT_EQ(buf2[0], 0xCC) << "aborted operations write nothing, even once the worker runs";
  EXPECT_EQ(waitChild(child), 0) << "the application saw the flow close";
  children_.clear();
  WSACloseEvent(ev);
  gRoutine = nullptr;
}

TEST_F(WinsockRedirectTest, CApiOnTheSameFlow) {
  const uint16_t destPort = freeTcpPort();
  UniqueFd destListener = listenOn(Endpoint::loopback(AF_INET, destPort));
  const auto dest = Endpoint::loopback(AF_INET, destPort);
  UniqueFd conn = redirectedFlow(dest);
  ASSERT_TRUE(conn);

  size_t len = 0;
  ASSERT_EQ(sg_query_redirect_context(conn.get(), nullptr, &len), 0);
  EXPECT_EQ(len, kContextSize);
  unsigned char small[32];
  len = sizeof small;
  EXPECT_EQ(sg_query_redirect_context(conn.get(), small, &len), -ERANGE);
  EXPECT_EQ(len, kContextSize);
  unsigned char ctx[SG_REDIRECT_CONTEXT_MAX];
  len = sizeof ctx;
  ASSERT_EQ(sg_query_redirect_context(conn.get(), ctx, &len), 0);
  EXPECT_EQ(len, kContextSize);
  sg_redirect_context_info info;
  ASSERT_EQ(sg_parse_redirect_context(ctx, len, &info), 0);
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&info.original_dst),
                                   info.original_dst_len),
            dest);
  EXPECT_EQ(info.origin_pid, static_cast<uint32_t>(lastChild_));
  EXPECT_EQ(info.origin_uid, 0u);
  EXPECT_EQ(info.origin_cgroup_id, cgroup_->id());
  EXPECT_EQ(info.service_id, kServiceId);
  EXPECT_GT(std::strlen(info.origin_comm), 0u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(info.tag), info.tag_len), "hello-tag");

  unsigned char rec[SG_REDIRECT_RECORDS_MAX];
  len = 0;
  ASSERT_EQ(sg_query_redirect_records(conn.get(), nullptr, &len), 0);
  EXPECT_EQ(len, kRecordsSize);
  len = sizeof rec;
  ASSERT_EQ(sg_query_redirect_records(conn.get(), rec, &len), 0);

  sg_redirect_state state;
  ASSERT_EQ(sg_query_redirect_state(conn.get(), kServiceId, &state), 0);
  EXPECT_EQ(state, SG_REDIRECT_STATE_REDIRECTED_BY_SELF);
  ASSERT_EQ(sg_query_redirect_state(conn.get(), kServiceId + 1, &state), 0);
  EXPECT_EQ(state, SG_REDIRECT_STATE_REDIRECTED_BY_OTHER);

  sockaddr_storage orig{};
  socklen_t origLen = sizeof orig;
  ASSERT_EQ(sg_query_original_destination(conn.get(), reinterpret_cast<sockaddr*>(&orig), &origLen),
            0);
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&orig), origLen), dest);
  origLen = 4;
  EXPECT_EQ(sg_query_original_destination(conn.get(), reinterpret_cast<sockaddr*>(&orig), &origLen),
            -EINVAL);

  UniqueFd out(::socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(sg_attach_redirect_records(out.get(), rec, len), 0);
  ASSERT_EQ(::connect(out.get(), dest.sockaddrPtr(), dest.length()), 0);
  EXPECT_TRUE(acceptWithin(destListener.get(), 5s)) << "the chain went on to the destination";
  EXPECT_EQ(sg_attach_redirect_records(out.get(), rec, len), -EISCONN);
  ASSERT_EQ(sg_query_redirect_state(out.get(), kServiceId, &state), 0);
  EXPECT_EQ(state, SG_REDIRECT_STATE_REDIRECTED_BY_SELF) << "the outbound socket carries the chain";
}

}  // namespace
}  // namespace sockgate::testing
