// socket() argument rules in Windows values. Precedence (Wine's observed
// Windows table, api-facts §2, and the catalog lookup order of ws2_32: family,
// then type, then protocol):
//   1. AF_UNSPEC with protocol 0                      -> WSAEINVAL
//   2. IPX / AppleTalk (gone since Vista), unknown af -> WSAEAFNOSUPPORT
//   3. a type that is not 0 (unspecified) or 1..5    -> WSAESOCKTNOSUPPORT
//   4. a type the family has no provider for          -> WSAESOCKTNOSUPPORT
//   5. a protocol the (family, type) does not carry   -> WSAEPROTONOSUPPORT
// WSAEPROTOTYPE is never the answer: Windows reports every type/protocol
// mismatch as WSAEPROTONOSUPPORT (Wine: (AF_INET,STREAM,UDP), (AF_INET,DGRAM,TCP)).
#include "sockgate/socket_validation.h"

#include <algorithm>
#include <array>
#include <climits>

namespace sockgate {
namespace {

// IrDA's one protocol (af_irda.h IRDA_PROTO_SOCK_STREAM).
constexpr int kIrdaProtoSockStream = 1;
// A NetBIOS provider's protocol is minus its LANA number; LANA 0 is INT_MIN.
constexpr int kNetbiosMaxLana = 255;

constexpr std::array kFamilies = {
    NamedValue{"AF_UNSPEC", WS_AF_UNSPEC},   NamedValue{"AF_INET", WS_AF_INET},
    NamedValue{"AF_IPX", WS_AF_IPX},         NamedValue{"AF_APPLETALK", WS_AF_APPLETALK},
    NamedValue{"AF_NETBIOS", WS_AF_NETBIOS}, NamedValue{"AF_INET6", WS_AF_INET6},
    NamedValue{"AF_IRDA", WS_AF_IRDA},       NamedValue{"AF_BTH", WS_AF_BTH},
};

constexpr std::array kTypes = {
    NamedValue{"SOCK_STREAM", WS_SOCK_STREAM},
    NamedValue{"SOCK_DGRAM", WS_SOCK_DGRAM},
    NamedValue{"SOCK_RAW", WS_SOCK_RAW},
    NamedValue{"SOCK_RDM", WS_SOCK_RDM},
    NamedValue{"SOCK_SEQPACKET", WS_SOCK_SEQPACKET},
};

// IP protocols first; for a value listed twice the first name is the one
// protocolName() gives (IPPROTO_RM before IPPROTO_PGM, as on the page).
constexpr std::array kIpProtocols = {
    NamedValue{"IPPROTO_IP", WS_IPPROTO_IP},         NamedValue{"IPPROTO_ICMP", WS_IPPROTO_ICMP},
    NamedValue{"IPPROTO_IGMP", WS_IPPROTO_IGMP},     NamedValue{"IPPROTO_GGP", WS_IPPROTO_GGP},
    NamedValue{"IPPROTO_IPV4", WS_IPPROTO_IPV4},     NamedValue{"IPPROTO_TCP", WS_IPPROTO_TCP},
    NamedValue{"IPPROTO_UDP", WS_IPPROTO_UDP},       NamedValue{"IPPROTO_IPV6", WS_IPPROTO_IPV6},
    NamedValue{"IPPROTO_ESP", WS_IPPROTO_ESP},       NamedValue{"IPPROTO_AH", WS_IPPROTO_AH},
    NamedValue{"IPPROTO_ICMPV6", WS_IPPROTO_ICMPV6}, NamedValue{"IPPROTO_RM", WS_IPPROTO_RM},
    NamedValue{"IPPROTO_PGM", WS_IPPROTO_PGM},       NamedValue{"IPPROTO_SCTP", WS_IPPROTO_SCTP},
    NamedValue{"IPPROTO_RAW", WS_IPPROTO_RAW},
};
constexpr std::array kBthProtocols = {
    NamedValue{"BTHPROTO_RFCOMM", BTHPROTO_RFCOMM},
    NamedValue{"BTHPROTO_L2CAP", BTHPROTO_L2CAP},
};
constexpr auto kProtocols = [] {
  std::array<NamedValue, kIpProtocols.size() + kBthProtocols.size()> all{};
  std::ranges::copy(kIpProtocols, all.begin());
  std::ranges::copy(kBthProtocols, all.begin() + kIpProtocols.size());
  return all;
}();

constexpr std::array kErrors = {
    NamedValue{"WSANOTINITIALISED", WSANOTINITIALISED},
    NamedValue{"WSAENETDOWN", WSAENETDOWN},
    NamedValue{"WSAEAFNOSUPPORT", WSAEAFNOSUPPORT},
    NamedValue{"WSAEINPROGRESS", WSAEINPROGRESS},
    NamedValue{"WSAEMFILE", WSAEMFILE},
    NamedValue{"WSAEINVAL", WSAEINVAL},
    NamedValue{"WSAEINVALIDPROVIDER", WSAEINVALIDPROVIDER},
    NamedValue{"WSAEINVALIDPROCTABLE", WSAEINVALIDPROCTABLE},
    NamedValue{"WSAENOBUFS", WSAENOBUFS},
    NamedValue{"WSAEPROTONOSUPPORT", WSAEPROTONOSUPPORT},
    NamedValue{"WSAEPROTOTYPE", WSAEPROTOTYPE},
    NamedValue{"WSAEPROVIDERFAILEDINIT", WSAEPROVIDERFAILEDINIT},
    NamedValue{"WSAESOCKTNOSUPPORT", WSAESOCKTNOSUPPORT},
    NamedValue{"WSAEACCES", WSAEACCES},
};

// Every rule name, in the order they are tried.
constexpr std::array<std::string_view, 24> kRules = {
    "unspec-family-and-protocol",  // WSAEINVAL
    "family-removed",              // IPX, AppleTalk: WSAEAFNOSUPPORT
    "unknown-family",              // WSAEAFNOSUPPORT
    "unknown-type",                // WSAESOCKTNOSUPPORT
    "ip-no-seqpacket",             // WSAESOCKTNOSUPPORT
    "rdm-ipv4-only",               // AF_INET6 + SOCK_RDM: WSAESOCKTNOSUPPORT
    "ip-protocol-range",           // outside 0..255: WSAEPROTONOSUPPORT
    "ip-stream-needs-tcp",         // WSAEPROTONOSUPPORT
    "ip-dgram-needs-udp",          // WSAEPROTONOSUPPORT
    "rdm-needs-rm",                // WSAEPROTONOSUPPORT
    "ip-stream-tcp",               // accepted
    "ip-dgram-udp",                // accepted
    "ip-raw",                      // accepted
    "inet-rdm-rm",                 // accepted
    "ip-default-tcp",              // type and protocol 0: accepted as TCP
    "netbios-dgram-only",          // WSAESOCKTNOSUPPORT
    "netbios-protocol-lana",       // WSAEPROTONOSUPPORT
    "netbios-dgram",               // accepted
    "irda-stream-only",            // WSAESOCKTNOSUPPORT
    "irda-protocol",               // WSAEPROTONOSUPPORT
    "irda-stream",                 // accepted
    "bth-stream-only",             // WSAESOCKTNOSUPPORT
    "bth-rfcomm-only",             // WSAEPROTONOSUPPORT
    "bth-stream-rfcomm",           // accepted
};

// The rule strings handed out are the ones in kRules, so callers may compare
// either by content or against socketRuleNames(); a name missing from kRules
// does not compile.
consteval std::string_view rule(std::string_view name) {
  for (auto r : kRules)
    if (r == name) return r;
  throw "rule missing from kRules";
}

std::unexpected<SocketRejection> reject(int wsaError, std::string_view name) {
  return std::unexpected(SocketRejection{wsaError, name});
}

std::optional<std::string_view> nameOf(std::span<const NamedValue> table, int value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return std::nullopt;
}
std::optional<int> valueOf(std::span<const NamedValue> table, std::string_view name) {
  for (const auto& e : table)
    if (e.name == name) return e.value;
  return std::nullopt;
}

SocketValidation validateIp(int af, int type, int protocol) {
  if (type == WS_SOCK_SEQPACKET) {
    return reject(WSAESOCKTNOSUPPORT, rule("ip-no-seqpacket"));
  }
  if (type == WS_SOCK_RDM && af == WS_AF_INET6) {
    return reject(WSAESOCKTNOSUPPORT, rule("rdm-ipv4-only"));
  }
  if (protocol < 0 || protocol >= WS_IPPROTO_MAX) {
    return reject(WSAEPROTONOSUPPORT, rule("ip-protocol-range"));
  }
  // AF_UNSPEC: the first provider that carries the type and protocol. IPv4's
  // come first in the catalog; ICMPv6 is only meaningful over IPv6.
  const int family = af != WS_AF_UNSPEC              ? af
                     : protocol == WS_IPPROTO_ICMPV6 ? WS_AF_INET6
                                                     : WS_AF_INET;
  switch (type) {
    case WS_SOCK_STREAM:
      if (protocol != 0 && protocol != WS_IPPROTO_TCP)
        return reject(WSAEPROTONOSUPPORT, rule("ip-stream-needs-tcp"));
      return ResolvedSocket{family, WS_SOCK_STREAM, WS_IPPROTO_TCP, rule("ip-stream-tcp")};
    case WS_SOCK_DGRAM:
      if (protocol != 0 && protocol != WS_IPPROTO_UDP)
        return reject(WSAEPROTONOSUPPORT, rule("ip-dgram-needs-udp"));
      return ResolvedSocket{family, WS_SOCK_DGRAM, WS_IPPROTO_UDP, rule("ip-dgram-udp")};
    case WS_SOCK_RAW:
      // The protocol goes into the IP header as given, IPPROTO_IP (sniffers) included.
      return ResolvedSocket{family, WS_SOCK_RAW, protocol, rule("ip-raw")};
    case WS_SOCK_RDM:
      if (protocol != WS_IPPROTO_RM) return reject(WSAEPROTONOSUPPORT, rule("rdm-needs-rm"));
      return ResolvedSocket{WS_AF_INET, WS_SOCK_RDM, WS_IPPROTO_RM, rule("inet-rdm-rm")};
    default:  // type 0: the protocol picks the provider
      if (protocol == 0)
        return ResolvedSocket{family, WS_SOCK_STREAM, WS_IPPROTO_TCP, rule("ip-default-tcp")};
      if (protocol == WS_IPPROTO_TCP)
        return ResolvedSocket{family, WS_SOCK_STREAM, protocol, rule("ip-stream-tcp")};
      if (protocol == WS_IPPROTO_UDP)
        return ResolvedSocket{family, WS_SOCK_DGRAM, protocol, rule("ip-dgram-udp")};
      // ICMP, IGMP, ICMPv6 (the page's "SOCK_RAW or unspecified") and every
      // other IP protocol: the raw provider carries 0..255.
      return ResolvedSocket{family, WS_SOCK_RAW, protocol, rule("ip-raw")};
  }
}

SocketValidation validateNetbios(int type, int protocol) {
  if (type != 0 && type != WS_SOCK_DGRAM)
    return reject(WSAESOCKTNOSUPPORT, rule("netbios-dgram-only"));
  const bool lana =
      protocol == 0 || protocol == INT_MIN || (protocol < 0 && protocol >= -kNetbiosMaxLana);
  if (!lana) return reject(WSAEPROTONOSUPPORT, rule("netbios-protocol-lana"));
  return ResolvedSocket{WS_AF_NETBIOS, WS_SOCK_DGRAM, protocol, rule("netbios-dgram")};
}

SocketValidation validateIrda(int type, int protocol) {
  if (type != 0 && type != WS_SOCK_STREAM)
    return reject(WSAESOCKTNOSUPPORT, rule("irda-stream-only"));
  if (protocol != 0 && protocol != kIrdaProtoSockStream)
    return reject(WSAEPROTONOSUPPORT, rule("irda-protocol"));
  return ResolvedSocket{WS_AF_IRDA, WS_SOCK_STREAM, kIrdaProtoSockStream, rule("irda-stream")};
}

SocketValidation validateBth(int type, int protocol) {
  if (type != 0 && type != WS_SOCK_STREAM)
    return reject(WSAESOCKTNOSUPPORT, rule("bth-stream-only"));
  // BTHPROTO_L2CAP is not offered to applications by the Windows stack.
  if (protocol != 0 && protocol != BTHPROTO_RFCOMM)
    return reject(WSAEPROTONOSUPPORT, rule("bth-rfcomm-only"));
  return ResolvedSocket{WS_AF_BTH, WS_SOCK_STREAM, BTHPROTO_RFCOMM, rule("bth-stream-rfcomm")};
}

}  // namespace

SocketValidation validateSocket(int af, int type, int protocol) {
  if (af == WS_AF_UNSPEC && protocol == 0)
    return reject(WSAEINVAL, rule("unspec-family-and-protocol"));
  if (af == WS_AF_IPX || af == WS_AF_APPLETALK)
    return reject(WSAEAFNOSUPPORT, rule("family-removed"));
  const bool knownFamily = af == WS_AF_UNSPEC || af == WS_AF_INET || af == WS_AF_INET6 ||
                           af == WS_AF_NETBIOS || af == WS_AF_IRDA || af == WS_AF_BTH;
  if (!knownFamily) return reject(WSAEAFNOSUPPORT, rule("unknown-family"));
  if (type < 0 || type > WS_SOCK_SEQPACKET) return reject(WSAESOCKTNOSUPPORT, rule("unknown-type"));
  switch (af) {
    case WS_AF_NETBIOS:
      return validateNetbios(type, protocol);
    case WS_AF_IRDA:
      return validateIrda(type, protocol);
    case WS_AF_BTH:
      return validateBth(type, protocol);
    default:
      return validateIp(af, type, protocol);
  }
}

std::span<const std::string_view> socketRuleNames() { return kRules; }
std::span<const NamedValue> socketFamilies() { return kFamilies; }
std::span<const NamedValue> socketTypes() { return kTypes; }
std::span<const NamedValue> socketProtocols() { return kProtocols; }

std::optional<std::string_view> familyName(int af) { return nameOf(kFamilies, af); }
std::optional<std::string_view> socketTypeName(int type) { return nameOf(kTypes, type); }
std::optional<std::string_view> protocolName(int af, int protocol) {
  return af == WS_AF_BTH ? nameOf(kBthProtocols, protocol) : nameOf(kIpProtocols, protocol);
}
std::optional<int> familyValue(std::string_view name) { return valueOf(kFamilies, name); }
std::optional<int> socketTypeValue(std::string_view name) { return valueOf(kTypes, name); }
std::optional<int> protocolValue(std::string_view name) { return valueOf(kProtocols, name); }
std::optional<std::string_view> socketErrorName(int wsaError) { return nameOf(kErrors, wsaError); }

}  // namespace sockgate
