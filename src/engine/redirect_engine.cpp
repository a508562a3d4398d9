#include "engine/redirect_engine.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cstdarg>
#include <cstring>
#include <mutex>

#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "engine/service_registry.h"
#include "sg_redirect.skel.h"

namespace sockgate {

namespace {

// libbpf prints the verifier log through this hook; keep the tail so that a
// load failure can say why instead of printing pages to the terminal.
std::mutex gLogMutex;
std::string gLibbpfLog;

__attribute__((format(printf, 2, 0))) int captureLibbpfLog(libbpf_print_level level,
                                                           const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof line, fmt, args);
  std::lock_guard lock(gLogMutex);
  gLibbpfLog += line;
  if (gLibbpfLog.size() > 16384) gLibbpfLog.erase(0, gLibbpfLog.size() - 16384);
  return n;
}

std::string takeLibbpfLog() {
  std::lock_guard lock(gLogMutex);
  std::string tail = std::move(gLibbpfLog);
  gLibbpfLog.clear();
  // the last few lines carry the verifier's verdict
  size_t pos = tail.size();
  for (int lines = 0; lines < 6 && pos > 0; ++lines) {
    pos = tail.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return tail.substr(pos);
}

}  // namespace

Result<sg_service> toKernelService(const ServiceSpec& spec) {
  sg_service s{};
  if (spec.id == 0) return fail(EINVAL, "service '" + spec.name + "': id 0 is reserved");
  if (!spec.listen4 && !spec.listen6)
    return fail(EINVAL, "service '" + spec.name + "': needs an IPv4 or IPv6 listener");
  if (spec.tag.size() > SG_TAG_MAX)
    return fail(EMSGSIZE, "service '" + spec.name + "': tag of " + std::to_string(spec.tag.size()) +
                              " bytes exceeds " + std::to_string(SG_TAG_MAX));
  s.id = spec.id;
  s.flags = SG_SVC_ACTIVE | (spec.failClosed ? SG_SVC_FAIL_CLOSED : 0) |
            (spec.attachesRecords ? SG_SVC_ATTACHES_RECORDS : 0);
  if (spec.listen4) {
    if (spec.listen4->family() != AF_INET)
      return fail(EINVAL, "service '" + spec.name + "': listen4 is not IPv4");
    sg_endpoint ep = spec.listen4->toAbi();
    std::memcpy(&s.listen4_addr, ep.addr, 4);
    s.listen4_port = ep.port;
    s.flags |= SG_SVC_LISTEN4;
  }
  if (spec.listen6) {
    if (spec.listen6->family() != AF_INET6)
      return fail(EINVAL, "service '" + spec.name + "': listen6 is not IPv6");
    sg_endpoint ep = spec.listen6->toAbi();
    std::memcpy(s.listen6_addr, ep.addr, 16);
    s.listen6_port = ep.port;
    s.flags |= SG_SVC_LISTEN6;
  }
  s.cgroup_id = spec.cgroupId;
  s.tgid = spec.tgid;
  s.filter = spec.filter;
  s.tag_len = static_cast<uint32_t>(spec.tag.size());
  if (!spec.tag.empty()) std::memcpy(s.tag, spec.tag.data(), spec.tag.size());
  return s;
}

Result<std::unique_ptr<RedirectEngine>> RedirectEngine::start(const Options& options) {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(captureLibbpfLog); });

  std::unique_ptr<RedirectEngine> engine(new RedirectEngine());
  auto registryLock = ServiceRegistry::lock();
  if (!registryLock) return std::unexpected(registryLock.error());
  engine->skel_ = sg_redirect__open();
  if (!engine->skel_) return failErrno("open the redirect BPF object");
  if (auto st = ServiceRegistry::prepare(engine->skel_->maps.sg_registry); !st)
    return std::unexpected(st.error());
  engine->skel_->rodata->sg_emit_events = options.events ? 1 : 0;
  if (int err = sg_redirect__load(engine->skel_); err != 0) {
    // Kernels before 6.4 keep the start of a verifier log that overflows,
    // so the verdict line is lost; say what E2BIG means here.
    const std::string why =
        err == -E2BIG ? "this kernel's verifier gave up (E2BIG: more work than its instruction "
                        "budget); please report it with `uname -r`; "
                      : "";
    return fail(-err, "load the redirect BPF programs: " + why + takeLibbpfLog());
  }
  auto registry = ServiceRegistry::open(engine->skel_->maps.sg_registry);
  if (!registry) return std::unexpected(registry.error());
  engine->registry_.emplace(std::move(*registry));
  registryLock->reset();

  UniqueFd scope(::open(options.scopeCgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!scope) return failErrno("open cgroup " + options.scopeCgroup);

  sg_config config{};
  if (!options.governedCgroup.empty()) {
    auto id = cgroupIdOf(options.governedCgroup);
    if (!id) return std::unexpected(id.error());
    auto level = cgroupLevelOf(options.governedCgroup);
    if (!level) return std::unexpected(level.error());
    config.governed_cgroup_id = *id;
    config.governed_level = *level;
  }
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(engine->skel_->maps.sg_config), &zero, &config, BPF_ANY) != 0)
    return failErrno("initialise sg_config");

  // Not a cgroup program: the kernel's tracepoint on TCP state changes.
  bpf_link* established = bpf_program__attach(engine->skel_->progs.sg_established);
  if (!established) return failErrno("attach to the tracepoint sock/inet_sock_set_state");
  engine->links_.push_back(established);

  struct Attachment {
    bpf_program* prog;
    const char* name;
  };
  const Attachment attachments[] = {
      {engine->skel_->progs.sg_getsockopt, "getsockopt"},
      {engine->skel_->progs.sg_setsockopt, "setsockopt"},
      {engine->skel_->progs.sg_getpeername4, "getpeername4"},
      {engine->skel_->progs.sg_getpeername6, "getpeername6"},
      // connect hooks last: by the time a flow can be redirected, every hook
      // that completes it is in place.
      {engine->skel_->progs.sg_connect4, "connect4"},
      {engine->skel_->progs.sg_connect6, "connect6"},
  };
  for (const auto& a : attachments) {
    bpf_link* link = bpf_program__attach_cgroup(a.prog, scope.get());
    if (!link) {
      int err = errno;
      return fail(err, std::string(a.name) + " attach to " + options.scopeCgroup);
    }
    engine->links_.push_back(link);
  }

  engine->ring_ = ring_buffer__new(bpf_map__fd(engine->skel_->maps.sg_events),
                                   &RedirectEngine::onEvent, engine.get(), nullptr);
  if (!engine->ring_) return failErrno("open the decision event ring buffer");
  return engine;
}

