/* Winsock-shaped compatibility layer: types, constants and error codes.
 *
 * Values are the Windows ones (see ../shared/reference/api-facts.md), so code
 * written against the Winsock pages ports unchanged. Names that would collide
 * with Linux's <sys/socket.h> and <netinet/in.h> macros (AF_*, SOCK_*,
 * IPPROTO_*, socket) carry Wine's WS_ prefix; names Linux does not define
 * (WSA*, SIO_*, IP_WFP_*, SOCKET_SECURITY_*) keep their Windows spelling.
 * Windows ULONG/DWORD are 32 bits: they are uint32_t here, never unsigned long.
 */
#ifndef SOCKGATE_WINSOCK_TYPES_H
#define SOCKGATE_WINSOCK_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef int32_t INT;
typedef int32_t BOOL;
typedef uint32_t UINT32;
typedef uint64_t UINT64;
typedef uintptr_t ULONG_PTR;
typedef void* PVOID;
typedef void* LPVOID;
typedef void* HANDLE;
typedef DWORD* LPDWORD;
typedef ULONG* PULONG;

/* A socket is a Linux file descriptor. */
typedef int SOCKET;
#define INVALID_SOCKET (-1)
#define SOCKET_ERROR (-1)

/* ---- error codes (WSABASEERR 10000) ---- */
#define ERROR_INSUFFICIENT_BUFFER 122
#define WSA_OPERATION_ABORTED 995
#define WSA_IO_PENDING 997
#define WSA_IO_INCOMPLETE 996
#define WSAEINTR 10004
#define WSAEBADF 10009
#define WSAEACCES 10013
#define WSAEFAULT 10014
#define WSAEINVAL 10022
#define WSAEMFILE 10024
#define WSAEWOULDBLOCK 10035
#define WSAEINPROGRESS 10036
#define WSAEALREADY 10037
#define WSAENOTSOCK 10038
#define WSAEDESTADDRREQ 10039
#define WSAEMSGSIZE 10040
#define WSAEPROTOTYPE 10041
#define WSAENOPROTOOPT 10042
#define WSAEPROTONOSUPPORT 10043
#define WSAESOCKTNOSUPPORT 10044
#define WSAEOPNOTSUPP 10045
#define WSAEPFNOSUPPORT 10046
#define WSAEAFNOSUPPORT 10047
#define WSAEADDRINUSE 10048
#define WSAEADDRNOTAVAIL 10049
#define WSAENETDOWN 10050
#define WSAENETUNREACH 10051
#define WSAENETRESET 10052
#define WSAECONNABORTED 10053
#define WSAECONNRESET 10054
#define WSAENOBUFS 10055
#define WSAEISCONN 10056
#define WSAENOTCONN 10057
#define WSAESHUTDOWN 10058
#define WSAETIMEDOUT 10060
#define WSAECONNREFUSED 10061
#define WSAEHOSTUNREACH 10065
#define WSASYSNOTREADY 10091
#define WSAVERNOTSUPPORTED 10092
#define WSANOTINITIALISED 10093
#define WSAEINVALIDPROCTABLE 10104
#define WSAEINVALIDPROVIDER 10105
#define WSAEPROVIDERFAILEDINIT 10106
#define WSASYSCALLFAILURE 10107

/* ---- address families (Windows values) ---- */
#define WS_AF_UNSPEC 0
#define WS_AF_UNIX 1
#define WS_AF_INET 2
#define WS_AF_NS 6
#define WS_AF_IPX WS_AF_NS
#define WS_AF_APPLETALK 16
#define WS_AF_NETBIOS 17
#define WS_AF_INET6 23
#define WS_AF_IRDA 26
#define WS_AF_BTH 32
#define WS_AF_MAX 33

/* ---- socket types ---- */
#define WS_SOCK_STREAM 1
#define WS_SOCK_DGRAM 2
#define WS_SOCK_RAW 3
#define WS_SOCK_RDM 4
#define WS_SOCK_SEQPACKET 5

