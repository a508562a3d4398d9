/* The connection-redirect data path: the decision at connect(), the disguise
 * at getpeername(), the flow published under its 4-tuple (a tracepoint), and the
 * socket options a service reads (getsockopt), whose first read moves the
 * flow onto the service's accepted socket.
 *
 * Every cgroup program is attached to a cgroup that holds both the
 * applications and the services (the hierarchy root by default): a connect()
 * is acted on when it comes from the governed cgroup (or below it), or from a
 * registered service, whose outbound connections continue a chain. The
 * tracepoint sees every TCP socket and acts only on those connect4/6 sent to
 * a service. */
#include "lib/filter.h"
#include "lib/net.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Redirect state of a socket: set by connect4/6 on the application's socket,
 * and on the service's accepted socket when the service first asks for the
 * flow (getsockopt). */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sg_sock_state);
} sg_sock SEC(".maps");

/* Flows between the application's connect() and the service's first
 * getsockopt on the accepted socket, by 4-tuple: written when the
 * application's socket is established (sg_established), taken (and
 * deleted) by getsockopt.
 *
 * Taken then rather than when the service's side is established, because on
 * loopback that happens inside the application's connect(): socket storage
 * created there (an allocation and a memory-cgroup charge, and a free at
 * close) was the largest part of what a redirect added to connect().
 * Nothing deletes an entry when the application's socket closes, since a
 * client that sends and closes before the service accepts is gone by then
 * while its flow is still to be served; an entry nobody takes (a service
 * that never asks) ages out of the LRU, and the ISN kept with it stops a
 * later connection on the same 4-tuple from taking it. 32768 entries of 336
 * bytes, preallocated: an insert takes no allocation either. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 32768);
  __type(key, struct sg_flow_key);
  __type(value, struct sg_sock_state);
} sg_flows SEC(".maps");

/* The fields of the kernel's sockets read here (CO-RE: the offsets come from
 * the running kernel's BTF). */
struct sock_common {
  union {
    struct {
      __be32 skc_daddr;
      __be32 skc_rcv_saddr;
    };
  };
  union {
    struct {
      __be16 skc_dport;
      __u16 skc_num;
    };
  };
  unsigned short skc_family;
  struct {
    union {
      __u32 u6_addr32[4];
    } in6_u;
  } skc_v6_daddr, skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
  struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct tcp_sock {
  __u32 snd_una;
  __u64 bytes_acked;
} __attribute__((preserve_access_index));

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3

/* Services of every sockgate instance (see sg_registry_key); user space
 * pins it at /sys/fs/bpf/sockgate/service_registry before load. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct sg_registry_key);
  __type(value, struct sg_registry_owner);
} sg_registry SEC(".maps");

/* Redirect services in priority order, two tables (see sg_config); written
 * by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2 * SG_MAX_SERVICES);
  __type(key, __u32);
  __type(value, struct sg_service);
} sg_services SEC(".maps");

/* [0]: which service table is live and how long each is; written by user space. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sg_config);
} sg_config SEC(".maps");

/* For services that attach no records: the records of the last flow handed
 * to each (service, original destination), written when the service takes
 * the flow (its first getsockopt, which a transparent proxy makes for
 * SO_ORIGINAL_DST before it connects on), read by connect4/6 for that
 * service's outbound socket. Not written for a service that says it
 * attaches them (SG_SVC_ATTACHES_RECORDS): an LRU insert per flow saved. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct sg_inherit_key);
  __type(value, struct sg_redirect_records);
} sg_inherit SEC(".maps");

/* Per-CPU room for the records being decided on (too big for the stack). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sg_redirect_records);
} sg_scratch SEC(".maps");

/* Every decision, for `sockgate run`'s trace and connection table. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} sg_events SEC(".maps");

/* Whether decisions are also events, or only counts; set by user space
 * before load. An event costs the connect() a ring-buffer record and a
 * wakeup of the reader (an irq_work self-IPI, on a virtual machine an exit:
 * measured at +15 us per connect() on the 2-core benchmark machine), which
 * only a reader that shows each decision (`sockgate run --trace`) needs. */
const volatile __u32 sg_emit_events = 1;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2 * SG_DECISION_SLOTS);
  __type(key, __u32);
  __type(value, __u64);
} sg_counts SEC(".maps");

