// The exact-4-tuple socket lookup of NETLINK_SOCK_DIAG (inet_diag): one
// request without NLM_F_DUMP names one socket, and the reply gives its owner
// uid, inode and cgroup. This is how the peer of a loopback TCP/UDP flow is
// found without walking every socket of the system.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "security/netlink.h"
#include "sockgate/endpoint.h"
#include "sockgate/security.h"

namespace sockgate::security {

struct InetDiagSocket {
  int family = 0;  // of the socket itself (AF_INET6 for a dual-stack socket)
  uint8_t state = 0;
  Endpoint local;  // normalised: v4-mapped addresses become AF_INET
  Endpoint remote;
  uint32_t uid = 0;
  uint64_t inode = 0;
  uint64_t cookie = 0;
  std::optional<uint64_t> cgroupId;
};

// The request that looks up the socket whose local end is `local` and remote
// end is `remote`. TCP and UDP fill inet_diag_sockid in opposite orders (the
// kernel's udp_dump_one swaps src and dst "for historical reasons").
[[nodiscard]] std::vector<uint32_t> buildInetDiagRequest(int protocol, const Endpoint& local,
                                                         const Endpoint& remote);

[[nodiscard]] Result<std::optional<InetDiagSocket>> parseInetDiagMessage(const nlmsghdr& message);
[[nodiscard]] Result<BatchEnd> parseInetDiagBatch(std::span<const uint8_t> bytes,
                                                  std::vector<InetDiagSocket>& out);

// Whether a reply is the socket asked for: the kernel's TCP lookup falls back
// to a listener and its UDP lookup to a wildcard-bound socket; a listener is
// never the peer of a flow, a wildcard UDP socket is.
[[nodiscard]] bool replyMatches(int protocol, const InetDiagSocket& reply, const Endpoint& local,
                                const Endpoint& remote);

// Empty when no such socket exists in the caller's network namespace.
// v4-mapped ends are looked up as IPv4 (Endpoint::unmapped), as the kernel
// sees the flow.
[[nodiscard]] Result<std::optional<InetDiagSocket>> findInetSocket(int protocol,
                                                                   const Endpoint& local,
                                                                   const Endpoint& remote);

}  // namespace sockgate::security
