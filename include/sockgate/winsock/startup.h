/* WSAStartup / WSACleanup / WSAGetLastError: the per-process Winsock state.
 * Calls that Windows documents as failing with WSANOTINITIALISED check
 * sgWsaIsStarted() first. The last error is per thread, as on Windows. */
#ifndef SOCKGATE_WINSOCK_STARTUP_H
#define SOCKGATE_WINSOCK_STARTUP_H

#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

int WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData);
int WSACleanup(void);
int WSAGetLastError(void);
void WSASetLastError(int iError);

#ifdef __cplusplus
}
#endif

#endif
