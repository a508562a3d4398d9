// Peer identity pieces that need no privileges: the SO_PEERSEC and
// SO_PEERGROUPS size protocols (through the getsockopt seam and on a real
// socketpair), /proc parsing, kTLS naming, endpoints, output formats, and the
// Windows struct layouts.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>

#include "security/ktls.h"
#include "security/peer_credentials.h"
#include "security/process_info.h"
#include "sockgate/security.h"
#include "sockgate/winsock.h"

namespace sockgate::security {
namespace {

// Behaves as selinux_socket_getpeersec_stream does: ERANGE with the needed
// length written back when the buffer is short.
struct FakeLabelSource {
  explicit FakeLabelSource(std::string stored) : label(std::move(stored)) {}
  std::string label;  // as the LSM stores it (maybe with a NUL)
  int calls = 0;
  std::vector<socklen_t> offered;
  int operator()(void* buf, socklen_t* len) {
    ++calls;
    offered.push_back(*len);
    if (*len < label.size()) {
      *len = static_cast<socklen_t>(label.size());
      return ERANGE;
    }
    std::memcpy(buf, label.data(), label.size());
    *len = static_cast<socklen_t>(label.size());
    return 0;
  }
};

TEST(PeerSec, StartsAtNameMaxAndGrowsToTheReportedSize) {
  FakeLabelSource source{std::string(700, 'a') + '\0'};
  auto label = readPeerSecurityLabel(std::ref(source));
  ASSERT_TRUE(label.has_value()) << label.error().message();
  ASSERT_TRUE(label->has_value());
  EXPECT_EQ(**label, std::string(700, 'a'));
  ASSERT_EQ(source.offered.size(), 2u);
  EXPECT_EQ(source.offered[0], static_cast<socklen_t>(NAME_MAX));
  EXPECT_EQ(source.offered[1], 701u);
}

TEST(PeerSec, LabelWithAndWithoutNulAreTheSame) {
  FakeLabelSource withNul{std::string("system_u:system_r:sshd_t:s0") + '\0'};
  FakeLabelSource withoutNul{"system_u:system_r:sshd_t:s0"};
  auto a = readPeerSecurityLabel(std::ref(withNul));
  auto b = readPeerSecurityLabel(std::ref(withoutNul));
  ASSERT_TRUE(a && *a && b && *b);
  EXPECT_EQ(**a, **b);
  EXPECT_EQ(**a, "system_u:system_r:sshd_t:s0");
}

TEST(PeerSec, NoLsmIsNoLabelNotAnError) {
  auto label = readPeerSecurityLabel([](void*, socklen_t*) { return ENOPROTOOPT; });
  ASSERT_TRUE(label.has_value());
  EXPECT_FALSE(label->has_value());
}

TEST(PeerSec, ErangeWithoutAUsableSizeFails) {
  auto label = readPeerSecurityLabel([](void*, socklen_t* len) {
    *len = 3;  // smaller than what was offered: cannot make progress
    return ERANGE;
  });
  ASSERT_FALSE(label.has_value());
  EXPECT_EQ(label.error().code, EPROTO);
}

TEST(PeerSec, OtherErrorsAreReported) {
  auto label = readPeerSecurityLabel([](void*, socklen_t*) { return EBADF; });
  ASSERT_FALSE(label.has_value());
  EXPECT_EQ(label.error().code, EBADF);
}

TEST(PeerSec, RealSocketpairAnswersWithoutError) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto label = readPeerSecurityLabel(realGetsockopt(sv[0], SOL_SOCKET, SO_PEERSEC));
  // This host has no LSM labels (ENOPROTOOPT -> no label); on one that has,
  // the peer is ourselves, so the label is our own context.
  ASSERT_TRUE(label.has_value()) << label.error().message();
  if (label->has_value()) {
    EXPECT_FALSE((*label)->empty());
    EXPECT_NE((*label)->back(), '\0');
  }
  close(sv[0]);
  close(sv[1]);
}

TEST(PeerGroups, GrowsOnErange) {
  std::vector<gid_t> groups(200);
  for (size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<gid_t>(1000 + i);
  int calls = 0;
  auto out = readPeerGroups([&](void* buf, socklen_t* len) {
    ++calls;
    const auto need = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (*len < need) {
      *len = need;
      return ERANGE;
    }
    std::memcpy(buf, groups.data(), need);
    *len = need;
    return 0;
  });
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, groups);
  EXPECT_EQ(calls, 2);
}

TEST(PeerGroups, RealSocketpairMatchesOurGroups) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto out = readPeerGroups(realGetsockopt(sv[0], SOL_SOCKET, SO_PEERGROUPS));
  ASSERT_TRUE(out.has_value()) << out.error().message();
  std::vector<gid_t> ours(static_cast<size_t>(getgroups(0, nullptr)));
  ASSERT_EQ(getgroups(static_cast<int>(ours.size()), ours.data()), static_cast<int>(ours.size()));
  EXPECT_EQ(*out, ours);
  close(sv[0]);
  close(sv[1]);
}