static __always_inline void emit(__u32 decision, const struct sg_endpoint *dst,
                                 const struct sg_endpoint *to, __u32 service_id,
                                 const struct sg_redirect_records *r, __u32 flags) {
  __u32 slot = (decision & (SG_DECISION_SLOTS - 1)) +
               ((flags & SG_EVENT_FROM_SERVICE) ? SG_DECISION_SLOTS : 0);
  __u64 *count = bpf_map_lookup_elem(&sg_counts, &slot);
  if (count) *count += 1; /* per-CPU: no other writer */
  if (!sg_emit_events) return;
  struct sg_event *e = bpf_ringbuf_reserve(&sg_events, sizeof(*e), 0);
  if (!e) return; /* user space is behind: lose the event, never the connect */
  e->time_ns = bpf_ktime_get_ns();
  e->flow_id = r->flow_id;
  e->cgroup_id = r->origin.cgroup_id;
  e->tgid = r->origin.tgid;
  e->tid = r->origin.tid;
  e->uid = r->origin.uid;
  e->gid = r->origin.gid;
  e->decision = decision;
  e->service_id = service_id;
  e->flags = flags;
  e->chain_len = r->count;
  __builtin_memcpy(e->comm, r->origin.comm, SG_COMM_LEN);
  e->dst = *dst;
  if (to)
    e->redirect_to = *to;
  else
    __builtin_memset(&e->redirect_to, 0, sizeof(e->redirect_to));
  bpf_ringbuf_submit(e, 0);
}

static __always_inline int is_listener_of(const struct sg_service *s, const struct sg_endpoint *d) {
  const __u32 *a = (const __u32 *)d->addr;
  if (d->family == AF_INET)
    return (s->flags & SG_SVC_LISTEN4) && a[0] == s->listen4_addr && d->port == s->listen4_port;
  const __u32 *l = (const __u32 *)s->listen6_addr;
  return (s->flags & SG_SVC_LISTEN6) && d->port == s->listen6_port && a[0] == l[0] &&
         a[1] == l[1] && a[2] == l[2] && a[3] == l[3];
}

/* Liveness is decided now, by asking the kernel for the listener, so a
 * service that died a moment ago is never trusted on stale state. */
__attribute__((noinline)) int listener_up(struct bpf_sock_addr *ctx, const struct sg_service *s,
                                          __u32 family) {
  struct bpf_sock_tuple t = {};
  if (!s) return 0;
  struct bpf_sock *sk;
  if (family == AF_INET) {
    if (!(s->flags & SG_SVC_LISTEN4)) return 0;
    t.ipv4.saddr = s->listen4_addr;
    t.ipv4.daddr = s->listen4_addr;
    t.ipv4.dport = s->listen4_port;
    sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
  } else {
    if (!(s->flags & SG_SVC_LISTEN6)) return 0;
    __builtin_memcpy(t.ipv6.saddr, s->listen6_addr, 16);
    __builtin_memcpy(t.ipv6.daddr, s->listen6_addr, 16);
    t.ipv6.dport = s->listen6_port;
    sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
  }
  if (!sk) return 0;
  int up = sk->state == BPF_TCP_LISTEN;
  bpf_sk_release(sk);
  return up;
}

__attribute__((noinline)) int in_chain(const struct sg_redirect_records *r, __u32 id) {
  if (!r) return 0;
#pragma clang loop unroll(full)
  for (int i = 0; i < SG_MAX_CHAIN; i++)
    if (i < r->count && r->chain[i] == id) return 1;
  return 0;
}

/* The context fields kept per socket (all but tag[], see sg_sock_state). */
static __always_inline struct sg_redirect_context *context_of(struct sg_sock_state *st) {
  return (struct sg_redirect_context *)st->context_head;
}

__attribute__((noinline)) int fill_context(struct sg_sock_state *st, const struct sg_service *s,
                                           const struct sg_endpoint *dst) {
  if (!st || !s || !dst) return 0;
  struct sg_redirect_context *c = context_of(st);
  const struct sg_origin_identity *o = &st->records.origin;
  __u32 tag_len = s->tag_len > SG_TAG_MAX ? SG_TAG_MAX : s->tag_len;
  c->magic = SG_CONTEXT_MAGIC;
  c->version = SG_ABI_VERSION;
  c->header_len = SG_CONTEXT_HEADER_LEN;
  c->total_len = SG_CONTEXT_HEADER_LEN + ((tag_len + 7) & ~7u);
  c->flags = 0;
  c->original_dst = *dst;
  c->origin_tgid = o->tgid;
  c->origin_tid = o->tid;
  c->origin_uid = o->uid;
  c->origin_gid = o->gid;
  c->origin_cgroup_id = o->cgroup_id;
  c->flow_id = st->records.flow_id;
  c->redirect_time_ns = bpf_ktime_get_ns();
  __builtin_memcpy(c->origin_comm, o->comm, SG_COMM_LEN);
  c->service_id = s->id;
  c->tag_len = tag_len; /* as at connect(); sg_getsockopt answers with the service's tag now */
  return 1;
}

/* The calling process as the origin of a new flow: what every filter may
 * ask for (ids) now; its name, cgroup ancestry and time only when a filter
 * asks for them, an event shows them or a service takes the flow
 * (complete_origin), since most connect()s no service takes and those
 * helper calls were a third of such a connect()'s hook (bpf_stats: 709 ->
 * 455-463 ns). */
