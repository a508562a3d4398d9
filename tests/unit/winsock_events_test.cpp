// Events, alertable waits and APC delivery of the Winsock layer, with no
// kernel hooks involved: manual-reset semantics, wait-any/wait-all, the
// documented failure codes, and that a completion routine runs only on the
// thread that issued the call, only inside an alertable wait.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "compat/overlapped.h"
#include "sockgate/winsock.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class WinsockEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    WSADATA data;
    ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);
  }
  void TearDown() override { WSACleanup(); }
};

TEST_F(WinsockEvents, ManualResetEventStaysSignaledUntilReset) {
  WSAEVENT ev = WSACreateEvent();
  ASSERT_NE(ev, WSA_INVALID_EVENT);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
  ASSERT_TRUE(WSASetEvent(ev));
  ASSERT_TRUE(WSASetEvent(ev));  // twice is still just "signaled"
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_EVENT_0)
      << "a wait must not reset a manual-reset event";
  ASSERT_TRUE(WSAResetEvent(ev));
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_TIMEOUT);
  ASSERT_TRUE(WSAResetEvent(ev));  // resetting a reset event is fine
  EXPECT_TRUE(WSACloseEvent(ev));
}

TEST_F(WinsockEvents, WaitAnyReturnsLowestSignaledIndexAndWaitAllNeedsEvery) {
  WSAEVENT evs[3] = {WSACreateEvent(), WSACreateEvent(), WSACreateEvent()};
  WSASetEvent(evs[2]);
  WSASetEvent(evs[1]);
  EXPECT_EQ(WSAWaitForMultipleEvents(3, evs, FALSE, 0, FALSE), WSA_WAIT_EVENT_0 + 1);
  EXPECT_EQ(WSAWaitForMultipleEvents(3, evs, TRUE, 50, FALSE), WSA_WAIT_TIMEOUT);
  std::thread setter([&] {
    std::this_thread::sleep_for(50ms);
    WSASetEvent(evs[0]);
  });
  EXPECT_EQ(WSAWaitForMultipleEvents(3, evs, TRUE, 5000, FALSE), WSA_WAIT_EVENT_0);
  setter.join();
  for (auto e : evs) WSACloseEvent(e);
}

TEST_F(WinsockEvents, WaitWakesWhenAnotherThreadSignals) {
  WSAEVENT ev = WSACreateEvent();
  const auto start = Clock::now();
  std::thread setter([&] {
    std::this_thread::sleep_for(100ms);
    WSASetEvent(ev);
  });
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, WSA_INFINITE, FALSE), WSA_WAIT_EVENT_0);
  EXPECT_GE(Clock::now() - start, 90ms);
  setter.join();
  WSACloseEvent(ev);
}

TEST_F(WinsockEvents, TimeoutIsHonoured) {
  WSAEVENT ev = WSACreateEvent();
  const auto start = Clock::now();
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 120, TRUE), WSA_WAIT_TIMEOUT);
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 115ms);
  EXPECT_LT(took, 2s);
  WSACloseEvent(ev);
}

TEST_F(WinsockEvents, DocumentedFailures) {
  WSAEVENT ev = WSACreateEvent();
  EXPECT_EQ(WSAWaitForMultipleEvents(0, &ev, FALSE, 0, FALSE), WSA_WAIT_FAILED);
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
  WSAEVENT many[WSA_MAXIMUM_WAIT_EVENTS + 1];
  for (auto& e : many) e = ev;
  EXPECT_EQ(WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS + 1, many, FALSE, 0, FALSE),
            WSA_WAIT_FAILED);
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, nullptr, FALSE, 0, FALSE), WSA_WAIT_FAILED);
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_PARAMETER);

  ASSERT_TRUE(WSACloseEvent(ev));
  EXPECT_FALSE(WSACloseEvent(ev)) << "closed twice";
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
  EXPECT_FALSE(WSASetEvent(ev));
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
  EXPECT_FALSE(WSAResetEvent(ev));
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_FAILED);
  EXPECT_EQ(WSAGetLastError(), WSA_INVALID_HANDLE);
  WSAEVENT fresh = WSACreateEvent();
  EXPECT_NE(fresh, ev) << "a handle is never reused";
  EXPECT_FALSE(WSASetEvent(ev));
  WSACloseEvent(fresh);
}

TEST_F(WinsockEvents, EverythingNeedsWsaStartup) {
  WSACleanup();
  EXPECT_EQ(WSACreateEvent(), WSA_INVALID_EVENT);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  WSAEVENT ev = reinterpret_cast<WSAEVENT>(1);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, FALSE), WSA_WAIT_FAILED);
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  EXPECT_FALSE(WSASetEvent(ev));
  EXPECT_EQ(WSAGetLastError(), WSANOTINITIALISED);
  WSADATA data;
  ASSERT_EQ(WSAStartup(MAKEWORD(2, 2), &data), 0);  // for TearDown
}

TEST_F(WinsockEvents, ApcRunsOnlyOnItsThreadAndOnlyInAlertableWaits) {
  auto queue = sockgate::winsock::currentApcQueue();
  std::atomic<int> ran{0};
  std::thread::id ranOn;
  // queued from another thread, as the overlapped worker does
  std::thread([&] {
    sockgate::winsock::queueApc(*queue, [&] {
      ranOn = std::this_thread::get_id();
      ran++;
    });
  }).join();

  EXPECT_EQ(SleepEx(30, FALSE), 0u) << "a non-alertable sleep runs no APC";
  EXPECT_EQ(ran, 0);
  WSAEVENT ev = WSACreateEvent();
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 30, FALSE), WSA_WAIT_TIMEOUT);
  EXPECT_EQ(ran, 0) << "a non-alertable wait runs no APC";
  // another thread's alertable wait does not run this thread's APC
  std::thread([] { EXPECT_EQ(SleepEx(30, TRUE), 0u); }).join();
  EXPECT_EQ(ran, 0);

  EXPECT_EQ(SleepEx(5000, TRUE), WAIT_IO_COMPLETION);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(ranOn, std::this_thread::get_id());
  EXPECT_EQ(SleepEx(0, TRUE), 0u) << "each APC runs once";
  WSACloseEvent(ev);
}

TEST_F(WinsockEvents, AlertableWaitWakesForAnApcQueuedWhileItSleeps) {
  auto queue = sockgate::winsock::currentApcQueue();
  std::atomic<int> ran{0};
  std::thread later([&] {
    std::this_thread::sleep_for(100ms);
    sockgate::winsock::queueApc(*queue, [&] { ran++; });
  });
  WSAEVENT ev = WSACreateEvent();
  const auto start = Clock::now();
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 10000, TRUE), WSA_WAIT_IO_COMPLETION);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(ran, 1);
  later.join();

  // a signaled event wins over a queued APC, which waits for the next one
  sockgate::winsock::queueApc(*queue, [&] { ran++; });
  WSASetEvent(ev);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, TRUE), WSA_WAIT_EVENT_0);
  EXPECT_EQ(ran, 1);
  WSAResetEvent(ev);
  EXPECT_EQ(WSAWaitForMultipleEvents(1, &ev, FALSE, 0, TRUE), WSA_WAIT_IO_COMPLETION);
  EXPECT_EQ(ran, 2);
  WSACloseEvent(ev);
}

}  // namespace
