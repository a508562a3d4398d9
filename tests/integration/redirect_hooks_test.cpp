// The kernel hooks through the library, with this test process acting as the
// redirect service: what any third-party service sees on its accepted socket
// (context, records, SO_ORIGINAL_DST and their buffer-size rules), and the
// decisions of connect4/6 (fail-open, fail-closed, filters, events).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>

#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"
#include "sockgate/security.h"
#include "support/http_server.h"
#include "support/listen_accept.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

class RedirectHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mount = findCgroup2Mount();
    ASSERT_TRUE(mount);
    mount_ = *mount;
    auto cg = Cgroup::create(mount_ + "/sg-hooks-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(cg) << cg.error().message();
    cgroup_.emplace(std::move(*cg));
    auto engine = RedirectEngine::start({cgroup_->path(), mount_});
    ASSERT_TRUE(engine) << engine.error().message();
    engine_ = std::move(*engine);
    servicePort_ = freeTcpPort();
    svc4_ = listenOn(Endpoint::loopback(AF_INET, servicePort_));
    svc6_ = listenOn(Endpoint::loopback(AF_INET6, servicePort_));
  }
  void TearDown() override {
    engine_.reset();
    if (cgroup_) {
      (void)cgroup_->signalAll(SIGKILL);
      EXPECT_TRUE(cgroup_->remove());
    }
  }

  ServiceSpec service(uint32_t id = 5) {
    ServiceSpec s;
    s.id = id;
    s.name = "test";
    s.listen4 = Endpoint::loopback(AF_INET, servicePort_);
    s.listen6 = Endpoint::loopback(AF_INET6, servicePort_);
    const char tag[] = "hello-tag";
    s.tag.assign(tag, tag + 9);
    return s;
  }

  // fork(); the child joins the governed cgroup (or exits 100) before it
  // returns 0.
  pid_t forkIntoCgroup() {
    const std::string procs = cgroup_->path() + "/cgroup.procs";
    pid_t pid = ::fork();
    if (pid == 0) {
      int cg = ::open(procs.c_str(), O_WRONLY);
      if (cg < 0 || ::write(cg, "0", 1) != 1) ::_exit(100);
    }
    return pid;
  }

  // A child in the governed cgroup connects to `to`, sends one byte and waits
  // for EOF. Returns its pid; its exit code is 0 or the connect errno.
  pid_t connectFromCgroup(const Endpoint& to, bool mapped = false) {
    Endpoint target = to;
    if (mapped)
      target = *Endpoint::parse("[::ffff:" + to.address() + "]:" + std::to_string(to.port()));
    pid_t pid = forkIntoCgroup();
    if (pid == 0) {
      int fd = ::socket(target.family(), SOCK_STREAM, 0);
      if (::connect(fd, target.sockaddrPtr(), target.length()) != 0) ::_exit(errno);
      if (::write(fd, "x", 1) != 1) ::_exit(101);
      char c;
      while (::read(fd, &c, 1) > 0) {
      }
      ::_exit(0);
    }
    return pid;
  }

  // A child in the governed cgroup connects to `to` from 127.0.0.1:fromPort
  // (any port if 0), sends one byte and closes at once, with a reset instead
  // of a FIN if `reset`: a client done before the service gets to it.
  pid_t sendAndCloseFromCgroup(const Endpoint& to, uint16_t fromPort, bool reset) {
    pid_t pid = forkIntoCgroup();
    if (pid == 0) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      const auto from = Endpoint::loopback(AF_INET, fromPort);
      if (fromPort && ::bind(fd, from.sockaddrPtr(), from.length()) != 0) ::_exit(102);
      if (::connect(fd, to.sockaddrPtr(), to.length()) != 0) ::_exit(errno);
      if (::write(fd, "x", 1) != 1) ::_exit(101);
      if (reset) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      }
      ::close(fd);
      ::_exit(0);
    }
    return pid;
  }

  static int waitChild(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
  }

  std::vector<sg_event> events() {
    std::vector<sg_event> out;
    (void)engine_->drainEvents([&](const sg_event& e) { out.push_back(e); });
    return out;
  }

  std::string mount_;
  std::optional<Cgroup> cgroup_;
  std::unique_ptr<RedirectEngine> engine_;
  uint16_t servicePort_ = 0;
  UniqueFd svc4_, svc6_;
};

