// Cooperative redirect chains: several services inspect one flow, in
// priority order, exactly once each, and never loop — including services
// that know nothing of redirect records (an SO_ORIGINAL_DST proxy, HAProxy).
// Built-in services run in this process; unaware ones are real processes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>

#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "proxy/redirect_service.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"
#include "support/http_server.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

struct External {
  std::unique_ptr<BackgroundProcess> process;
  uint16_t port = 0;
};

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_ = *findCgroup2Mount();
    auto cg = Cgroup::create(mount_ + "/sg-chain-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(cg) << cg.error().message();
    cgroup_.emplace(std::move(*cg));
    auto engine = RedirectEngine::start({cgroup_->path(), mount_});
    ASSERT_TRUE(engine) << engine.error().message();
    engine_ = std::move(*engine);
  }
  void TearDown() override {
    engine_.reset();
    for (auto& [id, svc] : builtins_) svc->stop(0ms);
    externals_.clear();
    if (cgroup_) {
      (void)cgroup_->signalAll(SIGKILL);
      EXPECT_TRUE(cgroup_->remove());
    }
  }

  // A built-in (records-aware) service in this process.
  ServiceSpec builtin(uint32_t id, const std::string& name) {
    proxy::ServiceOptions o;
    o.id = id;
    o.name = name;
    o.loops = 1;
    auto svc = proxy::RedirectService::start(o);
    EXPECT_TRUE(svc) << svc.error().message();
    ServiceSpec s;
    s.id = id;
    s.name = name;
    s.listen4 = (*svc)->listen4();
    s.listen6 = (*svc)->listen6();
    s.tgid = static_cast<uint32_t>(::getpid());
    s.tag.assign(name.begin(), name.end());
    builtins_[id] = std::move(*svc);
    return s;
  }

  // A real process that is a service without knowing about records.
  ServiceSpec external(uint32_t id, const std::string& name, std::vector<std::string> argv,
                       uint16_t port) {
    External e;
    e.port = port;
    e.process = std::make_unique<BackgroundProcess>(argv);
    EXPECT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s)) << name << " did not listen";
    ServiceSpec s;
    s.id = id;
    s.name = name;
    s.listen4 = Endpoint::loopback(AF_INET, port);
    s.tgid = static_cast<uint32_t>(e.process->pid());
    externals_[id] = std::move(e);
    return s;
  }

  ServiceSpec unawareProxy(uint32_t id) {
    uint16_t port = freeTcpPort();
    return external(id, "origdst-proxy",
                    {toolBin("netcheck"), "origdst-proxy", std::to_string(port)}, port);
  }

  ServiceSpec haproxy(uint32_t id) {
    uint16_t port = freeTcpPort();
    std::ofstream(dir_.path() + "/haproxy.cfg")
        << "global\n  maxconn 1000\n"
        << "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10s\n"
        << "  timeout server 10s\n"
        << "frontend fe\n  bind 127.0.0.1:" << port
        << "\n  default_backend be\n"
        // 0.0.0.0: connect to the client connection's original destination,
        // which HAProxy asks with SO_ORIGINAL_DST
        << "backend be\n  server x 0.0.0.0\n";
    return external(id, "haproxy", {"haproxy", "-db", "-f", dir_.path() + "/haproxy.cfg"}, port);
  }

  // Runs a command inside the governed cgroup; returns its result.
  ProcessResult runGoverned(std::vector<std::string> argv) {
    std::vector<std::string> sh{
        "sh", "-c", "echo 0 > '" + cgroup_->path() + "/cgroup.procs' && exec \"$@\"", "sh"};
    sh.insert(sh.end(), argv.begin(), argv.end());
    return runProcess(sh, 120s);
  }

  std::vector<sg_event> events() {
    std::vector<sg_event> out;
    (void)engine_->drainEvents([&](const sg_event& e) { out.push_back(e); });
    return out;
  }

  // The services each flow was redirected to, in order, flows in the order
  // they started (socket cookies come in per-CPU batches: not an order).
  std::vector<std::pair<uint64_t, std::vector<uint32_t>>> hopsByFlow(
      const std::vector<sg_event>& evs) {
    std::map<uint64_t, std::pair<uint64_t, std::vector<uint32_t>>>
        byFlow;  // flow -> (first time, hops)
    for (const auto& e : evs) {
      if (e.decision != SG_DECISION_REDIRECT) continue;
      auto [it, fresh] =
          byFlow.try_emplace(e.flow_id, uint64_t{e.time_ns}, std::vector<uint32_t>{});
      it->second.first = std::min<uint64_t>(it->second.first, e.time_ns);
      it->second.second.push_back(e.service_id);
    }
    std::vector<std::pair<uint64_t, std::vector<uint32_t>>> hops;
    for (auto& [flow, v] : byFlow) hops.emplace_back(v.first, std::move(v.second));
    std::sort(hops.begin(), hops.end());
    return hops;
  }

  std::string serviceLogs() {
    std::string out;
    for (auto& [id, svc] : builtins_)
      for (const auto& row : svc->log().snapshot())
        out += "service " + std::to_string(id) + ": " + row.originalDestination.toString() +
               " up " + std::to_string(row.bytesUp) + " down " + std::to_string(row.bytesDown) +
               " " + row.ending + "\n";
    return out;
  }

  uint16_t blastServer() {
    uint16_t port = freeTcpPort();
    dest_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{toolBin("netcheck"), "serve-blast", std::to_string(port)});
    EXPECT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
    return port;
  }

  TempDir dir_;
  std::string mount_;
  std::optional<Cgroup> cgroup_;
  std::unique_ptr<RedirectEngine> engine_;
  std::map<uint32_t, std::unique_ptr<proxy::RedirectService>> builtins_;
  std::map<uint32_t, External> externals_;
  std::unique_ptr<BackgroundProcess> dest_;
};

