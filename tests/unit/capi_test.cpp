// The C ABI without a kernel: parsing a context blob into the C struct (the
// tag points into the caller's blob), the size protocol and errors on a
// socket without a flow, argument checks, and sg_strerror.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "sockgate/redirect.h"
#include "sockgate/sockgate.h"

namespace {

sockgate::RedirectContext sampleContext() {
  sockgate::RedirectContext c;
  c.originalDestination = *sockgate::Endpoint::parse("[2001:db8::7]:8443");
  c.originTgid = 4242;
  c.originTid = 4243;
  c.originUid = 1000;
  c.originGid = 100;
  c.originCgroupId = 77;
  c.flowId = 0x1122334455667788ull;
  c.redirectTimeNs = 99;
  c.originComm = "curl";
  c.serviceId = 5;
  const std::string tag = "vendor-tag";
  c.tag.assign(tag.begin(), tag.end());
  return c;
}

TEST(CApi, ParsesAContextAndPointsTheTagIntoTheBlob) {
  auto blob = sockgate::encodeRedirectContext(sampleContext());
  sg_redirect_context_info info;
  ASSERT_EQ(sg_parse_redirect_context(blob.data(), blob.size(), &info), 0);
  ASSERT_EQ(info.original_dst.ss_family, AF_INET6);
  EXPECT_EQ(info.original_dst_len, sizeof(sockaddr_in6));
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&info.original_dst);
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
  EXPECT_STREQ(text, "2001:db8::7");
  EXPECT_EQ(ntohs(sin6->sin6_port), 8443);
  EXPECT_EQ(info.origin_pid, 4242u);
  EXPECT_EQ(info.origin_tid, 4243u);
  EXPECT_EQ(info.origin_uid, 1000u);
  EXPECT_EQ(info.origin_gid, 100u);
  EXPECT_EQ(info.origin_cgroup_id, 77u);
  EXPECT_EQ(info.flow_id, 0x1122334455667788ull);
  EXPECT_EQ(info.redirect_time_ns, 99u);
  EXPECT_STREQ(info.origin_comm, "curl");
  EXPECT_EQ(info.service_id, 5u);
  ASSERT_EQ(info.tag_len, 10u);
  EXPECT_GE(info.tag, blob.data());
  EXPECT_LE(info.tag + info.tag_len, blob.data() + blob.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(info.tag), info.tag_len), "vendor-tag");
}

TEST(CApi, FullLengthCommIsTerminated) {
  auto c = sampleContext();
  c.originComm = std::string(15, 'x');
  c.tag.clear();
  auto blob = sockgate::encodeRedirectContext(c);
  sg_redirect_context_info info;
  ASSERT_EQ(sg_parse_redirect_context(blob.data(), blob.size(), &info), 0);
  EXPECT_EQ(std::strlen(info.origin_comm), 15u);
  EXPECT_EQ(info.tag_len, 0u);
  EXPECT_EQ(info.tag, nullptr);
}

TEST(CApi, RejectsBadBlobsAndArguments) {
  auto blob = sockgate::encodeRedirectContext(sampleContext());
  sg_redirect_context_info info;
  EXPECT_EQ(sg_parse_redirect_context(blob.data(), 10, &info), -EINVAL);
  EXPECT_EQ(sg_parse_redirect_context(blob.data(), blob.size() - 8, &info), -EINVAL)
      << "total_len beyond the bytes given";
  auto bad = blob;
  bad[0] ^= 0xff;
  EXPECT_EQ(sg_parse_redirect_context(bad.data(), bad.size(), &info), -EINVAL);
  EXPECT_EQ(sg_parse_redirect_context(nullptr, 0, &info), -EFAULT);
  EXPECT_EQ(sg_parse_redirect_context(blob.data(), blob.size(), nullptr), -EFAULT);
  EXPECT_EQ(sg_query_redirect_context(0, nullptr, nullptr), -EFAULT);
  EXPECT_EQ(sg_query_redirect_records(0, nullptr, nullptr), -EFAULT);
  EXPECT_EQ(sg_attach_redirect_records(0, nullptr, 160), -EFAULT);
  EXPECT_EQ(sg_query_redirect_state(0, 1, nullptr), -EFAULT);
  EXPECT_EQ(sg_query_original_destination(0, nullptr, nullptr), -EFAULT);
}