TEST_F(RedirectHooksTest, AcceptedSocketCarriesContextRecordsAndOriginalDestination) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  const auto dest = *Endpoint::parse("127.0.0.1:9");  // nothing listens: it is redirected
  pid_t child = connectFromCgroup(dest);
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn) << "the connect was not redirected to the service";

  // Size query: NULL buffer, length 0 -> success and the size needed.
  socklen_t len = 0;
  ASSERT_EQ(::getsockopt(conn.get(), SOL_IP, SG_IP_WFP_REDIRECT_CONTEXT, nullptr, &len), 0)
      << std::strerror(errno);
  EXPECT_EQ(len, SG_CONTEXT_HEADER_LEN + 16) << "9-byte tag padded to 16";
  // Too small a buffer: ERANGE, length untouched.
  std::vector<uint8_t> small(50);
  socklen_t smallLen = 50;
  EXPECT_EQ(::getsockopt(conn.get(), SOL_IP, SG_IP_WFP_REDIRECT_CONTEXT, small.data(), &smallLen),
            -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(smallLen, 50u);
  // A large buffer is always fine.
  std::vector<uint8_t> big(sizeof(sg_redirect_context));
  socklen_t bigLen = static_cast<socklen_t>(big.size());
  ASSERT_EQ(::getsockopt(conn.get(), SOL_IP, SG_IP_WFP_REDIRECT_CONTEXT, big.data(), &bigLen), 0);
  EXPECT_EQ(bigLen, len);

  auto ctx = readRedirectContext(conn.get());
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->originalDestination, dest);
  EXPECT_EQ(ctx->originTgid, static_cast<uint32_t>(child));
  EXPECT_EQ(ctx->originUid, 0u);
  EXPECT_EQ(ctx->originCgroupId, cgroup_->id());
  EXPECT_EQ(ctx->serviceId, 5u);
  EXPECT_EQ(std::string(ctx->tag.begin(), ctx->tag.end()), "hello-tag");
  EXPECT_FALSE(ctx->originComm.empty());

  auto records = readRedirectRecords(conn.get());
  ASSERT_TRUE(records) << records.error().message();
  EXPECT_EQ(records->chain, std::vector<uint32_t>{5});
  EXPECT_EQ(records->flowId, ctx->flowId);

  // SO_ORIGINAL_DST, as iptables REDIRECT answers it, on both levels.
  sockaddr_in sin{};
  socklen_t sinLen = sizeof sin;
  ASSERT_EQ(::getsockopt(conn.get(), SOL_IP, SG_SO_ORIGINAL_DST, &sin, &sinLen), 0);
  EXPECT_EQ(sinLen, sizeof sin);
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&sin), sinLen), dest);
  socklen_t shortLen = 8;
  EXPECT_EQ(::getsockopt(conn.get(), SOL_IP, SG_SO_ORIGINAL_DST, &sin, &shortLen), -1);
  EXPECT_EQ(errno, EINVAL);
  sockaddr_in6 sin6{};
  socklen_t sin6Len = sizeof sin6;
  ASSERT_EQ(::getsockopt(conn.get(), SOL_IPV6, SG_SO_ORIGINAL_DST, &sin6, &sin6Len), 0);
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&sin6), sin6Len).toString(),
            "[::ffff:127.0.0.1]:9");

  // The security query names the application as the peer, not the loopback
  // client the service sees.
  auto security = querySocketSecurity(conn.get());
  ASSERT_TRUE(security) << security.error().message();
  ASSERT_TRUE(security->peer);
  EXPECT_EQ(security->peer->pid, child);
  EXPECT_EQ(security->peer->source, PeerSource::kRedirectContext);
  EXPECT_TRUE(security->flags & kSecurityFlagImpersonated);
  EXPECT_TRUE(security->peer->pidfd.valid());

  char c;
  EXPECT_EQ(::read(conn.get(), &c, 1), 1);
  conn.reset();
  EXPECT_EQ(waitChild(child), 0);

  auto evs = events();
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().decision, static_cast<uint32_t>(SG_DECISION_REDIRECT));
  EXPECT_EQ(evs.back().tgid, static_cast<uint32_t>(child));
  EXPECT_EQ(Endpoint::fromAbi(evs.back().dst), dest);
  EXPECT_EQ(Endpoint::fromAbi(evs.back().redirect_to), Endpoint::loopback(AF_INET, servicePort_));
}

TEST_F(RedirectHooksTest, SocketWithoutAFlowGetsTheKernelsAnswer) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  // this process is not governed: a plain connection to the service port
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  auto ep = Endpoint::loopback(AF_INET, servicePort_);
  ASSERT_EQ(::connect(fd.get(), ep.sockaddrPtr(), ep.length()), 0);
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn);
  socklen_t len = 0;
  EXPECT_EQ(::getsockopt(conn.get(), SOL_IP, SG_IP_WFP_REDIRECT_CONTEXT, nullptr, &len), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  auto ctx = readRedirectContext(conn.get());
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, ENOPROTOOPT);
}

