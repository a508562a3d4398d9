/* The only thing that crosses the kernel/user boundary: plain structs and
 * constants shared by bpf/ and src/. No functions, no C++.
 *
 * Two of these structs are a public wire format that any redirect service,
 * in any language, reads with plain socket options on its accepted socket:
 *
 *   getsockopt(fd, SOL_IP or SOL_IPV6, IP_WFP_REDIRECT_CONTEXT = 70, buf, &len)
 *       -> struct sg_redirect_context, header_len + padded tag bytes long.
 *   getsockopt(fd, SOL_IP or SOL_IPV6, IP_WFP_REDIRECT_RECORDS = 60, buf, &len)
 *       -> struct sg_redirect_records (opaque to services: pass it back).
 *   getsockopt(fd, SOL_IP, SO_ORIGINAL_DST = 80, &sockaddr_in, &len)
 *   getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST = 80, &sockaddr_in6, &len)
 *       -> the original destination, as iptables REDIRECT would answer.
 *
 * Buffer-size protocol for 60 and 70: a NULL buffer (optval == NULL) answers
 * success with len set to the size needed; a buffer smaller than needed fails
 * with ERANGE and leaves len alone (the kernel forbids a cgroup getsockopt
 * program to report more than the caller's buffer holds). A socket that
 * carries no redirect flow gets the kernel's own answer (ENOPROTOOPT).
 *
 * On SOL_IPV6, 60 and 70 are also Linux's IPV6_RECVPATHMTU and
 * IPV6_AUTOFLOWLABEL: sockgate answers them only on sockets that carry a
 * redirect flow, where the Windows meaning wins.
 *
 * All integers are in host byte order except ports and addresses, which are
 * in network byte order as in struct sockaddr_in/in6.
 */
#ifndef SOCKGATE_ABI_H
#define SOCKGATE_ABI_H

#include <linux/types.h>

#define SG_ABI_VERSION 1

#define SG_IP_WFP_REDIRECT_RECORDS 60
#define SG_IP_WFP_REDIRECT_CONTEXT 70
#define SG_SO_ORIGINAL_DST 80

#define SG_MAX_SERVICES 16
#define SG_MAX_CHAIN 8
#define SG_MAX_PREFIXES 8
#define SG_TAG_MAX 1024
#define SG_COMM_LEN 16

/* An IPv4 or IPv6 endpoint. family is AF_INET (2) or AF_INET6 (10); an IPv4
 * address sits in addr[0..3]. A v4-mapped IPv6 address is stored as IPv4. */
struct sg_endpoint {
  __u16 family;
  __be16 port;
  __u32 _pad;
  __u8 addr[16];
};

/* ---- redirect context (public wire format, version 1) ---- */

#define SG_CONTEXT_MAGIC 0x43524753u /* "SGRC" as little-endian bytes */

struct sg_redirect_context {
  __u32 magic;
  __u16 version;    /* SG_ABI_VERSION */
  __u16 header_len; /* offset of tag[]; readers skip fields they don't know */
  __u32 total_len;  /* header_len + tag_len rounded up to a multiple of 8 */
  __u32 flags;      /* reserved, 0 */
  struct sg_endpoint original_dst;
  __u32 origin_tgid; /* process (thread group) that called connect() */
  __u32 origin_tid;  /* the thread */
  __u32 origin_uid;
  __u32 origin_gid;
  __u64 origin_cgroup_id;
  __u64 flow_id;          /* socket cookie of the application's socket */
  __u64 redirect_time_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) at connect() */
  char origin_comm[SG_COMM_LEN];
  __u32 service_id; /* the service this flow was redirected to */
  __u32 tag_len;    /* bytes of tag[] in use; the service's own tag */
  __u8 tag[SG_TAG_MAX];
};

#define SG_CONTEXT_HEADER_LEN 104u

/* ---- redirect records (opaque to services) ---- */

#define SG_RECORDS_MAGIC 0x52524753u /* "SGRR" */

/* Who started the flow: carried along the whole chain so that every service
 * sees the application, not the previous service. */
#define SG_MAX_CGROUP_DEPTH 8

struct sg_origin_identity {
  __u32 tgid;
  __u32 tid;
  __u32 uid;
  __u32 gid;
  __u64 cgroup_id;
  __u64 time_ns; /* CLOCK_MONOTONIC at the application's connect() */
  char comm[SG_COMM_LEN];
  /* the application's cgroup ancestors by level (0 = root), so that a
   * cgroup filter matches on every hop, not only where the app connects */
  __u64 cgroup_ancestors[SG_MAX_CGROUP_DEPTH];
};

/* A service passes these on, unread, from its accepted socket to its
 * outbound socket (setsockopt IP_WFP_REDIRECT_RECORDS before connect()).
 * Only a registered service may attach them, so their content is trusted. */
