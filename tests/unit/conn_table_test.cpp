#include "cli/conn_table.h"

#include <gtest/gtest.h>

namespace sockgate::cli {
namespace {

TEST(ConnTable, HumanUnits) {
  EXPECT_EQ(humanBytes(0), "0 B");
  EXPECT_EQ(humanBytes(1023), "1023 B");
  EXPECT_EQ(humanBytes(1536), "1.5 KiB");
  EXPECT_EQ(humanBytes(16ull << 20), "16.0 MiB");
  EXPECT_EQ(humanDuration(std::chrono::microseconds(850)), "850 us");
  EXPECT_EQ(humanDuration(std::chrono::milliseconds(3)), "3 ms");
  EXPECT_EQ(humanDuration(std::chrono::milliseconds(1200)), "1.20 s");
}

TEST(ConnTable, RowsInStartOrderWithAlignedColumns) {
  proxy::FlowRecord a, b;
  auto t0 = std::chrono::steady_clock::now();
  a.start = t0 + std::chrono::milliseconds(5);
  a.end = a.start + std::chrono::milliseconds(2);
  a.originTgid = 2;
  a.executable = "/usr/bin/curl";
  a.originalDestination = *Endpoint::parse("[::1]:80");
  a.service = "builtin";
  a.bytesUp = 10;
  a.ending = "closed";
  b = a;
  b.start = t0;
  b.originTgid = 1;
  b.executable.clear();
  b.originComm = "gone";
  auto table = formatConnectionTable({a, b});
  auto first = table.find("\n1 ");
  auto second = table.find("\n2 ");
  ASSERT_NE(first, std::string::npos) << table;
  EXPECT_LT(first, second) << table;
  EXPECT_NE(table.find("(gone)"), std::string::npos) << "exe falls back to comm";
  // every line has END at the same column
  auto header = table.substr(0, table.find('\n'));
  auto endCol = header.find("END");
  auto row = table.substr(first + 1, table.find('\n', first + 1) - first - 1);
  EXPECT_EQ(row.find("closed"), endCol) << table;
}

TEST(ConnTable, FoldedFlowsShowCountTotalsAndMeanDuration) {
  proxy::FlowGroup g;
  g.like.originTgid = 7;
  g.like.executable = "/usr/bin/wrk";
  g.like.originalDestination = *Endpoint::parse("127.0.0.1:8080");
  g.like.service = "builtin";
  g.like.ending = "closed";
  g.flows = 4;
  g.bytesUp = 4096;
  g.duration = std::chrono::milliseconds(8);
  proxy::FlowGroup rest;
  rest.rest = true;
  rest.flows = 1;
  auto table = formatFoldedFlows({g, rest});
  auto header = table.substr(0, table.find('\n'));
  EXPECT_EQ(header.find("FLOWS"), 0u) << table;
  auto row =
      table.substr(header.size() + 1, table.find('\n', header.size() + 1) - header.size() - 1);
  EXPECT_EQ(row.find("4 "), 0u) << table;
  EXPECT_NE(row.find("4.0 KiB"), std::string::npos) << table;
  EXPECT_EQ(row.find("2 ms"), header.find("MEAN DURATION")) << table;
  EXPECT_NE(table.find("(other processes and destinations)"), std::string::npos) << table;
}

}  // namespace
}  // namespace sockgate::cli