TEST_F(ChainTest, ThreeServicesSeeEachFlowOnceInPriorityOrder) {
  const uint16_t port = blastServer();
  std::vector<ServiceSpec> chain{builtin(1, "A"), builtin(2, "B"), unawareProxy(3)};
  ASSERT_TRUE(engine_->setServices(chain));

  auto r = runGoverned({toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "3",
                        std::to_string(1 << 20)});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 connections, 0 failed"), std::string::npos) << r.out;

  auto evs = events();
  int perService[4] = {};
  for (const auto& e : evs)
    if (e.decision == SG_DECISION_REDIRECT) ++perService[e.service_id];
  EXPECT_EQ(perService[1], 3);
  EXPECT_EQ(perService[2], 3);
  EXPECT_EQ(perService[3], 3);
  // Every hop after the first came from a service and carried the chain so far.
  for (const auto& e : evs) {
    if (e.decision != SG_DECISION_REDIRECT) continue;
    EXPECT_EQ(e.chain_len, e.service_id) << "service " << e.service_id << " at the wrong hop";
    EXPECT_EQ(static_cast<bool>(e.flags & SG_EVENT_FROM_SERVICE), e.service_id != 1);
  }
  // The last service's outbound connection ends the chain: 3 flows, 3 ends, no more.
  int ends = 0;
  for (const auto& e : evs) ends += e.decision == SG_DECISION_CHAIN_DONE;
  EXPECT_EQ(ends, 3);

  // The built-in services saw the application (not each other) and the
  // original destination, and carried every byte.
  for (uint32_t id : {1u, 2u}) {
    auto rows = builtins_[id]->log().snapshot();
    ASSERT_EQ(rows.size(), 3u) << "service " << id;
    for (const auto& row : rows) {
      EXPECT_EQ(row.originalDestination.toString(), "127.0.0.1:" + std::to_string(port));
      EXPECT_NE(row.originTgid, static_cast<uint32_t>(::getpid())) << "saw a service, not the app";
      EXPECT_EQ(row.originComm, "netcheck");
      EXPECT_EQ(row.bytesUp, (1u << 20) + 16u);
      EXPECT_EQ(row.bytesDown, 1u << 20);
      EXPECT_EQ(row.ending, "closed");
    }
  }
  std::string unaware = externals_[3].process->out();
  size_t lines = 0;
  for (size_t p = 0;
       (p = unaware.find("-> 127.0.0.1:" + std::to_string(port), p)) != std::string::npos; ++p)
    ++lines;
  EXPECT_EQ(lines, 3u) << unaware;
}