TEST(PeerCredentials, SocketpairPeerIsUs) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto cred = readPeerCredentials(sv[0]);
  ASSERT_TRUE(cred.has_value());
  EXPECT_EQ(cred->pid, getpid());
  EXPECT_EQ(cred->uid, geteuid());
  auto pidfd = readPeerPidfd(sv[0]);
  ASSERT_TRUE(pidfd.has_value()) << pidfd.error().message();
  if (pidfd->has_value()) {  // SO_PEERPIDFD: Linux 6.5+
    auto pid = pidOfPidfd((*pidfd)->get());
    ASSERT_TRUE(pid.has_value());
    EXPECT_EQ(*pid, getpid());
  }
  close(sv[0]);
  close(sv[1]);
}

TEST(ProcessInfo, ParsesStatusIds) {
  const auto ids = parseProcStatus(
      "Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t20\t21\t22\t23\nGroups:\t4 24 27 \n");
  EXPECT_EQ(ids.euid, 1001u);
  EXPECT_EQ(ids.egid, 21u);
  EXPECT_EQ(ids.groups, (std::vector<gid_t>{4, 24, 27}));
}

TEST(ProcessInfo, FindsTheCgroupV2Line) {
  EXPECT_EQ(parseCgroupV2Path("12:cpu:/a\n0::/user.slice/x.scope\n"), "/user.slice/x.scope");
  EXPECT_EQ(parseCgroupV2Path("12:cpu:/a\n"), "");
}

TEST(ProcessInfo, ReadsOurOwnIdentity) {
  PeerProcess me;
  ASSERT_TRUE(readProcessIdentity(getpid(), me).has_value());
  char exe[PATH_MAX] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof(exe) - 1), 0);
  EXPECT_EQ(me.executable, exe);
  EXPECT_EQ(me.uid, geteuid());
  EXPECT_EQ(me.gid, getegid());
  EXPECT_EQ(me.command, std::string(program_invocation_short_name).substr(0, 15));
}

TEST(ProcessInfo, FindsTheOwnerOfOurOwnSocket) {
  clearSocketOwnerCache();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct stat st{};
  ASSERT_EQ(fstat(sv[1], &st), 0);
  auto owner = findSocketOwner(st.st_ino, geteuid());
  ASSERT_TRUE(owner.has_value());
  ASSERT_TRUE(owner->has_value());
  EXPECT_EQ((*owner)->pid, getpid());
  EXPECT_EQ((*owner)->fd, sv[1]);
  // The second lookup is served from the validated cache.
  const auto before = ownerLookupStats();
  auto again = findSocketOwner(st.st_ino, geteuid());
  ASSERT_TRUE(again && *again);
  EXPECT_EQ(ownerLookupStats().cacheHits, before.cacheHits + 1);
  // A closed socket's cache entry fails validation and is not returned.
  close(sv[1]);
  auto gone = findSocketOwner(st.st_ino, geteuid());
  ASSERT_TRUE(gone.has_value());
  EXPECT_FALSE(gone->has_value());
  close(sv[0]);
}

TEST(Ktls, NamesCiphersAndVersions) {
  EXPECT_EQ(tlsCipherName(51), "AES-GCM-128");
  EXPECT_EQ(tlsCipherName(54), "CHACHA20-POLY1305");
  EXPECT_EQ(tlsCipherName(999), "cipher 999");
  EXPECT_EQ(tlsVersionName(0x0304), "TLS 1.3");
  EXPECT_EQ(tlsVersionName(0x0303), "TLS 1.2");
}

TEST(Ktls, UlpNameAsTheKernelReturnsIt) {
  // Measured on 6.1 (security_query_vm_test): the reply is min(optlen, 16)
  // bytes of the NUL-padded name field, with that length reported.
  using namespace std::string_view_literals;
  EXPECT_TRUE(ulpIsTls("tls\0\0\0\0\0\0\0\0\0\0\0\0\0"sv));
  EXPECT_TRUE(ulpIsTls("tls\0\0\0\0\0"sv));
  EXPECT_TRUE(ulpIsTls("tls"sv));
  EXPECT_FALSE(ulpIsTls(""sv));  // no ULP
  EXPECT_FALSE(ulpIsTls("tl"sv));
  EXPECT_FALSE(ulpIsTls("tlsx\0\0\0"sv));
  EXPECT_FALSE(ulpIsTls("espintcp\0\0\0\0\0\0\0\0"sv));
}

