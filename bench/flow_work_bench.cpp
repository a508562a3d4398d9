// Micro-benchmarks of the user-space work the built-in service does once per
// flow: read the redirect context, resolve the origin's executable, fill the
// flow record and, at exit, format its table row; and the policy work that
// happens in user space.
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "cli/conn_table.h"
#include "common/executable_cache.h"
#include "common/process.h"
#include "engine/redirect_engine.h"
#include "engine/socket_policy.h"
#include "proxy/flow_log.h"
#include "redirect/policy.h"
#include "sockgate/redirect.h"

namespace {

using namespace sockgate;

RedirectContext sampleContext(size_t tagBytes) {
  RedirectContext c;
  c.originalDestination = *Endpoint::parse("93.184.216.34:443");
  c.originTgid = 4242;
  c.originTid = 4243;
  c.originUid = 1000;
  c.originGid = 1000;
  c.originCgroupId = 12345;
  c.flowId = 0x1122334455667788ull;
  c.redirectTimeNs = 987654321;
  c.originComm = "curl";
  c.serviceId = 1;
  c.tag.assign(tagBytes, 0xab);
  return c;
}

// The context as the kernel hands it over: no tag for the built-in service,
// and the largest tag a service can set.
void BM_ParseRedirectContext(benchmark::State& state) {
  const auto blob = encodeRedirectContext(sampleContext(static_cast<size_t>(state.range(0))));
  for (auto _ : state) {
    auto parsed = parseRedirectContext(blob);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * blob.size()));
}
BENCHMARK(BM_ParseRedirectContext)->Arg(0)->Arg(SG_TAG_MAX);

void BM_ParseRedirectRecords(benchmark::State& state) {
  RedirectRecords r;
  r.flowId = 0x1122334455667788ull;
  r.chain = {1, 7, 9};
  r.originTgid = 4242;
  r.originComm = "curl";
  const auto blob = encodeRedirectRecords(r);
  for (auto _ : state) {
    auto parsed = parseRedirectRecords(blob);
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_ParseRedirectRecords);

// The redirect filters are matched in the kernel, at connect() time (that
// cost is the "hook, matching" connect figure of make bench). What user space
// pays per policy is reading the file and converting each service to its
// kernel table entry: a 16-service policy with every filter key set.
std::string sixteenServicePolicy() {
  std::string text;
  for (int i = 0; i < 16; ++i) {
    text += "[[service]]\nname = \"svc" + std::to_string(i) + "\"\nkind = \"external\"\n";
    text += "listen = [\"127.0.0.1:" + std::to_string(15000 + i) +
            "\", \"[::1]:" + std::to_string(15000 + i) + "\"]\npriority = " + std::to_string(i) +
            "\n";
    text += "tag = \"" + std::string(64, 't') + "\"\n[service.filter]\n";
    text += "destinations = [\"10.0.0.0/8\", \"192.168.0.0/16\", \"2001:db8::/32\"]\n";
    text += "ports = [80, 443, \"8000-8999\"]\nuids = [0, \"1000-1999\"]\ngids = [\"100-200\"]\n";
    text += "comm = \"curl\"\n";
  }
  return text;
}

void BM_PolicyLoadAndConvert(benchmark::State& state) {
  const std::string text = sixteenServicePolicy();
  for (auto _ : state) {
    auto policy = parsePolicy(text, "bench.toml");
    if (!policy) state.SkipWithError(policy.error().message().c_str());
    for (const auto& svc : policy->services) {
      ServiceSpec spec;
      spec.id = 1;
      spec.name = svc.name;
      spec.listen4 = svc.listen4;
      spec.listen6 = svc.listen6;
      spec.filter = svc.filter;
      spec.tag = svc.tag;
      auto k = toKernelService(spec);
      benchmark::DoNotOptimize(k);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 16);
}
BENCHMARK(BM_PolicyLoadAndConvert);

// The socket-creation policy is matched in user space for every socket() the
// seccomp half of the guard traps: a miss walks every rule.
void BM_SocketPolicyMatch(benchmark::State& state) {
  auto policy = parseSocketPolicy(
      "audit raw,packet,netlink/raw; deny packet,inet/raw/icmp,inet6/raw,bluetooth,vsock/*/*");
  if (!policy) {
    state.SkipWithError(policy.error().message().c_str());
    return;
  }
  const bool hit = state.range(0) != 0;
  for (auto _ : state) {
    auto m = hit ? policy->match(AF_PACKET, SOCK_RAW, 0) : policy->match(AF_INET, SOCK_STREAM, 0);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_SocketPolicyMatch)->Arg(0)->Arg(1);

// readlink(/proc/PID/exe): what naming a flow's executable costs uncached,
// once per process since the service caches it.
void BM_ExecutableOf(benchmark::State& state) {
  const pid_t self = ::getpid();
  for (auto _ : state) {
    auto exe = executableOf(self);
    benchmark::DoNotOptimize(exe);
  }
}
BENCHMARK(BM_ExecutableOf);

// The per-flow cost once a process is known: what the service pays.
void BM_ExecutableCacheHit(benchmark::State& state) {
  const pid_t self = ::getpid();
  ExecutableCache cache;
  cache.lookup(self, "flow_work_bench");
  for (auto _ : state) {
    auto exe = cache.lookup(self, "flow_work_bench");
    benchmark::DoNotOptimize(exe);
  }
}
BENCHMARK(BM_ExecutableCacheHit);

proxy::FlowRecord recordFrom(const RedirectContext& c) {
  proxy::FlowRecord r;
  r.start = std::chrono::steady_clock::now();
  r.flowId = c.flowId;
  r.originTgid = c.originTgid;
  r.originUid = c.originUid;
  r.originComm = c.originComm;
  r.executable = "/usr/bin/curl";
  r.originalDestination = c.originalDestination;
  r.service = "builtin";
  r.bytesUp = 79;
  r.bytesDown = 16 << 20;
  r.end = r.start + std::chrono::milliseconds(12);
  r.ending = "closed";
  return r;
}

// What EventLoop::startFlow + finishFlow do with the record: fill it from the
// context, append it to the shared log.
void BM_BuildFlowRecordAndAppend(benchmark::State& state) {
  const auto context = sampleContext(0);
  proxy::FlowLog log;
  for (auto _ : state) {
    log.append(recordFrom(context));
  }
}
BENCHMARK(BM_BuildFlowRecordAndAppend);

// One row of the exit table, per flow: the table of N flows costs N rows.
void BM_FormatConnectionTable(benchmark::State& state) {
  const auto context = sampleContext(0);
  std::vector<proxy::FlowRecord> flows(static_cast<size_t>(state.range(0)), recordFrom(context));
  for (auto _ : state) {
    auto text = cli::formatConnectionTable(flows);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_FormatConnectionTable)->Arg(1)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