// Unprivileged, so no sockgate hook of this test is attached: attaching must
// fail on both families. On IPv6 the number is also IPV6_RECVPATHMTU, which
// the kernel would otherwise accept silently (and must be left off).
TEST(CApi, AttachingRecordsWithoutSockgateFailsOnBothFamilies) {
  std::vector<uint8_t> blob(sizeof(sg_redirect_records), 0);
  const uint32_t magic = SG_RECORDS_MAGIC;
  std::memcpy(blob.data(), &magic, sizeof magic);
  for (int family : {AF_INET, AF_INET6}) {
    sockgate::UniqueFd s(::socket(family, SOCK_STREAM, 0));
    const int rc = sg_attach_redirect_records(s.get(), blob.data(), blob.size());
    // ENOPROTOOPT with no sockgate on this kernel; EPERM where another
    // sockgate instance's hook sees a process that is nobody's service.
    EXPECT_TRUE(rc == -ENOPROTOOPT || rc == -EPERM) << "family " << family << ": " << rc;
    if (family == AF_INET6) {
      int on = -1;
      socklen_t len = sizeof on;
      ASSERT_EQ(::getsockopt(s.get(), SOL_IPV6, IPV6_RECVPATHMTU, &on, &len), 0);
      EXPECT_EQ(on, 0) << "IPV6_RECVPATHMTU was left switched on";
    }
  }
}

TEST(CApi, SocketWithoutAFlow) {
  sockgate::UniqueFd s(::socket(AF_INET, SOCK_STREAM, 0));
  size_t len = 0;
  EXPECT_EQ(sg_query_redirect_context(s.get(), nullptr, &len), -ENOPROTOOPT);
  EXPECT_EQ(sg_query_redirect_records(s.get(), nullptr, &len), -ENOPROTOOPT);
  sockgate::UniqueFd s6(::socket(AF_INET6, SOCK_STREAM, 0));
  EXPECT_EQ(sg_query_redirect_context(s6.get(), nullptr, &len), -ENOPROTOOPT)
      << "the kernel's IPV6_AUTOFLOWLABEL answer is not a context";
  sg_redirect_state state = SG_REDIRECT_STATE_REDIRECTED_BY_SELF;
  EXPECT_EQ(sg_query_redirect_state(s.get(), 5, &state), 0);
  EXPECT_EQ(state, SG_REDIRECT_STATE_NOT_REDIRECTED);
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  sockgate::UniqueFd r(pipeFds[0]), w(pipeFds[1]);
  EXPECT_EQ(sg_query_redirect_context(r.get(), nullptr, &len), -ENOTSOCK);
  EXPECT_EQ(sg_query_redirect_context(-1, nullptr, &len), -EBADF);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  sockgate::UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_EQ(sg_query_redirect_records(a.get(), nullptr, &len), -EAFNOSUPPORT);
}

TEST(CApi, StrerrorSpeaksTheApisLanguage) {
  EXPECT_STREQ(sg_strerror(-ENOPROTOOPT), "the socket carries no redirect flow");
  EXPECT_STREQ(sg_strerror(ENOPROTOOPT), sg_strerror(-ENOPROTOOPT));
  EXPECT_NE(std::string(sg_strerror(-EPERM)).find("registered redirect service"),
            std::string::npos);
  EXPECT_STREQ(sg_strerror(-ECONNREFUSED), "Connection refused");
  EXPECT_STREQ(sg_strerror(0), "success");
  EXPECT_NE(sg_strerror(123456), nullptr);
  EXPECT_STREQ(sg_redirect_state_name(SG_REDIRECT_STATE_PREVIOUSLY_REDIRECTED_BY_SELF),
               "previously redirected by self");
  EXPECT_STREQ(sg_redirect_state_name(9), "unknown");
  EXPECT_EQ(sg_capi_version(), SG_CAPI_VERSION);
}

}  // namespace
