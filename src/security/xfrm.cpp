#include "security/xfrm.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sockgate::security {
namespace {

constexpr uint8_t kProtoEsp = IPPROTO_ESP;
constexpr uint8_t kProtoAh = IPPROTO_AH;
// How often an interrupted dump (NLM_F_DUMP_INTR: the SPD changed under it)
// is retried before the query gives up with EINTR.
constexpr int kDumpAttempts = 3;
constexpr size_t kAlgNameSize = 64;  // sizeof(xfrm_algo::alg_name)

std::array<uint8_t, 16> copyAddress(const xfrm_address_t& address) {
  std::array<uint8_t, 16> out{};
  std::memcpy(out.data(), &address, sizeof(address));
  return out;
}

XfrmSelector convertSelector(const xfrm_selector& in) {
  XfrmSelector out;
  out.family = in.family;
  out.daddr = copyAddress(in.daddr);
  out.saddr = copyAddress(in.saddr);
  out.dport = ntohs(in.dport);
  out.dportMask = ntohs(in.dport_mask);
  out.sport = ntohs(in.sport);
  out.sportMask = ntohs(in.sport_mask);
  out.prefixlenD = in.prefixlen_d;
  out.prefixlenS = in.prefixlen_s;
  out.proto = in.proto;
  out.ifindex = in.ifindex;
  return out;
}

// The attributes of one message, each checked for its minimum length.
struct Attributes {
  std::array<const nlattr*, XFRMA_MAX + 1> table{};
};

int collectAttribute(const nlattr* attr, void* data) {
  auto* attrs = static_cast<Attributes*>(data);
  const uint16_t type = mnl_attr_get_type(attr);
  // Unknown (newer-kernel) attributes are ignored, not an error.
  if (type <= XFRMA_MAX) attrs->table[type] = attr;
  return MNL_CB_OK;
}

Result<Attributes> parseAttributes(const nlmsghdr& message, size_t headerSize, const char* what) {
  Attributes attrs;
  if (mnl_attr_parse(&message, static_cast<unsigned>(headerSize), collectAttribute, &attrs) ==
      MNL_CB_ERROR) {
    return fail(EBADMSG, std::string(what) + ": malformed attributes");
  }
  return attrs;
}

Status readAlgorithmName(const nlattr* attr, size_t minimum, std::string* out, const char* what) {
  if (attr == nullptr) return {};
  if (mnl_attr_get_payload_len(attr) < minimum) {
    return fail(EBADMSG, std::string(what) + ": algorithm attribute too short");
  }
  const auto* name = static_cast<const char*>(mnl_attr_get_payload(attr));
  // The name is a fixed 64-byte field; never trust it to be terminated.
  out->assign(name, strnlen(name, kAlgNameSize));
  return {};
}

std::optional<XfrmMark> readMark(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < sizeof(xfrm_mark)) return std::nullopt;
  xfrm_mark mark{};
  std::memcpy(&mark, mnl_attr_get_payload(attr), sizeof(mark));
  return XfrmMark{mark.v, mark.m};
}

uint32_t readU32(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_get_payload_len(attr) < sizeof(uint32_t)) return 0;
  uint32_t value = 0;
  std::memcpy(&value, mnl_attr_get_payload(attr), sizeof(value));
  return value;
}

bool prefixMatches(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                   unsigned prefix, int family) {
  const unsigned maxBits = family == AF_INET ? 32 : 128;
  // The kernel treats prefixlen 0 as "any"; larger-than-address prefixes
  // (which the kernel refuses) compare the whole address.
  prefix = std::min(prefix, maxBits);
  const unsigned fullBytes = prefix / 8;
  if (std::memcmp(a.data(), b.data(), fullBytes) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return ((a[fullBytes] ^ b[fullBytes]) & mask) == 0;
}

bool addressIsAny(const std::array<uint8_t, 16>& a, int family) {
  const size_t n = family == AF_INET ? 4 : 16;
  return std::all_of(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n),
                     [](uint8_t b) { return b == 0; });
}

bool addressEquals(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int family) {
  return std::memcmp(a.data(), b.data(), family == AF_INET ? 4 : 16) == 0;
}