__attribute__((noinline)) int fill_origin(struct sg_redirect_records *r, __u64 flow_id) {
  if (!r) return 0;
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u64 uid_gid = bpf_get_current_uid_gid();
  r->magic = SG_RECORDS_MAGIC;
  r->version = SG_ABI_VERSION;
  r->count = 0;
  r->flow_id = flow_id;
  __builtin_memset(r->chain, 0, sizeof(r->chain));
  r->origin.tgid = pid_tgid >> 32;
  r->origin.tid = (__u32)pid_tgid;
  r->origin.uid = (__u32)uid_gid;
  r->origin.gid = uid_gid >> 32;
  r->origin.cgroup_id = bpf_get_current_cgroup_id();
  r->origin.time_ns = 0; /* not complete: see complete_origin */
  return 1;
}

/* The rest of a new flow's origin, once; time_ns (never 0 once set) says
 * whether it is there. Records that came with the flow are complete. */
__attribute__((noinline)) int complete_origin(struct sg_redirect_records *r) {
  if (!r || r->origin.time_ns) return 0;
  r->origin.time_ns = bpf_ktime_get_ns();
  __builtin_memset(r->origin.comm, 0, SG_COMM_LEN);
  bpf_get_current_comm(r->origin.comm, SG_COMM_LEN);
  /* Levels below the caller's own cgroup are 0; asking for them would cost
   * a helper call each on every connect(). */
  __builtin_memset(r->origin.cgroup_ancestors, 0, sizeof(r->origin.cgroup_ancestors));
#pragma clang loop unroll(full)
  for (int level = 0; level < SG_MAX_CGROUP_DEPTH; level++) {
    __u64 id = bpf_get_current_ancestor_cgroup_id(level);
    r->origin.cgroup_ancestors[level] = id;
    if (!id) break;
  }
  return 1;
}

/* Index of the registered service the calling process belongs to, or -1. */
__attribute__((noinline)) int current_service_index(void) {
  __u32 zero = 0;
  struct sg_config *cfg = bpf_map_lookup_elem(&sg_config, &zero);
  if (!cfg) return -1;
  __u32 table = cfg->active_table & 1;
  __u32 n = cfg->service_count[table];
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  __u64 cgroup = bpf_get_current_cgroup_id();
  for (__u32 i = 0; i < SG_MAX_SERVICES; i++) {
    if (i >= n) break;
    __u32 key = table * SG_MAX_SERVICES + i;
    struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
    if (!s || !(s->flags & SG_SVC_ACTIVE)) continue;
    if ((s->tgid && s->tgid == tgid) || (s->cgroup_id && s->cgroup_id == cgroup)) return (int)i;
  }
  return -1;
}

/* What one service's turn at a connect() came to. */
enum {
  SG_TRY_SKIP = 0,       /* not for this service: try the next */
  SG_TRY_DOWN_OPEN = 1,  /* wanted it, but is down and fails open: try the next */
  SG_TRY_REFUSED = 2,    /* wanted it, but is down and fails closed: ECONNREFUSED */
  SG_TRY_REDIRECTED = 3, /* takes it: the caller rewrites the address */
  SG_TRY_CHAIN_FULL = 4, /* the chain is as long as it may get: connect as asked */
};

/* One service's turn at a connect(). A global function, so the verifier
 * checks it once instead of once per service on every path through the
 * caller's loop: inlined, Debian 12's 6.1 kernel gave up on connect4 after
 * a million instructions (E2BIG). The address rewrite stays in the caller,
 * where connect4 and connect6 each know which fields they may write. */
__attribute__((noinline)) int try_service(struct bpf_sock_addr *ctx, __u32 key,
                                          const struct sg_endpoint *dst,
                                          struct sg_redirect_records *rec, __u32 ev_flags) {
  if (!dst || !rec) return SG_TRY_SKIP;
  struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
  if (!s || !(s->flags & SG_SVC_ACTIVE)) return SG_TRY_SKIP;
  if (in_chain(rec, s->id)) return SG_TRY_SKIP; /* no loops */
  if (s->filter.match & (SG_MATCH_COMM | SG_MATCH_CGROUP)) complete_origin(rec);
  if (!sg_filter_match(&s->filter, dst, &rec->origin)) return SG_TRY_SKIP;
  if (rec->count >= SG_MAX_CHAIN) return SG_TRY_CHAIN_FULL;

  if (!listener_up(ctx, s, dst->family == AF_INET ? AF_INET : AF_INET6)) {
    if (!(s->flags & SG_SVC_FAIL_CLOSED)) return SG_TRY_DOWN_OPEN;
    emit(SG_DECISION_REFUSED, dst, 0, s->id, rec, ev_flags);
    bpf_set_retval(-ECONNREFUSED);
    return SG_TRY_REFUSED;
  }

  struct bpf_sock *sk = ctx->sk;
  if (!sk) return SG_TRY_CHAIN_FULL;
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) return SG_TRY_CHAIN_FULL; /* out of memory: connect as asked rather than fail */
  complete_origin(rec);
  st->records = *rec;
  __u16 c = st->records.count;
  st->records.chain[c & (SG_MAX_CHAIN - 1)] = s->id;
  st->records.count = c + 1;
  st->flags = (st->flags & ~SG_SOCK_NO_INHERIT) | SG_SOCK_REDIRECTED |
              ((ev_flags & SG_EVENT_INHERITED) ? SG_SOCK_INHERITED : 0) |
              ((s->flags & SG_SVC_ATTACHES_RECORDS) ? SG_SOCK_NO_INHERIT : 0);
  fill_context(st, s, dst);
  struct sg_endpoint *to = &st->listener;
  if (dst->family == AF_INET)
    sg_endpoint_from_ip4(to, s->listen4_addr, s->listen4_port);
  else
    sg_endpoint_from_ip6(to, (const __u32 *)s->listen6_addr, s->listen6_port);
  emit(SG_DECISION_REDIRECT, dst, to, s->id, &st->records, ev_flags);
  return SG_TRY_REDIRECTED;
}

