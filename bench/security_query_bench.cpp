// Cost of the security query: a loopback TCP peer (sock_diag + /proc owner
// lookup, warm and cold cache) and the IPsec lookup with 1,000 unrelated XFRM
// policies installed. As root it runs in a private network namespace of its
// own (unshare(CLONE_NEWNET)), so the policies never touch the host.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "security/process_info.h"
#include "security/xfrm.h"
#include "sockgate/security.h"
#include "sockgate/winsock.h"

namespace {

struct Setup {
  int accepted = -1;
  pid_t child = -1;
  bool privateNetns = false;
  bool policies = false;
};

Setup& setup() {
  static Setup s;
  return s;
}

void installPolicies(uint16_t serverPort) {
  const std::string path = "/tmp/sockgate-bench-xfrm-" + std::to_string(getpid());
  {
    std::ofstream batch(path);
    for (int i = 0; i < 1000; ++i) {
      const int port = 20000 + i == serverPort ? 19999 : 20000 + i;
      batch << "xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto tcp dport " << port
            << " dir out tmpl proto esp mode transport\n";
    }
    // One policy that covers the benchmark's flow, so the lookup also walks
    // the SA dump (empty here: this kernel has no ESP).
    batch << "xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto tcp sport " << serverPort
          << " dir out tmpl proto esp mode transport\n";
  }
  setup().policies = std::system(("ip -batch " + path).c_str()) == 0;
  std::remove(path.c_str());
}

void prepare() {
  Setup& s = setup();
  if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
    s.privateNetns = std::system("ip link set lo up") == 0;
  }
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  listen(listener, 1);
  socklen_t len = sizeof(a);
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  s.child = fork();
  if (s.child == 0) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) _exit(1);
    execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    _exit(127);
  }
  s.accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  if (s.privateNetns) installPolicies(ntohs(a.sin_port));
}

void BM_LoopbackTcpPeerWarmCache(benchmark::State& state) {
  sockgate::QueryOptions options;
  options.wantIpsec = false;
  for (auto _ : state) {
    auto r = sockgate::querySocketSecurity(setup().accepted, options);
    if (!r || !r->peer || r->peer->pid != setup().child) state.SkipWithError("peer not found");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_LoopbackTcpPeerWarmCache);

void BM_LoopbackTcpPeerColdCache(benchmark::State& state) {
  sockgate::QueryOptions options;
  options.wantIpsec = false;
  for (auto _ : state) {
    sockgate::security::clearSocketOwnerCache();
    auto r = sockgate::querySocketSecurity(setup().accepted, options);
    if (!r || !r->peer) state.SkipWithError("peer not found");
    benchmark::DoNotOptimize(r);
  }
  const auto stats = sockgate::security::ownerLookupStats();
  if (stats.scans > 0) {
    state.counters["procs_per_scan"] =
        static_cast<double>(stats.processesScanned) / static_cast<double>(stats.scans);
    state.counters["fds_per_scan"] =
        static_cast<double>(stats.fdsRead) / static_cast<double>(stats.scans);
  }
}
BENCHMARK(BM_LoopbackTcpPeerColdCache);

void BM_IpsecLookup1000Policies(benchmark::State& state) {
  if (!setup().policies) {
    state.SkipWithError("needs root (private netns with 1,000 XFRM policies)");
    return;
  }
  sockgate::QueryOptions options;
  options.wantPeerProcess = false;
  for (auto _ : state) {
    auto r = sockgate::querySocketSecurity(setup().accepted, options);
    if (!r || !r->ipsec || r->ipsec->policiesSeen < 1001 || !r->ipsec->outbound.requiresIpsec) {
      state.SkipWithError("policy not matched");
    }
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_IpsecLookup1000Policies);

void BM_FullQueryWithPeerAndIpsec(benchmark::State& state) {
  for (auto _ : state) {
    auto r = sockgate::querySocketSecurity(setup().accepted);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_FullQueryWithPeerAndIpsec);

void BM_WsaQuerySocketSecurityDefault(benchmark::State& state) {
  for (auto _ : state) {
    SOCKET_SECURITY_QUERY_INFO info{};
    ULONG len = sizeof(info);
    benchmark::DoNotOptimize(
        WSAQuerySocketSecurity(setup().accepted, nullptr, 0, &info, &len, nullptr, nullptr));
  }
}
BENCHMARK(BM_WsaQuerySocketSecurityDefault);

}  // namespace

int main(int argc, char** argv) {
  prepare();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (setup().child > 0) {
    kill(setup().child, SIGKILL);
    waitpid(setup().child, nullptr, 0);
  }
  return 0;
}
