#include "engine/socket_guard.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "sg_guard.skel.h"

namespace sockgate {
namespace {

// While the guard loads, libbpf's messages are kept here instead of being
// printed: a refused LSM program is an expected outcome of the probe, and a
// real failure is reported through the Error, with the verifier's last line.
std::string* gLoadLog = nullptr;

__attribute__((format(printf, 2, 0))) int keepLibbpfLog(libbpf_print_level level, const char* fmt,
                                                        va_list args) {
  if (level == LIBBPF_DEBUG || !gLoadLog) return 0;
  char line[512];
  int n = std::vsnprintf(line, sizeof line, fmt, args);
  if (gLoadLog->size() < 8192) *gLoadLog += line;
  return n;
}

// Restores whatever print hook was there (RedirectEngine installs its own).
class QuietLibbpf {
 public:
  explicit QuietLibbpf(std::string* log) : previous_(libbpf_set_print(keepLibbpfLog)) {
    gLoadLog = log;
  }
  ~QuietLibbpf() {
    libbpf_set_print(previous_);
    gLoadLog = nullptr;
  }
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;

 private:
  libbpf_print_fn_t previous_;
};

std::string lastLine(const std::string& log) {
  std::string s = log;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  size_t at = s.rfind('\n');
  return at == std::string::npos ? s : s.substr(at + 1);
}

}  // namespace

Result<std::unique_ptr<SocketGuard>> SocketGuard::start(const Options& options) {
  if (options.rules.rules.empty()) return fail(EINVAL, "socket guard: the policy has no rule");
  if (options.rules.rules.size() > SG_SOCK_MAX_RULES)
    return fail(E2BIG,
                "socket policy has more than " + std::to_string(SG_SOCK_MAX_RULES) + " targets");
  if (options.governedCgroup.empty()) return fail(EINVAL, "socket guard: no governed cgroup");
  std::unique_ptr<SocketGuard> guard(new SocketGuard());
  guard->policy_ = options.rules;

  // Probe by doing: load and attach the real LSM program. Only where the
  // kernel refuses it is the fallback used, and the user is told why.
  if (options.tryLsm) {
    auto lsm = guard->load(options, Hook::kLsm);
    if (lsm) return guard;
    guard->lsmError_ = lsm.error().code;
    guard->notice_ = "BPF LSM programs are refused by this kernel (" + errnoName(lsm.error().code) +
                     "); packet and other non-inet sockets are guarded by seccomp for the "
                     "command's processes instead";
  }
  if (auto st = guard->load(options, Hook::kSockCreate); !st) return std::unexpected(st.error());
  return guard;
}

Status SocketGuard::load(const Options& options, Hook hook) {
  std::string log;
  QuietLibbpf quiet(&log);
  const char* what = hook == Hook::kLsm ? "lsm/socket_create" : "cgroup/sock_create";
  auto failed = [&](int err, const std::string& step) {
    unload();
    std::string why = lastLine(log);
    return fail(err, step + (why.empty() ? "" : " (" + why + ")"));
  };

  skel_ = sg_guard__open();
  if (!skel_) return failed(errno, "open the socket guard BPF object");
  // Only the program of the chosen hook is loaded: a refused LSM program
  // must not take the other one down with it.
  bpf_program__set_autoload(skel_->progs.sg_lsm_socket_create, hook == Hook::kLsm);
  bpf_program__set_autoload(skel_->progs.sg_sock_create, hook == Hook::kSockCreate);
  if (int err = sg_guard__load(skel_); err != 0)
    return failed(-err, std::string("load the socket guard's ") + what + " program");

  auto id = cgroupIdOf(options.governedCgroup);
  if (!id) {
    unload();
    return std::unexpected(id.error());
  }
  auto level = cgroupLevelOf(options.governedCgroup);
  if (!level) {
    unload();
    return std::unexpected(level.error());
  }
  const int rulesFd = bpf_map__fd(skel_->maps.sg_guard_rules);
  for (uint32_t i = 0; i < options.rules.rules.size(); ++i) {
    sg_sock_rule r = options.rules.rules[i].kernel;
    if (bpf_map_update_elem(rulesFd, &i, &r, BPF_ANY) != 0)
      return failed(errno, "update sg_guard_rules[" + std::to_string(i) + "]");
  }
  sg_sock_config config{};
  config.governed_cgroup_id = *id;
  config.governed_level = *level;
  config.rule_count = static_cast<uint32_t>(options.rules.rules.size());
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sg_guard_config), &zero, &config, BPF_ANY) != 0)
    return failed(errno, "initialise sg_guard_config");

  // The ring buffer before the hook: no event is made that nobody can read.
  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.sg_guard_events), &SocketGuard::onEvent, this,
                           nullptr);
  if (!ring_) return failed(errno, "open the socket guard event ring buffer");

  if (hook == Hook::kLsm) {
    link_ = bpf_program__attach_lsm(skel_->progs.sg_lsm_socket_create);
    if (!link_) return failed(errno, "attach lsm/socket_create");
  } else {
    UniqueFd scope(::open(options.scopeCgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!scope) return failed(errno, "open cgroup " + options.scopeCgroup);
    link_ = bpf_program__attach_cgroup(skel_->progs.sg_sock_create, scope.get());
    if (!link_) return failed(errno, "sock_create attach to " + options.scopeCgroup);
  }
  hook_ = hook;
  return {};
}

void SocketGuard::unload() {
  if (link_) bpf_link__destroy(link_);
  if (ring_) ring_buffer__free(ring_);
  if (skel_) sg_guard__destroy(skel_);
  link_ = nullptr;
  ring_ = nullptr;
  skel_ = nullptr;
}

SocketGuard::~SocketGuard() { unload(); }

int SocketGuard::eventsFd() const { return ring_buffer__epoll_fd(ring_); }

int SocketGuard::onEvent(void* self, void* data, size_t size) {
  auto* guard = static_cast<SocketGuard*>(self);
  if (size < sizeof(sg_sock_event) || !guard->sink_) return 0;
  sg_sock_event event;
  std::memcpy(&event, data, sizeof event);
  (*guard->sink_)(event);
  return 0;
}

Result<int> SocketGuard::drainEvents(const std::function<void(const sg_sock_event&)>& sink) {
  sink_ = &sink;
  int n = ring_buffer__consume(ring_);
  sink_ = nullptr;
  if (n < 0) return fail(-n, "read socket guard events");
  return n;
}

}  // namespace sockgate
