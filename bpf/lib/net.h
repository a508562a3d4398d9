/* Constants the BPF side needs from libc headers it cannot include, and
 * endpoint helpers shared by the redirect programs. */
#ifndef SG_BPF_NET_H
#define SG_BPF_NET_H

/* linux/bpf.h first: the libbpf headers use its types. */
/* clang-format off */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/* clang-format on */

#include "sockgate/abi/sockgate_abi.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOL_IP 0
#define SOL_IPV6 41
#define ENOENT 2
#define EINVAL 22
#define ERANGE 34
#define ECONNREFUSED 111
#define EISCONN 106
#define ENOMEM 12

static __always_inline int sg_is_v4_mapped(const __u32 w[4]) {
  return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* Fills an endpoint from four IPv6 words, storing a v4-mapped address as IPv4
 * so that both ends of a dual-stack flow build the same key. */
static __always_inline void sg_endpoint_from_ip6(struct sg_endpoint *ep, const __u32 w[4],
                                                 __be16 port) {
  __u32 *a = (__u32 *)ep->addr;
  ep->port = port;
  if (sg_is_v4_mapped(w)) {
    ep->family = AF_INET;
    a[0] = w[3];
    a[1] = a[2] = a[3] = 0;
  } else {
    ep->family = AF_INET6;
    a[0] = w[0];
    a[1] = w[1];
    a[2] = w[2];
    a[3] = w[3];
  }
}

static __always_inline void sg_endpoint_from_ip4(struct sg_endpoint *ep, __u32 ip4, __be16 port) {
  __u32 *a = (__u32 *)ep->addr;
  ep->family = AF_INET;
  ep->port = port;
  a[0] = ip4;
  a[1] = a[2] = a[3] = 0;
}

#endif
