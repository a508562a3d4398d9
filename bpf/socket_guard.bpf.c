/* The socket guard's kernel half: audit and deny socket() for the processes
 * of the governed cgroup (or below it).
 *
 * cgroup/sock_create runs from inet_create/inet6_create only, so it sees
 * AF_INET and AF_INET6 sockets; the other families are guarded from user
 * space by seccomp user notification (src/engine/seccomp_guard.cpp). BPF
 * LSM (lsm/socket_create) would cover every family but fails to load here
 * (EPERM on trampoline programs). */
#include "lib/net.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* [0]: governed cgroup and rule count; written by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sg_sock_config);
} sg_guard_config SEC(".maps");

/* The policy's targets in order; written by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SG_SOCK_MAX_RULES);
  __type(key, __u32);
  __type(value, struct sg_sock_rule);
} sg_guard_rules SEC(".maps");

/* Every audited or denied socket(). */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 18);
} sg_guard_events SEC(".maps");

static __always_inline int field_matches(__u32 rule, __u32 value) {
  return rule == SG_SOCK_ANY || rule == value;
}

SEC("cgroup/sock_create")
int sg_sock_create(struct bpf_sock *ctx) {
  __u32 zero = 0;
  struct sg_sock_config *cfg = bpf_map_lookup_elem(&sg_guard_config, &zero);
  if (!cfg || !cfg->governed_cgroup_id) return 1;
  if (bpf_get_current_ancestor_cgroup_id(cfg->governed_level) != cfg->governed_cgroup_id)
    return 1;

  __u32 family = ctx->family, type = ctx->type, protocol = ctx->protocol;
  __u32 n = cfg->rule_count;
  __u32 action = 0, rule = 0;
  for (__u32 i = 0; i < SG_SOCK_MAX_RULES; i++) {
    if (i >= n) break;
    __u32 key = i;
    struct sg_sock_rule *r = bpf_map_lookup_elem(&sg_guard_rules, &key);
    if (!r) break;
    if (!field_matches(r->family, family) || !field_matches(r->type, type) ||
        !field_matches(r->protocol, protocol))
      continue;
    if (r->action == SG_SOCK_DENY) { /* deny wins over audit */
      action = SG_SOCK_DENY;
      rule = i;
      break;
    }
    if (!action) {
      action = SG_SOCK_AUDIT;
      rule = i;
    }
  }
  if (!action) return 1;

  struct sg_sock_event *e = bpf_ringbuf_reserve(&sg_guard_events, sizeof(*e), 0);
  if (e) { /* user space behind: the event is lost, the verdict stands */
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u64 uid_gid = bpf_get_current_uid_gid();
    e->time_ns = bpf_ktime_get_ns();
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->tgid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->uid = (__u32)uid_gid;
    e->gid = uid_gid >> 32;
    e->family = family;
    e->type = type;
    e->protocol = protocol;
    e->action = action;
    e->rule = rule;
    e->source = SG_SOCK_FROM_BPF;
    __builtin_memset(e->comm, 0, SG_COMM_LEN);
    bpf_get_current_comm(e->comm, SG_COMM_LEN);
    bpf_ringbuf_submit(e, 0);
  }
  return action == SG_SOCK_DENY ? 0 : 1; /* 0: socket() fails with EPERM */
}