// An unaware service in first, middle and last position: no loop, no skip.
class UnawarePosition : public ChainTest, public ::testing::WithParamInterface<int> {};

TEST_P(UnawarePosition, NeitherLoopsNorSkips) {
  const uint16_t port = blastServer();
  std::vector<ServiceSpec> chain{builtin(1, "A"), builtin(2, "B")};
  chain.insert(chain.begin() + GetParam(), unawareProxy(3));
  ASSERT_TRUE(engine_->setServices(chain));
  for (int i = 0; i < 3; ++i) {  // one at a time: each flow's hops are exact
    auto r = runGoverned(
        {toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "1", "65536"});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  }
  auto hops = hopsByFlow(events());
  std::vector<uint32_t> expected;
  for (const auto& s : chain) expected.push_back(s.id);
  ASSERT_EQ(hops.size(), 3u);
  for (const auto& [flow, seen] : hops) EXPECT_EQ(seen, expected) << "flow " << flow;
}

INSTANTIATE_TEST_SUITE_P(FirstMiddleLast, UnawarePosition, ::testing::Values(0, 1, 2));

// HAProxy, unmodified, configured as a transparent proxy, first and last.
class HaproxyPosition : public ChainTest, public ::testing::WithParamInterface<int> {};

TEST_P(HaproxyPosition, WorksAsOneMemberOfTheChain) {
  const uint16_t port = blastServer();
  std::vector<ServiceSpec> chain{builtin(1, "A"), builtin(2, "B")};
  chain.insert(chain.begin() + GetParam(), haproxy(3));
  ASSERT_TRUE(engine_->setServices(chain));
  for (int i = 0; i < 2; ++i) {
    auto r = runGoverned({toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "1",
                          std::to_string(1 << 20)});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err << externals_[3].process->err();
    EXPECT_LT(r.elapsed, 5s) << "a flow stalled: " << serviceLogs() << externals_[3].process->err();
  }
  auto hops = hopsByFlow(events());
  std::vector<uint32_t> expected;
  for (const auto& s : chain) expected.push_back(s.id);
  ASSERT_EQ(hops.size(), 2u);
  for (const auto& [flow, seen] : hops) EXPECT_EQ(seen, expected) << "flow " << flow;
  // a flow's row is written when the service closes it, just after the client saw EOF
  for (uint32_t id : {1u, 2u})
    EXPECT_TRUE(waitFor([&] { return builtins_[id]->log().snapshot().size() == 2u; }, 5s))
        << serviceLogs() << externals_[3].process->err();
}

INSTANTIATE_TEST_SUITE_P(FirstLast, HaproxyPosition, ::testing::Values(0, 2));

