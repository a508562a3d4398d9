#include <gtest/gtest.h>

#include <cstring>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"

namespace sockgate {
namespace {

RedirectContext sample() {
  RedirectContext c;
  c.originalDestination = *Endpoint::parse("[2001:db8::7]:443");
  c.originTgid = 4242;
  c.originTid = 4243;
  c.originUid = 1000;
  c.originGid = 100;
  c.originCgroupId = 0x1122334455667788ull;
  c.flowId = 99;
  c.redirectTimeNs = 123456789;
  c.originComm = "curl";
  c.serviceId = 3;
  c.tag = {1, 2, 3, 4, 5};
  return c;
}

TEST(RedirectContext, RoundTripsEveryField) {
  auto blob = encodeRedirectContext(sample());
  EXPECT_EQ(blob.size(), SG_CONTEXT_HEADER_LEN + 8u) << "tag padded to a multiple of 8";
  auto c = parseRedirectContext(blob);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->originalDestination.toString(), "[2001:db8::7]:443");
  EXPECT_EQ(c->originTgid, 4242u);
  EXPECT_EQ(c->originTid, 4243u);
  EXPECT_EQ(c->originUid, 1000u);
  EXPECT_EQ(c->originGid, 100u);
  EXPECT_EQ(c->originCgroupId, 0x1122334455667788ull);
  EXPECT_EQ(c->flowId, 99u);
  EXPECT_EQ(c->originComm, "curl");
  EXPECT_EQ(c->serviceId, 3u);
  EXPECT_EQ(c->tag, (std::vector<uint8_t>{1, 2, 3, 4, 5}));
}

TEST(RedirectContext, FullTagFillsTheLargestBlob) {
  auto s = sample();
  s.tag.assign(SG_TAG_MAX, 0xab);
  auto blob = encodeRedirectContext(s);
  EXPECT_EQ(blob.size(), sizeof(sg_redirect_context));
  auto c = parseRedirectContext(blob);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tag.size(), SG_TAG_MAX);
}

TEST(RedirectContext, RejectsBadMagicTruncationAndLyingLengths) {
  auto blob = encodeRedirectContext(sample());
  auto bad = blob;
  bad[0] ^= 0xff;
  EXPECT_FALSE(parseRedirectContext(bad));
  EXPECT_FALSE(parseRedirectContext(std::span(blob).first(10)));
  EXPECT_FALSE(parseRedirectContext(std::span(blob).first(SG_CONTEXT_HEADER_LEN - 1)));
  auto lying = blob;
  uint32_t huge = 1 << 20;
  std::memcpy(lying.data() + offsetof(sg_redirect_context, total_len), &huge, 4);
  EXPECT_FALSE(parseRedirectContext(lying));
  auto tagLie = blob;
  uint32_t tagLen = 64;
  std::memcpy(tagLie.data() + offsetof(sg_redirect_context, tag_len), &tagLen, 4);
  EXPECT_FALSE(parseRedirectContext(tagLie));
  auto family = blob;
  uint16_t af = 99;
  std::memcpy(family.data() + offsetof(sg_redirect_context, original_dst), &af, 2);
  EXPECT_FALSE(parseRedirectContext(family));
}

TEST(RedirectContext, ANewerVersionWithALongerHeaderStillParses) {
  auto s = sample();
  auto blob = encodeRedirectContext(s);
  // version 2 adds 8 header bytes before the tag
  std::vector<uint8_t> v2(blob.begin(), blob.begin() + SG_CONTEXT_HEADER_LEN);
  v2.insert(v2.end(), 8, 0xee);
  v2.insert(v2.end(), blob.begin() + SG_CONTEXT_HEADER_LEN, blob.end());
  uint16_t version = 2, headerLen = SG_CONTEXT_HEADER_LEN + 8;
  uint32_t total = static_cast<uint32_t>(v2.size());
  std::memcpy(v2.data() + offsetof(sg_redirect_context, version), &version, 2);
  std::memcpy(v2.data() + offsetof(sg_redirect_context, header_len), &headerLen, 2);
  std::memcpy(v2.data() + offsetof(sg_redirect_context, total_len), &total, 4);
  auto c = parseRedirectContext(v2);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->tag, s.tag);
}

TEST(RedirectRecords, RoundTripAndLimits) {
  RedirectRecords r;
  r.flowId = 77;
  r.chain = {1, 5, 9};
  r.originTgid = 31;
  r.originUid = 1000;
  r.originComm = "wget";
  auto blob = encodeRedirectRecords(r);
  EXPECT_EQ(blob.size(), sizeof(sg_redirect_records));
  auto back = parseRedirectRecords(blob);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->flowId, 77u);
  EXPECT_EQ(back->chain, (std::vector<uint32_t>{1, 5, 9}));
  EXPECT_EQ(back->originTgid, 31u);
  EXPECT_EQ(back->originUid, 1000u);
  EXPECT_EQ(back->originComm, "wget");
  auto tooLong = blob;
  uint16_t count = SG_MAX_CHAIN + 1;
  std::memcpy(tooLong.data() + offsetof(sg_redirect_records, count), &count, 2);
  EXPECT_FALSE(parseRedirectRecords(tooLong));
  EXPECT_FALSE(parseRedirectRecords(std::span(blob).first(sizeof(sg_redirect_records) - 1)));
}

TEST(RedirectState, TheFourWindowsStates) {
  RedirectRecords r;
  EXPECT_EQ(redirectStateOf(r, 1), RedirectState::NotRedirected);
  r.chain = {1};
  EXPECT_EQ(redirectStateOf(r, 1), RedirectState::RedirectedBySelf);
  EXPECT_EQ(redirectStateOf(r, 2), RedirectState::RedirectedByOther);
  r.chain = {1, 2};
  EXPECT_EQ(redirectStateOf(r, 1), RedirectState::PreviouslyRedirectedBySelf);
  EXPECT_EQ(redirectStateOf(r, 2), RedirectState::RedirectedBySelf);
  EXPECT_EQ(redirectStateOf(r, 3), RedirectState::RedirectedByOther);
}

}  // namespace
}  // namespace sockgate
