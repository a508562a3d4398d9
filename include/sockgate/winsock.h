/* The Winsock-shaped compatibility layer: a thin wrapper over the C++ API,
 * usable from C. See include/sockgate/winsock/ for each part. */
#ifndef SOCKGATE_WINSOCK_H
#define SOCKGATE_WINSOCK_H

#include "sockgate/winsock/closesocket.h"
#include "sockgate/winsock/events.h"
#include "sockgate/winsock/ioctl.h"
#include "sockgate/winsock/security.h"
#include "sockgate/winsock/socket.h"
#include "sockgate/winsock/startup.h"
#include "sockgate/winsock/types.h"

#endif
