// The sock_diag exact lookup: request bytes as the kernel expects them, and
// reply parsing/validation on constructed inet_diag replies.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "security/sock_diag.h"
#include "support/netlink_builder.h"

namespace sockgate::security {
namespace {

using sockgate::testing::NetlinkBuilder;

Endpoint ep(const char* text) { return *Endpoint::parse(text); }

const inet_diag_req_v2& requestOf(const std::vector<uint32_t>& buffer) {
  const auto* h = reinterpret_cast<const nlmsghdr*>(buffer.data());
  return *static_cast<const inet_diag_req_v2*>(mnl_nlmsg_get_payload(h));
}

TEST(SockDiagRequest, TcpIsAnExactLookupOfLocalThenRemote) {
  const auto buffer = buildInetDiagRequest(IPPROTO_TCP, ep("127.0.0.1:80"), ep("127.0.0.2:40000"));
  const auto* h = reinterpret_cast<const nlmsghdr*>(buffer.data());
  EXPECT_EQ(h->nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(h->nlmsg_flags & NLM_F_DUMP, 0);  // no dump: one socket
  EXPECT_EQ(h->nlmsg_len, NLMSG_HDRLEN + sizeof(inet_diag_req_v2));
  const auto& req = requestOf(buffer);
  EXPECT_EQ(req.sdiag_family, AF_INET);
  EXPECT_EQ(req.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(ntohs(req.id.idiag_sport), 80);
  EXPECT_EQ(ntohs(req.id.idiag_dport), 40000);
  EXPECT_EQ(req.id.idiag_src[0], htonl(0x7f000001));
  EXPECT_EQ(req.id.idiag_dst[0], htonl(0x7f000002));
  EXPECT_EQ(req.id.idiag_cookie[0], INET_DIAG_NOCOOKIE);
  EXPECT_EQ(req.id.idiag_cookie[1], INET_DIAG_NOCOOKIE);
}

TEST(SockDiagRequest, UdpSwapsSourceAndDestination) {
  const auto buffer = buildInetDiagRequest(IPPROTO_UDP, ep("[::1]:53"), ep("[::1]:5000"));
  const auto& req = requestOf(buffer);
  EXPECT_EQ(req.sdiag_family, AF_INET6);
  EXPECT_EQ(ntohs(req.id.idiag_sport), 5000);
  EXPECT_EQ(ntohs(req.id.idiag_dport), 53);
}

void addReply(NetlinkBuilder& b, int family, const void* src, uint16_t sport, const void* dst,
              uint16_t dport, uint8_t state, uint32_t inode, const uint64_t* cgroup = nullptr) {
  auto* msg = b.begin<inet_diag_msg>(SOCK_DIAG_BY_FAMILY, 0);
  msg->idiag_family = static_cast<uint8_t>(family);
  msg->idiag_state = state;
  std::memcpy(msg->id.idiag_src, src, family == AF_INET ? 4 : 16);
  std::memcpy(msg->id.idiag_dst, dst, family == AF_INET ? 4 : 16);
  msg->id.idiag_sport = htons(sport);
  msg->id.idiag_dport = htons(dport);
  msg->idiag_uid = 1000;
  msg->idiag_inode = inode;
  msg->id.idiag_cookie[0] = 7;
  msg->id.idiag_cookie[1] = 1;
  if (cgroup != nullptr) b.attr(INET_DIAG_CGROUP_ID, *cgroup);
  b.end();
}

TEST(SockDiagReply, ParsesOwnerInodeCookieAndCgroup) {
  NetlinkBuilder b;
  const uint32_t lo = htonl(0x7f000001);
  const uint64_t cgroup = 0x1234;
  addReply(b, AF_INET, &lo, 80, &lo, 40000, TCP_ESTABLISHED, 99, &cgroup);
  std::vector<InetDiagSocket> out;
  ASSERT_TRUE(parseInetDiagBatch(b.bytes(), out).has_value());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].local.toString(), "127.0.0.1:80");
  EXPECT_EQ(out[0].remote.toString(), "127.0.0.1:40000");
  EXPECT_EQ(out[0].uid, 1000u);
  EXPECT_EQ(out[0].inode, 99u);
  EXPECT_EQ(out[0].cookie, (1ULL << 32) | 7);
  ASSERT_TRUE(out[0].cgroupId.has_value());
  EXPECT_EQ(*out[0].cgroupId, 0x1234u);
}

TEST(SockDiagReply, DualStackSocketIsNormalisedToIpv4) {
  NetlinkBuilder b;
  in6_addr mapped{};
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped);
  addReply(b, AF_INET6, &mapped, 80, &mapped, 40000, TCP_ESTABLISHED, 5);
  std::vector<InetDiagSocket> out;
  ASSERT_TRUE(parseInetDiagBatch(b.bytes(), out).has_value());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].family, AF_INET6);
  EXPECT_EQ(out[0].local.family(), AF_INET);
  EXPECT_TRUE(replyMatches(IPPROTO_TCP, out[0], ep("127.0.0.1:80"), ep("127.0.0.1:40000")));
}

TEST(SockDiagReply, NoSuchSocketIsENOENT) {
  NetlinkBuilder b;
  b.error(ENOENT);
  std::vector<InetDiagSocket> out;
  auto end = parseInetDiagBatch(b.bytes(), out);
  ASSERT_FALSE(end.has_value());
  EXPECT_EQ(end.error().code, ENOENT);
}

TEST(SockDiagReply, BadFamilyIsRejected) {
  NetlinkBuilder b;
  b.begin<inet_diag_msg>(SOCK_DIAG_BY_FAMILY, 0)->idiag_family = AF_UNIX;
  b.end();
  std::vector<InetDiagSocket> out;
  EXPECT_FALSE(parseInetDiagBatch(b.bytes(), out).has_value());
}

TEST(SockDiagReply, ListenerFallbackIsNotThePeer) {
  InetDiagSocket listener;
  listener.state = TCP_LISTEN;
  listener.local = ep("127.0.0.1:80");
  listener.remote = ep("0.0.0.0:0");
  EXPECT_FALSE(replyMatches(IPPROTO_TCP, listener, ep("127.0.0.1:80"), ep("127.0.0.1:40000")));
}

TEST(SockDiagReply, TcpNeedsTheExactTuple) {
  InetDiagSocket s;
  s.state = TCP_ESTABLISHED;
  s.local = ep("127.0.0.1:80");
  s.remote = ep("127.0.0.1:40001");
  EXPECT_FALSE(replyMatches(IPPROTO_TCP, s, ep("127.0.0.1:80"), ep("127.0.0.1:40000")));
  s.remote = ep("127.0.0.1:40000");
  EXPECT_TRUE(replyMatches(IPPROTO_TCP, s, ep("127.0.0.1:80"), ep("127.0.0.1:40000")));
}

TEST(SockDiagReply, UdpAcceptsAWildcardUnconnectedReceiver) {
  InetDiagSocket s;
  s.local = ep("0.0.0.0:53");
  s.remote = ep("0.0.0.0:0");
  EXPECT_TRUE(replyMatches(IPPROTO_UDP, s, ep("127.0.0.1:53"), ep("127.0.0.1:5000")));
  s.remote = ep("127.0.0.1:6000");  // connected to someone else
  EXPECT_FALSE(replyMatches(IPPROTO_UDP, s, ep("127.0.0.1:53"), ep("127.0.0.1:5000")));
}

}  // namespace
}  // namespace sockgate::security
