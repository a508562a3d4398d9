// WSAEVENTs (manual-reset, eventfd-backed), per-thread APC queues, and the
// alertable waits that run completion routines: WSAWaitForMultipleEvents and
// SleepEx.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/unique_fd.h"
#include "compat/overlapped.h"
#include "compat/user_memory.h"
#include "compat/wsa_state.h"

namespace sockgate::winsock {

// ---- APC queues ----

class ApcQueue {
 public:
  ApcQueue() : wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  void push(std::function<void()> apc) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(apc));
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }

  std::deque<std::function<void()>> takeAll() {
    std::lock_guard lock(mutex_);
    uint64_t count = 0;
    (void)!::read(wake_.get(), &count, sizeof count);
    return std::exchange(items_, {});
  }

  [[nodiscard]] int wakeFd() const { return wake_.get(); }

 private:
  std::mutex mutex_;
  std::deque<std::function<void()>> items_;
  UniqueFd wake_;  // readable while items_ is not empty
};

namespace {
thread_local std::shared_ptr<ApcQueue> tApcQueue;
}

std::shared_ptr<ApcQueue> currentApcQueue() {
  if (!tApcQueue) tApcQueue = std::make_shared<ApcQueue>();
  return tApcQueue;
}

void queueApc(ApcQueue& queue, std::function<void()> apc) { queue.push(std::move(apc)); }

int runApcs() {
  if (!tApcQueue) return 0;
  // Take the whole batch first: a routine may issue new overlapped calls,
  // whose routines wait for the next alertable wait, as on Windows.
  auto batch = tApcQueue->takeAll();
  for (auto& apc : batch) apc();
  return static_cast<int>(batch.size());
}

int apcWakeFd() { return tApcQueue ? tApcQueue->wakeFd() : -1; }

// ---- events ----

namespace {

struct Event {
  UniqueFd fd;  // eventfd: count > 0 means signaled
};

// Handles are numbers that are never reused, so a stale handle is always
// WSA_INVALID_HANDLE rather than somebody else's event. A wait holds a
// shared_ptr, so closing an event that another thread waits on is safe.
struct EventTable {
  std::mutex mutex;
  uintptr_t next = 1;
  std::unordered_map<uintptr_t, std::shared_ptr<Event>> events;
};

EventTable& table() {
  static auto* t = new EventTable;  // never destroyed: usable until exit
  return *t;
}

std::shared_ptr<Event> lookup(WSAEVENT handle) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  auto it = t.events.find(reinterpret_cast<uintptr_t>(handle));
  return it == t.events.end() ? nullptr : it->second;
}