/* Is dst the listener of a service in the live table? A connection to a
 * service itself is never redirected. */
__attribute__((noinline)) int to_a_service(const struct sg_endpoint *dst, __u32 base, __u32 n) {
  if (!dst) return 0;
  for (__u32 i = 0; i < SG_MAX_SERVICES; i++) {
    if (i >= n) break;
    __u32 key = base + i; /* the counter itself must not live on the stack */
    struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
    if (s && (s->flags & SG_SVC_ACTIVE) && is_listener_of(s, dst)) return 1;
  }
  return 0;
}

/* What came of a connect() that no service takes. */
enum {
  SG_OFFER_REFUSED = -1,  /* a fail-closed service is down: ECONNREFUSED */
  SG_OFFER_DECLINED = -2, /* connect as asked; the decision is already recorded */
};

/* Whose connect() the services are offered, and which table (five
 * arguments is all a BPF function may take). */
struct sg_offer {
  __u32 base;     /* the live table's first key in sg_services */
  __u32 n;        /* and its length */
  __s32 owner;    /* index of the service that connects, or -1 */
  __u32 ev_flags; /* SG_EVENT_* for the decision */
};

/* The services' turns at a connect(), in priority order; the one that
 * connects (if any) is skipped: never back to itself. Returns the
 * sg_services key of the service that takes it, whose listener the caller
 * writes into the address, or SG_OFFER_*.
 *
 * A global function, like try_service: the verifier checks it once with
 * every argument unknown. Inlined, it was checked again for every state the
 * caller reached it in, and the caller's loop over the table and the skip of
 * the owner pin n and owner to one constant per path: on 6.1 that cost
 * connect6 a million instructions (E2BIG) and left connect4 one small change
 * short of it. */
__attribute__((noinline)) int offer_to_services(struct bpf_sock_addr *ctx,
                                                const struct sg_endpoint *dst,
                                                struct sg_redirect_records *rec,
                                                const struct sg_offer *o) {
  if (!dst || !rec || !o) return SG_OFFER_DECLINED;
  __u32 base = o->base, n = o->n, ev_flags = o->ev_flags;
  int owner = o->owner;
  __u32 fail_open_id = 0;
  for (__u32 i = 0; i < SG_MAX_SERVICES; i++) {
    if (i >= n) break;
    if ((int)i == owner) continue; /* never back to itself */
    __u32 key = base + i;
    int outcome = try_service(ctx, key, dst, rec, ev_flags);
    if (outcome == SG_TRY_REDIRECTED) return (int)key;
    if (outcome == SG_TRY_REFUSED) return SG_OFFER_REFUSED;
    if (outcome == SG_TRY_DOWN_OPEN) {
      struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
      if (s && !fail_open_id) fail_open_id = s->id;
      continue;
    }
    if (outcome != SG_TRY_SKIP) break; /* the chain is as long as it may get */
  }
  __u32 decision = owner >= 0     ? SG_DECISION_CHAIN_DONE
                   : fail_open_id ? SG_DECISION_FAIL_OPEN
                                  : SG_DECISION_DIRECT;
  emit(decision, dst, 0, fail_open_id, rec, ev_flags);
  return SG_OFFER_DECLINED;
}

/* Is the calling process one of the applications this engine redirects? */
static __always_inline int caller_is_governed(const struct sg_config *cfg) {
  return cfg->governed_cgroup_id &&
         bpf_get_current_ancestor_cgroup_id(cfg->governed_level) == cfg->governed_cgroup_id;
}

/* Is the calling process a service some sockgate instance registered? */
static __always_inline int registered_elsewhere(void) {
  struct sg_registry_key k = {};
  k.id = bpf_get_current_pid_tgid() >> 32;
  k.kind = SG_REGISTRY_TGID;
  if (bpf_map_lookup_elem(&sg_registry, &k)) return 1;
  k.id = bpf_get_current_cgroup_id();
  k.kind = SG_REGISTRY_CGROUP;
  return bpf_map_lookup_elem(&sg_registry, &k) != 0;
}