TEST_F(RedirectHooksTest, IPv6AndV4MappedFlowsReachTheMatchingListener) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  const auto dest6 = *Endpoint::parse("[::1]:9");
  pid_t child = connectFromCgroup(dest6);
  UniqueFd conn = acceptWithin(svc6_.get(), 5s);
  ASSERT_TRUE(conn);
  auto ctx = readRedirectContext(conn.get());
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->originalDestination, dest6);
  auto orig = queryOriginalDestination(conn.get());
  ASSERT_TRUE(orig);
  EXPECT_EQ(*orig, dest6);
  conn.reset();
  EXPECT_EQ(waitChild(child), 0);

  // a dual-stack socket to ::ffff:127.0.0.1 lands on the IPv4 listener
  pid_t mapped = connectFromCgroup(*Endpoint::parse("127.0.0.1:9"), true);
  UniqueFd conn4 = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn4);
  auto ctx4 = readRedirectContext(conn4.get());
  ASSERT_TRUE(ctx4);
  EXPECT_EQ(ctx4->originalDestination.toString(), "127.0.0.1:9");
  conn4.reset();
  EXPECT_EQ(waitChild(mapped), 0);
}

TEST_F(RedirectHooksTest, ServiceDownFailsOpenOrClosedAsConfigured) {
  // a destination that really listens, to see fail-open reach it directly
  const uint16_t destPort = freeTcpPort();
  UniqueFd dest = listenOn(Endpoint::loopback(AF_INET, destPort));
  svc4_.reset();
  svc6_.reset();  // the service is down

  ServiceSpec open = service();
  ASSERT_TRUE(engine_->setServices({&open, 1}));
  pid_t child = connectFromCgroup(Endpoint::loopback(AF_INET, destPort));
  UniqueFd direct = acceptWithin(dest.get(), 5s);
  ASSERT_TRUE(direct) << "fail-open did not connect directly";
  direct.reset();
  EXPECT_EQ(waitChild(child), 0);
  auto evs = events();
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().decision, static_cast<uint32_t>(SG_DECISION_FAIL_OPEN));

  ServiceSpec closed = service();
  closed.failClosed = true;
  ASSERT_TRUE(engine_->setServices({&closed, 1}));
  child = connectFromCgroup(Endpoint::loopback(AF_INET, destPort));
  EXPECT_EQ(waitChild(child), ECONNREFUSED);
  EXPECT_FALSE(acceptWithin(dest.get(), 200ms)) << "fail-closed let the flow through";
  evs = events();
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().decision, static_cast<uint32_t>(SG_DECISION_REFUSED));
}

TEST_F(RedirectHooksTest, FilterDecidesWhichFlowsAService) {
  const uint16_t destPort = freeTcpPort();
  UniqueFd dest = listenOn(Endpoint::loopback(AF_INET, destPort));
  ServiceSpec spec = service();
  spec.filter.match = SG_MATCH_PORT;
  spec.filter.port_count = 1;
  spec.filter.ports[0] = {1, 1000};  // destPort is above: not for this service
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  pid_t child = connectFromCgroup(Endpoint::loopback(AF_INET, destPort));
  UniqueFd direct = acceptWithin(dest.get(), 5s);
  ASSERT_TRUE(direct);
  direct.reset();
  EXPECT_EQ(waitChild(child), 0);
  EXPECT_EQ(events().back().decision, static_cast<uint32_t>(SG_DECISION_DIRECT));

  spec.filter.match = SG_MATCH_PREFIX;
  spec.filter.prefix_count = 1;
  spec.filter.prefixes[0].family = AF_INET;
  spec.filter.prefixes[0].len = 8;
  spec.filter.prefixes[0].addr[0] = 127;  // 127.0.0.0/8
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  child = connectFromCgroup(Endpoint::loopback(AF_INET, destPort));
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn) << "127.0.0.0/8 should match";
  conn.reset();
  EXPECT_EQ(waitChild(child), 0);
}