bool markMatches(const std::optional<XfrmMark>& mark, uint32_t socketMark) {
  if (!mark) return true;
  return (socketMark & mark->mask) == mark->value;
}

// The selector names exactly one flow: full-length prefixes, both ports and
// the protocol. Only such a per-socket policy can be attributed to a socket.
bool pinsFlow(const XfrmSelector& s, const DirectedFlow& flow) {
  const unsigned bits = flow.family == AF_INET ? 32 : 128;
  return s.prefixlenD >= bits && s.prefixlenS >= bits && s.dportMask == 0xffff &&
         s.sportMask == 0xffff && s.proto == flow.proto && selectorMatches(s, flow);
}

bool stateSatisfies(const XfrmState& state, const XfrmTemplate& tmpl, const DirectedFlow& flow,
                    uint32_t socketMark) {
  if (state.spi == 0) return false;  // a larval (acquire) state protects nothing yet
  if (state.proto != tmpl.proto || state.mode != tmpl.mode) return false;
  if (tmpl.spi != 0 && state.spi != tmpl.spi) return false;
  if (tmpl.reqid != 0 && state.reqid != tmpl.reqid) return false;
  if (state.ifId != 0 || !markMatches(state.mark, socketMark)) return false;
  if (tmpl.proto == kProtoEsp && state.aead.empty() && state.encryption.empty()) return false;
  if (tmpl.proto == kProtoAh && state.authentication.empty()) return false;
  if (tmpl.mode == XFRM_MODE_TUNNEL || tmpl.mode == XFRM_MODE_BEET) {
    // Outer addresses come from the template; a wildcard source is filled
    // from the route by the kernel, so any source is accepted.
    const int family = tmpl.family != 0 ? tmpl.family : flow.family;
    if (state.family != family) return false;
    if (!addressEquals(state.daddr, tmpl.daddr, family)) return false;
    if (!addressIsAny(tmpl.saddr, family) && !addressEquals(state.saddr, tmpl.saddr, family))
      return false;
  } else {
    if (state.family != flow.family) return false;
    if (!addressEquals(state.daddr, flow.daddr, flow.family)) return false;
    if (!addressEquals(state.saddr, flow.saddr, flow.family)) return false;
  }
  // An SA bound to a selector only carries the flows it selects.
  if (state.selector.family != 0 && !selectorMatches(state.selector, flow)) return false;
  return true;
}

const XfrmPolicy* choosePolicy(const std::vector<const XfrmPolicy*>& candidates) {
  const XfrmPolicy* best = nullptr;
  for (const XfrmPolicy* p : candidates) {
    if (best == nullptr || p->priority < best->priority ||
        (p->priority == best->priority && p->index < best->index)) {
      best = p;
    }
  }
  return best;
}

IpsecDirection evaluateDirection(const std::vector<XfrmPolicy>& policies,
                                 const std::vector<XfrmState>& states, const DirectedFlow& flow,
                                 uint8_t dir, uint32_t socketMark,
                                 std::vector<std::string>& notes) {
  IpsecDirection out;
  const char* dirName = dir == XFRM_POLICY_OUT ? "out" : "in";
  const XfrmPolicy* chosen = nullptr;
  // A per-socket policy overrides the SPD for its socket.
  std::vector<const XfrmPolicy*> socketPolicies;
  std::vector<const XfrmPolicy*> sub;
  std::vector<const XfrmPolicy*> main;
  for (const XfrmPolicy& p : policies) {
    if (p.selector.family != flow.family) continue;
    if (!markMatches(p.mark, socketMark)) continue;
    const bool isSocket = p.dir == XFRM_POLICY_MAX + dir;
    if (!isSocket && p.dir != dir) continue;
    if (!selectorMatches(p.selector, flow)) continue;
    if (p.ifId != 0) {
      notes.push_back("policy " + std::to_string(p.index) + " (" + dirName +
                      ") applies only through an xfrm interface; not counted");
      continue;
    }
    if (isSocket) {
      if (pinsFlow(p.selector, flow)) {
        socketPolicies.push_back(&p);
      } else {
        notes.push_back("per-socket policy " + std::to_string(p.index) + " (" + dirName +
                        ") covers this flow but the kernel does not say which socket holds it; "
                        "not counted");
      }
      continue;
    }
    (p.type == XFRM_POLICY_TYPE_SUB ? sub : main).push_back(&p);
  }
  if (!socketPolicies.empty()) {
    chosen = choosePolicy(socketPolicies);
    out.socketPolicy = true;
  } else if (!sub.empty()) {
    chosen = choosePolicy(sub);
  } else {
    chosen = choosePolicy(main);
  }
  if (chosen == nullptr) return out;
  out.policyFound = true;
  out.policyIndex = chosen->index;
  out.policyAction = chosen->action;
  if (chosen->action != XFRM_POLICY_ALLOW) return out;
  for (const XfrmTemplate& t : chosen->templates) {
    if (t.proto == kProtoEsp || t.proto == kProtoAh) out.requiresIpsec = true;
  }
  if (!out.requiresIpsec) return out;
  out.allTemplatesHaveSa = true;
  for (const XfrmTemplate& t : chosen->templates) {
    const auto it = std::find_if(states.begin(), states.end(), [&](const XfrmState& s) {
      return stateSatisfies(s, t, flow, socketMark);
    });
    if (it == states.end()) {
      if (!t.optional) out.allTemplatesHaveSa = false;
      continue;
    }
    out.sas.push_back(toIpsecSa(*it));
  }
  return out;
}