static __always_inline int redirect_connect(struct bpf_sock_addr *ctx, struct sg_endpoint *dst,
                                            int v6_socket) {
  __u32 zero = 0;
  struct sg_config *cfg = bpf_map_lookup_elem(&sg_config, &zero);
  if (!cfg) return 1;
  __u32 table = cfg->active_table & 1;
  __u32 n = cfg->service_count[table];
  if (!n) return 1;
  __u32 base = table * SG_MAX_SERVICES;

  int owner = current_service_index();
  int governed = caller_is_governed(cfg);
  if (!governed && owner < 0) return 1; /* neither an application we govern nor a service */

  if (to_a_service(dst, base, n)) return 1;

  struct sg_redirect_records *rec = bpf_map_lookup_elem(&sg_scratch, &zero);
  if (!rec || !ctx->sk) return 1;
  struct sg_sock_state *prev = bpf_sk_storage_get(&sg_sock, ctx->sk, 0, 0);
  __u32 ev_flags = owner >= 0 ? SG_EVENT_FROM_SERVICE : 0;
  __u32 owner_id = 0;
  if (owner >= 0) {
    __u32 key = base + (__u32)owner;
    struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
    if (s) owner_id = s->id;
  }

  if (prev && (prev->flags & SG_SOCK_HAS_RECORDS)) {
    *rec = prev->records; /* attached by a service: the flow goes on */
  } else if (owner >= 0) {
    /* A service that attaches no records: continue the flow it is serving
     * for this destination, so it neither loops nor skips a service. */
    struct sg_inherit_key ik = {};
    ik.service_id = owner_id;
    ik.dst = *dst;
    struct sg_redirect_records *inherited = bpf_map_lookup_elem(&sg_inherit, &ik);
    if (!inherited) return 1; /* the service's own traffic (health checks, control) */
    *rec = *inherited;
    ev_flags |= SG_EVENT_INHERITED;
  } else {
    fill_origin(rec, bpf_get_socket_cookie(ctx));
    if (sg_emit_events) complete_origin(rec); /* every decision's event shows it */
  }

  struct sg_offer offer = {.base = base, .n = n, .owner = owner, .ev_flags = ev_flags};
  int taker = offer_to_services(ctx, dst, rec, &offer);
  if (taker == SG_OFFER_REFUSED) return 0;
  if (taker < 0) return 1;

  __u32 chosen = (__u32)taker;
  struct sg_service *s = bpf_map_lookup_elem(&sg_services, &chosen);
  if (!s) return 1;
  if (dst->family == AF_INET) {
    if (v6_socket) { /* a dual-stack socket reaching IPv4 stays v4-mapped */
      ctx->user_ip6[0] = 0;
      ctx->user_ip6[1] = 0;
      ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
      ctx->user_ip6[3] = s->listen4_addr;
    } else {
      ctx->user_ip4 = s->listen4_addr;
    }
    ctx->user_port = s->listen4_port;
  } else {
    if (!v6_socket) return 1; /* cannot happen; lets connect4 drop the user_ip6 stores */
    const __u32 *l = (const __u32 *)s->listen6_addr;
    ctx->user_ip6[0] = l[0];
    ctx->user_ip6[1] = l[1];
    ctx->user_ip6[2] = l[2];
    ctx->user_ip6[3] = l[3];
    ctx->user_port = s->listen6_port;
  }
  return 1;
}

SEC("cgroup/connect4")
int sg_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->type != SOCK_STREAM) return 1;
  struct sg_endpoint dst = {};
  sg_endpoint_from_ip4(&dst, ctx->user_ip4, (__be16)ctx->user_port);
  return redirect_connect(ctx, &dst, 0);
}

SEC("cgroup/connect6")
int sg_connect6(struct bpf_sock_addr *ctx) {
  if (ctx->type != SOCK_STREAM) return 1;
  __u32 w[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
  struct sg_endpoint dst = {};
  sg_endpoint_from_ip6(&dst, w, (__be16)ctx->user_port);
  return redirect_connect(ctx, &dst, 1);
}

/* The application asks who it is talking to: the original destination, so
 * the redirect stays invisible. */
SEC("cgroup/getpeername4")
int sg_getpeername4(struct bpf_sock_addr *ctx) {
  if (!ctx->sk) return 1;
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, ctx->sk, 0, 0);
  if (!st || !(st->flags & SG_SOCK_REDIRECTED)) return 1;
  const struct sg_endpoint *o = &context_of(st)->original_dst;
  if (o->family != AF_INET) return 1;
  ctx->user_ip4 = *(const __u32 *)o->addr;
  ctx->user_port = o->port;
  return 1;
}

