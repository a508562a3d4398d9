// XFRM dump parsing and flow matching on constructed kernel-shaped bytes:
// the IPsec decisions that the host kernel (no ESP/AH) cannot exercise.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "security/xfrm.h"
#include "support/netlink_builder.h"

namespace sockgate::security {
namespace {

using sockgate::testing::addPolicy;
using sockgate::testing::addState;
using sockgate::testing::NetlinkBuilder;
using sockgate::testing::PolicySpec;
using sockgate::testing::selector4;
using sockgate::testing::StateSpec;
using sockgate::testing::transportTemplate;
using sockgate::testing::v4;

Flow tcpFlow(const char* local, uint16_t lport, const char* remote, uint16_t rport) {
  Flow f;
  f.protocol = IPPROTO_TCP;
  f.local = *Endpoint::parse(std::string(local) + ":" + std::to_string(lport));
  f.remote = *Endpoint::parse(std::string(remote) + ":" + std::to_string(rport));
  return f;
}

struct Spd {
  std::vector<XfrmPolicy> policies;
  std::vector<XfrmState> states;
};

Spd parse(const NetlinkBuilder& policies, const NetlinkBuilder& states) {
  Spd out;
  EXPECT_TRUE(parseXfrmPolicyBatch(policies.bytes(), out.policies).has_value());
  EXPECT_TRUE(parseXfrmStateBatch(states.bytes(), out.states).has_value());
  return out;
}

// Policies for both directions of 10.0.0.1:40000 <-> 10.0.0.2:443 requiring `proto`.
void addFlowPolicies(NetlinkBuilder& b, uint8_t proto, uint32_t indexBase = 100) {
  PolicySpec out;
  out.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32, IPPROTO_TCP, 0, 443);
  out.dir = XFRM_POLICY_OUT;
  out.index = indexBase + 1;
  out.templates = {transportTemplate(proto)};
  addPolicy(b, out);
  PolicySpec in = out;
  in.sel = selector4("10.0.0.2", 32, "10.0.0.1", 32, IPPROTO_TCP, 443, 0);
  in.dir = XFRM_POLICY_IN;
  in.index = indexBase + 0;
  addPolicy(b, in);
}

void addFlowStates(NetlinkBuilder& b, uint8_t proto, const std::string& enc,
                   const std::string& auth, const std::string& aead = {}) {
  StateSpec out;
  out.src = v4("10.0.0.1");
  out.dst = v4("10.0.0.2");
  out.proto = proto;
  out.spi = 0x100;
  out.enc = enc;
  out.auth = auth;
  out.aead = aead;
  addState(b, out);
  StateSpec in = out;
  in.src = v4("10.0.0.2");
  in.dst = v4("10.0.0.1");
  in.spi = 0x200;
  addState(b, in);
}

const Flow kFlow = tcpFlow("10.0.0.1", 40000, "10.0.0.2", 443);

TEST(XfrmParse, PolicyFieldsSurviveTheRoundTrip) {
  NetlinkBuilder b;
  PolicySpec spec;
  spec.sel = selector4("192.168.1.0", 24, "10.1.2.3", 32, IPPROTO_UDP, 53, 5353);
  spec.dir = XFRM_POLICY_IN;
  spec.priority = 7;
  spec.index = 0x48;
  auto tmpl = transportTemplate(IPPROTO_AH);
  tmpl.reqid = 9;
  tmpl.optional = 1;
  spec.templates = {transportTemplate(IPPROTO_ESP), tmpl};
  xfrm_mark mark{5, 0xff};
  spec.mark = &mark;
  addPolicy(b, spec);
  b.done();
  std::vector<XfrmPolicy> policies;
  auto end = parseXfrmPolicyBatch(b.bytes(), policies);
  ASSERT_TRUE(end.has_value()) << end.error().message();
  EXPECT_EQ(*end, BatchEnd::kDone);
  ASSERT_EQ(policies.size(), 1u);
  const XfrmPolicy& p = policies[0];
  EXPECT_EQ(p.selector.family, AF_INET);
  EXPECT_EQ(p.selector.prefixlenS, 24);
  EXPECT_EQ(p.selector.sport, 53);
  EXPECT_EQ(p.selector.dport, 5353);
  EXPECT_EQ(p.selector.dportMask, 0xffff);
  EXPECT_EQ(p.selector.proto, IPPROTO_UDP);
  EXPECT_EQ(p.dir, XFRM_POLICY_IN);
  EXPECT_EQ(p.priority, 7u);
  EXPECT_EQ(p.index, 0x48u);
  ASSERT_EQ(p.templates.size(), 2u);
  EXPECT_EQ(p.templates[0].proto, IPPROTO_ESP);
  EXPECT_EQ(p.templates[1].proto, IPPROTO_AH);
  EXPECT_EQ(p.templates[1].reqid, 9u);
  EXPECT_TRUE(p.templates[1].optional);
  ASSERT_TRUE(p.mark.has_value());
  EXPECT_EQ(p.mark->value, 5u);
  EXPECT_EQ(p.mark->mask, 0xffu);
}

TEST(XfrmParse, StateNamesAlgorithmsAndNeverNeedsATerminator) {
  NetlinkBuilder b;
  StateSpec spec;
  spec.src = v4("10.0.0.1");
  spec.dst = v4("10.0.0.2");
  spec.spi = 0xdeadbeef;
  spec.reqid = 3;
  spec.enc = "cbc(aes)";
  spec.auth = std::string(64, 'x');  // fills the whole name field, no NUL
  addState(b, spec);
  std::vector<XfrmState> states;
  ASSERT_TRUE(parseXfrmStateBatch(b.bytes(), states).has_value());
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].spi, 0xdeadbeefu);
  EXPECT_EQ(states[0].reqid, 3u);
  EXPECT_EQ(states[0].encryption, "cbc(aes)");
  EXPECT_EQ(states[0].authentication, std::string(64, 'x'));
  EXPECT_TRUE(saEncrypts(states[0]));
}