TEST(Format, JsonAndTableCarryTheAnswer) {
  SocketSecurity s;
  s.family = AF_INET;
  s.protocol = SecurityProtocol::kIpsec;
  s.flags = kSecurityFlagSecured;
  s.flow = Flow{IPPROTO_TCP, *Endpoint::parse("127.0.0.1:1"), *Endpoint::parse("127.0.0.1:2")};
  IpsecStatus ipsec;
  ipsec.secured = true;
  ipsec.outbound.policyFound = true;
  ipsec.outbound.requiresIpsec = true;
  ipsec.outbound.allTemplatesHaveSa = true;
  IpsecSa sa;
  sa.proto = IPPROTO_AH;
  sa.spi = 0x1234;
  sa.authentication = "hmac(sha256)";
  ipsec.outbound.sas.push_back(sa);
  s.ipsec = ipsec;
  PeerProcess peer;
  peer.pid = 42;
  peer.executable = "/usr/bin/curl";
  peer.source = PeerSource::kSockDiag;
  peer.lsmLabel = std::string("bad\xff utf8");
  s.peer = std::move(peer);
  const auto j = nlohmann::json::parse(formatSecurityJson(s));
  EXPECT_EQ(j["protocol"], "ipsec");
  EXPECT_EQ(j["secured"], true);
  EXPECT_EQ(j["encrypted"], false);
  EXPECT_EQ(j["flow"]["remote"], "127.0.0.1:2");
  EXPECT_EQ(j["ipsec"]["outbound"]["sas"][0]["spi"], "0x00001234");
  EXPECT_EQ(j["ipsec"]["outbound"]["sas"][0]["proto"], "ah");
  EXPECT_EQ(j["peer"]["pid"], 42);
  EXPECT_EQ(j["peer"]["source"], "sock-diag");
  EXPECT_TRUE(j["peer_label"].is_null());
  const std::string table = formatSecurityTable(s);
  EXPECT_NE(table.find("SECURED"), std::string::npos);
  EXPECT_NE(table.find("/usr/bin/curl"), std::string::npos);
  EXPECT_NE(table.find("ah transport spi 0x00001234"), std::string::npos);
  EXPECT_NE(table.find("no label"), std::string::npos);
}

TEST(WinsockLayout, StructuresHaveTheWindowsSizes) {
  EXPECT_EQ(sizeof(SOCKET_SECURITY_QUERY_TEMPLATE), 144u);
  EXPECT_EQ(offsetof(SOCKET_SECURITY_QUERY_TEMPLATE, PeerAddress), 8u);
  EXPECT_EQ(offsetof(SOCKET_SECURITY_QUERY_TEMPLATE, PeerTokenAccessMask), 136u);
  EXPECT_EQ(sizeof(SOCKET_SECURITY_QUERY_INFO), 24u);
  EXPECT_EQ(offsetof(SOCKET_SECURITY_QUERY_INFO, Flags), 4u);
  EXPECT_EQ(offsetof(SOCKET_SECURITY_QUERY_INFO, PeerApplicationAccessTokenHandle), 8u);
  EXPECT_EQ(offsetof(SOCKET_SECURITY_QUERY_INFO, PeerMachineAccessTokenHandle), 16u);
  EXPECT_EQ(sizeof(SOCKET_SECURITY_SETTINGS), 8u);
}

TEST(WinsockQuery, NullLengthIsFault) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_EQ(WSAQuerySocketSecurity(sv[0], nullptr, 0, nullptr, nullptr, nullptr, nullptr),
            SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEFAULT);
  close(sv[0]);
  close(sv[1]);
}

TEST(WinsockQuery, UnixSocketIsInvalid) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(WSAQuerySocketSecurity(sv[0], nullptr, 0, &info, &len, nullptr, nullptr), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
  close(sv[0]);
  close(sv[1]);
}

TEST(WinsockQuery, PipeIsNotASocket) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  SOCKET_SECURITY_QUERY_INFO info{};
  ULONG len = sizeof(info);
  EXPECT_EQ(WSAQuerySocketSecurity(p[0], nullptr, 0, &info, &len, nullptr, nullptr), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSAENOTSOCK);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace sockgate::security
