// The machinery behind overlapped Winsock calls: per-thread APC queues (how a
// completion routine reaches the thread that issued the call), event handles,
// and the worker thread that performs overlapped operations.
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include "sockgate/winsock/events.h"
#include "sockgate/winsock/types.h"

namespace sockgate::winsock {

// ---- APCs ----

// One thread's queue of completion routines, drained by its alertable waits.
class ApcQueue;

// The calling thread's queue (created on first use; it outlives the thread
// if operations still hold it, and is then simply never drained -- as
// Windows discards APCs of a thread that has exited).
std::shared_ptr<ApcQueue> currentApcQueue();
void queueApc(ApcQueue& queue, std::function<void()> apc);
// Runs the APCs queued to the calling thread; returns how many ran.
int runApcs();
// An fd that polls readable while the calling thread has APCs queued, or
// -1 if the thread has no queue yet (then it has none queued).
int apcWakeFd();

// ---- events ----

// Signals an event if the handle is valid; false otherwise.
bool signalEvent(WSAEVENT event);
[[nodiscard]] bool isValidEvent(WSAEVENT event);

// ---- sockets ----

// Whether fd is an open socket (fstat; EBADF counts as "not a socket", which
// is what Windows answers for a handle that is not one).
[[nodiscard]] bool isSocket(SOCKET s);

// ---- overlapped operations ----

// The operation itself, run on the worker: returns {status, bytes}, status
// 0 or a WSA error code.
using OverlappedWork = std::function<std::pair<DWORD, DWORD>()>;

// Queues `work` for s. The caller has already set lpOverlapped->Internal to
// STATUS_PENDING; on completion Internal/InternalHigh get the result and
// then the routine is queued to `apc` (if routine) or hEvent is signaled.
void startOverlapped(SOCKET s, LPWSAOVERLAPPED overlapped,
                     LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, OverlappedWork work);

// Completes every operation still queued for s with WSA_OPERATION_ABORTED,
// and waits for one the worker is running on s right now to finish (it then
// completes normally: it was no longer pending). closesocket() calls this
// before it closes the descriptor, so no queued operation ever runs on a
// descriptor number that a new socket has reused.
void abortPending(SOCKET s);

// Blocks until lpOverlapped is no longer pending.
void waitOverlapped(LPWSAOVERLAPPED overlapped);

// Test seam: while held, the worker takes no new operation, so that a test
// can observe the pending state (WSA_IO_INCOMPLETE, abort on close)
// deterministically. Production code never holds it.
void holdOverlappedWorkerForTesting(bool hold);

}  // namespace sockgate::winsock
