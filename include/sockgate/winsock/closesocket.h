/* closesocket(): closes s; overlapped operations still pending on it
 * complete with WSA_OPERATION_ABORTED first. 0, or SOCKET_ERROR with
 * WSAENOTSOCK / WSANOTINITIALISED.
 * (Minimal version owned by the WSAIoctl part; the full Winsock socket()
 * family supersedes it and calls the same abort hook.) */
#ifndef SOCKGATE_WINSOCK_CLOSESOCKET_H
#define SOCKGATE_WINSOCK_CLOSESOCKET_H

#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

int closesocket(SOCKET s);

#ifdef __cplusplus
}
#endif

#endif
