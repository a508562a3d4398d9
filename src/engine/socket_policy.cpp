#include "engine/socket_policy.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <span>

namespace sockgate {
namespace {

constexpr uint32_t kAny = SG_SOCK_ANY;
constexpr uint32_t kTypeMask = 0xf;  // SOCK_TYPE_MASK: what remains of type without flags

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

struct Name {
  std::string_view name;  // as the policy spells it
  uint32_t value;
  std::string_view symbol;  // as events print it
};

// Linux's names without the AF_ prefix, lower case (the families a socket
// guard is likely to name; any other is allowed by number).
constexpr Name kFamilies[] = {
    {"unix", AF_UNIX, "AF_UNIX"},
    {"local", AF_UNIX, "AF_UNIX"},
    {"inet", AF_INET, "AF_INET"},
    {"ax25", AF_AX25, "AF_AX25"},
    {"ipx", AF_IPX, "AF_IPX"},
    {"appletalk", AF_APPLETALK, "AF_APPLETALK"},
    {"x25", AF_X25, "AF_X25"},
    {"inet6", AF_INET6, "AF_INET6"},
    {"key", AF_KEY, "AF_KEY"},
    {"netlink", AF_NETLINK, "AF_NETLINK"},
    {"packet", AF_PACKET, "AF_PACKET"},
    {"rds", AF_RDS, "AF_RDS"},
    {"pppox", AF_PPPOX, "AF_PPPOX"},
    {"llc", AF_LLC, "AF_LLC"},
    {"ib", AF_IB, "AF_IB"},
    {"mpls", AF_MPLS, "AF_MPLS"},
    {"can", AF_CAN, "AF_CAN"},
    {"tipc", AF_TIPC, "AF_TIPC"},
    {"bluetooth", AF_BLUETOOTH, "AF_BLUETOOTH"},
    {"rxrpc", AF_RXRPC, "AF_RXRPC"},
    {"isdn", AF_ISDN, "AF_ISDN"},
    {"phonet", AF_PHONET, "AF_PHONET"},
    {"ieee802154", AF_IEEE802154, "AF_IEEE802154"},
    {"caif", AF_CAIF, "AF_CAIF"},
    {"alg", AF_ALG, "AF_ALG"},
    {"nfc", AF_NFC, "AF_NFC"},
    {"vsock", AF_VSOCK, "AF_VSOCK"},
    {"kcm", AF_KCM, "AF_KCM"},
    {"qipcrtr", AF_QIPCRTR, "AF_QIPCRTR"},
    {"smc", AF_SMC, "AF_SMC"},
    {"xdp", AF_XDP, "AF_XDP"},
    {"mctp", AF_MCTP, "AF_MCTP"},
};
constexpr Name kTypes[] = {{"stream", SOCK_STREAM, "SOCK_STREAM"},
                           {"dgram", SOCK_DGRAM, "SOCK_DGRAM"},
                           {"raw", SOCK_RAW, "SOCK_RAW"},
                           {"rdm", SOCK_RDM, "SOCK_RDM"},
                           {"seqpacket", SOCK_SEQPACKET, "SOCK_SEQPACKET"},
                           {"dccp", SOCK_DCCP, "SOCK_DCCP"},
                           {"packet", SOCK_PACKET, "SOCK_PACKET"}};
// IP protocol numbers (what inet/inet6 sockets take); other families take
// their own numbers (AF_PACKET: an ethertype in network order, e.g. 768 for
// ETH_P_ALL), written as numbers.
constexpr Name kProtocols[] = {{"ip", 0, "0"},       {"icmp", 1, "1"},     {"igmp", 2, "2"},
                               {"tcp", 6, "6"},      {"udp", 17, "17"},    {"ipv6", 41, "41"},
                               {"gre", 47, "47"},    {"esp", 50, "50"},    {"ah", 51, "51"},
                               {"icmpv6", 58, "58"}, {"sctp", 132, "132"}, {"udplite", 136, "136"},
                               {"raw", 255, "255"},  {"mptcp", 262, "262"}};

std::string symbolOf(std::span<const Name> names, uint32_t value) {
  for (const auto& n : names)
    if (n.value == value) return std::string(n.symbol);
  return std::to_string(value);
}

// A name from the table, a decimal number up to max, or "*".
std::optional<uint32_t> field(std::string_view tok, std::span<const Name> names, uint32_t max) {
  if (tok == "*") return kAny;
  for (const auto& n : names)
    if (n.name == tok) return n.value;
  if (tok.empty() || tok.size() > 10) return std::nullopt;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (ec != std::errc() || end != tok.data() + tok.size() || v > max) return std::nullopt;
  return v;
}

std::unexpected<Error> clauseError(size_t index, std::string_view clause, const std::string& why) {
  return fail(EINVAL, "socket policy clause " + std::to_string(index + 1) + " '" +
                          std::string(clause) + "': " + why);
}

bool fieldMatches(uint32_t rule, uint32_t value) { return rule == kAny || rule == value; }

}  // namespace

Result<SocketPolicy> parseSocketPolicy(std::string_view text) {
  SocketPolicy policy;
  size_t index = 0;
  for (std::string_view raw : split(text, ';')) {
    std::string_view clause = trim(raw);
    if (clause.empty()) continue;  // "a; b;" and blank clauses
    size_t sp = clause.find_first_of(" \t\r\n");
    if (sp == std::string_view::npos)
      return clauseError(index, clause, "expected 'audit|deny TARGET[,TARGET...]'");
    std::string_view action = clause.substr(0, sp);
    uint32_t act = 0;
    if (action == "audit")
      act = SG_SOCK_AUDIT;
    else if (action == "deny")
      act = SG_SOCK_DENY;
    else
      return clauseError(index, clause,
                         "unknown action '" + std::string(action) + "' (audit or deny)");
    std::string normal(action);
    normal += ' ';
    bool first = true;
    for (std::string_view t : split(trim(clause.substr(sp)), ',')) {
      std::string_view target = trim(t);
      if (target.empty()) return clauseError(index, clause, "empty target");
      sg_sock_rule r{kAny, kAny, kAny, act};
      if (target == "raw") {
        r.type = SOCK_RAW;
      } else if (target == "packet") {
        r.family = AF_PACKET;
      } else {
        auto parts = split(target, '/');
        if (parts.size() > 3)
          return clauseError(
              index, clause,
              "target '" + std::string(target) + "' has more than FAMILY/TYPE/PROTOCOL");
        auto family = field(parts[0], kFamilies, AF_MAX - 1);
        if (!family)
          return clauseError(index, clause,
                             "unknown family '" + std::string(parts[0]) + "' in target '" +
                                 std::string(target) + "'");
        r.family = *family;
        if (parts.size() > 1) {
          auto type = field(parts[1], kTypes, kTypeMask);
          if (!type)
            return clauseError(index, clause,
                               "unknown type '" + std::string(parts[1]) + "' in target '" +
                                   std::string(target) + "'");
          r.type = *type;
        }
        if (parts.size() > 2) {
          auto proto = field(parts[2], kProtocols, 65535);
          if (!proto)
            return clauseError(index, clause,
                               "unknown protocol '" + std::string(parts[2]) + "' in target '" +
                                   std::string(target) + "'");
          r.protocol = *proto;
          // "inet/stream/0" names the socket the kernel makes TCP: say so,
          // or the rule could never match what the hooks see.
          if (r.family != kAny && r.type != kAny && r.protocol == 0)
            r.protocol = SocketPolicy::effectiveProtocol(r.family, r.type, 0);
        }
      }
      if (policy.rules.size() >= SG_SOCK_MAX_RULES)
        return clauseError(
            index, clause,
            "more than " + std::to_string(SG_SOCK_MAX_RULES) + " targets in the policy");
      policy.rules.push_back({r, policy.clauses.size()});
      if (!first) normal += ',';
      normal += target;
      first = false;
    }
    policy.clauses.push_back(std::move(normal));
    ++index;
  }
  if (policy.rules.empty()) return fail(EINVAL, "socket policy: no clause");
  return policy;
}

std::optional<SocketMatch> SocketPolicy::match(uint32_t family, uint32_t type,
                                               uint32_t protocol) const {
  type &= kTypeMask;
  protocol = effectiveProtocol(family, type, protocol);
  std::optional<SocketMatch> audit;
  for (size_t i = 0; i < rules.size(); ++i) {
    const sg_sock_rule& r = rules[i].kernel;
    if (!fieldMatches(r.family, family) || !fieldMatches(r.type, type) ||
        !fieldMatches(r.protocol, protocol))
      continue;
    if (r.action == SG_SOCK_DENY) return SocketMatch{SG_SOCK_DENY, i};
    if (!audit) audit = SocketMatch{SG_SOCK_AUDIT, i};
  }
  return audit;
}

std::vector<uint32_t> SocketPolicy::nonInetFamilies() const {
  std::vector<uint32_t> out;
  for (const auto& r : rules) {
    uint32_t f = r.kernel.family;
    if (f == kAny || f == AF_INET || f == AF_INET6) continue;
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool SocketPolicy::anyFamily() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const SocketRule& r) { return r.kernel.family == kAny; });
}