RedirectEngine::~RedirectEngine() {
  if (ring_) ring_buffer__free(ring_);
  // Links first: detaching the connect hooks before anything else means no
  // new flow is redirected into a half-torn-down path.
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) bpf_link__destroy(*it);
  registry_.reset();  // uses the skeleton's map
  if (skel_) sg_redirect__destroy(skel_);
}

Status RedirectEngine::setServices(std::span<const ServiceSpec> services) {
  if (services.size() > SG_MAX_SERVICES)
    return fail(E2BIG, std::to_string(services.size()) + " services exceed the limit of " +
                           std::to_string(SG_MAX_SERVICES));
  std::vector<sg_service> table;
  for (const auto& spec : services) {
    auto s = toKernelService(spec);
    if (!s) return std::unexpected(s.error());
    table.push_back(*s);
  }
  // Other sockgate instances' hooks must know these are services first.
  if (auto st = registry_->replace(services); !st) return st;
  const int servicesFd = bpf_map__fd(skel_->maps.sg_services);
  const int configFd = bpf_map__fd(skel_->maps.sg_config);
  uint32_t zero = 0;
  sg_config config{};
  if (bpf_map_lookup_elem(configFd, &zero, &config) != 0) return failErrno("read sg_config");
  // Fill the table the hook is not reading, then flip to it in one store.
  const uint32_t next = (config.active_table & 1) ^ 1;
  for (uint32_t i = 0; i < table.size(); ++i) {
    uint32_t key = next * SG_MAX_SERVICES + i;
    if (bpf_map_update_elem(servicesFd, &key, &table[i], BPF_ANY) != 0)
      return failErrno("update sg_services[" + std::to_string(key) + "]");
  }
  config.service_count[next] = static_cast<uint32_t>(table.size());
  if (bpf_map_update_elem(configFd, &zero, &config, BPF_ANY) != 0)
    return failErrno("update sg_config");
  config.active_table = next;
  if (bpf_map_update_elem(configFd, &zero, &config, BPF_ANY) != 0)
    return failErrno("update sg_config");
  return {};
}

int RedirectEngine::eventsFd() const { return ring_buffer__epoll_fd(ring_); }

int RedirectEngine::onEvent(void* self, void* data, size_t size) {
  auto* engine = static_cast<RedirectEngine*>(self);
  if (size < sizeof(sg_event) || !engine->sink_) return 0;
  sg_event event;
  std::memcpy(&event, data, sizeof event);
  (*engine->sink_)(event);
  return 0;
}

Result<RedirectEngine::DecisionCounts> RedirectEngine::decisionCounts() const {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail(-cpus, "count the possible CPUs");
  std::vector<uint64_t> perCpu(static_cast<size_t>(cpus));
  DecisionCounts counts;
  const int fd = bpf_map__fd(skel_->maps.sg_counts);
  for (uint32_t slot = 0; slot < 2 * SG_DECISION_SLOTS; ++slot) {
    if (bpf_map_lookup_elem(fd, &slot, perCpu.data()) != 0)
      return failErrno("read the decision counters");
    uint64_t sum = 0;
    for (uint64_t v : perCpu) sum += v;
    (slot < SG_DECISION_SLOTS ? counts.fromApplications[slot]
                              : counts.fromServices[slot - SG_DECISION_SLOTS]) = sum;
  }
  return counts;
}

Result<int> RedirectEngine::drainEvents(const std::function<void(const sg_event&)>& sink) {
  sink_ = &sink;
  int n = ring_buffer__consume(ring_);
  sink_ = nullptr;
  if (n < 0) return fail(-n, "read decision events");
  return n;
}

}  // namespace sockgate