// With decisions only counted (no events, as `sockgate run` without
// --trace), connect4 asks for the caller's name and cgroup ancestry only
// when a filter needs them or a service takes the flow: filters on them
// must still decide, and a taken flow must still carry the whole origin.
TEST_F(RedirectHooksTest, NameAndCgroupFiltersDecideAndATakenFlowCarriesTheWholeOrigin) {
  engine_.reset();
  RedirectEngine::Options counted{cgroup_->path(), mount_};
  counted.events = false;
  auto engine = RedirectEngine::start(counted);
  ASSERT_TRUE(engine) << engine.error().message();
  engine_ = std::move(*engine);
  const uint16_t destPort = freeTcpPort();
  UniqueFd dest = listenOn(Endpoint::loopback(AF_INET, destPort));
  const auto to = Endpoint::loopback(AF_INET, destPort);
  char comm[SG_COMM_LEN] = {};  // the children's, inherited over fork()
  ASSERT_EQ(::prctl(PR_GET_NAME, comm), 0);
  const std::string level1 = cgroup_->path().substr(mount_.size());
  ASSERT_EQ(std::count(level1.begin(), level1.end(), '/'), 1) << "the test cgroup is at level 1";

  struct Case {
    const char* what;
    uint32_t match;
    const char* comm;
    uint64_t cgroupId;
    bool redirected;
  };
  const Case cases[] = {
      {"another name", SG_MATCH_COMM, "not-this-one", 0, false},
      {"this name", SG_MATCH_COMM, comm, 0, true},
      {"another cgroup", SG_MATCH_CGROUP, nullptr, cgroup_->id() + 1, false},
      {"this cgroup", SG_MATCH_CGROUP, nullptr, cgroup_->id(), true},
      {"port only", SG_MATCH_PORT, nullptr, 0, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ServiceSpec spec = service();
    spec.filter.match = c.match;
    if (c.comm) std::memcpy(spec.filter.comm, c.comm, std::strlen(c.comm));  // NUL-padded
    spec.filter.cgroup_id = c.cgroupId;
    spec.filter.cgroup_level = 1;
    spec.filter.port_count = 1;
    spec.filter.ports[0] = {destPort, destPort};
    ASSERT_TRUE(engine_->setServices({&spec, 1}));
    const auto before = engine_->decisionCounts();
    ASSERT_TRUE(before);
    pid_t child = connectFromCgroup(to);
    UniqueFd conn = acceptWithin((c.redirected ? svc4_ : dest).get(), 5s);
    ASSERT_TRUE(conn) << (c.redirected ? "not redirected" : "not connected directly");
    if (c.redirected) {
      auto ctx = readRedirectContext(conn.get());
      ASSERT_TRUE(ctx) << ctx.error().message();
      EXPECT_EQ(ctx->originComm, comm);
      EXPECT_EQ(ctx->originCgroupId, cgroup_->id());
      auto blob = queryRedirectRecordsBlob(conn.get());
      ASSERT_TRUE(blob) << blob.error().message();
      ASSERT_GE(blob->size(), sizeof(sg_redirect_records));
      sg_redirect_records r;
      std::memcpy(&r, blob->data(), sizeof r);
      EXPECT_STREQ(r.origin.comm, comm);
      EXPECT_NE(r.origin.time_ns, 0u);
      EXPECT_EQ(r.origin.cgroup_ancestors[1], cgroup_->id());
      EXPECT_EQ(r.origin.cgroup_ancestors[2], 0u) << "no level below the caller's own";
    }
    conn.reset();
    EXPECT_EQ(waitChild(child), 0);
    const auto after = engine_->decisionCounts();
    ASSERT_TRUE(after);
    const auto kind = c.redirected ? SG_DECISION_REDIRECT : SG_DECISION_DIRECT;
    EXPECT_EQ(after->fromApplications[kind], before->fromApplications[kind] + 1);
  }
}

// This test process as service 5, and a second service after it: when 5
// connects on to a flow's original destination without attaching the
// flow's records, the flow goes on to the next service only if 5 left an
// inferred record (a service that attaches none, like an unaware proxy);
// one that says it attaches records leaves none, and its own connection
// goes where it asked.
TEST_F(RedirectHooksTest, OnlyAServiceThatAttachesNoRecordsLeavesThemInferred) {
  const uint16_t destPort = freeTcpPort(), nextPort = freeTcpPort();
  const auto dest = Endpoint::loopback(AF_INET, destPort);
  UniqueFd destListener = listenOn(dest);
  UniqueFd nextListener = listenOn(Endpoint::loopback(AF_INET, nextPort));
  // The one that attaches first: an inferred record would outlive its turn.
  for (const bool attaches : {true, false}) {
    SCOPED_TRACE(attaches ? "attaches records" : "attaches none");
    ServiceSpec first = service(5);
    first.tgid = static_cast<uint32_t>(::getpid());
    first.attachesRecords = attaches;
    ServiceSpec next = service(6);
    next.listen4 = Endpoint::loopback(AF_INET, nextPort);
    next.listen6.reset();
    const ServiceSpec both[] = {first, next};
    ASSERT_TRUE(engine_->setServices(both));
    pid_t child = connectFromCgroup(dest);
    UniqueFd conn = acceptWithin(svc4_.get(), 5s);
    ASSERT_TRUE(conn) << "not redirected to the first service";
    auto ctx = readRedirectContext(conn.get());  // takes the flow
    ASSERT_TRUE(ctx) << ctx.error().message();
    UniqueFd onward(::socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_EQ(::connect(onward.get(), dest.sockaddrPtr(), dest.length()), 0)
        << std::strerror(errno);
    UniqueFd reached = acceptWithin((attaches ? destListener : nextListener).get(), 5s);
    EXPECT_TRUE(reached) << (attaches ? "went on to the next service" : "did not go on");
    onward.reset();
    conn.reset();
    EXPECT_EQ(waitChild(child), 0);
  }
}

// The service takes the flow when it first asks, which may be long after the
// application's socket is gone: a client that sends and closes before the
// service accepts must still be served as its own flow.
TEST_F(RedirectHooksTest, AFlowWhoseClientClosedBeforeTheServiceAskedIsStillServed) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  const auto dest = *Endpoint::parse("127.0.0.1:9");
  pid_t child = sendAndCloseFromCgroup(dest, 0, false);
  ASSERT_EQ(waitChild(child), 0);
  // By now the service's kernel has acknowledged the client's FIN, and the
  // client's socket is closed (an orphan in FIN_WAIT2 becomes a timewait
  // socket at once).
  std::this_thread::sleep_for(100ms);
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn);
  auto ctx = readRedirectContext(conn.get());
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->originalDestination, dest);
  EXPECT_EQ(ctx->originTgid, static_cast<uint32_t>(child));
  auto orig = queryOriginalDestination(conn.get());
  ASSERT_TRUE(orig);
  EXPECT_EQ(*orig, dest);
  char buf[2];
  EXPECT_EQ(::read(conn.get(), buf, sizeof buf), 1) << "the byte sent before the close";
  EXPECT_EQ(::read(conn.get(), buf, sizeof buf), 0);
}