struct sg_redirect_records {
  __u32 magic;
  __u16 version;
  __u16 count; /* entries of chain[] in use */
  __u64 flow_id;
  __u32 chain[SG_MAX_CHAIN]; /* service ids that handled the flow, in order */
  struct sg_origin_identity origin;
};

/* ---- per-socket state (socket-local storage; kernel private) ---- */

#define SG_SOCK_REDIRECTED 0x1u   /* application socket sent to a service */
#define SG_SOCK_SERVICE_SIDE 0x2u /* a service's accepted socket carrying a flow */
#define SG_SOCK_HAS_RECORDS 0x4u  /* records attached (by a service, outbound) */
#define SG_SOCK_INHERITED 0x8u    /* records inferred for a service that sets none */
#define SG_SOCK_NO_INHERIT 0x10u  /* sent to a service with SG_SVC_ATTACHES_RECORDS */

struct sg_sock_state {
  __u32 flags;
  /* The application's initial sequence number, kept with the flow in the
   * flow table: a service's accepted socket takes the flow only if its
   * peer's ISN is this one, so a later connection that reuses the 4-tuple
   * never inherits a flow nobody took. */
  __u32 isn;
  struct sg_endpoint listener; /* where the socket was redirected to */
  struct sg_redirect_records records;
  /* The first SG_CONTEXT_HEADER_LEN bytes of the flow's sg_redirect_context.
   * tag[] is the service's own: added from the service table when read, so
   * that a flow does not carry 1 KiB through socket storage and the flow
   * table at every connect(). */
  __u64 context_head[SG_CONTEXT_HEADER_LEN / 8];
};

/* Flow table key: the TCP 4-tuple as the service's accepted socket sees it
 * (src = the application's socket, dst = the service's listener). */
struct sg_flow_key {
  __u32 family;
  __be16 src_port;
  __be16 dst_port;
  __u8 src_addr[16];
  __u8 dst_addr[16];
};

/* ---- services and filters (written by user space) ---- */

#define SG_SVC_ACTIVE 0x1u
#define SG_SVC_FAIL_CLOSED 0x2u
#define SG_SVC_LISTEN4 0x4u
#define SG_SVC_LISTEN6 0x8u
/* Passes each flow's records on itself (IP_WFP_REDIRECT_RECORDS on every
 * onward socket, as sockgate's built-in service does): taking a flow then
 * leaves no sg_inherit entry, which only a service that attaches none needs. */
#define SG_SVC_ATTACHES_RECORDS 0x10u

#define SG_PROTO_TCP 0x1u
#define SG_PROTO_UDP 0x2u

struct sg_prefix {
  __u16 family;
  __u16 len; /* prefix length in bits */
  __u32 _pad;
  __u8 addr[16];
};

/* A flow matches when every constraint named in `match` holds. Within one
 * constraint the entries are alternatives (any port range, any prefix...).
 * Ranges are inclusive. The origin (uid, gid, cgroup, comm) is the
 * application's, also on later hops of a chain. */
#define SG_MATCH_PORT 0x01u
#define SG_MATCH_UID 0x02u
#define SG_MATCH_GID 0x04u
#define SG_MATCH_CGROUP 0x08u
#define SG_MATCH_COMM 0x10u
#define SG_MATCH_PREFIX 0x20u

#define SG_MAX_RANGES 4

struct sg_range {
  __u32 lo;
  __u32 hi;
};

struct sg_filter {
  __u32 match;     /* SG_MATCH_* */
  __u32 protocols; /* SG_PROTO_* mask; 0 = TCP */
  __u32 port_count;
  __u32 uid_count;
  __u32 gid_count;
  __u32 prefix_count;
  struct sg_range ports[SG_MAX_RANGES]; /* destination ports, host order */
  struct sg_range uids[SG_MAX_RANGES];
  struct sg_range gids[SG_MAX_RANGES];
  __u64 cgroup_id;    /* origin in this cgroup or below it */
  __u32 cgroup_level; /* its depth (root = 0), for bpf_get_current_ancestor_cgroup_id */
  __u32 _pad;
  struct sg_prefix prefixes[SG_MAX_PREFIXES];
  char comm[SG_COMM_LEN]; /* exact match */
};

struct sg_service {
  __u32 id; /* non-zero, stable for the service's lifetime */
  __u32 flags;
  __be32 listen4_addr;
  __be16 listen4_port;
  __be16 listen6_port;
  __u8 listen6_addr[16];
  __u64 cgroup_id; /* the service's own cgroup: its own sockets are excluded */
  __u32 tgid;      /* the service's own process, likewise; 0 = none */
  __u32 tag_len;
  struct sg_filter filter;
  __u8 tag[SG_TAG_MAX];
};

/* sg_config[0]. The service table is double-buffered so that a connect()
 * never sees a half-written table: user space fills the inactive half
 * (sg_services[t * SG_MAX_SERVICES + i], service_count[t]) and then flips
 * active_table. Each field is one aligned u32, so readers see old or new. */
