/* Does a service's filter want this connect()? Every constraint that is set
 * must hold; prefixes are alternatives (any one of them). */
#ifndef SG_BPF_FILTER_H
#define SG_BPF_FILTER_H

#include "lib/net.h"

struct sg_origin {
  __u64 pid_tgid;
  __u64 uid_gid;
  __u64 cgroup_id;
  char comm[SG_COMM_LEN];
};

static __always_inline __u32 sg_prefix_mask(__u32 len, __u32 word) {
  /* bits of this 32-bit word covered by a prefix of `len` bits */
  __u32 start = word * 32;
  if (len <= start) return 0;
  if (len >= start + 32) return 0xffffffffu;
  return bpf_htonl(~0u << (32 - (len - start)));
}

static __always_inline int sg_prefix_match(const struct sg_prefix *p, const struct sg_endpoint *dst) {
  if (p->family != dst->family) return 0;
  const __u32 *pa = (const __u32 *)p->addr;
  const __u32 *da = (const __u32 *)dst->addr;
#pragma clang loop unroll(full)
  for (__u32 w = 0; w < 4; w++) {
    __u32 m = sg_prefix_mask(p->len, w);
    if ((pa[w] & m) != (da[w] & m)) return 0;
  }
  return 1;
}

/* A global (not inlined) function: the verifier checks it once, not once per
 * service in the caller's loop, which keeps connect4 far below its limits. */
__attribute__((noinline)) int sg_filter_match(const struct sg_filter *f,
                                              const struct sg_endpoint *dst,
                                              const struct sg_origin *o) {
  if (!f || !dst || !o) return 0;
  if (f->protocols && !(f->protocols & SG_PROTO_TCP)) return 0;
  if (f->match & SG_MATCH_PORT) {
    __u16 port = bpf_ntohs(dst->port);
    if (port < f->port_lo || port > f->port_hi) return 0;
  }
  __u32 uid = (__u32)o->uid_gid, gid = (__u32)(o->uid_gid >> 32);
  if ((f->match & SG_MATCH_UID) && (uid < f->uid_lo || uid > f->uid_hi)) return 0;
  if ((f->match & SG_MATCH_GID) && (gid < f->gid_lo || gid > f->gid_hi)) return 0;
  if ((f->match & SG_MATCH_CGROUP) && f->cgroup_id != o->cgroup_id) return 0;
  if (f->match & SG_MATCH_COMM) {
    /* both sides are NUL-padded to 16 bytes (bpf_get_current_comm pads) */
    const __u64 *a = (const __u64 *)f->comm, *b = (const __u64 *)o->comm;
    if (a[0] != b[0] || a[1] != b[1]) return 0;
  }
  if (f->match & SG_MATCH_PREFIX) {
    int any = 0;
#pragma clang loop unroll(full)
    for (__u32 i = 0; i < SG_MAX_PREFIXES; i++) {
      if (i < f->prefix_count && sg_prefix_match(&f->prefixes[i], dst)) any = 1;
    }
    if (!any) return 0;
  }
  return 1;
}

#endif
