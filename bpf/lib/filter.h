/* Does a service's filter want this connect()? Every constraint named in
 * the filter must hold; within one constraint any entry may match. */
#ifndef SG_BPF_FILTER_H
#define SG_BPF_FILTER_H

#include "lib/net.h"

static __always_inline __u32 sg_prefix_mask(__u32 len, __u32 word) {
  /* bits of this 32-bit word covered by a prefix of `len` bits */
  __u32 start = word * 32;
  if (len <= start) return 0;
  if (len >= start + 32) return 0xffffffffu;
  return bpf_htonl(~0u << (32 - (len - start)));
}

static __always_inline int sg_prefix_match(const struct sg_prefix *p,
                                           const struct sg_endpoint *dst) {
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

static __always_inline int sg_in_ranges(const struct sg_range *r, __u32 count, __u32 v) {
  int any = 0;
#pragma clang loop unroll(full)
  for (__u32 i = 0; i < SG_MAX_RANGES; i++)
    if (i < count && v >= r[i].lo && v <= r[i].hi) any = 1;
  return any;
}

/* A global (not inlined) function: the verifier checks it once, not once per
 * service in the caller's loop, which keeps connect4 far below its limits. */
__attribute__((noinline)) int sg_filter_match(const struct sg_filter *f,
                                              const struct sg_endpoint *dst,
                                              const struct sg_origin_identity *o) {
  if (!f || !dst || !o) return 0;
  if (f->protocols && !(f->protocols & SG_PROTO_TCP)) return 0;
  if ((f->match & SG_MATCH_PORT) && !sg_in_ranges(f->ports, f->port_count, bpf_ntohs(dst->port)))
    return 0;
  if ((f->match & SG_MATCH_UID) && !sg_in_ranges(f->uids, f->uid_count, o->uid)) return 0;
  if ((f->match & SG_MATCH_GID) && !sg_in_ranges(f->gids, f->gid_count, o->gid)) return 0;
  if (f->match & SG_MATCH_CGROUP) {
    __u32 level = f->cgroup_level;
    if (level >= SG_MAX_CGROUP_DEPTH) return 0;
    if (o->cgroup_ancestors[level & (SG_MAX_CGROUP_DEPTH - 1)] != f->cgroup_id) return 0;
  }
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
