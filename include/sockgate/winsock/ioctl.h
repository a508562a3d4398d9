/* WSAIoctl for the WFP connection-redirect control codes, and the Winsock
 * getsockopt/setsockopt for the IP_WFP_REDIRECT_* options, over the C++ API
 * of sockgate/redirect.h (a thin wrapper: the socket-option protocol lives
 * there once).
 *
 * WSAIoctl(s, code, in, cbIn, out, cbOut, lpcbBytesReturned, lpOverlapped,
 *          lpCompletionRoutine) -- 0, or SOCKET_ERROR and WSAGetLastError():
 *
 * SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS / _CONTEXT (input unused):
 *   cbOut == 0            ERROR_INSUFFICIENT_BUFFER, size needed in
 *                         *lpcbBytesReturned (the documented size query)
 *   cbOut 1..3            WSAEINVAL, *lpcbBytesReturned = 0 (less than a ULONG)
 *   4 <= cbOut < needed   ERROR_INSUFFICIENT_BUFFER, size needed returned
 *   success               0, blob in out, its (non-zero) size returned
 *   WSAENOTCONN           s is not connected
 *   WSAEOPNOTSUPP         s carries no redirect record (not redirected, or
 *                         sockgate is not running)
 *   WSAEINVAL             s is not an IPv4/IPv6 socket
 * SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS (input: the records blob, before
 * connect()):
 *   cbOut != 0            WSAEINVAL
 *   in NULL               WSAEFAULT; cbIn == 0: WSAEINVAL
 *   WSAEACCES             the caller is not a registered redirect service
 *   WSAEISCONN            s is already connected
 *   WSAEINVAL             the blob is not redirect records
 *   success               0, *lpcbBytesReturned = 0
 * Any code:
 *   WSAENOTSOCK           s is not a socket (or not an open descriptor)
 *   WSAEINVAL             dwIoControlCode is not one of the three
 *   WSAEFAULT             out / in / lpcbBytesReturned / lpOverlapped is not
 *                         valid memory, or lpcbBytesReturned is NULL in a
 *                         call that is not overlapped
 *   WSANOTINITIALISED     no WSAStartup
 *
 * Overlapped (lpOverlapped != NULL; every socket is treated as created with
 * the overlapped attribute): argument errors above are reported at once;
 * otherwise the call returns SOCKET_ERROR with WSA_IO_PENDING and a worker
 * thread performs the operation. On completion Internal holds the result (0
 * or a WSA code, e.g. ERROR_INSUFFICIENT_BUFFER), InternalHigh the bytes;
 * then, if lpCompletionRoutine is NULL, hEvent is signaled (when it is a
 * valid event); otherwise hEvent is left alone (it is the caller's context,
 * as on Windows) and the routine is queued as an APC to the calling thread,
 * to run in its next alertable wait. closesocket() of s completes whatever
 * is still pending on it with WSA_OPERATION_ABORTED.
 */
#ifndef SOCKGATE_WINSOCK_IOCTL_H
#define SOCKGATE_WINSOCK_IOCTL_H

#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

int WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer,
             LPVOID lpvOutBuffer, DWORD cbOutBuffer, LPDWORD lpcbBytesReturned,
             LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

/* Winsock getsockopt/setsockopt for IP_WFP_REDIRECT_RECORDS and
 * IP_WFP_REDIRECT_CONTEXT at level WS_IPPROTO_IP_LEVEL on IPv4 sockets, and
 * IPV6_WFP_REDIRECT_* at WS_IPPROTO_IPV6_LEVEL on IPv6 sockets (named WS_ so
 * they do not collide with libc's getsockopt/setsockopt).
 *
 * WS_getsockopt: 0 with the blob in optval and its size in *optlen, or
 * SOCKET_ERROR with
 *   WSAEFAULT        optlen NULL, optval NULL with *optlen > 0, or *optlen
 *                    too small -- then *optlen is set to the size needed
 *   WSAENOPROTOOPT   the socket carries no such data, or the option is not
 *                    one of the two (other options are not emulated here)
 *   WSAEINVAL        the level is unknown or does not match the socket's
 *                    family
 *   WSAENOTSOCK, WSANOTINITIALISED
 * WS_setsockopt: IP_WFP_REDIRECT_RECORDS attaches records (before connect);
 * WSAEACCES for a caller that is not a registered service, WSAEISCONN,
 * WSAEINVAL for a blob that is not records, WSAEFAULT for optval NULL or
 * optlen <= 0; IP_WFP_REDIRECT_CONTEXT cannot be set (WSAENOPROTOOPT). */
int WS_getsockopt(SOCKET s, int level, int optname, char* optval, int* optlen);
int WS_setsockopt(SOCKET s, int level, int optname, const char* optval, int optlen);

#ifdef __cplusplus
}
#endif

#endif