SEC("cgroup/getpeername6")
int sg_getpeername6(struct bpf_sock_addr *ctx) {
  if (!ctx->sk) return 1;
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, ctx->sk, 0, 0);
  if (!st || !(st->flags & SG_SOCK_REDIRECTED)) return 1;
  const struct sg_endpoint *o = &context_of(st)->original_dst;
  const __u32 *a = (const __u32 *)o->addr;
  if (o->family == AF_INET) {
    ctx->user_ip6[0] = 0;
    ctx->user_ip6[1] = 0;
    ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
    ctx->user_ip6[3] = a[0];
  } else {
    ctx->user_ip6[0] = a[0];
    ctx->user_ip6[1] = a[1];
    ctx->user_ip6[2] = a[2];
    ctx->user_ip6[3] = a[3];
  }
  ctx->user_port = o->port;
  return 1;
}

/* The flow key as the service's accepted socket sees it: src is the
 * application's socket, dst the service's listener. */
static __always_inline void flow_key_of(struct sg_flow_key *k, const struct sg_endpoint *src,
                                        const struct sg_endpoint *dst) {
  k->family = src->family;
  k->src_port = src->port;
  k->dst_port = dst->port;
  __builtin_memcpy(k->src_addr, src->addr, 16);
  __builtin_memcpy(k->dst_addr, dst->addr, 16);
}

/* The application's socket is established: the source port and the ISN
 * exist now, so the flow is published under its 4-tuple for the service's
 * accepted socket to take (the service accepts only after the handshake's
 * last ACK, which this socket sends after this transition).
 *
 * A tracepoint rather than sockops: a sockops program runs on every TCP
 * event of every socket under its cgroup (timeout, window and ECN queries
 * on both ends of each handshake: 9 runs per loopback connection), this
 * one on each state change (6) and returns at once on all but this one
 * (bpf_stats: 0.45 us of BPF time per connection not redirected, against
 * 0.67 with sockops). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sg_established, const struct sock *sk, int oldstate, int newstate) {
  if (newstate != TCP_ESTABLISHED || (oldstate != TCP_SYN_SENT && oldstate != TCP_SYN_RECV))
    return 0;
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, (struct sock *)sk, 0, 0);
  if (!st || (st->flags & (SG_SOCK_REDIRECTED | SG_SOCK_SERVICE_SIDE)) != SG_SOCK_REDIRECTED)
    return 0;
  struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
  if (!tp) return 0;
  /* snd_una and bytes_acked advance together from the ISN, a SYN's data
   * (fast open) included. */
  st->isn = tp->snd_una - (__u32)tp->bytes_acked;
  const struct sock_common *c = &sk->__sk_common;
  struct sg_endpoint local = {}, remote = {};
  __be16 lport = bpf_htons(c->skc_num);
  if (c->skc_family == AF_INET) {
    sg_endpoint_from_ip4(&local, c->skc_rcv_saddr, lport);
    sg_endpoint_from_ip4(&remote, c->skc_daddr, c->skc_dport);
  } else if (c->skc_family == AF_INET6) {
    const __u32 *l6 = c->skc_v6_rcv_saddr.in6_u.u6_addr32;
    const __u32 *r6 = c->skc_v6_daddr.in6_u.u6_addr32;
    __u32 l[4] = {l6[0], l6[1], l6[2], l6[3]};
    __u32 r[4] = {r6[0], r6[1], r6[2], r6[3]};
    sg_endpoint_from_ip6(&local, l, lport);
    sg_endpoint_from_ip6(&remote, r, c->skc_dport);
  } else {
    return 0;
  }
  struct sg_flow_key key = {};
  flow_key_of(&key, &local, &remote);
  bpf_map_update_elem(&sg_flows, &key, st, BPF_ANY);
  return 0;
}

/* Two separate stores: the compiler may merge the adjacent u32 fields into
 * one 8-byte store, which the verifier refuses in a sockopt context (seen
 * after an unrelated change to sg_getsockopt: EACCES at load). */
static __always_inline void answer_ok(struct bpf_sockopt *ctx, __u32 len) {
  ctx->optlen = len;
  asm volatile("" ::: "memory");
  ctx->retval = 0;
}

static __always_inline int answer_error(struct bpf_sockopt *ctx, int err) {
  ctx->retval = -err;
  return 1;
}

/* The registered service with this id, in the live table, or NULL. */
static __always_inline const struct sg_service *service_by_id(__u32 id) {
  __u32 zero = 0;
  struct sg_config *cfg = bpf_map_lookup_elem(&sg_config, &zero);
  if (!cfg || !id) return 0;
  __u32 table = cfg->active_table & 1;
  __u32 n = cfg->service_count[table];
  for (__u32 i = 0; i < SG_MAX_SERVICES; i++) {
    if (i >= n) break;
    __u32 key = table * SG_MAX_SERVICES + i;
    const struct sg_service *s = bpf_map_lookup_elem(&sg_services, &key);
    if (s && s->id == id) return s;
  }
  return 0;
}

/* IP_WFP_REDIRECT_CONTEXT on a service's accepted socket: the fixed part
 * kept with the socket, then the service's tag (none if the service is no
 * longer registered). */
