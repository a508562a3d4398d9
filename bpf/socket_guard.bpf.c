/* The socket guard's kernel half: audit and deny socket() for the processes
 * of the governed cgroup (or below it).
 *
 * Two hooks, one loaded at a time (src/engine/socket_guard.cpp probes):
 *  - lsm/socket_create sees every family (AF_PACKET included, and both
 *    sockets of a socketpair). It is tried first. Where the kernel refuses
 *    BPF LSM programs (EPERM for every BTF trampoline program on the
 *    development host), it is not loaded and instead
 *  - cgroup/sock_create guards AF_INET/AF_INET6 only (the kernel runs it from
 *    inet_create/inet6_create), while the other families are guarded from
 *    user space by seccomp user notification (src/engine/seccomp_guard.cpp).
 * Both deny with EPERM, as seccomp does, so a command sees one errno. */
#include "lib/net.h"
/* after lib/net.h: bpf_tracing.h needs the kernel types it brings */
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define SOCK_DGRAM 2
#define SOCK_TYPE_MASK 0xf

/* [0]: governed cgroup and rule count; written by user space before attach. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sg_sock_config);
} sg_guard_config SEC(".maps");

/* The policy's targets in order (struct sg_sock_rule); written by user space
 * before attach, read by both hooks. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SG_SOCK_MAX_RULES);
  __type(key, __u32);
  __type(value, struct sg_sock_rule);
} sg_guard_rules SEC(".maps");

/* Every audited or denied socket() (struct sg_sock_event); written by both
 * hooks, read by SocketGuard::drainEvents. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 18);
} sg_guard_events SEC(".maps");

static __always_inline int field_matches(__u32 rule, __u32 value) {
  return rule == SG_SOCK_ANY || rule == value;
}

/* The verdict for a socket() of the governed cgroup: 0 (not matched),
 * SG_SOCK_AUDIT or SG_SOCK_DENY, an event for the last two. A global
 * function, so the verifier checks it once for both hooks. */
__attribute__((noinline)) int sg_guard_decide(__u32 family, __u32 type, __u32 protocol,
                                              __u32 source) {
  __u32 zero = 0;
  struct sg_sock_config *cfg = bpf_map_lookup_elem(&sg_guard_config, &zero);
  if (!cfg || !cfg->governed_cgroup_id) return 0;
  if (bpf_get_current_ancestor_cgroup_id(cfg->governed_level) != cfg->governed_cgroup_id) return 0;

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
  if (!action) return 0;

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
    e->source = source;
    __builtin_memset(e->comm, 0, SG_COMM_LEN);
    bpf_get_current_comm(e->comm, SG_COMM_LEN);
    bpf_ringbuf_submit(e, 0);
  }
  return (int)action;
}

SEC("cgroup/sock_create")
int sg_sock_create(struct bpf_sock *ctx) {
  /* sk_type carries no SOCK_NONBLOCK/SOCK_CLOEXEC; the protocol is already
   * resolved (0 became IPPROTO_TCP/UDP) */
  int action = sg_guard_decide(ctx->family, ctx->type, ctx->protocol, SG_SOCK_FROM_BPF);
  return action == SG_SOCK_DENY ? 0 : 1; /* 0: socket() fails with EPERM */
}

/* security_socket_create(family, type, protocol, kern); ret is the verdict
 * of an earlier BPF LSM program. Kernel-internal sockets (kern) are not the
 * command's doing and are never guarded, as inet_create does not run
 * cgroup/sock_create for them. */
SEC("lsm/socket_create")
int BPF_PROG(sg_lsm_socket_create, int family, int type, int protocol, int kern, int ret) {
  if (ret) return ret;
  if (kern) return 0;
  __u32 t = (__u32)type & SOCK_TYPE_MASK;
  __u32 p = (__u32)protocol;
  /* The LSM sees what the caller passed; resolve protocol 0 of inet
   * sockets as inet_create does, so 'inet/stream/tcp' means the same on
   * both hooks. */
  if ((family == AF_INET || family == AF_INET6) && p == 0) {
    if (t == SOCK_STREAM)
      p = IPPROTO_TCP;
    else if (t == SOCK_DGRAM)
      p = IPPROTO_UDP;
  }
  int action = sg_guard_decide((__u32)family, t, p, SG_SOCK_FROM_LSM);
  return action == SG_SOCK_DENY ? -EPERM : 0;
}