TEST(XfrmParse, KernelErrorBecomesItsErrno) {
  NetlinkBuilder b;
  b.error(EPERM);
  std::vector<XfrmPolicy> policies;
  auto end = parseXfrmPolicyBatch(b.bytes(), policies);
  ASSERT_FALSE(end.has_value());
  EXPECT_EQ(end.error().code, EPERM);
}

TEST(XfrmParse, TruncatedPolicyIsRejected) {
  NetlinkBuilder b;
  auto* info = b.begin<xfrm_userpolicy_info>(XFRM_MSG_NEWPOLICY);
  info->sel.family = AF_INET;
  b.end();
  // Claim a shorter message than the fixed header: nlmsg_len says 20 bytes.
  auto bytes = b.bytes();
  auto* h = reinterpret_cast<nlmsghdr*>(bytes.data());
  h->nlmsg_len = NLMSG_HDRLEN + 4;
  bytes.resize(h->nlmsg_len);
  std::vector<XfrmPolicy> policies;
  auto end = parseXfrmPolicyBatch(bytes, policies);
  ASSERT_FALSE(end.has_value());
  EXPECT_EQ(end.error().code, EBADMSG);
}

TEST(XfrmParse, TemplateArrayOfOddLengthIsRejected) {
  NetlinkBuilder b;
  b.begin<xfrm_userpolicy_info>(XFRM_MSG_NEWPOLICY)->sel.family = AF_INET;
  std::vector<uint8_t> half(sizeof(xfrm_user_tmpl) / 2 + 4);
  b.attr(XFRMA_TMPL, half.data(), half.size());
  b.end();
  std::vector<XfrmPolicy> policies;
  EXPECT_FALSE(parseXfrmPolicyBatch(b.bytes(), policies).has_value());
}

TEST(XfrmParse, ShortAlgorithmAttributeIsRejected) {
  NetlinkBuilder b;
  b.begin<xfrm_usersa_info>(XFRM_MSG_NEWSA)->family = AF_INET;
  b.attr(XFRMA_ALG_CRYPT, "aes", 3);
  b.end();
  std::vector<XfrmState> states;
  EXPECT_FALSE(parseXfrmStateBatch(b.bytes(), states).has_value());
}

TEST(XfrmParse, OtherMessageTypesAreSkipped) {
  NetlinkBuilder b;
  b.begin<xfrm_usersa_info>(XFRM_MSG_NEWSA)->family = AF_INET;
  b.end();
  std::vector<XfrmPolicy> policies;
  ASSERT_TRUE(parseXfrmPolicyBatch(b.bytes(), policies).has_value());
  EXPECT_TRUE(policies.empty());
}

TEST(XfrmParse, UnalignedBufferIsAccepted) {
  NetlinkBuilder b;
  addFlowPolicies(b, IPPROTO_ESP);
  std::vector<uint8_t> shifted(b.bytes().size() + 1);
  std::memcpy(shifted.data() + 1, b.bytes().data(), b.bytes().size());
  std::vector<XfrmPolicy> policies;
  ASSERT_TRUE(parseXfrmPolicyBatch(std::span(shifted).subspan(1), policies).has_value());
  EXPECT_EQ(policies.size(), 2u);
}