static __always_inline int answer_context(struct bpf_sockopt *ctx, struct sg_sock_state *st) {
  const struct sg_redirect_context *head = context_of(st);
  const struct sg_service *s = service_by_id(head->service_id);
  __u32 tag_len = s ? s->tag_len : 0;
  if (tag_len > SG_TAG_MAX) tag_len = SG_TAG_MAX;
  const __u32 padded = (tag_len + 7) & ~7u;
  const __u32 len = SG_CONTEXT_HEADER_LEN + padded;
  if (ctx->optlen == 0) { /* size query: only a NULL buffer may be told more than it holds */
    answer_ok(ctx, len);
    return 1;
  }
  __u8 *out = ctx->optval;
  __u8 *end = ctx->optval_end;
  /* The constant bound first: it is the one the verifier can use for the
   * header stores (after the variable one the compiler drops it as implied). */
  if (out + SG_CONTEXT_HEADER_LEN > end) return answer_error(ctx, ERANGE);
  if (out + len > end) return answer_error(ctx, ERANGE);
  const __u64 *h = st->context_head;
#pragma clang loop unroll(full)
  for (__u32 i = 0; i < SG_CONTEXT_HEADER_LEN / 8; i++) *(__u64 *)(out + i * 8) = h[i];
  struct sg_redirect_context *c = (struct sg_redirect_context *)out;
  c->total_len = len;
  c->tag_len = tag_len;
  if (s) {
    /* user space zero-fills the tag past tag_len, so the padding is zero too */
    const __u64 *t = (const __u64 *)s->tag;
#pragma clang loop unroll(full)
    for (__u32 i = 0; i < SG_TAG_MAX / 8; i++) {
      if (i * 8 >= padded) break;
      if (out + SG_CONTEXT_HEADER_LEN + i * 8 + 8 > end) break;
      *(__u64 *)(out + SG_CONTEXT_HEADER_LEN + i * 8) = t[i];
    }
  }
  answer_ok(ctx, len);
  return 1;
}

/* A service's accepted socket takes its flow from the flow table: the
 * first time the service asks, since the flow was published only in the
 * table (see sg_flows). NULL if the socket carries no flow. */
static __always_inline struct sg_sock_state *take_flow(struct bpf_sock *sk) {
  struct sg_endpoint local = {}, remote = {};
  if (sk->family == AF_INET) {
    sg_endpoint_from_ip4(&local, sk->src_ip4, bpf_htons((__u16)sk->src_port));
    sg_endpoint_from_ip4(&remote, sk->dst_ip4, sk->dst_port);
  } else if (sk->family == AF_INET6) {
    __u32 l[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};
    __u32 r[4] = {sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2], sk->dst_ip6[3]};
    sg_endpoint_from_ip6(&local, l, bpf_htons((__u16)sk->src_port));
    sg_endpoint_from_ip6(&remote, r, sk->dst_port);
  } else {
    return 0;
  }
  struct sg_flow_key key = {};
  flow_key_of(&key, &remote, &local);
  struct sg_sock_state *flow = bpf_map_lookup_elem(&sg_flows, &key);
  if (!flow) return 0;
  struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
  if (!tp) return 0;
  /* rcv_nxt moved from the peer's ISN + 1 by exactly bytes_received (its
   * FIN included), whatever the service has read or the peer has closed. */
  __u32 isn = tp->rcv_nxt - (__u32)tp->bytes_received - 1;
  if (flow->isn != isn) return 0; /* another connection on a 4-tuple a flow once had */
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, sk, flow, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) return 0;
  /* An LRU entry may be reused while it is copied: the copy must still be
   * this connection's. */
  if (st->isn != isn) {
    bpf_sk_storage_delete(&sg_sock, sk);
    return 0;
  }
  bpf_map_delete_elem(&sg_flows, &key);
  st->flags = (st->flags & ~(SG_SOCK_REDIRECTED | SG_SOCK_HAS_RECORDS | SG_SOCK_INHERITED)) |
              SG_SOCK_SERVICE_SIDE;
  if (st->flags & SG_SOCK_NO_INHERIT) return st; /* the service passes the records on */
  struct sg_inherit_key ik = {};
  ik.service_id = context_of(st)->service_id;
  ik.dst = context_of(st)->original_dst;
  bpf_map_update_elem(&sg_inherit, &ik, &st->records, BPF_ANY);
  return st;
}