uint32_t SocketPolicy::effectiveProtocol(uint32_t family, uint32_t type, uint32_t protocol) {
  if ((family == AF_INET || family == AF_INET6) && protocol == 0) {
    if ((type & kTypeMask) == SOCK_STREAM) return IPPROTO_TCP;
    if ((type & kTypeMask) == SOCK_DGRAM) return IPPROTO_UDP;
  }
  return protocol;
}

std::string socketFamilyName(uint32_t family) { return symbolOf(kFamilies, family); }

std::string socketTypeName(uint32_t type) { return symbolOf(kTypes, type & kTypeMask); }

std::string formatSocketEvent(const SocketPolicy& policy, const sg_sock_event& e) {
  std::string comm(e.comm, strnlen(e.comm, SG_COMM_LEN));
  std::string out = "pid " + std::to_string(e.tgid) + " (" + comm + ") uid " +
                    std::to_string(e.uid) + ": socket(" + socketFamilyName(e.family) + ", " +
                    socketTypeName(e.type) + ", " + std::to_string(e.protocol) + ") " +
                    (e.action == SG_SOCK_DENY ? "denied" : "audited") + " by ";
  if (e.rule < policy.rules.size())
    out += "'" + policy.clauses[policy.rules[e.rule].clause] + "'";
  else
    out += "rule " + std::to_string(e.rule);
  return out;
}

}  // namespace sockgate
