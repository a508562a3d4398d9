// Socket-creation policy: "audit raw,packet; deny packet".
//
//   policy  = clause { ";" clause }
//   clause  = ACTION TARGET { "," TARGET }        ACTION: audit | deny
//   TARGET  = raw                                 type SOCK_RAW, any family
//           | packet                              AF_PACKET, any type
//           | FAMILY [ "/" TYPE [ "/" PROTOCOL ] ]
//   FAMILY  = inet | inet6 | unix | packet | netlink | number | *
//   TYPE    = stream | dgram | raw | seqpacket | number | *
//   PROTOCOL= tcp | udp | icmp | icmpv6 | number | *
//
// A socket matched by a deny rule is denied (deny wins over audit);
// otherwise one matched by an audit rule is audited.
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
};

Result<SocketPolicy> parseSocketPolicy(std::string_view text);

// "AF_PACKET" / "SOCK_RAW", or the number.
std::string socketFamilyName(uint32_t family);
std::string socketTypeName(uint32_t type);

// "pid 1234 (ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied by 'deny raw'"
std::string formatSocketEvent(const SocketPolicy& policy, const sg_sock_event& e);

}  // namespace sockgate
