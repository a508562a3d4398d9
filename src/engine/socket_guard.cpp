#include "engine/socket_guard.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cstring>

#include "common/unique_fd.h"
#include "engine/cgroup.h"
#include "sg_guard.skel.h"

namespace sockgate {

Result<std::unique_ptr<SocketGuard>> SocketGuard::start(const Options& options) {
  if (options.rules.rules.size() > SG_SOCK_MAX_RULES)
    return fail(E2BIG, "socket policy has more than " + std::to_string(SG_SOCK_MAX_RULES) +
                           " targets");
  if (options.governedCgroup.empty()) return fail(EINVAL, "socket guard: no governed cgroup");
  std::unique_ptr<SocketGuard> guard(new SocketGuard());
  guard->policy_ = options.rules;
  guard->skel_ = sg_guard__open_and_load();
  if (!guard->skel_) return failErrno("load the socket guard BPF program");

  auto id = cgroupIdOf(options.governedCgroup);
  if (!id) return std::unexpected(id.error());
  auto level = cgroupLevelOf(options.governedCgroup);
  if (!level) return std::unexpected(level.error());

  const int rulesFd = bpf_map__fd(guard->skel_->maps.sg_guard_rules);
  for (uint32_t i = 0; i < options.rules.rules.size(); ++i) {
    sg_sock_rule r = options.rules.rules[i].kernel;
    if (bpf_map_update_elem(rulesFd, &i, &r, BPF_ANY) != 0)
      return failErrno("update sg_guard_rules[" + std::to_string(i) + "]");
  }
  sg_sock_config config{};
  config.governed_cgroup_id = *id;
  config.governed_level = *level;
  config.rule_count = static_cast<uint32_t>(options.rules.rules.size());
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(guard->skel_->maps.sg_guard_config), &zero, &config,
                          BPF_ANY) != 0)
    return failErrno("initialise sg_guard_config");

  // The ring buffer before the hook: no event is made that nobody can read.
  guard->ring_ = ring_buffer__new(bpf_map__fd(guard->skel_->maps.sg_guard_events),
                                  &SocketGuard::onEvent, guard.get(), nullptr);
  if (!guard->ring_) return failErrno("open the socket guard event ring buffer");

  UniqueFd scope(::open(options.scopeCgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!scope) return failErrno("open cgroup " + options.scopeCgroup);
  guard->link_ = bpf_program__attach_cgroup(guard->skel_->progs.sg_sock_create, scope.get());
  if (!guard->link_) return failErrno("sock_create attach to " + options.scopeCgroup);
  return guard;
}

SocketGuard::~SocketGuard() {
  if (link_) bpf_link__destroy(link_);
  if (ring_) ring_buffer__free(ring_);
  if (skel_) sg_guard__destroy(skel_);
}

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