TEST(XfrmMatch, SelectorPrefixesPortsAndProtocol) {
  XfrmSelector s;
  s.family = AF_INET;
  s.saddr = {10, 0, 0, 0};
  s.prefixlenS = 8;
  s.daddr = {192, 168, 1, 128};
  s.prefixlenD = 25;
  s.dport = 443;
  s.dportMask = 0xffff;
  s.proto = IPPROTO_TCP;
  DirectedFlow f;
  f.family = AF_INET;
  f.proto = IPPROTO_TCP;
  f.saddr = {10, 9, 8, 7};
  f.daddr = {192, 168, 1, 200};
  f.sport = 5555;
  f.dport = 443;
  EXPECT_TRUE(selectorMatches(s, f));
  f.daddr = {192, 168, 1, 127};  // just outside /25
  EXPECT_FALSE(selectorMatches(s, f));
  f.daddr = {192, 168, 1, 200};
  f.dport = 444;
  EXPECT_FALSE(selectorMatches(s, f));
  f.dport = 443;
  f.proto = IPPROTO_UDP;
  EXPECT_FALSE(selectorMatches(s, f));
  f.proto = IPPROTO_TCP;
  f.family = AF_INET6;
  EXPECT_FALSE(selectorMatches(s, f));
  f.family = AF_INET;
  s.ifindex = 3;  // device-bound selectors are not matched (see xfrm.h)
  EXPECT_FALSE(selectorMatches(s, f));
}

TEST(XfrmMatch, PortMaskCoversARange) {
  XfrmSelector s;
  s.family = AF_INET;
  s.dport = 0x1000;
  s.dportMask = 0xff00;  // 4096..4351
  DirectedFlow f;
  f.family = AF_INET;
  f.dport = 0x10ff;
  EXPECT_TRUE(selectorMatches(s, f));
  f.dport = 0x1100;
  EXPECT_FALSE(selectorMatches(s, f));
}

TEST(XfrmEvaluate, EspWithCipherBothWaysIsSecuredAndEncrypted) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  addFlowStates(s, IPPROTO_ESP, "cbc(aes)", "hmac(sha256)");
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.secured);
  EXPECT_TRUE(st.encrypted);
  ASSERT_EQ(st.outbound.sas.size(), 1u);
  EXPECT_EQ(st.outbound.sas[0].spi, 0x100u);
  EXPECT_EQ(st.outbound.policyIndex, 101u);
  ASSERT_EQ(st.inbound.sas.size(), 1u);
  EXPECT_EQ(st.inbound.sas[0].spi, 0x200u);
}

TEST(XfrmEvaluate, AeadIsEncryptedGmacIsNot) {
  for (const auto& [aead, encrypted] :
       {std::pair{"rfc4106(gcm(aes))", true}, std::pair{"rfc7539esp(chacha20,poly1305)", true},
        std::pair{"rfc4543(gcm(aes))", false}}) {
    NetlinkBuilder p, s;
    addFlowPolicies(p, IPPROTO_ESP);
    addFlowStates(s, IPPROTO_ESP, "", "", aead);
    Spd spd = parse(p, s);
    IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
    EXPECT_TRUE(st.secured) << aead;
    EXPECT_EQ(st.encrypted, encrypted) << aead;
  }
}

TEST(XfrmEvaluate, AhOnlyIsSecuredNotEncrypted) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_AH);
  addFlowStates(s, IPPROTO_AH, "", "hmac(sha256)");
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.secured);
  EXPECT_FALSE(st.encrypted);
}

TEST(XfrmEvaluate, EspNullCipherIsSecuredNotEncrypted) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  addFlowStates(s, IPPROTO_ESP, "ecb(cipher_null)", "hmac(sha256)");
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.secured);
  EXPECT_FALSE(st.encrypted);
}

TEST(XfrmEvaluate, PolicyWithoutSaIsNotSecured) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.policyFound);
  EXPECT_TRUE(st.outbound.requiresIpsec);
  EXPECT_FALSE(st.outbound.allTemplatesHaveSa);
  EXPECT_FALSE(st.secured);
  EXPECT_FALSE(st.encrypted);
}

TEST(XfrmEvaluate, OneDirectionOnlyIsNotSecured) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  StateSpec out;
  out.src = v4("10.0.0.1");
  out.dst = v4("10.0.0.2");
  out.enc = "cbc(aes)";
  out.auth = "hmac(sha1)";
  addState(s, out);
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.allTemplatesHaveSa);
  EXPECT_FALSE(st.inbound.allTemplatesHaveSa);
  EXPECT_FALSE(st.secured);
}