bool directionSecured(const IpsecDirection& d) {
  return d.requiresIpsec && d.allTemplatesHaveSa &&
         std::any_of(d.sas.begin(), d.sas.end(), [](const IpsecSa& sa) {
           return sa.proto == kProtoEsp || sa.proto == kProtoAh;
         });
}

bool directionEncrypted(const IpsecDirection& d) {
  return std::any_of(d.sas.begin(), d.sas.end(), [](const IpsecSa& sa) { return sa.encrypts(); });
}

template <class T, class Parse>
Result<BatchEnd> parseBatch(std::span<const uint8_t> bytes, std::vector<T>& out, Parse parse) {
  return walkReplies(bytes, 0, 0, [&](const nlmsghdr& message) -> Status {
    auto item = parse(message);
    if (!item) return std::unexpected(std::move(item.error()));
    if (*item) out.push_back(std::move(**item));
    return {};
  });
}

template <class T, class Parse>
Result<std::vector<T>> dump(uint16_t type, const char* what, Parse parse) {
  for (int attempt = 1;; ++attempt) {
    auto channel = NetlinkChannel::open(NETLINK_XFRM, what);
    if (!channel) return std::unexpected(std::move(channel.error()));
    auto request = buildXfrmDumpRequest(type);
    std::vector<T> out;
    Status status = channel->transact(reinterpret_cast<nlmsghdr*>(request.data()), true,
                                      [&](const nlmsghdr& message) -> Status {
                                        auto item = parse(message);
                                        if (!item) return std::unexpected(std::move(item.error()));
                                        if (*item) out.push_back(std::move(**item));
                                        return {};
                                      });
    if (status) return out;
    if (status.error().code != EINTR || attempt == kDumpAttempts) {
      return std::unexpected(std::move(status.error()));
    }
  }
}

}  // namespace

