/* kernel_relay: the sk_skb half of bench/kernel_relay.cpp. Each of a
 * relay's two sockets sits in `relay_targets` and `relay_socks` under its
 * own cookie, and `relay_peer` maps a cookie to the other socket's; every
 * segment that arrives on one is sent out of the other without waking user
 * space.
 *
 * Two sockhashes because a socket starts redirecting the moment it joins
 * the one that carries the verdict program: if its peer were not a member
 * yet, the redirect would fail and the segment be dropped. So both join
 * `relay_targets` (no program: their data waits in their receive queues)
 * before either joins `relay_socks`. */
/* clang-format off */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} relay_socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} relay_targets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} relay_peer SEC(".maps");

SEC("sk_skb/stream_verdict")
int relay_verdict(struct __sk_buff *skb) {
  /* The peer's FIN reaches the verdict as an empty segment; redirected,
   * the other socket's psock backlog "sends" 0 bytes, takes that for a
   * broken pipe and stops sending (EPIPE on that socket, its replies lost).
   * TCP has already taken the FIN into account, so it can go. */
  if (skb->len == 0) return SK_DROP;
  __u64 self = bpf_get_socket_cookie(skb);
  __u64 *other = bpf_map_lookup_elem(&relay_peer, &self);
  if (!other) return SK_PASS;
  __u64 key = *other;
  return bpf_sk_redirect_hash(skb, &relay_targets, &key, 0); /* 0: the other socket's egress */
}
