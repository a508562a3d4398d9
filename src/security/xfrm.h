// The kernel's IPsec state (XFRM) as read over NETLINK_XFRM: policy and SA
// dumps, parsed from reply bytes, and the matching of a flow against them the
// way the kernel's output/input policy lookup does. Parsing and matching are
// pure functions on bytes so they are unit-tested and fuzzed without IPsec.
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "security/netlink.h"
#include "sockgate/error.h"
#include "sockgate/security.h"

namespace sockgate::security {

struct XfrmSelector {
  int family = 0;
  std::array<uint8_t, 16> daddr{};
  std::array<uint8_t, 16> saddr{};
  uint16_t dport = 0;  // host order
  uint16_t dportMask = 0;
  uint16_t sport = 0;
  uint16_t sportMask = 0;
  uint8_t prefixlenD = 0;
  uint8_t prefixlenS = 0;
  uint8_t proto = 0;
  int ifindex = 0;
};

struct XfrmTemplate {
  uint8_t proto = 0;  // IPPROTO_ESP / AH / COMP
  int family = 0;
  std::array<uint8_t, 16> daddr{};
  std::array<uint8_t, 16> saddr{};
  uint32_t spi = 0;  // host order; 0 = any
  uint32_t reqid = 0;
  uint8_t mode = 0;
  bool optional = false;
};

struct XfrmMark {
  uint32_t value = 0;
  uint32_t mask = 0;
};

struct XfrmPolicy {
  XfrmSelector selector;
  uint32_t priority = 0;
  uint32_t index = 0;
  uint8_t dir = 0;  // XFRM_POLICY_IN/OUT/FWD; +XFRM_POLICY_MAX for a per-socket policy
  uint8_t action = 0;
  uint8_t type = 0;  // XFRM_POLICY_TYPE_MAIN / SUB
  std::optional<XfrmMark> mark;
  uint32_t ifId = 0;
  std::vector<XfrmTemplate> templates;
};

struct XfrmState {
  XfrmSelector selector;
  std::array<uint8_t, 16> daddr{};
  std::array<uint8_t, 16> saddr{};
  uint32_t spi = 0;  // host order
  uint8_t proto = 0;
  uint32_t reqid = 0;
  int family = 0;
  uint8_t mode = 0;
  std::string aead;
  std::string encryption;
  std::string authentication;
  std::string compression;
  std::optional<XfrmMark> mark;
  uint32_t ifId = 0;
};

// Parse one reply message of a dump. A message of another type is skipped
// (nullopt); a message of the right type that is malformed is an error.
[[nodiscard]] Result<std::optional<XfrmPolicy>> parseXfrmPolicy(const nlmsghdr& message);
[[nodiscard]] Result<std::optional<XfrmState>> parseXfrmState(const nlmsghdr& message);

// Parse a whole buffer of replies (what one recv returns), appending.
[[nodiscard]] Result<BatchEnd> parseXfrmPolicyBatch(std::span<const uint8_t> bytes,
                                                    std::vector<XfrmPolicy>& out);
[[nodiscard]] Result<BatchEnd> parseXfrmStateBatch(std::span<const uint8_t> bytes,
                                                   std::vector<XfrmState>& out);

// The request a dump sends (XFRM_MSG_GETPOLICY / XFRM_MSG_GETSA + NLM_F_DUMP).
[[nodiscard]] std::vector<uint32_t> buildXfrmDumpRequest(uint16_t type);

// Reads the whole SPD / SAD of the caller's network namespace (CAP_NET_ADMIN).
[[nodiscard]] Result<std::vector<XfrmPolicy>> dumpXfrmPolicies();
[[nodiscard]] Result<std::vector<XfrmState>> dumpXfrmStates();

// One direction of the flow as the kernel's selector sees it.
struct DirectedFlow {
  int family = 0;
  uint8_t proto = 0;
  std::array<uint8_t, 16> saddr{};
  std::array<uint8_t, 16> daddr{};
  uint16_t sport = 0;
  uint16_t dport = 0;
};
[[nodiscard]] DirectedFlow outboundOf(const Flow& flow);
[[nodiscard]] DirectedFlow inboundOf(const Flow& flow);

// xfrm_selector_match: addresses under prefix, ports under mask, proto.
// ifindex-bound selectors never match here (we cannot know the route's
// device cheaply; a miss errs on the side of "not secured").
[[nodiscard]] bool selectorMatches(const XfrmSelector& selector, const DirectedFlow& flow);

// Context of the socket that changes which policy applies.
struct SocketXfrmContext {
  uint32_t mark = 0;  // SO_MARK
};

// Decides both directions from a dump. Policies are what the kernel would
// pick (lowest priority value, then oldest); per-socket policies only count
// when their selector pins this exact flow (the dump does not say which
// socket holds them).
[[nodiscard]] IpsecStatus evaluateIpsec(const std::vector<XfrmPolicy>& policies,
                                        const std::vector<XfrmState>& states, const Flow& flow,
                                        const SocketXfrmContext& context);

// True when the SA really encrypts (ESP with a non-null cipher, or AEAD).
[[nodiscard]] bool saEncrypts(const XfrmState& state);

[[nodiscard]] IpsecSa toIpsecSa(const XfrmState& state);

}  // namespace sockgate::security
