#include "engine/socket_policy.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace sockgate {
namespace {

TEST(SocketPolicyTest, ParsesTheIssueExample) {
  auto p = parseSocketPolicy("audit raw,packet; deny packet");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->clauses.size(), 2u);
  EXPECT_EQ(p->clauses[0], "audit raw,packet");
  EXPECT_EQ(p->clauses[1], "deny packet");
  ASSERT_EQ(p->rules.size(), 3u);
  EXPECT_EQ(p->rules[0].kernel.type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(p->rules[0].kernel.family, SG_SOCK_ANY);
  EXPECT_EQ(p->rules[1].kernel.family, static_cast<uint32_t>(AF_PACKET));
  EXPECT_EQ(p->rules[2].kernel.action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(p->rules[2].clause, 1u);
}

TEST(SocketPolicyTest, DenyWinsOverAudit) {
  auto p = parseSocketPolicy("audit raw,packet; deny packet");
  ASSERT_TRUE(p);
  auto m = p->match(AF_PACKET, SOCK_RAW, 768);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->action, static_cast<uint32_t>(SG_SOCK_DENY));
  EXPECT_EQ(m->rule, 2u);
  m = p->match(AF_INET, SOCK_RAW, 1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->action, static_cast<uint32_t>(SG_SOCK_AUDIT));
  EXPECT_EQ(m->rule, 0u);
  EXPECT_FALSE(p->match(AF_INET, SOCK_STREAM, 6));
  EXPECT_FALSE(p->match(AF_UNIX, SOCK_DGRAM, 0));
}

TEST(SocketPolicyTest, TypeFlagsAreMasked) {
  auto p = parseSocketPolicy("deny raw");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->match(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 1));
  EXPECT_FALSE(p->match(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 1));
}

TEST(SocketPolicyTest, FamilyTypeProtocolTriples) {
  auto p = parseSocketPolicy(
      " deny inet/raw/icmp , inet6/dgram/icmpv6 ;audit 16/*/0;audit unix/stream ");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->rules.size(), 4u);
  EXPECT_TRUE(p->match(AF_INET, SOCK_RAW, 1));
  EXPECT_FALSE(p->match(AF_INET, SOCK_RAW, 17));
  EXPECT_FALSE(p->match(AF_INET6, SOCK_RAW, 58));
  EXPECT_TRUE(p->match(AF_INET6, SOCK_DGRAM, 58));
  EXPECT_EQ(p->rules[2].kernel.family, static_cast<uint32_t>(AF_NETLINK));
  EXPECT_EQ(p->rules[2].kernel.type, SG_SOCK_ANY);
  EXPECT_EQ(p->rules[2].kernel.protocol, 0u);
  EXPECT_EQ(p->rules[3].kernel.protocol, SG_SOCK_ANY);
  EXPECT_EQ(p->clauses[0], "deny inet/raw/icmp,inet6/dgram/icmpv6");
  EXPECT_EQ((p->nonInetFamilies()), (std::vector<uint32_t>{AF_UNIX, AF_NETLINK}));
  EXPECT_FALSE(p->anyFamily());
  auto q = parseSocketPolicy("audit */stream/tcp");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->anyFamily());
  EXPECT_TRUE(q->match(AF_INET6, SOCK_STREAM, 6));
}

TEST(SocketPolicyTest, LinuxNames) {
  auto p = parseSocketPolicy(
      "deny bluetooth, can/raw, vsock/stream, alg, xdp, local/dgram; "
      "audit inet/raw/raw, inet6/raw/icmpv6, inet/seqpacket/sctp, inet/dccp, 17/packet/768");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->rules.size(), 11u);
  auto rule = [&](size_t i) { return p->rules[i].kernel; };
  EXPECT_EQ(rule(0).family, static_cast<uint32_t>(AF_BLUETOOTH));
  EXPECT_EQ(rule(1).family, static_cast<uint32_t>(AF_CAN));
  EXPECT_EQ(rule(1).type, static_cast<uint32_t>(SOCK_RAW));
  EXPECT_EQ(rule(2).family, static_cast<uint32_t>(AF_VSOCK));
  EXPECT_EQ(rule(3).family, static_cast<uint32_t>(AF_ALG));
  EXPECT_EQ(rule(4).family, static_cast<uint32_t>(AF_XDP));
  EXPECT_EQ(rule(5).family, static_cast<uint32_t>(AF_UNIX));
  EXPECT_EQ(rule(6).protocol, static_cast<uint32_t>(IPPROTO_RAW));
  EXPECT_EQ(rule(7).protocol, static_cast<uint32_t>(IPPROTO_ICMPV6));
  EXPECT_EQ(rule(8).protocol, static_cast<uint32_t>(IPPROTO_SCTP));
  EXPECT_EQ(rule(9).type, static_cast<uint32_t>(SOCK_DCCP));
  EXPECT_EQ(rule(10).family, static_cast<uint32_t>(AF_PACKET));
  EXPECT_EQ(rule(10).type, static_cast<uint32_t>(SOCK_PACKET));
  EXPECT_EQ(rule(10).protocol, 768u);
  EXPECT_EQ(socketFamilyName(AF_BLUETOOTH), "AF_BLUETOOTH");
  EXPECT_EQ(socketFamilyName(AF_UNIX), "AF_UNIX");
  EXPECT_EQ(socketFamilyName(200), "200");
  EXPECT_EQ(socketTypeName(SOCK_SEQPACKET | SOCK_CLOEXEC), "SOCK_SEQPACKET");
  EXPECT_EQ(socketTypeName(SOCK_PACKET), "SOCK_PACKET");
}