struct sg_config {
  __u32 active_table; /* 0 or 1 */
  __u32 service_count[2];
  __u32 governed_level;     /* depth of the governed cgroup */
  __u64 governed_cgroup_id; /* applications in it, or below it, are redirected */
};

/* The services of every sockgate instance on this kernel (one map, pinned
 * by the first instance and shared by the others), so that one instance's
 * setsockopt hook lets another instance's service attach records. */
enum sg_registry_kind {
  SG_REGISTRY_TGID = 1,     /* id: a service's process */
  SG_REGISTRY_CGROUP = 2,   /* id: a service's cgroup */
  SG_REGISTRY_INSTANCE = 3, /* id: a sockgate instance's pid (keeps the pin while it runs) */
};

struct sg_registry_key {
  __u64 id;
  __u32 kind; /* sg_registry_kind */
  __u32 _pad;
};

struct sg_registry_owner {
  __u32 pid; /* the sockgate instance that registered the entry */
  __u32 _pad;
  __u64 start; /* its start time (/proc/PID/stat field 22): pid reuse is not the owner */
};

/* Inheritance for services that attach no records (an unmodified proxy):
 * the records of the last flow handed to `service_id` for `dst`. */
struct sg_inherit_key {
  __u32 service_id;
  __u32 _pad;
  struct sg_endpoint dst;
};

/* ---- decision events (ring buffer) ---- */

enum sg_decision {
  SG_DECISION_REDIRECT = 1,   /* sent to a service */
  SG_DECISION_DIRECT = 2,     /* no service wanted it */
  SG_DECISION_FAIL_OPEN = 3,  /* the matching service was down: direct */
  SG_DECISION_REFUSED = 4,    /* the matching service was down, fail-closed */
  SG_DECISION_CHAIN_DONE = 5, /* a service's outbound: no further service, direct */
  SG_DECISION_FORGED = 6,     /* a non-service tried to attach records: EPERM */
};

/* Per-CPU decision counters (map sg_counts), kept even for decisions that
 * emit no event and when the event ring is full: slot = decision, plus
 * SG_DECISION_SLOTS when the connect() came from a service's socket. */
#define SG_DECISION_SLOTS 8

#define SG_EVENT_FROM_SERVICE 0x1u /* the connect() came from a service's socket */
#define SG_EVENT_INHERITED 0x2u    /* its records were inferred, not attached */

struct sg_event {
  __u64 time_ns;
  __u64 flow_id;
  __u64 cgroup_id;
  __u32 tgid;
  __u32 tid;
  __u32 uid;
  __u32 gid;
  __u32 decision; /* enum sg_decision */
  __u32 service_id;
  __u32 flags; /* SG_EVENT_* */
  __u32 chain_len;
  char comm[SG_COMM_LEN];
  struct sg_endpoint dst;         /* the destination the application asked for */
  struct sg_endpoint redirect_to; /* the service listener, when redirected */
};

/* ---- socket guard: socket() audit/deny (bpf/socket_guard.bpf.c) ---- */

#define SG_SOCK_MAX_RULES 32
#define SG_SOCK_ANY 0xffffffffu /* a rule field that matches any value */

enum sg_sock_action {
  SG_SOCK_AUDIT = 1, /* record the socket() and let it through */
  SG_SOCK_DENY = 2,  /* record it and fail it with EPERM (every hook) */
};

/* One target of a policy clause; family/type/protocol or SG_SOCK_ANY. */
struct sg_sock_rule {
  __u32 family;
  __u32 type; /* SOCK_* without SOCK_NONBLOCK/SOCK_CLOEXEC */
  __u32 protocol;
  __u32 action; /* enum sg_sock_action */
};

/* [0] of sg_guard_config: whom the guard applies to and the live rules. */
struct sg_sock_config {
  __u64 governed_cgroup_id; /* 0: nobody */
  __u32 governed_level;
  __u32 rule_count;
};

enum sg_sock_source {
  SG_SOCK_FROM_BPF = 1,     /* cgroup/sock_create (AF_INET, AF_INET6) */
  SG_SOCK_FROM_SECCOMP = 2, /* seccomp user notification (other families) */
  SG_SOCK_FROM_LSM = 3,     /* BPF LSM socket_create (every family) */
};

/* One audited or denied socket(), from any of the three sources. */
struct sg_sock_event {
  __u64 time_ns; /* CLOCK_MONOTONIC */
  __u64 cgroup_id;
  __u32 tgid;
  __u32 tid;
  __u32 uid;
  __u32 gid;
  __u32 family;
  __u32 type;     /* without SOCK_NONBLOCK/SOCK_CLOEXEC */
  __u32 protocol; /* as matched: inet protocol 0 resolved to TCP/UDP by the BPF hooks */
  __u32 action;   /* enum sg_sock_action */
  __u32 rule;     /* index of the rule that decided (deny: the first deny that matched) */
  __u32 source;   /* enum sg_sock_source */
  char comm[SG_COMM_LEN];
};

#endif /* SOCKGATE_ABI_H */
