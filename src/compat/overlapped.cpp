// Overlapped operations: one worker thread per process performs them in
// order, fills in the WSAOVERLAPPED, then signals the event or queues the
// completion routine to the issuing thread; closesocket() aborts what is
// still queued.
#include "compat/overlapped.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "compat/user_memory.h"
#include "compat/wsa_state.h"

namespace sockgate::winsock {
namespace {

struct Operation {
  SOCKET s = INVALID_SOCKET;
  LPWSAOVERLAPPED overlapped = nullptr;
  LPWSAOVERLAPPED_COMPLETION_ROUTINE routine = nullptr;
  std::shared_ptr<ApcQueue> apc;  // the issuing thread's, when routine is set
  OverlappedWork work;
};

struct Worker {
  std::mutex mutex;
  std::condition_variable wake;      // worker: new operation, or hold lifted
  std::condition_variable finished;  // an operation completed / in-flight one done
  std::deque<Operation> queue;
  bool started = false;
  bool hold = false;
  bool busy = false;
  SOCKET busySocket = INVALID_SOCKET;
};

// Never destroyed: the detached worker may still run while the process exits.
Worker* gWorker = new Worker;

std::atomic_ref<ULONG_PTR> internalOf(LPWSAOVERLAPPED ov) { return std::atomic_ref(ov->Internal); }

void complete(Operation& op, DWORD status, DWORD bytes) {
  op.overlapped->InternalHigh = bytes;
  internalOf(op.overlapped).store(status, std::memory_order_release);
  if (op.routine) {
    auto routine = op.routine;
    auto* ov = op.overlapped;
    queueApc(*op.apc, [routine, status, bytes, ov] { routine(status, bytes, ov, 0); });
  } else if (op.overlapped->hEvent != WSA_INVALID_EVENT) {
    (void)signalEvent(op.overlapped->hEvent);
  }
  {
    // Taken so that a waiter between its check and its wait cannot miss it.
    std::lock_guard lock(gWorker->mutex);
  }
  gWorker->finished.notify_all();
}

void run(Worker* w) {
  std::unique_lock lock(w->mutex);
  for (;;) {
    w->wake.wait(lock, [w] { return !w->hold && !w->queue.empty(); });
    Operation op = std::move(w->queue.front());
    w->queue.pop_front();
    w->busy = true;
    w->busySocket = op.s;
    lock.unlock();
    auto [status, bytes] = op.work();
    complete(op, status, bytes);
    lock.lock();
    w->busy = false;
    w->busySocket = INVALID_SOCKET;
    w->finished.notify_all();
  }
}

// A forked child has no worker thread: start a fresh one on demand there,
// and never touch the parent's queue (its mutex may have been held).
void resetAfterFork() { gWorker = new Worker; }

void ensureStarted(Worker* w) {
  if (w->started) return;
  static std::once_flag atfork;
  std::call_once(atfork, [] { ::pthread_atfork(nullptr, nullptr, resetAfterFork); });
  std::thread(run, w).detach();
  w->started = true;
}

}  // namespace

void startOverlapped(SOCKET s, LPWSAOVERLAPPED overlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, OverlappedWork work) {
  Operation op{s, overlapped, routine, routine ? currentApcQueue() : nullptr, std::move(work)};
  Worker* w = gWorker;
  {
    std::lock_guard lock(w->mutex);
    ensureStarted(w);
    w->queue.push_back(std::move(op));
  }
  w->wake.notify_one();
}

void abortPending(SOCKET s) {
  Worker* w = gWorker;
  std::deque<Operation> aborted;
  {
    std::unique_lock lock(w->mutex);
    for (auto it = w->queue.begin(); it != w->queue.end();) {
      if (it->s == s) {
        aborted.push_back(std::move(*it));
        it = w->queue.erase(it);
      } else {
        ++it;
      }
    }
    w->finished.wait(lock, [w, s] { return !(w->busy && w->busySocket == s); });
  }
  for (auto& op : aborted) complete(op, WSA_OPERATION_ABORTED, 0);
}

void waitOverlapped(LPWSAOVERLAPPED overlapped) {
  Worker* w = gWorker;
  std::unique_lock lock(w->mutex);
  w->finished.wait(lock, [overlapped] {
    return internalOf(overlapped).load(std::memory_order_acquire) != STATUS_PENDING;
  });
}

void holdOverlappedWorkerForTesting(bool hold) {
  Worker* w = gWorker;
  {
    std::lock_guard lock(w->mutex);
    w->hold = hold;
  }
  w->wake.notify_all();
}

}  // namespace sockgate::winsock

using namespace sockgate::winsock;

extern "C" BOOL WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer,
                                       BOOL fWait, LPDWORD lpdwFlags) {
  auto falseWith = [](int code) {
    (void)failWith(code);
    return FALSE;
  };
  if (!isStarted()) return falseWith(WSANOTINITIALISED);
  if (!isSocket(s)) return falseWith(WSAENOTSOCK);
  if (!userWritable(lpOverlapped, sizeof(WSAOVERLAPPED)) ||
      !userWritable(lpcbTransfer, sizeof(DWORD)) || !userWritable(lpdwFlags, sizeof(DWORD)))
    return falseWith(WSAEFAULT);

  ULONG_PTR status = internalOf(lpOverlapped).load(std::memory_order_acquire);
  if (status == STATUS_PENDING) {
    if (!fWait) return falseWith(WSA_IO_INCOMPLETE);
    if (!isValidEvent(lpOverlapped->hEvent)) return falseWith(WSAEINVAL);
    waitOverlapped(lpOverlapped);
    status = internalOf(lpOverlapped).load(std::memory_order_acquire);
  }
  *lpcbTransfer = static_cast<DWORD>(lpOverlapped->InternalHigh);
  *lpdwFlags = 0;
  if (status != 0) return falseWith(static_cast<int>(status));
  return TRUE;
}
