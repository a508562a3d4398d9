/* WS_socket(): Winsock's socket() with Windows values for af, type and
 * protocol (WS_AF_*, WS_SOCK_*, WS_IPPROTO_*, BTHPROTO_*). Returns a Linux
 * socket descriptor, or INVALID_SOCKET with the WSA code in WSAGetLastError():
 * WSANOTINITIALISED, WSAEINVAL, WSAEAFNOSUPPORT, WSAESOCKTNOSUPPORT,
 * WSAEPROTONOSUPPORT, WSAEMFILE, WSAENOBUFS, WSAEACCES (raw socket without
 * the privilege), WSAENETDOWN (an errno socket(2) does not document).
 * Named WS_socket, as in Wine, so it cannot collide with libc's socket().
 * Close what it returns with closesocket(), declared in closesocket.h and
 * included here. See docs/winsock.md, "socket()". */
#ifndef SOCKGATE_WINSOCK_SOCKET_H
#define SOCKGATE_WINSOCK_SOCKET_H

#include "sockgate/winsock/closesocket.h"
#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

SOCKET WS_socket(int af, int type, int protocol);

#ifdef __cplusplus
}
#endif

#endif
