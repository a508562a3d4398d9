// Micro-benchmarks of the user-space work the built-in service does once per
// flow: read the redirect context, resolve the origin's executable, fill the
// flow record and, at exit, format its table row; plus the service-spec
// conversion that stands in for a policy match (filters are matched in the
// kernel; user space only converts them).
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "cli/conn_table.h"
#include "common/process.h"
#include "engine/redirect_engine.h"
#include "proxy/flow_log.h"
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
  RedirectRecords r{0x1122334455667788ull, {1, 7, 9}};
  const auto blob = encodeRedirectRecords(r);
  for (auto _ : state) {
    auto parsed = parseRedirectRecords(blob);
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_ParseRedirectRecords);

// A service spec with every filter constraint set, converted to the kernel's
// table entry (what setServices does per service).
void BM_ToKernelService(benchmark::State& state) {
  ServiceSpec spec;
  spec.id = 3;
  spec.name = "inspector";
  spec.listen4 = Endpoint::loopback(AF_INET, 15001);
  spec.listen6 = Endpoint::loopback(AF_INET6, 15001);
  spec.filter.match = SG_MATCH_PORT | SG_MATCH_UID | SG_MATCH_PREFIX | SG_MATCH_COMM;
  spec.filter.port_lo = 80;
  spec.filter.port_hi = 443;
  spec.filter.uid_hi = 65535;
  spec.filter.prefix_count = 2;
  spec.filter.prefixes[0].family = AF_INET;
  spec.filter.prefixes[0].len = 8;
  spec.filter.prefixes[1].family = AF_INET6;
  spec.filter.prefixes[1].len = 64;
  std::strcpy(spec.filter.comm, "curl");
  spec.tag.assign(static_cast<size_t>(state.range(0)), 0xcd);
  for (auto _ : state) {
    auto s = toKernelService(spec);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ToKernelService)->Arg(0)->Arg(SG_TAG_MAX);

// readlink(/proc/PID/exe): the one syscall of per-flow bookkeeping.
void BM_ExecutableOf(benchmark::State& state) {
  const pid_t self = ::getpid();
  for (auto _ : state) {
    auto exe = executableOf(self);
    benchmark::DoNotOptimize(exe);
  }
}
BENCHMARK(BM_ExecutableOf);

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
