/* connect_floor: the least a redirect that keeps state can cost, for
 * bench/connect_cost's anchors. sockgate's own connect4 does more (the
 * decision, the origin, the listener lookup); these programs keep only what
 * any such design has to pay on the application's connect():
 *
 *   floor_connect4  socket storage for the flow, created on every connect()
 *                   (the size of sockgate's sg_sock_state), as a redirect
 *                   must keep the original destination with the socket;
 *   floor_established  a program on the tracepoint of TCP state changes,
 *                   as sockgate's is, that finds the socket's storage when
 *                   a connection is established and does nothing with it:
 *                   the tracepoint's run on each state change of every
 *                   socket, which is how a flow is published under its
 *                   4-tuple once the source port exists. */
/* clang-format off */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/* clang-format on */

#include "sockgate/abi/sockgate_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct sg_sock_state);
} floor_state SEC(".maps");

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx) {
  if (!ctx->sk) return 1;
  struct sg_sock_state *st =
      bpf_sk_storage_get(&floor_state, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (st) {
    st->flags = 1;
    st->listener.port = (__be16)ctx->user_port;
  }
  return 1;
}

struct sock;

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_established, const struct sock *sk, int oldstate, int newstate) {
  if (newstate != 1 /* TCP_ESTABLISHED */) return 0;
  struct sg_sock_state *st = bpf_sk_storage_get(&floor_state, (struct sock *)sk, 0, 0);
  if (st) st->flags |= 2;
  return 0;
}
