#include <gtest/gtest.h>

#include <thread>

#include "sockgate/winsock.h"

namespace {

TEST(WsaStartup, VersionZeroIsNotSupported) {
  WSADATA data;
  EXPECT_EQ(WSAStartup(MAKEWORD(0, 0), &data), WSAVERNOTSUPPORTED);
}

TEST(WsaStartup, NullDataIsFault) { EXPECT_EQ(WSAStartup(MAKEWORD(2, 2), nullptr), WSAEFAULT); }

TEST(WsaStartup, NegotiatesDownToTwoTwoAndCleanupBalances) {
  WSADATA data;
  ASSERT_EQ(WSAStartup(MAKEWORD(3, 0), &data), 0);
  EXPECT_EQ(data.wVersion, MAKEWORD(2, 2));
  EXPECT_EQ(data.wHighVersion, MAKEWORD(2, 2));
  EXPECT_EQ(WSACleanup(), 0);
  EXPECT_EQ(WSACleanup(), SOCKET_ERROR);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
}

TEST(WsaStartup, LastErrorIsPerThread) {
  WSASetLastError(WSAEINVAL);
  int other = -1;
  std::thread([&] { other = WSAGetLastError(); }).join();
  EXPECT_EQ(other, 0);
  EXPECT_EQ(WSAGetLastError(), WSAEINVAL);
}

}  // namespace