/* ---- protocols ---- */
#define WS_IPPROTO_IP 0
#define WS_IPPROTO_ICMP 1
#define WS_IPPROTO_IGMP 2
#define WS_IPPROTO_GGP 3
#define WS_IPPROTO_IPV4 4
#define WS_IPPROTO_TCP 6
#define WS_IPPROTO_UDP 17
#define WS_IPPROTO_IPV6 41
#define WS_IPPROTO_ESP 50
#define WS_IPPROTO_AH 51
#define WS_IPPROTO_ICMPV6 58
#define WS_IPPROTO_RM 113
#define WS_IPPROTO_PGM 113
#define WS_IPPROTO_SCTP 132
#define WS_IPPROTO_RAW 255
#define WS_IPPROTO_MAX 256
#define BTHPROTO_RFCOMM 0x0003
#define BTHPROTO_L2CAP 0x0100
#define FROM_PROTOCOL_INFO (-1)

/* ---- socket option levels and the WFP redirect options ---- */
#define WS_SOL_SOCKET 0xffff
#define WS_IPPROTO_IP_LEVEL 0
#define WS_IPPROTO_IPV6_LEVEL 41
#define IP_WFP_REDIRECT_RECORDS 60
#define IP_WFP_REDIRECT_CONTEXT 70
#define IPV6_WFP_REDIRECT_RECORDS 60
#define IPV6_WFP_REDIRECT_CONTEXT 70

/* ---- WSAIoctl codes ---- */
#define IOC_VOID 0x20000000u
#define IOC_OUT 0x40000000u
#define IOC_IN 0x80000000u
#define IOC_INOUT (IOC_IN | IOC_OUT)
#define IOC_UNIX 0x00000000u
#define IOC_WS2 0x08000000u
#define IOC_PROTOCOL 0x10000000u
#define IOC_VENDOR 0x18000000u
#define _WSAIO(x, y) (IOC_VOID | (x) | (y))
#define _WSAIOR(x, y) (IOC_OUT | (x) | (y))
#define _WSAIOW(x, y) (IOC_IN | (x) | (y))
#define _WSAIORW(x, y) (IOC_INOUT | (x) | (y))
#define SIO_SET_SECURITY _WSAIOW(IOC_VENDOR, 200)
#define SIO_QUERY_SECURITY _WSAIORW(IOC_VENDOR, 201)
#define SIO_SET_PEER_TARGET_NAME _WSAIOW(IOC_VENDOR, 202)
#define SIO_DELETE_PEER_TARGET_NAME _WSAIOW(IOC_VENDOR, 203)
#define SIO_SOCKET_USAGE_NOTIFICATION _WSAIOW(IOC_VENDOR, 204)
#define SIO_QUERY_WFP_ALE_ENDPOINT_HANDLE _WSAIOR(IOC_VENDOR, 205)
/* The two QUERY codes are encoded IN (_WSAIOW) although they return data:
 * that is how Windows defines them. */
#define SIO_QUERY_WFP_CONNECTION_REDIRECT_RECORDS _WSAIOW(IOC_VENDOR, 220)
#define SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT _WSAIOW(IOC_VENDOR, 221)
#define SIO_SET_WFP_CONNECTION_REDIRECT_RECORDS _WSAIOW(IOC_VENDOR, 222)

/* ---- addresses (Windows layout: 128 bytes, 8-byte aligned) ---- */
typedef struct WS_SOCKADDR_STORAGE {
  uint16_t ss_family; /* a WS_AF_* value */
  char ss_pad1[6];
  int64_t ss_align;
  char ss_pad2[112];
} SOCKADDR_STORAGE, *PSOCKADDR_STORAGE;

