#include "proxy/flow_record_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sockgate::proxy {
namespace {

FlowRecord sample(const char* destination) {
  FlowRecord r;
  r.flowId = 0x1234567890abcdefULL;
  r.originTgid = 4242;
  r.originUid = 1000;
  r.originComm = "curl";
  r.executable = "/usr/bin/curl";
  if (*destination) r.originalDestination = *Endpoint::parse(destination);
  r.service = "builtin";
  r.bytesUp = 77;
  r.bytesDown = 1ULL << 40;
  r.start = std::chrono::steady_clock::now();
  r.end = r.start + std::chrono::nanoseconds(123456789);
  r.ending = "reset by destination";
  return r;
}

void expectSame(const FlowRecord& a, const FlowRecord& b) {
  EXPECT_EQ(a.flowId, b.flowId);
  EXPECT_EQ(a.originTgid, b.originTgid);
  EXPECT_EQ(a.originUid, b.originUid);
  EXPECT_EQ(a.originComm, b.originComm);
  EXPECT_EQ(a.executable, b.executable);
  EXPECT_EQ(a.originalDestination.toString(), b.originalDestination.toString());
  EXPECT_EQ(a.service, b.service);
  EXPECT_EQ(a.bytesUp, b.bytesUp);
  EXPECT_EQ(a.bytesDown, b.bytesDown);
  EXPECT_EQ(a.start, b.start);
  EXPECT_EQ(a.end, b.end);
  EXPECT_EQ(a.ending, b.ending);
}

TEST(FlowRecordJson, RecordsSurviveTheTripWithEveryField) {
  for (const char* destination : {"10.1.2.3:443", "[2001:db8::1]:8080", ""}) {
    const FlowRecord r = sample(destination);
    // Through text, as between the two processes.
    expectSame(flowRecordFromJson(nlohmann::json::parse(toJson(r).dump())), r);
  }
}

TEST(FlowRecordJson, GroupsSurviveTheTrip) {
  FlowGroup g;
  g.like = sample("127.0.0.1:80");
  g.rest = true;
  g.flows = 31337;
  g.bytesUp = 5;
  g.bytesDown = 6;
  g.duration = std::chrono::seconds(9);
  const FlowGroup back = flowGroupFromJson(nlohmann::json::parse(toJson(g).dump()));
  expectSame(back.like, g.like);
  EXPECT_TRUE(back.rest);
  EXPECT_EQ(back.flows, 31337u);
  EXPECT_EQ(back.bytesUp, 5u);
  EXPECT_EQ(back.bytesDown, 6u);
  EXPECT_EQ(back.duration, std::chrono::seconds(9));
}

TEST(FlowRecordJson, AMissingOrWrongFieldThrows) {
  auto j = toJson(sample("127.0.0.1:80"));
  j.erase("ending");
  EXPECT_THROW(flowRecordFromJson(j), nlohmann::json::exception);
  j = toJson(sample("127.0.0.1:80"));
  j["bytes_up"] = "many";
  EXPECT_THROW(flowRecordFromJson(j), nlohmann::json::exception);
  j = toJson(sample("127.0.0.1:80"));
  j["destination"] = "not an endpoint";
  EXPECT_THROW(flowRecordFromJson(j), nlohmann::json::exception);
}

}  // namespace
}  // namespace sockgate::proxy
