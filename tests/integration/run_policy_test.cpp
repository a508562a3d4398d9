// `sockgate run --policy`: a chain declared in a file, as a user writes it —
// two built-in services with their own tags and an external, records-unaware
// proxy that sockgate waits for — on real flows.
#include <gtest/gtest.h>

#include <fstream>

#include "support/http_server.h"
#include "support/subprocess.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = 0; (p = text.find(needle, p)) != std::string::npos; p += needle.size()) ++n;
  return n;
}

// A destination that answers netcheck blast, and an external proxy that
// learns each flow's destination with SO_ORIGINAL_DST and attaches no records.
class RunPolicyChain : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        waitFor([&] { return tcpPortListening(destPort) && tcpPortListening(proxyPort); }, 10s));
  }

  TempDir dir;
  const uint16_t destPort = freeTcpPort();
  BackgroundProcess dest{{toolBin("netcheck"), "serve-blast", std::to_string(destPort)}};
  const uint16_t proxyPort = freeTcpPort();
  BackgroundProcess proxy{{toolBin("netcheck"), "origdst-proxy", std::to_string(proxyPort)}};
};

TEST_F(RunPolicyChain, ChainOfBuiltinsAndAnExternalProxy) {
  const std::string policy = dir.path() + "/chain.toml";
  std::ofstream(policy) << "[[service]]\nname = \"second\"\npriority = 20\ntag = \"B\"\n\n"
                        << "[[service]]\nname = \"first\"\npriority = 10\ntag = \"A\"\n\n"
                        << "[[service]]\nname = \"proxy\"\nkind = \"external\"\npriority = 30\n"
                        << "listen = [\"127.0.0.1:" << proxyPort << "\"]\n";
  auto r =
      runProcess({sockgateBin(), "run", "--policy", policy, "--trace", "--", toolBin("netcheck"),
                  "blast", "127.0.0.1:" + std::to_string(destPort), "2", "100000"},
                 120s);
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 connections, 0 failed"), std::string::npos) << r.out;
  // every flow: first, then second, then the external proxy, then the destination
  EXPECT_EQ(count(r.err, "redirect to first"), 2u) << r.err;
  EXPECT_EQ(count(r.err, "redirect to second"), 2u) << r.err;
  EXPECT_EQ(count(r.err, "redirect to proxy"), 2u) << r.err;
  EXPECT_EQ(count(r.err, "end of the chain"), 2u) << r.err;
  EXPECT_NE(r.err.find("2 redirected, 0 direct"), std::string::npos) << r.err;
  // the built-in services' rows name the application and the real destination
  EXPECT_EQ(count(r.err, "127.0.0.1:" + std::to_string(destPort) + "  first"), 2u) << r.err;
  EXPECT_EQ(count(r.err, "127.0.0.1:" + std::to_string(destPort) + "  second"), 2u) << r.err;
  EXPECT_EQ(count(proxy.out(), "-> 127.0.0.1:" + std::to_string(destPort)), 2u) << proxy.out();
}

// attaches_records reaches the kernel: an unaware proxy (it attaches no
// records) declared as one that does leaves nothing for its onward
// connection to inherit, so the service after it never sees the flow; with
// the default, the chain goes on to it. (The misdeclaration docs/policy.md
// warns about, used here because it is what makes the key observable.)
TEST_F(RunPolicyChain, AttachesRecordsDecidesWhetherTheKernelInfersThem) {
  for (bool attaches : {false, true}) {
    const std::string policy = dir.path() + "/p.toml";
    std::ofstream(policy) << "[[service]]\nname = \"proxy\"\nkind = \"external\"\npriority = 10\n"
                          << "attaches_records = " << (attaches ? "true" : "false") << "\n"
                          << "listen = [\"127.0.0.1:" << proxyPort << "\"]\n\n"
                          << "[[service]]\nname = \"after\"\npriority = 20\n";
    auto r =
        runProcess({sockgateBin(), "run", "--policy", policy, "--trace", "--", toolBin("netcheck"),
                    "blast", "127.0.0.1:" + std::to_string(destPort), "1", "1000"},
                   120s);
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_EQ(count(r.err, "redirect to proxy"), 1u) << r.err;
    EXPECT_EQ(count(r.err, "redirect to after"), attaches ? 0u : 1u)
        << "attaches_records = " << attaches << "\n"
        << r.err;
  }
}

