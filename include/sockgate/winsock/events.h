/* Event objects, alertable waits and overlapped results: how a Winsock
 * program learns that an overlapped WSAIoctl finished.
 *
 * Linux mapping (docs/winsock.md has the whole story):
 *  - A WSAEVENT is a manual-reset event backed by an eventfd; the handle is
 *    an opaque number, validated on every call (WSA_INVALID_HANDLE).
 *  - A completion routine is an APC queued to the thread that issued the
 *    operation. It runs only when that thread enters an alertable wait:
 *    SleepEx(ms, TRUE) or WSAWaitForMultipleEvents(..., fAlertable = TRUE),
 *    which then return WAIT_IO_COMPLETION / WSA_WAIT_IO_COMPLETION.
 *  - lpOverlapped->Internal is STATUS_PENDING while the operation runs and
 *    then its result as a WSA error code (0 for success) -- Windows keeps an
 *    NTSTATUS there; read it through WSAGetOverlappedResult, as Windows asks.
 *    InternalHigh is the byte count.
 */
#ifndef SOCKGATE_WINSOCK_EVENTS_H
#define SOCKGATE_WINSOCK_EVENTS_H

#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define WSA_INVALID_HANDLE 6
#define WSA_NOT_ENOUGH_MEMORY 8
#define WSA_INVALID_PARAMETER 87

#define INFINITE 0xFFFFFFFFu
#define WAIT_IO_COMPLETION 0x000000C0u
#define STATUS_PENDING 0x00000103u
#define HasOverlappedIoCompleted(lpOverlapped) ((lpOverlapped)->Internal != STATUS_PENDING)

#define WSA_MAXIMUM_WAIT_EVENTS 64
#define WSA_WAIT_EVENT_0 0u
#define WSA_WAIT_IO_COMPLETION WAIT_IO_COMPLETION
#define WSA_WAIT_TIMEOUT 258u
#define WSA_WAIT_FAILED 0xFFFFFFFFu
#define WSA_INFINITE INFINITE

/* A new manual-reset event, not signaled. WSA_INVALID_EVENT on failure
 * (WSANOTINITIALISED, WSA_NOT_ENOUGH_MEMORY). */
WSAEVENT WSACreateEvent(void);
/* TRUE, or FALSE with WSA_INVALID_HANDLE / WSANOTINITIALISED. A wait in
 * progress on another thread keeps the event alive until it returns. */
BOOL WSACloseEvent(WSAEVENT hEvent);
BOOL WSASetEvent(WSAEVENT hEvent);
BOOL WSAResetEvent(WSAEVENT hEvent);

/* Waits until one (fWaitAll FALSE) or all (TRUE) of the events are
 * signaled, the timeout (ms, or WSA_INFINITE) passes, or -- with fAlertable
 * -- a completion routine of this thread has been run. Returns
 * WSA_WAIT_EVENT_0 + index (the lowest signaled index; 0 when waiting for
 * all), WSA_WAIT_TIMEOUT, WSA_WAIT_IO_COMPLETION, or WSA_WAIT_FAILED with
 * WSAGetLastError: WSA_INVALID_PARAMETER (cEvents 0 or above
 * WSA_MAXIMUM_WAIT_EVENTS, lphEvents NULL), WSA_INVALID_HANDLE,
 * WSANOTINITIALISED. Events are not reset by the wait (manual reset). */
DWORD WSAWaitForMultipleEvents(DWORD cEvents, const WSAEVENT* lphEvents, BOOL fWaitAll,
                               DWORD dwTimeout, BOOL fAlertable);

/* Sleeps dwMilliseconds (INFINITE: forever). With bAlertable, returns
 * WAIT_IO_COMPLETION as soon as it has run this thread's queued completion
 * routines; otherwise 0. */
DWORD SleepEx(DWORD dwMilliseconds, BOOL bAlertable);

/* The result of an overlapped operation issued on socket s. TRUE: it
 * succeeded, *lpcbTransfer bytes. FALSE with WSAGetLastError():
 *  - WSA_IO_INCOMPLETE: still pending and fWait is FALSE;
 *  - the operation's own error (ERROR_INSUFFICIENT_BUFFER with the size
 *    needed in *lpcbTransfer, WSAENOTCONN, WSA_OPERATION_ABORTED, ...);
 *  - WSAEINVAL: fWait is TRUE but lpOverlapped->hEvent is not a valid event
 *    (an operation with a completion routine cannot be waited for here);
 *  - WSAEFAULT: lpOverlapped, lpcbTransfer or lpdwFlags is not valid memory;
 *  - WSAENOTSOCK, WSANOTINITIALISED.
 * *lpdwFlags is set to 0 (no flags exist for WSAIoctl). */
BOOL WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer,
                            BOOL fWait, LPDWORD lpdwFlags);

#ifdef __cplusplus
}
#endif

#endif