// A flow the service never asked for stays in the flow table until it ages
// out. A later connection on the same 4-tuple, here a plain one from a
// process that is not governed, must not be taken for it.
TEST_F(RedirectHooksTest, ALaterConnectionOnAFlowsFourTupleDoesNotInheritIt) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  const uint16_t from = freeTcpPort();
  // A reset leaves no TIME_WAIT on either side, so the 4-tuple is free again.
  pid_t child = sendAndCloseFromCgroup(*Endpoint::parse("127.0.0.1:9"), from, true);
  ASSERT_EQ(waitChild(child), 0);
  UniqueFd unasked = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(unasked) << "the connect was not redirected to the service";
  unasked.reset();

  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const auto src = Endpoint::loopback(AF_INET, from);
  ASSERT_EQ(::bind(fd.get(), src.sockaddrPtr(), src.length()), 0) << std::strerror(errno);
  const auto svc = Endpoint::loopback(AF_INET, servicePort_);
  ASSERT_EQ(::connect(fd.get(), svc.sockaddrPtr(), svc.length()), 0) << std::strerror(errno);
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn);
  socklen_t len = 0;
  EXPECT_EQ(::getsockopt(conn.get(), SOL_IP, SG_IP_WFP_REDIRECT_CONTEXT, nullptr, &len), -1)
      << "a plain connection was handed the earlier flow's context";
  EXPECT_EQ(errno, ENOPROTOOPT);
  EXPECT_FALSE(queryOriginalDestination(conn.get()));
}

TEST_F(RedirectHooksTest, AConnectionToTheServiceItselfIsNeverRedirected) {
  ServiceSpec spec = service();
  ASSERT_TRUE(engine_->setServices({&spec, 1}));
  pid_t child = connectFromCgroup(Endpoint::loopback(AF_INET, servicePort_));
  UniqueFd conn = acceptWithin(svc4_.get(), 5s);
  ASSERT_TRUE(conn);
  EXPECT_FALSE(readRedirectContext(conn.get())) << "a direct connection has no flow";
  conn.reset();
  EXPECT_EQ(waitChild(child), 0);
}

}  // namespace
}  // namespace sockgate::testing
