// `sockgate run` end to end, as a user runs it: real curl, nginx and
// network clients, real kernel hooks, in the test's own network namespace.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "engine/preflight.h"
#include "support/http_server.h"
#include "support/subprocess.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

std::string cgroupMount() { return *findCgroup2Mount(); }

// What other sockgate runs on this machine hold (a run in another container
// sharing the kernel, or one a crashed job left for the next run to sweep)
// is not this test's: the checks below count only what appeared since the
// test began.
std::set<std::string> allRunCgroups() {
  std::set<std::string> out;
  DIR* d = ::opendir(cgroupMount().c_str());
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    std::string name = e->d_name;
    if (name.rfind("sockgate-run-", 0) == 0) out.insert(name);
  }
  if (d) ::closedir(d);
  return out;
}

// IDs of our connect4 programs loaded anywhere in the kernel (attached or pinned).
std::set<std::string> allSockgatePrograms() {
  auto r = runProcess({"bpftool", "prog", "show"});
  std::set<std::string> ids;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("name sg_connect4") == std::string::npos) continue;
    ids.insert(line.substr(0, line.find(':')));
  }
  return ids;
}

std::set<std::string> baselineCgroups, baselinePrograms;
bool baselineRegistry = false;

bool registryPinned() { return ::access("/sys/fs/bpf/sockgate/service_registry", F_OK) == 0; }

std::vector<std::string> runCgroups() {
  std::vector<std::string> out;
  for (const auto& name : allRunCgroups())
    if (!baselineCgroups.contains(name)) out.push_back(name);
  return out;
}

int loadedSockgatePrograms() {
  int n = 0;
  for (const auto& id : allSockgatePrograms()) n += !baselinePrograms.contains(id);
  return n;
}

std::vector<std::string> run(const std::vector<std::string>& cmd) {
  std::vector<std::string> argv{sockgateBin(), "run", "--"};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  return argv;
}

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "integration tests run as root";
    baselineCgroups = allRunCgroups();
    baselinePrograms = allSockgatePrograms();
    baselineRegistry = registryPinned();
  }
  void TearDown() override {
    EXPECT_TRUE(runCgroups().empty()) << "sockgate run left its cgroup behind";
    EXPECT_EQ(loadedSockgatePrograms(), 0) << "sockgate run left BPF programs loaded";
    if (!baselineRegistry) {
      EXPECT_FALSE(registryPinned())
          << "the last sockgate run out left the service registry pinned";
    }
  }
};

TEST_F(RunTest, CurlFetchesThroughTheServiceOverIPv4) {
  HttpServer http;
  std::string body(300 * 1024, 'x');
  std::mt19937 rng(7);
  for (auto& c : body) c = static_cast<char>('a' + rng() % 26);
  http.writeFile("big.txt", body);
  TempDir out;
  auto r = runProcess(run({"curl", "-sS", "-o", out.path() + "/got",
                           "http://127.0.0.1:" + std::to_string(http.port()) + "/big.txt"}));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(readFile(out.path() + "/got"), body);
  // The table names the real process, its executable, and the destination it asked for.
  EXPECT_NE(r.err.find("/usr/bin/curl"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(http.port())), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 redirected"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("300."), std::string::npos) << "300 KiB body plus headers: " << r.err;
  EXPECT_NE(r.err.find("closed"), std::string::npos) << r.err;
}

TEST_F(RunTest, CurlFetchesThroughTheServiceOverIPv6) {
  HttpServer http;
  auto r = runProcess(run({"curl", "-sS", "http://[::1]:" + std::to_string(http.port()) + "/"}));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "hello from nginx\n");
  EXPECT_NE(r.err.find("[::1]:" + std::to_string(http.port())), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 redirected"), std::string::npos) << r.err;
}

// The application cannot tell it was redirected: getpeername() returns what
// it connected to, while the server sees the service's connection.
TEST_F(RunTest, GetpeernameShowsTheOriginalDestination) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess server({toolBin("netcheck"), "serve-peer", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  for (const std::string& target :
       {"127.0.0.1:" + std::to_string(port), "[::1]:" + std::to_string(port)}) {
    auto r = runProcess(run({toolBin("netcheck"), "peer", target}));
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("getpeername=" + target + "\n"), std::string::npos) << r.out;
    // redirected: the server's peer is not the application's socket
    auto local = r.out.substr(r.out.find("local=") + 6);
    local = local.substr(0, local.find('\n'));
    auto saw = r.out.substr(r.out.find("server-saw=") + 11);
    saw = saw.substr(0, saw.find('\n'));
    EXPECT_NE(local, saw) << r.out;
  }
  // A dual-stack socket to a v4-mapped address stays v4-mapped.
  auto r = runProcess(
      run({toolBin("netcheck"), "peer", "127.0.0.1:" + std::to_string(port), "--mapped"}));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("getpeername=[::ffff:127.0.0.1]:" + std::to_string(port) + "\n"),
            std::string::npos)
      << r.out;
}

