// Socket-creation policy: "audit raw,packet; deny packet".
//
//   policy  = clause { ";" clause }
//   clause  = ACTION TARGET { "," TARGET }        ACTION: audit | deny
//   TARGET  = raw                                 type SOCK_RAW, any family
//           | packet                              AF_PACKET, any type
//           | FAMILY [ "/" TYPE [ "/" PROTOCOL ] ]
//   FAMILY  = Linux's AF_ name, lower case, without AF_: inet | inet6 | unix |
//             packet | netlink | bluetooth | can | vsock | alg | xdp | ...
//             | number | *
//   TYPE    = stream | dgram | raw | rdm | seqpacket | dccp | packet | number | *
//   PROTOCOL= ip | icmp | igmp | tcp | udp | ipv6 | gre | esp | ah | icmpv6 |
//             sctp | udplite | raw | mptcp | number | *
//
// A socket matched by a deny rule is denied (deny wins over audit);
// otherwise one matched by an audit rule is audited. An inet/inet6 socket
// asked for with protocol 0 is matched as the protocol the kernel gives it
// (stream: tcp, dgram: udp), so 'deny inet/stream/tcp' also stops
// socket(AF_INET, SOCK_STREAM, 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/error.h"

namespace sockgate {

struct SocketRule {
  sg_sock_rule kernel{};  // family/type/protocol (SG_SOCK_ANY) and action
  size_t clause = 0;      // index into SocketPolicy::clauses
};

struct SocketMatch {
  uint32_t action = 0;  // SG_SOCK_AUDIT or SG_SOCK_DENY
  size_t rule = 0;      // index into SocketPolicy::rules
};

struct SocketPolicy {
  std::vector<std::string> clauses;  // normalised: "deny packet,raw"
  std::vector<SocketRule> rules;     // at most SG_SOCK_MAX_RULES

  // type may carry SOCK_NONBLOCK/SOCK_CLOEXEC; they are ignored.
  [[nodiscard]] std::optional<SocketMatch> match(uint32_t family, uint32_t type,
                                                 uint32_t protocol) const;
  // Families other than AF_INET/AF_INET6 a rule names (sorted, unique), and
  // whether some rule matches any family (then every other family counts).
  [[nodiscard]] std::vector<uint32_t> nonInetFamilies() const;
  [[nodiscard]] bool anyFamily() const;

  // protocol 0 of an AF_INET/AF_INET6 stream or dgram socket as the kernel
  // resolves it (IPPROTO_TCP, IPPROTO_UDP); any other protocol as it is.
  static uint32_t effectiveProtocol(uint32_t family, uint32_t type, uint32_t protocol);
};

Result<SocketPolicy> parseSocketPolicy(std::string_view text);

// "AF_PACKET" / "SOCK_RAW", or the number.
std::string socketFamilyName(uint32_t family);
std::string socketTypeName(uint32_t type);

// "pid 1234 (ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied by 'deny raw'"
std::string formatSocketEvent(const SocketPolicy& policy, const sg_sock_event& e);

}  // namespace sockgate