// Whether this one outbound ESP SA, under the flow's policies, is an SA the
// outbound template can use.
bool outboundSaCoversFlow(const StateSpec& out) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  addState(s, out);
  Spd spd = parse(p, s);
  return evaluateIpsec(spd.policies, spd.states, kFlow, {}).outbound.allTemplatesHaveSa;
}

TEST(XfrmEvaluate, LarvalSaWithSpiZeroDoesNotCount) {
  StateSpec out;
  out.src = v4("10.0.0.1");
  out.dst = v4("10.0.0.2");
  out.enc = "cbc(aes)";
  ASSERT_TRUE(outboundSaCoversFlow(out)) << "the control: the same SA with an SPI counts";
  out.spi = 0;
  EXPECT_FALSE(outboundSaCoversFlow(out));
}

TEST(XfrmEvaluate, SaForOtherHostsDoesNotCount) {
  StateSpec out;
  out.src = v4("10.0.0.1");
  out.dst = v4("10.0.0.3");
  out.enc = "cbc(aes)";
  EXPECT_FALSE(outboundSaCoversFlow(out));
}

TEST(XfrmEvaluate, SaSelectorMustCoverTheFlow) {
  StateSpec out;
  out.src = v4("10.0.0.1");
  out.dst = v4("10.0.0.2");
  out.enc = "cbc(aes)";
  out.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32, IPPROTO_UDP);  // UDP only
  EXPECT_FALSE(outboundSaCoversFlow(out));
}

TEST(XfrmEvaluate, TemplateSpiAndReqidConstrainTheSa) {
  NetlinkBuilder p, s;
  PolicySpec out;
  out.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32);
  auto t = transportTemplate(IPPROTO_ESP);
  t.reqid = 42;
  out.templates = {t};
  addPolicy(p, out);
  StateSpec wrong;
  wrong.src = v4("10.0.0.1");
  wrong.dst = v4("10.0.0.2");
  wrong.enc = "cbc(aes)";
  wrong.reqid = 41;
  addState(s, wrong);
  Spd spd = parse(p, s);
  EXPECT_FALSE(evaluateIpsec(spd.policies, spd.states, kFlow, {}).outbound.allTemplatesHaveSa);
  NetlinkBuilder s2;
  wrong.reqid = 42;
  addState(s2, wrong);
  spd = parse(p, s2);
  EXPECT_TRUE(evaluateIpsec(spd.policies, spd.states, kFlow, {}).outbound.allTemplatesHaveSa);
}

TEST(XfrmEvaluate, TunnelModeUsesTheTemplateEndpoints) {
  NetlinkBuilder p, s;
  PolicySpec out;
  out.sel = selector4("10.0.0.0", 24, "10.0.1.0", 24);
  xfrm_user_tmpl t = transportTemplate(IPPROTO_ESP);
  t.mode = XFRM_MODE_TUNNEL;
  t.id.daddr = v4("198.51.100.2");
  t.saddr = v4("198.51.100.1");
  out.templates = {t};
  addPolicy(p, out);
  StateSpec sa;
  sa.src = v4("198.51.100.1");
  sa.dst = v4("198.51.100.2");
  sa.mode = XFRM_MODE_TUNNEL;
  sa.aead = "rfc4106(gcm(aes))";
  addState(s, sa);
  Spd spd = parse(p, s);
  const Flow flow = tcpFlow("10.0.0.5", 1234, "10.0.1.9", 80);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, flow, {});
  EXPECT_TRUE(st.outbound.allTemplatesHaveSa);
  ASSERT_EQ(st.outbound.sas.size(), 1u);
  EXPECT_EQ(st.outbound.sas[0].mode, IpsecMode::kTunnel);
  EXPECT_EQ(st.outbound.sas[0].destination.address(), "198.51.100.2");
}

TEST(XfrmEvaluate, HigherPriorityBypassShadowsEspPolicy) {
  NetlinkBuilder p, s;
  addFlowPolicies(p, IPPROTO_ESP);
  PolicySpec bypass;
  bypass.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32);
  bypass.priority = 0;  // the ESP policies have 0 too, so make them lower priority
  bypass.index = 1;
  addPolicy(p, bypass);
  addFlowStates(s, IPPROTO_ESP, "cbc(aes)", "hmac(sha256)");
  Spd spd = parse(p, s);
  for (auto& pol : spd.policies) {
    if (!pol.templates.empty()) pol.priority = 100;
  }
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.policyFound);
  EXPECT_EQ(st.outbound.policyIndex, 1u);
  EXPECT_FALSE(st.outbound.requiresIpsec);
  EXPECT_FALSE(st.secured);
}