TEST_F(ChainTest, ForgedRecordsFromAnApplicationAreRefusedAndSkipNothing) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess dest({toolBin("netcheck"), "serve-peer", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  std::vector<ServiceSpec> chain{builtin(1, "A"), builtin(2, "B")};
  ASSERT_TRUE(engine_->setServices(chain));

  // Records claiming both services already inspected the flow.
  RedirectRecords forged;
  forged.flowId = 1;
  forged.chain = {1, 2};
  auto blob = encodeRedirectRecords(forged);
  const std::string procs = cgroup_->path() + "/cgroup.procs";
  pid_t child = ::fork();
  if (child == 0) {
    int cg = ::open(procs.c_str(), O_WRONLY);
    if (cg < 0 || ::write(cg, "0", 1) != 1) ::_exit(100);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int rc = ::setsockopt(fd, SOL_IP, SG_IP_WFP_REDIRECT_RECORDS, blob.data(),
                          static_cast<socklen_t>(blob.size()));
    if (rc == 0) ::_exit(101);
    if (errno != EPERM) ::_exit(102);
    auto to = Endpoint::loopback(AF_INET, port);
    if (::connect(fd, to.sockaddrPtr(), to.length()) != 0) ::_exit(103);
    char buf[64];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "101: forged records accepted; 102: wrong errno";
  auto evs = events();
  bool forgedEvent = false;
  for (const auto& e : evs) forgedEvent |= e.decision == SG_DECISION_FORGED;
  EXPECT_TRUE(forgedEvent);
  auto hops = hopsByFlow(evs);
  ASSERT_EQ(hops.size(), 1u);
  EXPECT_EQ(hops.begin()->second, (std::vector<uint32_t>{1, 2})) << "inspection was skipped";
}

TEST_F(ChainTest, AServiceKilledMidRunFailsOpenOrClosed) {
  const uint16_t port = blastServer();
  ServiceSpec u = unawareProxy(3);
  ASSERT_TRUE(engine_->setServices({&u, 1}));
  auto blast = [&] {
    return runGoverned(
        {toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "1", "4096"});
  };
  ASSERT_EQ(blast().exitCode, 0);
  externals_[3].process->signal(SIGKILL);
  externals_[3].process->wait(5s);
  events();

  auto open = blast();  // fail-open: straight to the destination
  EXPECT_EQ(open.exitCode, 0) << open.err;
  auto evs = events();
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().decision, static_cast<uint32_t>(SG_DECISION_FAIL_OPEN));

  u.failClosed = true;
  ASSERT_TRUE(engine_->setServices({&u, 1}));
  auto closed = blast();
  EXPECT_NE(closed.exitCode, 0);
  EXPECT_NE(closed.err.find("Connection refused"), std::string::npos) << closed.err;
  evs = events();
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().decision, static_cast<uint32_t>(SG_DECISION_REFUSED));
}

TEST_F(ChainTest, AddingAndRemovingServicesKeepsOpenFlowsWhole) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess echo({toolBin("netcheck"), "serve-echo", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  ServiceSpec a = builtin(1, "A");
  ServiceSpec b = builtin(2, "B");
  ASSERT_TRUE(engine_->setServices({&a, 1}));

  // A flow that stays open for 3 s, every byte echoed and checked.
  std::vector<std::string> sh{"sh",
                              "-c",
                              "echo 0 > '" + cgroup_->path() + "/cgroup.procs' && exec \"$@\"",
                              "sh",
                              toolBin("netcheck"),
                              "slow-echo",
                              "127.0.0.1:" + std::to_string(port),
                              "3000"};
  BackgroundProcess longFlow(sh);
  ASSERT_TRUE(waitFor([&] { return longFlow.out().find("echoing") != std::string::npos; }, 10s));

  std::vector<ServiceSpec> both{a, b};
  ASSERT_TRUE(engine_->setServices(both));  // add B
  auto r =
      runGoverned({toolBin("netcheck"), "slow-echo", "127.0.0.1:" + std::to_string(port), "100"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(engine_->setServices({&b, 1}));  // remove A; its open flow goes on
  r = runGoverned({toolBin("netcheck"), "slow-echo", "127.0.0.1:" + std::to_string(port), "100"});
  EXPECT_EQ(r.exitCode, 0) << r.err;

  EXPECT_EQ(longFlow.wait(15s), 0) << longFlow.err();
  auto hops = hopsByFlow(events());
  std::vector<std::vector<uint32_t>> seen;
  for (const auto& [flow, h] : hops) seen.push_back(h);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], (std::vector<uint32_t>{1}));     // the long flow, before B existed
  EXPECT_EQ(seen[1], (std::vector<uint32_t>{1, 2}));  // after adding B
  EXPECT_EQ(seen[2], (std::vector<uint32_t>{2}));     // after removing A
}

}  // namespace
}  // namespace sockgate::testing