/* ---- startup ---- */
#define WSADESCRIPTION_LEN 256
#define WSASYS_STATUS_LEN 128
typedef struct WSAData {
  WORD wVersion;
  WORD wHighVersion;
  unsigned short iMaxSockets;
  unsigned short iMaxUdpDg;
  char* lpVendorInfo;
  char szDescription[WSADESCRIPTION_LEN + 1];
  char szSystemStatus[WSASYS_STATUS_LEN + 1];
} WSADATA, *LPWSADATA;

#define MAKEWORD(lo, hi) ((WORD)(((BYTE)(lo)) | ((WORD)((BYTE)(hi))) << 8))

/* ---- overlapped I/O ---- */
typedef HANDLE WSAEVENT;
#define WSA_INVALID_EVENT ((WSAEVENT)0)
typedef struct WSAOVERLAPPED {
  ULONG_PTR Internal;     /* status of the operation */
  ULONG_PTR InternalHigh; /* bytes transferred */
  union {
    struct {
      DWORD Offset;
      DWORD OffsetHigh;
    } s;
    PVOID Pointer;
  } u;
  WSAEVENT hEvent;
} WSAOVERLAPPED, *LPWSAOVERLAPPED;
typedef void (*LPWSAOVERLAPPED_COMPLETION_ROUTINE)(DWORD dwError, DWORD cbTransferred,
                                                   LPWSAOVERLAPPED lpOverlapped, DWORD dwFlags);

/* ---- secure socket extensions (mstcpip.h) ---- */
typedef enum SOCKET_SECURITY_PROTOCOL {
  SOCKET_SECURITY_PROTOCOL_DEFAULT = 0,
  SOCKET_SECURITY_PROTOCOL_IPSEC = 1,
  SOCKET_SECURITY_PROTOCOL_IPSEC2 = 2,
  SOCKET_SECURITY_PROTOCOL_INVALID = 3
} SOCKET_SECURITY_PROTOCOL;

#define SOCKET_INFO_CONNECTION_SECURED 0x00000001u
#define SOCKET_INFO_CONNECTION_ENCRYPTED 0x00000002u
#define SOCKET_INFO_CONNECTION_IMPERSONATED 0x00000004u
#define SOCKET_SETTINGS_GUARANTEE_ENCRYPTION 0x1u
#define SOCKET_SETTINGS_ALLOW_INSECURE 0x2u

typedef struct SOCKET_SECURITY_QUERY_TEMPLATE {
  SOCKET_SECURITY_PROTOCOL SecurityProtocol;
  SOCKADDR_STORAGE PeerAddress;
  ULONG PeerTokenAccessMask;
} SOCKET_SECURITY_QUERY_TEMPLATE;

typedef struct SOCKET_SECURITY_QUERY_INFO {
  SOCKET_SECURITY_PROTOCOL SecurityProtocol;
  ULONG Flags;
  UINT64 PeerApplicationAccessTokenHandle;
  UINT64 PeerMachineAccessTokenHandle;
} SOCKET_SECURITY_QUERY_INFO;

typedef struct SOCKET_SECURITY_SETTINGS {
  SOCKET_SECURITY_PROTOCOL SecurityProtocol;
  ULONG SecurityFlags;
} SOCKET_SECURITY_SETTINGS;

#ifdef __cplusplus
} /* extern "C" */
static_assert(sizeof(SOCKADDR_STORAGE) == 128 && alignof(SOCKADDR_STORAGE) == 8);
static_assert(sizeof(SOCKET_SECURITY_QUERY_TEMPLATE) == 144);
static_assert(offsetof(SOCKET_SECURITY_QUERY_TEMPLATE, PeerAddress) == 8);
static_assert(offsetof(SOCKET_SECURITY_QUERY_TEMPLATE, PeerTokenAccessMask) == 136);
static_assert(sizeof(SOCKET_SECURITY_QUERY_INFO) == 24);
static_assert(sizeof(SOCKET_SECURITY_SETTINGS) == 8);
static_assert(sizeof(ULONG) == 4 && sizeof(DWORD) == 4);
#endif

#endif /* SOCKGATE_WINSOCK_TYPES_H */
