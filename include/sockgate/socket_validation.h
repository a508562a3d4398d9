// Which (af, type, protocol) triples Winsock's socket() accepts, in Windows
// values, and the exact WSA error for the others. This is the one place the
// rules live; WS_socket() (sockgate/winsock/socket.h) is a thin wrapper that
// asks validateSocket() first and only then translates to Linux.
//
// The model is a Windows catalog with every provider the socket() page lists
// installed (TCP/IP and TCP/IPv6, raw IP, reliable multicast, NetBIOS, IrDA,
// Bluetooth) on a current Windows: no IPX, no AppleTalk (gone since Vista),
// with the error precedence Wine's test_WSASocket observed on real Windows
// (docs/winsock.md, "socket()"). NetBIOS is in the catalog although its
// provider only ships on 32-bit Windows, so that its datagram-only rule is
// checked rather than hidden behind "no such family". Whether a provider
// exists on this Linux host is WS_socket's business, not this one's.
#pragma once

#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "sockgate/winsock/types.h"

namespace sockgate {

// The triple the provider would create: zero (unspecified) fields filled in.
struct ResolvedSocket {
  int af = 0;
  int type = 0;
  int protocol = 0;
  std::string_view rule;  // the rule that accepted it, e.g. "inet-stream-tcp"
  friend bool operator==(const ResolvedSocket&, const ResolvedSocket&) = default;
};

struct SocketRejection {
  int wsaError = 0;       // WSAEINVAL, WSAEAFNOSUPPORT, WSAESOCKTNOSUPPORT, WSAEPROTONOSUPPORT
  std::string_view rule;  // the rule that decided, e.g. "unspec-family-and-protocol"
  friend bool operator==(const SocketRejection&, const SocketRejection&) = default;
};

using SocketValidation = std::expected<ResolvedSocket, SocketRejection>;

// Never fails for any int values; never touches the OS.
[[nodiscard]] SocketValidation validateSocket(int af, int type, int protocol);

// Every rule name validateSocket can report, accepting or rejecting.
[[nodiscard]] std::span<const std::string_view> socketRuleNames();

// ---- name <-> value tables (Windows spellings and values) ----

struct NamedValue {
  std::string_view name;
  int value;
};

// AF_UNSPEC, AF_INET, AF_IPX, AF_APPLETALK, AF_NETBIOS, AF_INET6, AF_IRDA, AF_BTH.
[[nodiscard]] std::span<const NamedValue> socketFamilies();
// SOCK_STREAM .. SOCK_SEQPACKET.
[[nodiscard]] std::span<const NamedValue> socketTypes();
// IPPROTO_* (IP families) and BTHPROTO_* (AF_BTH).
[[nodiscard]] std::span<const NamedValue> socketProtocols();

[[nodiscard]] std::optional<std::string_view> familyName(int af);
[[nodiscard]] std::optional<std::string_view> socketTypeName(int type);
// Protocol numbers depend on the family: 3 is BTHPROTO_RFCOMM under AF_BTH and
// IPPROTO_GGP elsewhere; 113 is IPPROTO_RM (a.k.a. IPPROTO_PGM).
[[nodiscard]] std::optional<std::string_view> protocolName(int af, int protocol);
[[nodiscard]] std::optional<int> familyValue(std::string_view name);
[[nodiscard]] std::optional<int> socketTypeValue(std::string_view name);
[[nodiscard]] std::optional<int> protocolValue(std::string_view name);
// "WSAEINVAL" for 10022; nullopt for a code socket() never reports.
[[nodiscard]] std::optional<std::string_view> socketErrorName(int wsaError);

}  // namespace sockgate
