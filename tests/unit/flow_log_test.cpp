#include "proxy/flow_log.h"

#include <gtest/gtest.h>

namespace sockgate::proxy {
namespace {

FlowRecord flow(uint32_t tgid, const char* dst, uint64_t up, std::chrono::milliseconds took) {
  FlowRecord r;
  r.originTgid = tgid;
  r.executable = "/usr/bin/wrk";
  r.originalDestination = *Endpoint::parse(dst);
  r.service = "builtin";
  r.ending = "closed";
  r.bytesUp = up;
  r.bytesDown = 2 * up;
  r.start = std::chrono::steady_clock::now();
  r.end = r.start + took;
  return r;
}

TEST(FlowLog, KeepsRowsUpToTheBoundThenFoldsByProcessDestinationServiceEnding) {
  FlowLog log(2, 10);
  log.append(flow(1, "127.0.0.1:80", 1, std::chrono::milliseconds(1)));
  log.append(flow(1, "127.0.0.1:80", 1, std::chrono::milliseconds(1)));
  EXPECT_TRUE(log.groups().empty()) << "nothing folds while the table has room";
  for (int i = 0; i < 3; ++i) log.append(flow(1, "127.0.0.1:80", 10, std::chrono::milliseconds(2)));
  log.append(flow(1, "127.0.0.1:443", 5, std::chrono::milliseconds(4)));
  auto reset = flow(1, "127.0.0.1:443", 5, std::chrono::milliseconds(4));
  reset.ending = "reset by destination";
  log.append(reset);

  EXPECT_EQ(log.snapshot().size(), 2u);
  auto groups = log.groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].flows, 3u) << "most flows first";
  EXPECT_EQ(groups[0].like.originalDestination.toString(), "127.0.0.1:80");
  EXPECT_EQ(groups[0].bytesUp, 30u);
  EXPECT_EQ(groups[0].bytesDown, 60u);
  EXPECT_EQ(groups[0].duration, std::chrono::milliseconds(6));
  EXPECT_EQ(groups[1].flows + groups[2].flows, 2u) << "a different ending is a group of its own";
}

TEST(FlowLog, PastTheBoundOnGroupsEveryFlowStillCountsInTheRest) {
  FlowLog log(0, 2);
  for (uint32_t tgid = 1; tgid <= 5; ++tgid)
    log.append(flow(tgid, "10.0.0.1:80", 100, std::chrono::milliseconds(1)));
  log.append(flow(1, "10.0.0.1:80", 100, std::chrono::milliseconds(1)));  // an existing group
  auto groups = log.groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_FALSE(groups[0].rest);
  EXPECT_EQ(groups[0].flows, 2u);
  EXPECT_FALSE(groups[1].rest);
  EXPECT_TRUE(groups[2].rest) << "the rest comes last";
  EXPECT_EQ(groups[2].flows, 3u);
  EXPECT_EQ(groups[2].bytesUp, 300u);
  uint64_t all = 0;
  for (const auto& g : groups) all += g.flows;
  EXPECT_EQ(all, 6u) << "no flow is lost from the counts";
}

}  // namespace
}  // namespace sockgate::proxy