Result<std::optional<XfrmPolicy>> parseXfrmPolicy(const nlmsghdr& message) {
  if (message.nlmsg_type != XFRM_MSG_NEWPOLICY) return std::optional<XfrmPolicy>{};
  xfrm_userpolicy_info info{};
  if (!readPayload(message, &info)) return fail(EBADMSG, "xfrm policy: message too short");
  auto attrs = parseAttributes(message, sizeof(info), "xfrm policy");
  if (!attrs) return std::unexpected(std::move(attrs.error()));
  XfrmPolicy policy;
  policy.selector = convertSelector(info.sel);
  policy.priority = info.priority;
  policy.index = info.index;
  policy.dir = info.dir;
  policy.action = info.action;
  if (const nlattr* tmpl = attrs->table[XFRMA_TMPL]) {
    const size_t len = mnl_attr_get_payload_len(tmpl);
    if (len % sizeof(xfrm_user_tmpl) != 0)
      return fail(EBADMSG, "xfrm policy: template array length");
    const auto* base = static_cast<const uint8_t*>(mnl_attr_get_payload(tmpl));
    for (size_t off = 0; off < len; off += sizeof(xfrm_user_tmpl)) {
      xfrm_user_tmpl t{};
      std::memcpy(&t, base + off, sizeof(t));
      XfrmTemplate out;
      out.proto = t.id.proto;
      out.family = t.family;
      out.daddr = copyAddress(t.id.daddr);
      out.saddr = copyAddress(t.saddr);
      out.spi = ntohl(t.id.spi);
      out.reqid = t.reqid;
      out.mode = t.mode;
      out.optional = t.optional != 0;
      policy.templates.push_back(out);
    }
  }
  if (const nlattr* type = attrs->table[XFRMA_POLICY_TYPE]) {
    if (mnl_attr_get_payload_len(type) < sizeof(xfrm_userpolicy_type)) {
      return fail(EBADMSG, "xfrm policy: type attribute too short");
    }
    xfrm_userpolicy_type t{};
    std::memcpy(&t, mnl_attr_get_payload(type), sizeof(t));
    policy.type = t.type;
  }
  policy.mark = readMark(attrs->table[XFRMA_MARK]);
  policy.ifId = readU32(attrs->table[XFRMA_IF_ID]);
  return std::optional<XfrmPolicy>(std::move(policy));
}

Result<std::optional<XfrmState>> parseXfrmState(const nlmsghdr& message) {
  if (message.nlmsg_type != XFRM_MSG_NEWSA) return std::optional<XfrmState>{};
  xfrm_usersa_info info{};
  if (!readPayload(message, &info)) return fail(EBADMSG, "xfrm state: message too short");
  auto attrs = parseAttributes(message, sizeof(info), "xfrm state");
  if (!attrs) return std::unexpected(std::move(attrs.error()));
  XfrmState state;
  state.selector = convertSelector(info.sel);
  state.daddr = copyAddress(info.id.daddr);
  state.saddr = copyAddress(info.saddr);
  state.spi = ntohl(info.id.spi);
  state.proto = info.id.proto;
  state.reqid = info.reqid;
  state.family = info.family;
  state.mode = info.mode;
  const auto& t = attrs->table;
  // Only names are read; the key bytes that follow them are never copied.
  if (auto s =
          readAlgorithmName(t[XFRMA_ALG_AEAD], sizeof(xfrm_algo_aead), &state.aead, "xfrm state");
      !s) {
    return std::unexpected(std::move(s.error()));
  }
  if (auto s =
          readAlgorithmName(t[XFRMA_ALG_CRYPT], sizeof(xfrm_algo), &state.encryption, "xfrm state");
      !s) {
    return std::unexpected(std::move(s.error()));
  }
  // AUTH_TRUNC (what iproute2 installs) and plain AUTH both name the MAC.
  if (auto s = readAlgorithmName(t[XFRMA_ALG_AUTH_TRUNC], sizeof(xfrm_algo_auth),
                                 &state.authentication, "xfrm state");
      !s) {
    return std::unexpected(std::move(s.error()));
  }
  if (state.authentication.empty()) {
    if (auto s = readAlgorithmName(t[XFRMA_ALG_AUTH], sizeof(xfrm_algo), &state.authentication,
                                   "xfrm state");
        !s) {
      return std::unexpected(std::move(s.error()));
    }
  }
  if (auto s =
          readAlgorithmName(t[XFRMA_ALG_COMP], sizeof(xfrm_algo), &state.compression, "xfrm state");
      !s) {
    return std::unexpected(std::move(s.error()));
  }
  state.mark = readMark(t[XFRMA_MARK]);
  state.ifId = readU32(t[XFRMA_IF_ID]);
  return std::optional<XfrmState>(std::move(state));
}

Result<BatchEnd> parseXfrmPolicyBatch(std::span<const uint8_t> bytes,
                                      std::vector<XfrmPolicy>& out) {
  return parseBatch(bytes, out, parseXfrmPolicy);
}

Result<BatchEnd> parseXfrmStateBatch(std::span<const uint8_t> bytes, std::vector<XfrmState>& out) {
  return parseBatch(bytes, out, parseXfrmState);
}