SEC("cgroup/getsockopt")
int sg_getsockopt(struct bpf_sockopt *ctx) {
  int level = ctx->level, name = ctx->optname;
  if (level != SOL_IP && level != SOL_IPV6) return 1;
  if (name != SG_IP_WFP_REDIRECT_RECORDS && name != SG_IP_WFP_REDIRECT_CONTEXT &&
      name != SG_SO_ORIGINAL_DST)
    return 1;
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, sk, 0, 0);
  if (!st) st = take_flow(sk);
  if (!st) return 1; /* not ours: the kernel's answer stands */
  /* the context and original destination belong to a service's accepted
   * socket; records to any socket that carries a flow */
  if (!(st->flags & SG_SOCK_SERVICE_SIDE) &&
      (name != SG_IP_WFP_REDIRECT_RECORDS ||
       !(st->flags & (SG_SOCK_REDIRECTED | SG_SOCK_HAS_RECORDS))))
    return 1;

  __u8 *out = ctx->optval;
  __u8 *end = ctx->optval_end;

  if (name == SG_SO_ORIGINAL_DST) {
    const struct sg_endpoint *o = &context_of(st)->original_dst;
    const __u32 *a = (const __u32 *)o->addr;
    if (level == SOL_IP) {
      if (o->family != AF_INET) return answer_error(ctx, ENOENT);
      if (out + 16 > end) return answer_error(ctx, EINVAL);
      __u32 *w = (__u32 *)out; /* struct sockaddr_in */
      w[0] = AF_INET | ((__u32)o->port << 16);
      w[1] = a[0];
      w[2] = 0;
      w[3] = 0;
      ctx->optlen = 16;
    } else {
      if (out + 28 > end) return answer_error(ctx, EINVAL);
      __u32 *w = (__u32 *)out; /* struct sockaddr_in6 */
      w[0] = AF_INET6 | ((__u32)o->port << 16);
      w[1] = 0; /* flowinfo */
      if (o->family == AF_INET) {
        w[2] = 0;
        w[3] = 0;
        w[4] = bpf_htonl(0x0000ffff);
        w[5] = a[0];
      } else {
        w[2] = a[0];
        w[3] = a[1];
        w[4] = a[2];
        w[5] = a[3];
      }
      w[6] = 0; /* scope id */
      ctx->optlen = 28;
    }
    ctx->retval = 0;
    return 1;
  }

  if (name == SG_IP_WFP_REDIRECT_CONTEXT) return answer_context(ctx, st);

  const __u64 *src = (const __u64 *)&st->records;
  __u32 len = sizeof(struct sg_redirect_records);
  if (ctx->optlen == 0) { /* size query: only a NULL buffer may be told more than it holds */
    answer_ok(ctx, len);
    return 1;
  }
  if (out + len > end) return answer_error(ctx, ERANGE);
#pragma clang loop unroll(full)
  for (__u32 i = 0; i < sizeof(struct sg_redirect_records) / 8; i++) {
    if (out + i * 8 + 8 > end) break;
    *(__u64 *)(out + i * 8) = src[i];
  }
  answer_ok(ctx, len);
  return 1;
}

/* A service attaches the records of the flow it serves to its outbound
 * socket before connect(). Only a registered service may: anyone else could
 * otherwise forge a chain that skips inspection. */
SEC("cgroup/setsockopt")
int sg_setsockopt(struct bpf_sockopt *ctx) {
  int level = ctx->level;
  if ((level != SOL_IP && level != SOL_IPV6) || ctx->optname != SG_IP_WFP_REDIRECT_RECORDS)
    return 1;
  if (level == SOL_IPV6 && ctx->optlen == sizeof(int)) return 1; /* IPV6_RECVPATHMTU */
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;

  if (current_service_index() < 0) {
    __u32 zero = 0;
    /* Several sockgate instances may be attached side by side: a service of
     * another one is not ours to refuse, unless it is an application we
     * govern (then its records would steer our hooks). */
    struct sg_config *cfg = bpf_map_lookup_elem(&sg_config, &zero);
    if (cfg && !caller_is_governed(cfg) && registered_elsewhere()) return 1;
    struct sg_redirect_records *who = 0;
    who = bpf_map_lookup_elem(&sg_scratch, &zero);
    if (who) {
      fill_origin(who, 0);
      complete_origin(who);
      struct sg_endpoint none = {};
      emit(SG_DECISION_FORGED, &none, 0, 0, who, 0);
    }
    return 0; /* EPERM */
  }
  struct sg_redirect_records *in = ctx->optval;
  if ((void *)(in + 1) > ctx->optval_end || ctx->optlen < (int)sizeof(*in)) {
    bpf_set_retval(-EINVAL);
    return 0;
  }
  if (in->magic != SG_RECORDS_MAGIC || in->version < 1 || in->count > SG_MAX_CHAIN) {
    bpf_set_retval(-EINVAL);
    return 0;
  }
  if (sk->state != BPF_TCP_CLOSE) { /* records steer connect(): too late now */
    bpf_set_retval(-EISCONN);
    return 0;
  }
  struct sg_sock_state *st = bpf_sk_storage_get(&sg_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!st) {
    bpf_set_retval(-ENOMEM);
    return 0;
  }
  st->records = *in;
  st->flags |= SG_SOCK_HAS_RECORDS;
  ctx->optlen = -1; /* handled here: the kernel has no such option */
  return 1;
}
