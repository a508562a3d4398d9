// The C++ SDK for redirect services, end to end: this test process is a
// registered service that accepts a real redirected flow, connects onward
// with the records attached, and forwards it; every byte is checked.
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "engine/cgroup.h"
#include "engine/preflight.h"
#include "engine/redirect_engine.h"
#include "sockgate/service.h"
#include "support/http_server.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

TEST(ServiceSdk, AcceptConnectOnwardAndForward) {
  const std::string mount = *findCgroup2Mount();
  auto cg = Cgroup::create(mount + "/sg-sdk-test-" + std::to_string(::getpid()));
  ASSERT_TRUE(cg) << cg.error().message();
  struct Remove {
    Cgroup& cg;
    ~Remove() {
      (void)cg.signalAll(SIGKILL);
      (void)cg.remove();
    }
  } remove{*cg};
  auto engine = RedirectEngine::start({cg->path(), mount});
  ASSERT_TRUE(engine) << engine.error().message();

  auto listener = ServiceListener::listen(Endpoint::loopback(AF_INET, 0), 9);
  ASSERT_TRUE(listener) << listener.error().message();
  ServiceSpec spec;
  spec.id = 9;
  spec.name = "sdk";
  spec.listen4 = listener->endpoint();
  spec.tgid = static_cast<uint32_t>(::getpid());
  spec.tag = {'s', 'd', 'k'};
  ASSERT_TRUE((*engine)->setServices({&spec, 1}));

  const uint16_t port = freeTcpPort();
  BackgroundProcess dest({toolBin("netcheck"), "serve-blast", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));

  std::optional<InboundFlow> seen;
  std::optional<Result<ForwardResult>> forwarded;
  std::thread service([&] {
    auto flow = listener->accept();
    ASSERT_TRUE(flow) << flow.error().message();
    seen.emplace();
    seen->context = flow->context;
    seen->state = flow->state;
    auto upstream = connectOnward(*flow);
    ASSERT_TRUE(upstream) << upstream.error().message();
    forwarded = forward(std::move(flow->client), std::move(*upstream));
  });
  auto r = runProcess({"sh", "-c", "echo 0 > '" + cg->path() + "/cgroup.procs' && exec \"$@\"",
                       "sh", toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "1",
                       std::to_string(4 << 20)});
  service.join();
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->context.originalDestination.toString(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(seen->context.originComm, "netcheck");
  EXPECT_EQ(seen->context.tag, (std::vector<uint8_t>{'s', 'd', 'k'}));
  EXPECT_EQ(seen->state, RedirectState::RedirectedBySelf);
  ASSERT_TRUE(forwarded && *forwarded);
  EXPECT_EQ((**forwarded).bytesUp, (4u << 20) + 16u);
  EXPECT_EQ((**forwarded).bytesDown, 4u << 20);
  EXPECT_EQ((**forwarded).ending, "closed");
}

}  // namespace
}  // namespace sockgate::testing