std::vector<uint32_t> buildXfrmDumpRequest(uint16_t type) {
  // A bare header: both dumps take no filter, and the SA dump parses any
  // payload as attributes.
  std::vector<uint32_t> buffer((MNL_NLMSG_HDRLEN + 3) / 4);
  nlmsghdr* header = mnl_nlmsg_put_header(buffer.data());
  header->nlmsg_type = type;
  header->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  return buffer;
}

Result<std::vector<XfrmPolicy>> dumpXfrmPolicies() {
  return dump<XfrmPolicy>(XFRM_MSG_GETPOLICY, "xfrm policy dump", parseXfrmPolicy);
}

Result<std::vector<XfrmState>> dumpXfrmStates() {
  return dump<XfrmState>(XFRM_MSG_GETSA, "xfrm state dump", parseXfrmState);
}

DirectedFlow outboundOf(const Flow& flow) {
  DirectedFlow d;
  d.family = flow.local.family();
  d.proto = static_cast<uint8_t>(flow.protocol);
  d.saddr = flow.local.addressBytes();
  d.daddr = flow.remote.addressBytes();
  d.sport = flow.local.port();
  d.dport = flow.remote.port();
  return d;
}

DirectedFlow inboundOf(const Flow& flow) {
  DirectedFlow d = outboundOf(flow);
  std::swap(d.saddr, d.daddr);
  std::swap(d.sport, d.dport);
  return d;
}

bool selectorMatches(const XfrmSelector& s, const DirectedFlow& flow) {
  if (s.family != flow.family) return false;
  if (!prefixMatches(s.daddr, flow.daddr, s.prefixlenD, flow.family)) return false;
  if (!prefixMatches(s.saddr, flow.saddr, s.prefixlenS, flow.family)) return false;
  if (((flow.dport ^ s.dport) & s.dportMask) != 0) return false;
  if (((flow.sport ^ s.sport) & s.sportMask) != 0) return false;
  if (s.proto != 0 && s.proto != flow.proto) return false;
  return s.ifindex == 0;
}

bool saEncrypts(const XfrmState& state) { return toIpsecSa(state).encrypts(); }

IpsecSa toIpsecSa(const XfrmState& state) {
  IpsecSa sa;
  sa.proto = state.proto;
  sa.mode = static_cast<IpsecMode>(std::min<uint8_t>(state.mode, XFRM_MODE_BEET));
  sa.spi = state.spi;
  sa.reqid = state.reqid;
  sa.family = state.family;
  sa.source = Endpoint::fromAddressBytes(state.family, state.saddr);
  sa.destination = Endpoint::fromAddressBytes(state.family, state.daddr);
  sa.aead = state.aead;
  sa.encryption = state.encryption;
  sa.authentication = state.authentication;
  sa.compression = state.compression;
  return sa;
}

IpsecStatus evaluateIpsec(const std::vector<XfrmPolicy>& policies,
                          const std::vector<XfrmState>& states, const Flow& flow,
                          const SocketXfrmContext& context) {
  IpsecStatus status;
  status.policiesSeen = policies.size();
  status.statesSeen = states.size();
  status.outbound = evaluateDirection(policies, states, outboundOf(flow), XFRM_POLICY_OUT,
                                      context.mark, status.notes);
  status.inbound = evaluateDirection(policies, states, inboundOf(flow), XFRM_POLICY_IN,
                                     context.mark, status.notes);
  status.secured = directionSecured(status.outbound) && directionSecured(status.inbound);
  status.encrypted =
      status.secured && directionEncrypted(status.outbound) && directionEncrypted(status.inbound);
  return status;
}

}  // namespace sockgate::security

namespace sockgate {

bool IpsecSa::encrypts() const {
  if (proto != IPPROTO_ESP) return false;
  // rfc4543 is AES-GMAC: an AEAD that authenticates and does not encrypt.
  if (!aead.empty()) return aead.rfind("rfc4543", 0) != 0;
  return !encryption.empty() && encryption != "ecb(cipher_null)" && encryption != "cipher_null";
}

}  // namespace sockgate
