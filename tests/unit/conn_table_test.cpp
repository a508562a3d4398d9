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

}  // namespace
}  // namespace sockgate::cli