TEST(XfrmEvaluate, BlockPolicyIsNotSecured) {
  NetlinkBuilder p, s;
  PolicySpec block;
  block.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32);
  block.action = XFRM_POLICY_BLOCK;
  block.templates = {transportTemplate(IPPROTO_ESP)};
  addPolicy(p, block);
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.policyFound);
  EXPECT_EQ(st.outbound.policyAction, XFRM_POLICY_BLOCK);
  EXPECT_FALSE(st.outbound.requiresIpsec);
}

TEST(XfrmEvaluate, MarkedPolicyAppliesOnlyToMarkedSockets) {
  NetlinkBuilder p, s;
  PolicySpec out;
  out.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32);
  out.templates = {transportTemplate(IPPROTO_ESP)};
  xfrm_mark mark{0x10, 0xf0};
  out.mark = &mark;
  addPolicy(p, out);
  Spd spd = parse(p, s);
  EXPECT_FALSE(evaluateIpsec(spd.policies, spd.states, kFlow, {.mark = 0x20}).outbound.policyFound);
  EXPECT_TRUE(evaluateIpsec(spd.policies, spd.states, kFlow, {.mark = 0x1f}).outbound.policyFound);
}

TEST(XfrmEvaluate, PerSocketPolicyCountsOnlyWhenItPinsTheFlow) {
  NetlinkBuilder p, s;
  PolicySpec pinned;
  pinned.sel = selector4("10.0.0.1", 32, "10.0.0.2", 32, IPPROTO_TCP, 40000, 443);
  pinned.dir = XFRM_POLICY_MAX + XFRM_POLICY_OUT;
  pinned.index = 0x44;
  pinned.templates = {transportTemplate(IPPROTO_ESP)};
  addPolicy(p, pinned);
  PolicySpec wildcard;
  wildcard.sel = selector4("0.0.0.0", 0, "0.0.0.0", 0);
  wildcard.dir = XFRM_POLICY_MAX + XFRM_POLICY_IN;
  wildcard.index = 0x4b;
  wildcard.templates = {transportTemplate(IPPROTO_ESP)};
  addPolicy(p, wildcard);
  Spd spd = parse(p, s);
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.policyFound);
  EXPECT_TRUE(st.outbound.socketPolicy);
  EXPECT_EQ(st.outbound.policyIndex, 0x44u);
  EXPECT_FALSE(st.inbound.policyFound);
  ASSERT_EQ(st.notes.size(), 1u);
  EXPECT_NE(st.notes[0].find("per-socket policy 75"), std::string::npos);
}

TEST(XfrmEvaluate, ThousandUnrelatedPoliciesDoNotMatch) {
  NetlinkBuilder p, s;
  for (uint32_t i = 0; i < 1000; ++i) {
    PolicySpec unrelated;
    unrelated.sel =
        selector4("10.0.0.1", 32, "10.0.0.2", 32, IPPROTO_TCP, 0, static_cast<uint16_t>(20000 + i));
    unrelated.index = 1000 + i * 8;
    unrelated.templates = {transportTemplate(IPPROTO_ESP)};
    addPolicy(p, unrelated);
  }
  Spd spd = parse(p, s);
  ASSERT_EQ(spd.policies.size(), 1000u);
  EXPECT_FALSE(evaluateIpsec(spd.policies, spd.states, kFlow, {}).outbound.policyFound);
  NetlinkBuilder p2;
  addFlowPolicies(p2, IPPROTO_ESP, 1);
  ASSERT_TRUE(parseXfrmPolicyBatch(p2.bytes(), spd.policies).has_value());
  IpsecStatus st = evaluateIpsec(spd.policies, spd.states, kFlow, {});
  EXPECT_TRUE(st.outbound.policyFound);
  EXPECT_EQ(st.outbound.policyIndex, 2u);
  EXPECT_EQ(st.inbound.policyIndex, 1u);
}

}  // namespace
}  // namespace sockgate::security

namespace sockgate::security {
namespace {

// Regression: libmnl 1.0.4 reads nlmsg_len as a signed int, so a length of
// 0xe0e0e0e0 looked valid and the walk left the buffer (fuzzer crash).
TEST(XfrmParse, HugeMessageLengthIsRejectedNotFollowed) {
  std::vector<uint8_t> bytes(17, 0xe0);
  bytes[15] = bytes[16] = 0x0a;
  std::vector<XfrmPolicy> policies;
  auto end = parseXfrmPolicyBatch(bytes, policies);
  ASSERT_FALSE(end.has_value());
  EXPECT_EQ(end.error().code, EBADMSG);
}

}  // namespace
}  // namespace sockgate::security
