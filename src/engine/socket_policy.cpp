#include "engine/socket_policy.h"

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
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' ||
                        s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                        s.back() == '\r'))
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
  std::string_view name;
  uint32_t value;
};

constexpr Name kFamilies[] = {{"unix", AF_UNIX},       {"inet", AF_INET},
                              {"inet6", AF_INET6},     {"packet", AF_PACKET},
                              {"netlink", AF_NETLINK}};
constexpr Name kTypes[] = {{"stream", SOCK_STREAM},
                           {"dgram", SOCK_DGRAM},
                           {"raw", SOCK_RAW},
                           {"seqpacket", SOCK_SEQPACKET}};
constexpr Name kProtocols[] = {{"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"icmpv6", 58}};

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
      return clauseError(index, clause, "unknown action '" + std::string(action) +
                                            "' (audit or deny)");
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
          return clauseError(index, clause, "target '" + std::string(target) +
                                                "' has more than FAMILY/TYPE/PROTOCOL");
        auto family = field(parts[0], kFamilies, AF_MAX - 1);
        if (!family)
          return clauseError(index, clause, "unknown family '" + std::string(parts[0]) +
                                                "' in target '" + std::string(target) + "'");
        r.family = *family;
        if (parts.size() > 1) {
          auto type = field(parts[1], kTypes, kTypeMask);
          if (!type)
            return clauseError(index, clause, "unknown type '" + std::string(parts[1]) +
                                                  "' in target '" + std::string(target) + "'");
          r.type = *type;
        }
        if (parts.size() > 2) {
          auto proto = field(parts[2], kProtocols, 65535);
          if (!proto)
            return clauseError(index, clause, "unknown protocol '" + std::string(parts[2]) +
                                                  "' in target '" + std::string(target) + "'");
          r.protocol = *proto;
        }
      }
      if (policy.rules.size() >= SG_SOCK_MAX_RULES)
        return clauseError(index, clause, "more than " + std::to_string(SG_SOCK_MAX_RULES) +
                                              " targets in the policy");
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

std::string socketFamilyName(uint32_t family) {
  switch (family) {
    case AF_UNIX: return "AF_UNIX";
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_PACKET: return "AF_PACKET";
    case AF_NETLINK: return "AF_NETLINK";
    default: return std::to_string(family);
  }
}

std::string socketTypeName(uint32_t type) {
  switch (type & kTypeMask) {
    case SOCK_STREAM: return "SOCK_STREAM";
    case SOCK_DGRAM: return "SOCK_DGRAM";
    case SOCK_RAW: return "SOCK_RAW";
    case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
    default: return std::to_string(type & kTypeMask);
  }
}

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