// The chain: two built-in instances with different tags, then the
// example third-party service (C, libsockgate.so only), on a real curl to a
// real nginx: each sees the flow once, in order, with the origin process.
TEST(RunPolicy, TwoBuiltinsAndTheExampleServiceOnCurl) {
  TempDir dir;
  HttpServer http;
  std::string body(200 * 1024, 'q');
  http.writeFile("file.bin", body);
  const uint16_t loggerPort = freeTcpPort();
  BackgroundProcess logger({SG_HTTP_LOGGER_BIN, std::to_string(loggerPort)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(loggerPort); }, 10s)) << logger.err();

  const std::string policy = dir.path() + "/chain.toml";
  std::ofstream(policy)
      << "[[service]]\nname = \"inspect-a\"\npriority = 10\ntag = \"vendor-a\"\n\n"
      << "[[service]]\nname = \"inspect-b\"\npriority = 20\ntag = \"vendor-b\"\n\n"
      << "[[service]]\nname = \"http-logger\"\nkind = \"external\"\npriority = 30\n"
      << "tag = \"logger\"\nattaches_records = true\nlisten = [\"127.0.0.1:" << loggerPort
      << "\"]\n";
  auto r = runProcess(
      {sockgateBin(), "run", "--policy", policy, "--trace", "--", "curl", "-sS", "-o",
       dir.path() + "/got", "http://127.0.0.1:" + std::to_string(http.port()) + "/file.bin"},
      120s);
  ASSERT_EQ(r.exitCode, 0) << r.err << logger.out() << logger.err();
  EXPECT_EQ(readFile(dir.path() + "/got"), body);
  // in priority order, each once
  auto a = r.err.find("redirect to inspect-a");
  auto b = r.err.find("redirect to inspect-b");
  auto l = r.err.find("redirect to http-logger");
  ASSERT_NE(a, std::string::npos) << r.err;
  ASSERT_NE(b, std::string::npos) << r.err;
  ASSERT_NE(l, std::string::npos) << r.err;
  EXPECT_LT(a, b);
  EXPECT_LT(b, l);
  EXPECT_EQ(count(r.err, "redirect to inspect-a"), 1u);
  EXPECT_EQ(count(r.err, "redirect to inspect-b"), 1u);
  EXPECT_EQ(count(r.err, "redirect to http-logger"), 1u);
  // the example attached the records itself: no inference needed
  EXPECT_EQ(r.err.find("records inferred"), std::string::npos) << r.err;
  // both built-ins name curl and the real destination in the table
  EXPECT_EQ(count(r.err, "/usr/bin/curl"), 2u) << r.err;
  // the example saw curl (not a built-in service) and its own tag, and the request line
  std::string log = logger.out();
  EXPECT_NE(log.find("(curl)"), std::string::npos) << log;
  EXPECT_NE(log.find("tag \"logger\""), std::string::npos) << log;
  EXPECT_NE(log.find("GET /file.bin HTTP/1.1"), std::string::npos) << log;
  EXPECT_NE(log.find("-> 127.0.0.1:" + std::to_string(http.port())), std::string::npos) << log;
}

// Connects no filter wants go direct and are counted in the kernel; only
// --trace turns each into an event (without it nobody reads them, and each
// would cost the application's connect() a ring-buffer record).
TEST(RunPolicy, ConnectsNoServiceWantsAreCountedWithAndWithoutTrace) {
  TempDir dir;
  HttpServer http;
  const std::string policy = dir.path() + "/narrow.toml";
  std::ofstream(policy) << "[[service]]\nname = \"narrow\"\n[service.filter]\nports = [1]\n";
  const std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/";
  const std::string curls = "curl -sS " + url + " && curl -sS " + url + " && curl -sS " + url;
  for (bool trace : {false, true}) {
    std::vector<std::string> argv{sockgateBin(), "run", "--policy", policy};
    if (trace) argv.push_back("--trace");
    argv.insert(argv.end(), {"--", "sh", "-c", curls});
    auto r = runProcess(argv, 60s);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(count(r.out, "hello from nginx"), 3u) << r.out;
    EXPECT_NE(r.err.find("0 redirected, 3 direct"), std::string::npos) << r.err;
    EXPECT_EQ(count(r.err, ": direct\n"), trace ? 3u : 0u) << r.err;
  }
}

TEST(RunPolicy, ABrokenPolicyStopsBeforeAnythingIsAttached) {
  TempDir dir;
  const std::string policy = dir.path() + "/broken.toml";
  std::ofstream(policy) << "[[service]]\nname = \"a\"\nfail = \"sometimes\"\n";
  auto r = runProcess({sockgateBin(), "run", "--policy", policy, "--", "true"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find(policy + ":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fail"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sockgate::testing
