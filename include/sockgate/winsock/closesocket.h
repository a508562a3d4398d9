/* closesocket(): closes s; overlapped operations still pending on it
 * complete with WSA_OPERATION_ABORTED first. 0, or SOCKET_ERROR with
 * WSAENOTSOCK / WSANOTINITIALISED. Defined with WS_socket() in
 * src/compat/winsock_socket.cpp; sockgate/winsock/socket.h includes this
 * header, so the pair comes together. */
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