TEST(SocketPolicyTest, InetProtocolZeroIsWhatTheKernelMakesOfIt) {
  // cgroup/sock_create sees the resolved protocol; the LSM hook and seccomp
  // see the caller's 0: all three must decide the same.
  auto p = parseSocketPolicy("deny inet/stream/tcp, inet6/dgram/udp");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->match(AF_INET, SOCK_STREAM, 0));
  EXPECT_TRUE(p->match(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(p->match(AF_INET6, SOCK_DGRAM, 0));
  EXPECT_FALSE(p->match(AF_INET6, SOCK_STREAM, 0));
  EXPECT_FALSE(p->match(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
  auto zero = parseSocketPolicy("audit inet/stream/0, inet6/dgram/ip, inet/raw/0, */stream/0");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->rules[0].kernel.protocol, static_cast<uint32_t>(IPPROTO_TCP));
  EXPECT_EQ(zero->rules[1].kernel.protocol, static_cast<uint32_t>(IPPROTO_UDP));
  EXPECT_EQ(zero->rules[2].kernel.protocol, 0u);
  EXPECT_EQ(zero->rules[3].kernel.protocol, 0u);  // AF_UNIX stream sockets
  EXPECT_EQ(zero->clauses[0], "audit inet/stream/0,inet6/dgram/ip,inet/raw/0,*/stream/0");
  EXPECT_EQ(zero->match(AF_INET, SOCK_STREAM, 0)->rule, 0u);
  EXPECT_EQ(zero->match(AF_UNIX, SOCK_STREAM, 0)->rule, 3u);
  EXPECT_EQ(SocketPolicy::effectiveProtocol(AF_UNIX, SOCK_STREAM, 0), 0u);
  EXPECT_EQ(SocketPolicy::effectiveProtocol(AF_INET6, SOCK_RAW, 0), 0u);
  EXPECT_EQ(SocketPolicy::effectiveProtocol(AF_INET, SOCK_DGRAM, 0),
            static_cast<uint32_t>(IPPROTO_UDP));
}

TEST(SocketPolicyTest, ErrorsNameClauseAndToken) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"audit raw; block packet", "clause 2 'block packet': unknown action 'block'"},
      {"deny raw,pakcet", "clause 1 'deny raw,pakcet': unknown family 'pakcet'"},
      {"deny inet/strem", "unknown type 'strem' in target 'inet/strem'"},
      {"deny inet/raw/icmpx", "unknown protocol 'icmpx'"},
      {"deny inet/raw/1/2", "more than FAMILY/TYPE/PROTOCOL"},
      {"deny", "clause 1 'deny': expected"},
      {"deny raw,,packet", "empty target"},
      {"deny inet/16", "unknown type '16'"},
      {"deny inet/raw/65536", "unknown protocol '65536'"},
      {"deny 4294967295", "unknown family"},
      {"deny -1", "unknown family '-1'"},
      {" ; ", "no clause"},
      {"", "no clause"},
  };
  for (const auto& c : cases) {
    auto p = parseSocketPolicy(c.text);
    ASSERT_FALSE(p) << c.text;
    EXPECT_NE(p.error().message().find(c.expect), std::string::npos)
        << c.text << " -> " << p.error().message();
    EXPECT_EQ(p.error().code, EINVAL);
  }
}

TEST(SocketPolicyTest, RuleLimit) {
  std::string text = "audit raw";
  for (int i = 1; i < SG_SOCK_MAX_RULES; ++i) text += ",raw";
  EXPECT_TRUE(parseSocketPolicy(text));
  auto p = parseSocketPolicy(text + ",packet");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("more than 32 targets"), std::string::npos);
}

TEST(SocketPolicyTest, FormatsEvents) {
  auto p = parseSocketPolicy("audit raw,packet; deny raw");
  ASSERT_TRUE(p);
  sg_sock_event e{};
  e.tgid = 1234;
  e.uid = 0;
  e.family = AF_INET;
  e.type = SOCK_RAW;
  e.protocol = 1;
  e.action = SG_SOCK_DENY;
  e.rule = 2;
  std::memcpy(e.comm, "ping", 4);
  EXPECT_EQ(formatSocketEvent(*p, e),
            "pid 1234 (ping) uid 0: socket(AF_INET, SOCK_RAW, 1) denied by 'deny raw'");
  e.action = SG_SOCK_AUDIT;
  e.family = AF_PACKET;
  e.rule = 1;
  std::memcpy(e.comm, "0123456789abcdef", 16);  // no terminator
  EXPECT_EQ(formatSocketEvent(*p, e),
            "pid 1234 (0123456789abcdef) uid 0: socket(AF_PACKET, SOCK_RAW, 1) audited by "
            "'audit raw,packet'");
  e.rule = 99;
  EXPECT_NE(formatSocketEvent(*p, e).find("by rule 99"), std::string::npos);
}

}  // namespace
}  // namespace sockgate
