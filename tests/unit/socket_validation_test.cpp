// validateSocket(): every row of the socket() page's tables and of Wine's
// table of observed Windows behaviour (api-facts §2), then the whole grid
// af -2..40 x type -2..8 x protocol -2..300 (+0xdead) checked against the
// documented precedence.
#include "sockgate/socket_validation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <set>
#include <string>
#include <vector>

namespace {

using sockgate::validateSocket;

struct Row {
  int af, type, protocol;
  int error;  // 0: accepted
  std::string_view rule;
  int raf = 0, rtype = 0, rprotocol = 0;  // the resolved triple when accepted
};

std::string describe(const Row& r) {
  return std::to_string(r.af) + "," + std::to_string(r.type) + "," + std::to_string(r.protocol);
}

void check(const std::vector<Row>& rows) {
  for (const auto& r : rows) {
    SCOPED_TRACE(describe(r));
    const auto v = validateSocket(r.af, r.type, r.protocol);
    if (r.error == 0) {
      ASSERT_TRUE(v.has_value()) << "rejected " << v.error().wsaError << " by " << v.error().rule;
      EXPECT_EQ(v->rule, r.rule);
      EXPECT_EQ(v->af, r.raf);
      EXPECT_EQ(v->type, r.rtype);
      EXPECT_EQ(v->protocol, r.rprotocol);
    } else {
      ASSERT_FALSE(v.has_value()) << "accepted by " << v->rule;
      EXPECT_EQ(v.error().wsaError, r.error);
      EXPECT_EQ(v.error().rule, r.rule);
    }
  }
}

constexpr int kUnspec = WS_AF_UNSPEC, kInet = WS_AF_INET, kInet6 = WS_AF_INET6;
constexpr int kStream = WS_SOCK_STREAM, kDgram = WS_SOCK_DGRAM, kRaw = WS_SOCK_RAW,
              kRdm = WS_SOCK_RDM, kSeq = WS_SOCK_SEQPACKET;

TEST(SocketValidation, WineObservedWindowsTable) {
  check({
      {0, 0, 0, WSAEINVAL, "unspec-family-and-protocol"},
      {0, kStream, 0, WSAEINVAL, "unspec-family-and-protocol"},
      {0, 0xdead, 0, WSAEINVAL, "unspec-family-and-protocol"},
      {0, -1, 0, WSAEINVAL, "unspec-family-and-protocol"},
      {0, kStream, -1, WSAEPROTONOSUPPORT, "ip-protocol-range"},
      {kInet, 0, -1, WSAEPROTONOSUPPORT, "ip-protocol-range"},
      {0, 0, 0xdead, WSAEPROTONOSUPPORT, "ip-protocol-range"},
      {kInet, kStream, WS_IPPROTO_UDP, WSAEPROTONOSUPPORT, "ip-stream-needs-tcp"},
      {kInet, kDgram, WS_IPPROTO_TCP, WSAEPROTONOSUPPORT, "ip-dgram-needs-udp"},
      {0, -1, WS_IPPROTO_UDP, WSAESOCKTNOSUPPORT, "unknown-type"},
      {kInet, -1, 0, WSAESOCKTNOSUPPORT, "unknown-type"},
      {kInet, 0xdead, 0, WSAESOCKTNOSUPPORT, "unknown-type"},
      {0, -1, -1, WSAESOCKTNOSUPPORT, "unknown-type"},
      {-1, kStream, WS_IPPROTO_UDP, WSAEAFNOSUPPORT, "unknown-family"},
      // Valid arguments: the WSAEACCES is the kernel's (winsock_socket_test).
      {kInet, kRaw, WS_IPPROTO_ICMP, 0, "ip-raw", kInet, kRaw, WS_IPPROTO_ICMP},
      {WS_AF_IPX, kDgram, 0, WSAEAFNOSUPPORT, "family-removed"},
      {kInet, 0, 0, 0, "ip-default-tcp", kInet, kStream, WS_IPPROTO_TCP},
      {kInet, 0, WS_IPPROTO_TCP, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
      {0, 0, WS_IPPROTO_TCP, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
      // Further rows of test_WSASocket (wine dlls/ws2_32/tests/sock.c): the
      // socket type Windows picks when only the protocol is given, and a
      // raw socket carrying TCP's number.
      {kInet, kStream, 0, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
      {0, 0, WS_IPPROTO_UDP, 0, "ip-dgram-udp", kInet, kDgram, WS_IPPROTO_UDP},
      {0, 0, WS_IPPROTO_RAW, 0, "ip-raw", kInet, kRaw, WS_IPPROTO_RAW},
      {kInet, kRaw, WS_IPPROTO_TCP, 0, "ip-raw", kInet, kRaw, WS_IPPROTO_TCP},
  });
}

TEST(SocketValidation, PageAddressFamilyTable) {
  check({
      {kUnspec, 0, 0, WSAEINVAL, "unspec-family-and-protocol"},  // the page's WSAEINVAL sentence
      {kUnspec, kDgram, WS_IPPROTO_UDP, 0, "ip-dgram-udp", kInet, kDgram, WS_IPPROTO_UDP},
      {kInet, kStream, 0, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
      {kInet6, kStream, 0, 0, "ip-stream-tcp", kInet6, kStream, WS_IPPROTO_TCP},
      {kInet6, kDgram, 0, 0, "ip-dgram-udp", kInet6, kDgram, WS_IPPROTO_UDP},
      // IPX and AppleTalk: "not supported on Windows Vista and later".
      {WS_AF_IPX, kStream, 0, WSAEAFNOSUPPORT, "family-removed"},
      {WS_AF_IPX, kSeq, 0, WSAEAFNOSUPPORT, "family-removed"},
      {WS_AF_APPLETALK, kStream, 0, WSAEAFNOSUPPORT, "family-removed"},
      {WS_AF_APPLETALK, kDgram, 0, WSAEAFNOSUPPORT, "family-removed"},
      // NetBIOS: SOCK_DGRAM only; the protocol is minus the LANA number.
      {WS_AF_NETBIOS, kDgram, 0, 0, "netbios-dgram", WS_AF_NETBIOS, kDgram, 0},
      {WS_AF_NETBIOS, 0, -3, 0, "netbios-dgram", WS_AF_NETBIOS, kDgram, -3},
      {WS_AF_NETBIOS, kDgram, INT_MIN, 0, "netbios-dgram", WS_AF_NETBIOS, kDgram, INT_MIN},
      {WS_AF_NETBIOS, kStream, 0, WSAESOCKTNOSUPPORT, "netbios-dgram-only"},
      {WS_AF_NETBIOS, kSeq, 0, WSAESOCKTNOSUPPORT, "netbios-dgram-only"},
      {WS_AF_NETBIOS, kDgram, WS_IPPROTO_UDP, WSAEPROTONOSUPPORT, "netbios-protocol-lana"},
      {WS_AF_NETBIOS, kDgram, -256, WSAEPROTONOSUPPORT, "netbios-protocol-lana"},
      // IrDA: stream sockets, IRDA_PROTO_SOCK_STREAM.
      {WS_AF_IRDA, kStream, 0, 0, "irda-stream", WS_AF_IRDA, kStream, 1},
      {WS_AF_IRDA, kDgram, 0, WSAESOCKTNOSUPPORT, "irda-stream-only"},
      {WS_AF_IRDA, kStream, WS_IPPROTO_TCP, WSAEPROTONOSUPPORT, "irda-protocol"},
      // Bluetooth: SOCK_STREAM + BTHPROTO_RFCOMM.
      {WS_AF_BTH, kStream, BTHPROTO_RFCOMM, 0, "bth-stream-rfcomm", WS_AF_BTH, kStream,
       BTHPROTO_RFCOMM},
      {WS_AF_BTH, 0, 0, 0, "bth-stream-rfcomm", WS_AF_BTH, kStream, BTHPROTO_RFCOMM},
      {WS_AF_BTH, kDgram, BTHPROTO_RFCOMM, WSAESOCKTNOSUPPORT, "bth-stream-only"},
      {WS_AF_BTH, kStream, BTHPROTO_L2CAP, WSAEPROTONOSUPPORT, "bth-rfcomm-only"},
      {WS_AF_BTH, kStream, WS_IPPROTO_TCP, WSAEPROTONOSUPPORT, "bth-rfcomm-only"},
      // Not on the page.
      {WS_AF_UNIX, kStream, 0, WSAEAFNOSUPPORT, "unknown-family"},
      {WS_AF_MAX, kStream, 0, WSAEAFNOSUPPORT, "unknown-family"},
      {10, kStream, 0, WSAEAFNOSUPPORT, "unknown-family"},  // Linux's AF_INET6 is not Windows'
  });
}

TEST(SocketValidation, PageTypeTable) {
  check({
      {kInet, kStream, 0, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
      {kInet6, kDgram, 0, 0, "ip-dgram-udp", kInet6, kDgram, WS_IPPROTO_UDP},
      {kInet, kRaw, WS_IPPROTO_IP, 0, "ip-raw", kInet, kRaw, 0},
      {kInet6, kRaw, WS_IPPROTO_RAW, 0, "ip-raw", kInet6, kRaw, WS_IPPROTO_RAW},
      {kInet, kRdm, WS_IPPROTO_RM, 0, "inet-rdm-rm", kInet, kRdm, WS_IPPROTO_RM},
      {kUnspec, kRdm, WS_IPPROTO_PGM, 0, "inet-rdm-rm", kInet, kRdm, WS_IPPROTO_RM},
      {kInet6, kRdm, WS_IPPROTO_RM, WSAESOCKTNOSUPPORT, "rdm-ipv4-only"},
      {kInet, kRdm, 0, WSAEPROTONOSUPPORT, "rdm-needs-rm"},
      {kInet, kSeq, 0, WSAESOCKTNOSUPPORT, "ip-no-seqpacket"},
      {kInet6, kSeq, WS_IPPROTO_TCP, WSAESOCKTNOSUPPORT, "ip-no-seqpacket"},
      {kInet, 6, 0, WSAESOCKTNOSUPPORT, "unknown-type"},
  });
}

TEST(SocketValidation, PageProtocolTable) {
  std::vector<Row> rows;
  // ICMP, IGMP, ICMPv6: AF_UNSPEC, AF_INET or AF_INET6 with SOCK_RAW or no type.
  for (int p : {WS_IPPROTO_ICMP, WS_IPPROTO_IGMP, WS_IPPROTO_ICMPV6}) {
    const int unspecAs = p == WS_IPPROTO_ICMPV6 ? kInet6 : kInet;
    for (int t : {kRaw, 0}) {
      rows.push_back({kUnspec, t, p, 0, "ip-raw", unspecAs, kRaw, p});
      rows.push_back({kInet, t, p, 0, "ip-raw", kInet, kRaw, p});
      rows.push_back({kInet6, t, p, 0, "ip-raw", kInet6, kRaw, p});
    }
    rows.push_back({kInet, kStream, p, WSAEPROTONOSUPPORT, "ip-stream-needs-tcp"});
    rows.push_back({kInet6, kDgram, p, WSAEPROTONOSUPPORT, "ip-dgram-needs-udp"});
    rows.push_back({kInet, kRdm, p, WSAEPROTONOSUPPORT, "rdm-needs-rm"});
  }
  rows.insert(
      rows.end(),
      {
          {kInet, kStream, WS_IPPROTO_TCP, 0, "ip-stream-tcp", kInet, kStream, WS_IPPROTO_TCP},
          {kInet6, kStream, WS_IPPROTO_TCP, 0, "ip-stream-tcp", kInet6, kStream, WS_IPPROTO_TCP},
          {kInet6, kDgram, WS_IPPROTO_TCP, WSAEPROTONOSUPPORT, "ip-dgram-needs-udp"},
          {kInet, kDgram, WS_IPPROTO_UDP, 0, "ip-dgram-udp", kInet, kDgram, WS_IPPROTO_UDP},
          {kInet6, 0, WS_IPPROTO_UDP, 0, "ip-dgram-udp", kInet6, kDgram, WS_IPPROTO_UDP},
          {kInet6, kStream, WS_IPPROTO_UDP, WSAEPROTONOSUPPORT, "ip-stream-needs-tcp"},
          {kInet, kRdm, WS_IPPROTO_RM, 0, "inet-rdm-rm", kInet, kRdm, WS_IPPROTO_RM},
          {kInet, kStream, WS_IPPROTO_RM, WSAEPROTONOSUPPORT, "ip-stream-needs-tcp"},
          {kInet, kRaw, WS_IPPROTO_RAW, 0, "ip-raw", kInet, kRaw, WS_IPPROTO_RAW},
          {kInet, kRaw, WS_IPPROTO_MAX, WSAEPROTONOSUPPORT, "ip-protocol-range"},
          {kInet, kStream, BTHPROTO_RFCOMM, WSAEPROTONOSUPPORT,
           "ip-stream-needs-tcp"},  // 3 is GGP here
          {kInet, kRaw, FROM_PROTOCOL_INFO, WSAEPROTONOSUPPORT, "ip-protocol-range"},
      });
  check(rows);
}

TEST(SocketValidation, NameTables) {
  const std::vector<std::pair<std::string_view, int>> families = {
      {"AF_UNSPEC", 0},   {"AF_INET", 2},   {"AF_IPX", 6},   {"AF_APPLETALK", 16},
      {"AF_NETBIOS", 17}, {"AF_INET6", 23}, {"AF_IRDA", 26}, {"AF_BTH", 32}};
  ASSERT_EQ(sockgate::socketFamilies().size(), families.size());
  for (auto [name, value] : families) {
    EXPECT_EQ(sockgate::familyName(value), name);
    EXPECT_EQ(sockgate::familyValue(name), value);
  }
  const std::vector<std::pair<std::string_view, int>> types = {{"SOCK_STREAM", 1},
                                                               {"SOCK_DGRAM", 2},
                                                               {"SOCK_RAW", 3},
                                                               {"SOCK_RDM", 4},
                                                               {"SOCK_SEQPACKET", 5}};
  ASSERT_EQ(sockgate::socketTypes().size(), types.size());
  for (auto [name, value] : types) {
    EXPECT_EQ(sockgate::socketTypeName(value), name);
    EXPECT_EQ(sockgate::socketTypeValue(name), value);
  }
  const std::vector<std::pair<std::string_view, int>> protocols = {
      {"IPPROTO_IP", 0},   {"IPPROTO_ICMP", 1}, {"IPPROTO_IGMP", 2},    {"IPPROTO_GGP", 3},
      {"IPPROTO_IPV4", 4}, {"IPPROTO_TCP", 6},  {"IPPROTO_UDP", 17},    {"IPPROTO_IPV6", 41},
      {"IPPROTO_ESP", 50}, {"IPPROTO_AH", 51},  {"IPPROTO_ICMPV6", 58}, {"IPPROTO_SCTP", 132},
      {"IPPROTO_RAW", 255}};
  for (auto [name, value] : protocols) {
    EXPECT_EQ(sockgate::protocolName(WS_AF_INET, value), name);
    EXPECT_EQ(sockgate::protocolValue(name), value);
  }
  EXPECT_EQ(sockgate::protocolValue("IPPROTO_RM"), 113);
  EXPECT_EQ(sockgate::protocolValue("IPPROTO_PGM"), 113);
  EXPECT_EQ(sockgate::protocolName(WS_AF_INET6, 113), "IPPROTO_RM");
  EXPECT_EQ(sockgate::protocolValue("BTHPROTO_RFCOMM"), 3);
  EXPECT_EQ(sockgate::protocolValue("BTHPROTO_L2CAP"), 0x100);
  EXPECT_EQ(sockgate::protocolName(WS_AF_BTH, 3), "BTHPROTO_RFCOMM");
  EXPECT_EQ(sockgate::protocolName(WS_AF_BTH, 6), std::nullopt);
  EXPECT_EQ(sockgate::familyName(1), std::nullopt);
  EXPECT_EQ(sockgate::familyValue("AF_UNIX"), std::nullopt);
  EXPECT_EQ(sockgate::socketTypeName(0), std::nullopt);
  EXPECT_EQ(sockgate::socketErrorName(WSAEPROTONOSUPPORT), "WSAEPROTONOSUPPORT");
  EXPECT_EQ(sockgate::socketErrorName(WSAENOTSOCK), std::nullopt);
}

bool isIpFamily(int af) { return af == WS_AF_UNSPEC || af == WS_AF_INET || af == WS_AF_INET6; }
bool knownFamily(int af) {
  return isIpFamily(af) || af == WS_AF_NETBIOS || af == WS_AF_IRDA || af == WS_AF_BTH;
}

// The documented outcome of any triple, stated as properties of the answer.
void checkTriple(int af, int type, int protocol, std::set<std::string_view>& rulesSeen) {
  const auto v = validateSocket(af, type, protocol);
  const auto ruleName = v ? v->rule : v.error().rule;
  rulesSeen.insert(ruleName);
  const auto rules = sockgate::socketRuleNames();
  ASSERT_NE(std::ranges::find(rules, ruleName), rules.end()) << ruleName;
  // Deterministic.
  ASSERT_EQ(v, validateSocket(af, type, protocol));
  if (af == WS_AF_UNSPEC && protocol == 0) {
    ASSERT_EQ(
        v, (std::unexpected(sockgate::SocketRejection{WSAEINVAL, "unspec-family-and-protocol"})));
    return;
  }
  if (!knownFamily(af)) {
    ASSERT_FALSE(v);
    ASSERT_EQ(v.error().wsaError, WSAEAFNOSUPPORT);
    return;
  }
  if (type < 0 || type > WS_SOCK_SEQPACKET) {
    ASSERT_EQ(v, (std::unexpected(sockgate::SocketRejection{WSAESOCKTNOSUPPORT, "unknown-type"})));
    return;
  }
  if (!v) {
    const int e = v.error().wsaError;
    // Past the family and type checks, only these two; never WSAEPROTOTYPE.
    ASSERT_TRUE(e == WSAESOCKTNOSUPPORT || e == WSAEPROTONOSUPPORT) << e;
    if (isIpFamily(af) && (protocol < 0 || protocol > 255) && type != WS_SOCK_SEQPACKET &&
        !(type == WS_SOCK_RDM && af == WS_AF_INET6)) {
      ASSERT_EQ(v.error().rule, "ip-protocol-range");
    }
    return;
  }
  // Accepted: the given fields are kept, the zero ones filled, and the triple
  // is one the page lists.
  if (af != 0) {
    ASSERT_EQ(v->af, af);
  }
  if (type != 0) {
    ASSERT_EQ(v->type, type);
  }
  if (protocol != 0) {
    ASSERT_EQ(v->protocol, protocol);
  }
  const int a = v->af, t = v->type, p = v->protocol;
  const bool ip = a == WS_AF_INET || a == WS_AF_INET6;
  const bool listed = (ip && t == WS_SOCK_STREAM && p == WS_IPPROTO_TCP) ||
                      (ip && t == WS_SOCK_DGRAM && p == WS_IPPROTO_UDP) ||
                      (ip && t == WS_SOCK_RAW && p >= 0 && p <= 255) ||
                      (a == WS_AF_INET && t == WS_SOCK_RDM && p == WS_IPPROTO_RM) ||
                      (a == WS_AF_BTH && t == WS_SOCK_STREAM && p == BTHPROTO_RFCOMM) ||
                      (a == WS_AF_IRDA && t == WS_SOCK_STREAM && p == 1) ||
                      (a == WS_AF_NETBIOS && t == WS_SOCK_DGRAM && p <= 0);
  ASSERT_TRUE(listed) << a << "," << t << "," << p;
  // ICMP/IGMP/ICMPv6 only raw.
  if (ip && (p == WS_IPPROTO_ICMP || p == WS_IPPROTO_IGMP || p == WS_IPPROTO_ICMPV6)) {
    ASSERT_EQ(t, WS_SOCK_RAW);
  }
}

TEST(SocketValidation, WholeGridHasDocumentedOutcomes) {
  std::vector<int> protocols;
  for (int p = -2; p <= 300; ++p) protocols.push_back(p);
  protocols.push_back(0xdead);
  std::set<std::string_view> rulesSeen;
  size_t n = 0;
  for (int af = -2; af <= 40; ++af)
    for (int type = -2; type <= 8; ++type)
      for (int p : protocols) {
        SCOPED_TRACE(std::to_string(af) + "," + std::to_string(type) + "," + std::to_string(p));
        ASSERT_NO_FATAL_FAILURE(checkTriple(af, type, p, rulesSeen));
        ++n;
      }
  EXPECT_EQ(n, 43u * 11u * 304u);
  // The grid reaches every rule.
  EXPECT_EQ(rulesSeen.size(), sockgate::socketRuleNames().size());
  // Extremes.
  for (int v : {INT_MIN, INT_MAX, -1, 0xdead}) {
    ASSERT_NO_FATAL_FAILURE(checkTriple(v, v, v, rulesSeen));
    ASSERT_NO_FATAL_FAILURE(checkTriple(WS_AF_INET, WS_SOCK_RAW, v, rulesSeen));
    ASSERT_NO_FATAL_FAILURE(checkTriple(WS_AF_NETBIOS, v, v, rulesSeen));
  }
}

}  // namespace