bool signaled(const Event& e) {
  pollfd p{e.fd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline` for poll(): -1 forever, 0 when past.
int remainingMs(bool infinite, Clock::time_point deadline) {
  if (infinite) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

}  // namespace

bool signalEvent(WSAEVENT handle) {
  auto e = lookup(handle);
  if (!e) return false;
  const uint64_t one = 1;
  return ::write(e->fd.get(), &one, sizeof one) == sizeof one ||
         errno == EAGAIN;  // counter saturated: signaled anyway
}

bool isValidEvent(WSAEVENT handle) { return lookup(handle) != nullptr; }

bool isSocket(SOCKET s) {
  struct stat st{};
  return s >= 0 && ::fstat(s, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace sockgate::winsock

using namespace sockgate::winsock;

namespace {
// The failure tails of calls that return BOOL or a wait code.
BOOL falseWith(int wsaError) {
  (void)failWith(wsaError);
  return FALSE;
}
DWORD waitFailed(int wsaError) {
  (void)failWith(wsaError);
  return WSA_WAIT_FAILED;
}
}  // namespace

extern "C" WSAEVENT WSACreateEvent(void) {
  if (!isStarted()) {
    (void)failWith(WSANOTINITIALISED);
    return WSA_INVALID_EVENT;
  }
  sockgate::UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    (void)failWith(errno == ENOMEM || errno == EMFILE || errno == ENFILE ? WSA_NOT_ENOUGH_MEMORY
                                                                         : wsaFromErrno(errno));
    return WSA_INVALID_EVENT;
  }
  auto& t = table();
  std::lock_guard lock(t.mutex);
  const uintptr_t id = t.next++;
  t.events.emplace(id, std::make_shared<Event>(Event{std::move(fd)}));
  return reinterpret_cast<WSAEVENT>(id);
}

extern "C" BOOL WSACloseEvent(WSAEVENT hEvent) {
  if (!isStarted()) return falseWith(WSANOTINITIALISED);
  auto& t = table();
  std::lock_guard lock(t.mutex);
  if (t.events.erase(reinterpret_cast<uintptr_t>(hEvent)) == 0)
    return falseWith(WSA_INVALID_HANDLE);
  return TRUE;
}

extern "C" BOOL WSASetEvent(WSAEVENT hEvent) {
  if (!isStarted()) return falseWith(WSANOTINITIALISED);
  if (!signalEvent(hEvent)) return falseWith(WSA_INVALID_HANDLE);
  return TRUE;
}

extern "C" BOOL WSAResetEvent(WSAEVENT hEvent) {
  if (!isStarted()) return falseWith(WSANOTINITIALISED);
  auto e = lookup(hEvent);
  if (!e) return falseWith(WSA_INVALID_HANDLE);
  uint64_t count = 0;
  (void)!::read(e->fd.get(), &count, sizeof count);  // EAGAIN: was not signaled
  return TRUE;
}

extern "C" DWORD WSAWaitForMultipleEvents(DWORD cEvents, const WSAEVENT* lphEvents, BOOL fWaitAll,
                                          DWORD dwTimeout, BOOL fAlertable) {
  if (!isStarted()) return waitFailed(WSANOTINITIALISED);
  if (cEvents == 0 || cEvents > WSA_MAXIMUM_WAIT_EVENTS || lphEvents == nullptr)
    return waitFailed(WSA_INVALID_PARAMETER);
  WSAEVENT handles[WSA_MAXIMUM_WAIT_EVENTS];
  if (!copyFromUser(handles, lphEvents, cEvents * sizeof(WSAEVENT)))
    return waitFailed(WSA_INVALID_PARAMETER);
  std::vector<std::shared_ptr<Event>> events;
  events.reserve(cEvents);
  for (DWORD i = 0; i < cEvents; i++) {
    auto e = lookup(handles[i]);
    if (!e) return waitFailed(WSA_INVALID_HANDLE);
    events.push_back(std::move(e));
  }

  const bool infinite = dwTimeout == WSA_INFINITE;
  const auto deadline = Clock::now() + std::chrono::milliseconds(infinite ? 0 : dwTimeout);
  // The APC queue must exist before we poll it, or an APC queued while we
  // sleep would have no fd to wake us.
  const int apcFd = fAlertable ? currentApcQueue()->wakeFd() : -1;
  std::vector<pollfd> fds;
  for (;;) {
    // As on Windows, signaled events win over queued APCs.
    if (fWaitAll) {
      bool all = true;
      for (auto& e : events) all = all && signaled(*e);
      if (all) return WSA_WAIT_EVENT_0;
    } else {
      for (DWORD i = 0; i < cEvents; i++)
        if (signaled(*events[i])) return WSA_WAIT_EVENT_0 + i;
    }
    if (fAlertable && runApcs() > 0) return WSA_WAIT_IO_COMPLETION;
    const int wait = remainingMs(infinite, deadline);
    if (wait == 0) return WSA_WAIT_TIMEOUT;

    fds.clear();
    for (auto& e : events) fds.push_back({e->fd.get(), POLLIN, 0});
    if (apcFd >= 0) fds.push_back({apcFd, POLLIN, 0});
    if (fWaitAll) {
      // Sleep until some event we still miss (or an APC) changes; poll
      // cannot wait for "all", so the loop re-checks.
      std::vector<pollfd> missing;
      for (size_t i = 0; i < events.size(); i++)
        if (!signaled(*events[i])) missing.push_back(fds[i]);
      if (apcFd >= 0) missing.push_back({apcFd, POLLIN, 0});
      fds.swap(missing);
    }
    if (::poll(fds.data(), fds.size(), wait) < 0 && errno != EINTR)
      return waitFailed(wsaFromErrno(errno));
  }
}

extern "C" DWORD SleepEx(DWORD dwMilliseconds, BOOL bAlertable) {
  const bool infinite = dwMilliseconds == INFINITE;
  const auto deadline = Clock::now() + std::chrono::milliseconds(infinite ? 0 : dwMilliseconds);
  const int apcFd = bAlertable ? currentApcQueue()->wakeFd() : -1;
  for (;;) {
    if (bAlertable && runApcs() > 0) return WAIT_IO_COMPLETION;
    const int wait = remainingMs(infinite, deadline);
    if (wait == 0) return 0;
    pollfd p{apcFd, POLLIN, 0};  // fd -1: poll just sleeps
    (void)::poll(&p, 1, wait);
  }
}
