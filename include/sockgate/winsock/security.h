/* WSAQuerySocketSecurity: what protects a connection and who the peer is,
 * with the rules of the Winsock page (seeds/000). A thin wrapper over
 * sockgate::querySocketSecurity (include/sockgate/security.h).
 *
 * Linux mapping (docs/security.md):
 *  - SECURED / ENCRYPTED come from the kernel's IPsec (XFRM) state; reading it
 *    needs CAP_NET_ADMIN, without which the answer is "not secured".
 *  - PeerApplicationAccessTokenHandle is a pidfd of the local peer process,
 *    returned only when PeerTokenAccessMask != 0. The caller owns it and must
 *    close() it (the Windows CloseHandle). 0 when there is no local peer.
 *  - PeerMachineAccessTokenHandle is always 0: Linux has no machine token.
 *  - Overlapped and CompletionRoutine are ignored: sockgate sockets are never
 *    overlapped sockets, and the call completes synchronously. */
#ifndef SOCKGATE_WINSOCK_SECURITY_H
#define SOCKGATE_WINSOCK_SECURITY_H

#include "sockgate/winsock/types.h"

#ifdef __cplusplus
extern "C" {
#endif

INT WSAQuerySocketSecurity(SOCKET Socket,
                           const SOCKET_SECURITY_QUERY_TEMPLATE* SecurityQueryTemplate,
                           ULONG SecurityQueryTemplateLen,
                           SOCKET_SECURITY_QUERY_INFO* SecurityQueryInfo,
                           ULONG* SecurityQueryInfoLen, LPWSAOVERLAPPED Overlapped,
                           LPWSAOVERLAPPED_COMPLETION_ROUTINE CompletionRoutine);

#ifdef __cplusplus
}
#endif

#endif