TEST_F(RunTest, HundredConcurrentSixteenMebibyteFlowsArriveByteExactBothWays) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess server({toolBin("netcheck"), "serve-blast", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  auto r = runProcess(run({toolBin("netcheck"), "blast", "127.0.0.1:" + std::to_string(port), "100",
                           std::to_string(16 << 20)}),
                      240s);
  ASSERT_FALSE(r.timedOut);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err.substr(0, 4000);
  EXPECT_NE(r.out.find("100 connections, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("100 redirected"), std::string::npos) << r.err.substr(0, 2000);
  // 16 MiB + the 16-byte header up, exactly 16 MiB down, on every row
  size_t rows = 0;
  for (size_t pos = 0; (pos = r.err.find("16.0 MiB  16.0 MiB", pos)) != std::string::npos; ++pos)
    ++rows;
  EXPECT_EQ(rows, 100u) << r.err.substr(0, 3000);
}

TEST_F(RunTest, RefusedDestinationResetsTheClientPromptly) {
  const uint16_t closedPort = freeTcpPort();
  auto r = runProcess(run(
      {"curl", "-sS", "--max-time", "20", "http://127.0.0.1:" + std::to_string(closedPort) + "/"}));
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.exitCode, 28) << "curl timed out instead of seeing the refusal";
  EXPECT_LT(r.elapsed, 5s);
  EXPECT_NE(r.err.find("refused (ECONNREFUSED)"), std::string::npos) << r.err;
}

TEST_F(RunTest, CommandWithoutConnectionsBehavesAsWithoutSockgate) {
  auto plain = runProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  auto wrapped = runProcess(run({"sh", "-c", "echo out; echo err >&2; exit 3"}));
  EXPECT_EQ(wrapped.exitCode, plain.exitCode);
  EXPECT_EQ(wrapped.out, plain.out);
  EXPECT_EQ(wrapped.err.find("err\n"), 0u) << wrapped.err;
  EXPECT_NE(wrapped.err.find("0 redirected, 0 direct"), std::string::npos) << wrapped.err;
  auto missing = runProcess(run({"/nonexistent/command"}));
  EXPECT_EQ(missing.exitCode, 127);
}

// Two runs side by side (two terminals, two jobs): each one's hooks see the
// other's services attach records, and must not refuse them as forgeries.
TEST_F(RunTest, TwoRunsSideBySideDoNotRefuseEachOthersServices) {
  HttpServer http;
  BackgroundProcess first({sockgateBin(), "run", "--", "sleep", "30"});
  ASSERT_TRUE(waitFor([] { return !runCgroups().empty(); }, 10s));
  ASSERT_TRUE(waitFor([&] { return loadedSockgatePrograms() > 0; }, 10s));
  const std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/";
  auto second = runProcess(run({"sh", "-c", "curl -sS " + url + " && curl -sS " + url}));
  EXPECT_EQ(second.exitCode, 0) << second.err;
  EXPECT_EQ(second.out, "hello from nginx\nhello from nginx\n");
  EXPECT_NE(second.err.find("2 redirected"), std::string::npos) << second.err;
  EXPECT_EQ(second.err.find("EPERM"), std::string::npos) << second.err;
  EXPECT_TRUE(registryPinned()) << "the first run still holds the registry";
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(10s), 128 + SIGTERM) << first.err();
}

// A run started by a command of another run: its service's records would
// be refused by the outer run's hooks and every flow reset, so it refuses
// up front, saying why, and leaves nothing behind.
TEST_F(RunTest, ARunInsideAnotherRunRefusesToStart) {
  HttpServer http;
  const std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/";
  auto r = runProcess(run({sockgateBin(), "run", "--", "curl", "-sS", url}));
  EXPECT_EQ(r.exitCode, 2) << r.err;
  EXPECT_NE(r.err.find("run: already inside another sockgate run (cgroup sockgate-run-"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "") << "curl must not have run";
}

// With autogroup scheduling each session is a CPU group of its own: the
// services must not split CMD's (proxy/service_host.h).
TEST_F(RunTest, TheBuiltInServiceRunsInASessionOfItsOwnAndEndsWithTheRun) {
  HttpServer http;
  const std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/";
  // CMD names its sibling, the services' process, and both sessions
  // (the sixth field of /proc/PID/stat; neither comm has a space).
  const std::string script =
      "for c in $(cat /proc/$PPID/task/$PPID/children); do "
      "[ \"$(cat /proc/$c/comm)\" = sockgate-svc ] && echo svc $c $(cut -d' ' -f6 /proc/$c/stat); "
      "done; echo cmd $(cut -d' ' -f6 /proc/$$/stat); curl -sS -o /dev/null " +
      url;
  auto r = runProcess(run({"sh", "-c", script}));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.err.find("1 redirected"), std::string::npos) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::pair<pid_t, long>> services;
  long cmdSession = -1;
  for (std::string what; lines >> what;) {
    if (what == "svc") {
      pid_t pid = 0;
      long session = 0;
      lines >> pid >> session;
      services.emplace_back(pid, session);
    } else if (what == "cmd") {
      lines >> cmdSession;
    }
  }
  ASSERT_EQ(services.size(), 1u) << r.out;
  EXPECT_GE(cmdSession, 0) << r.out;  // 0 where CMD descends from init without a session (VM tier)
  EXPECT_NE(services[0].second, cmdSession) << r.out;
  EXPECT_EQ(services[0].second, services[0].first) << "the services' process leads its session";
  EXPECT_NE(::kill(services[0].first, 0), 0) << "the services' process outlived the run";
}

TEST_F(RunTest, ProcessOutsideTheCgroupIsNeverRedirected) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess server({toolBin("netcheck"), "serve-peer", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  BackgroundProcess governed({sockgateBin(), "run", "--", "sleep", "3"});
  ASSERT_TRUE(waitFor([] { return !runCgroups().empty(); }, 10s));
  ASSERT_TRUE(waitFor([&] { return loadedSockgatePrograms() > 0; }, 10s));
  auto r = runProcess({toolBin("netcheck"), "peer", "127.0.0.1:" + std::to_string(port)});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto local = r.out.substr(r.out.find("local=") + 6);
  local = local.substr(0, local.find('\n'));
  auto saw = r.out.substr(r.out.find("server-saw=") + 11);
  saw = saw.substr(0, saw.find('\n'));
  EXPECT_EQ(local, saw) << "an outside process was redirected: " << r.out;
  EXPECT_EQ(governed.wait(20s), 0);
  EXPECT_NE(governed.err().find("0 redirected, 0 direct"), std::string::npos) << governed.err();
}

// The socket guard as an administrator uses it: a sniffer's first step is
// refused and reported with the process that tried; TCP is untouched.
TEST_F(RunTest, SocketPolicyDeniesSniffersAndReportsThem) {
  auto tcpdump = runProcess({sockgateBin(), "run", "--socket-policy", "deny packet,raw", "--",
                             "tcpdump", "-i", "lo", "-c", "1"},
                            30s);
  EXPECT_NE(tcpdump.exitCode, 0) << tcpdump.err;
  EXPECT_NE(tcpdump.err.find("(tcpdump) uid 0: socket(AF_PACKET, SOCK_RAW"), std::string::npos)
      << tcpdump.err;
  EXPECT_NE(tcpdump.err.find("denied by 'deny packet,raw'"), std::string::npos);

  auto ping = runProcess({sockgateBin(), "run", "--socket-policy", "deny packet,raw", "--", "ping",
                          "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_NE(ping.exitCode, 0) << ping.err;
  EXPECT_NE(ping.err.find("(ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied"), std::string::npos)
      << ping.err;

  // without the policy the same command works; audit lets it through but reports it
  auto plain = runProcess({sockgateBin(), "run", "--", "ping", "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_EQ(plain.exitCode, 0) << plain.err;
  auto audited = runProcess({sockgateBin(), "run", "--socket-policy", "audit raw", "--", "ping",
                             "-c", "1", "-W", "1", "127.0.0.1"});
  EXPECT_EQ(audited.exitCode, 0) << audited.err;
  EXPECT_NE(audited.err.find("audited by 'audit raw'"), std::string::npos) << audited.err;

  HttpServer http;
  auto curl = runProcess({sockgateBin(), "run", "--socket-policy", "deny packet,raw", "--", "curl",
                          "-sS", "http://127.0.0.1:" + std::to_string(http.port()) + "/"});
  EXPECT_EQ(curl.exitCode, 0) << curl.err;
  EXPECT_EQ(curl.out, "hello from nginx\n");
  EXPECT_NE(curl.err.find("no socket() matched the policy"), std::string::npos) << curl.err;

  auto bad = runProcess({sockgateBin(), "run", "--socket-policy", "forbid packet", "--", "true"});
  EXPECT_EQ(bad.exitCode, 2);
  EXPECT_NE(bad.err.find("--socket-policy"), std::string::npos) << bad.err;
}

TEST_F(RunTest, CleansUpWhenTheCommandIsKilled) {
  auto r = runProcess(run({"sh", "-c", "kill -9 $$"}));
  EXPECT_EQ(r.exitCode, 128 + SIGKILL);
}

TEST_F(RunTest, SigtermIsPassedToTheCommandAndEverythingIsCleanedUp) {
  BackgroundProcess governed({sockgateBin(), "run", "--", "sleep", "60"});
  ASSERT_TRUE(waitFor([] { return !runCgroups().empty(); }, 10s));
  ASSERT_TRUE(waitFor([&] { return loadedSockgatePrograms() > 0; }, 10s));
  governed.signal(SIGTERM);
  EXPECT_EQ(governed.wait(10s), 128 + SIGTERM) << governed.err();
}

TEST_F(RunTest, NextRunCleansUpAfterSockgateItselfWasKilled) {
  // On any failure below, a later run must still sweep what this one left.
  struct Sweep {
    ~Sweep() {
      if (!runCgroups().empty()) runProcess({sockgateBin(), "run", "--", "true"});
    }
  } sweep;
  auto governed = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{sockgateBin(), "run", "--", "sleep", "60"});
  ASSERT_TRUE(waitFor([] { return !runCgroups().empty(); }, 10s));
  ASSERT_TRUE(waitFor([&] { return loadedSockgatePrograms() > 0; }, 10s));
  const std::string stale = runCgroups().front();
  std::vector<pid_t> survivors;
  ASSERT_TRUE(waitFor(
      [&] {
        std::ifstream procs(cgroupMount() + "/" + stale + "/cgroup.procs");
        for (pid_t p; procs >> p;) survivors.push_back(p);
        return !survivors.empty();
      },
      10s));
  pid_t services = 0;  // the built-in services' process, which must not outlive the run
  {
    std::ifstream children("/proc/" + std::to_string(governed->pid()) + "/task/" +
                           std::to_string(governed->pid()) + "/children");
    for (pid_t c; children >> c;)
      if (readFile("/proc/" + std::to_string(c) + "/comm") == "sockgate-svc\n") services = c;
  }
  EXPECT_GT(services, 0) << "no sockgate-svc child";
  governed->signal(SIGKILL);
  EXPECT_EQ(governed->wait(10s), 128 + SIGKILL);
  // Gone, or a zombie waiting for whoever inherited it to reap it.
  auto ended = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pidField, comm, state;
    return !(stat >> pidField >> comm >> state) || state == "Z";
  };
  EXPECT_TRUE(waitFor([&] { return services > 0 && ended(services); }, 10s))
      << "the services' process outlived sockgate";
  // The kernel detached every hook when the links' owner died...
  EXPECT_TRUE(waitFor([] { return loadedSockgatePrograms() == 0; }, 10s));
  // ...and the next run removes the cgroup, keeping the survivor alive.
  auto next = runProcess(run({"true"}));
  EXPECT_EQ(next.exitCode, 0) << next.err;
  EXPECT_NE(next.err.find("removed " + cgroupMount() + "/" + stale), std::string::npos) << next.err;
  for (pid_t p : survivors) {
    EXPECT_EQ(::kill(p, 0), 0) << "survivor " << p << " was killed";
    ::kill(p, SIGKILL);  // the test started it (through sockgate run)
  }
}

}  // namespace
}  // namespace sockgate::testing
