// What a redirect service reads from (and attaches to) its sockets: the
// redirect context, the redirect records, and the original destination.
// Everything here works through plain socket options answered by sockgate's
// kernel programs; see include/sockgate/abi/sockgate_abi.h for the wire format.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sockgate/endpoint.h"
#include "sockgate/error.h"

namespace sockgate {

struct RedirectContext {
  Endpoint originalDestination;
  uint32_t originTgid = 0;  // the process that called connect()
  uint32_t originTid = 0;
  uint32_t originUid = 0;
  uint32_t originGid = 0;
  uint64_t originCgroupId = 0;
  uint64_t flowId = 0;          // stable across every hop of a chain
  uint64_t redirectTimeNs = 0;  // CLOCK_MONOTONIC
  std::string originComm;
  uint32_t serviceId = 0;
  std::vector<uint8_t> tag;  // the receiving service's own tag
};

struct RedirectRecords {
  uint64_t flowId = 0;
  std::vector<uint32_t> chain;  // service ids that handled the flow, in order
  // the application that started the flow
  uint32_t originTgid = 0;
  uint32_t originTid = 0;
  uint32_t originUid = 0;
  uint32_t originGid = 0;
  uint64_t originCgroupId = 0;
  uint64_t originTimeNs = 0;
  std::string originComm;
};

// FWPS_CONNECTION_REDIRECT_STATE, from the point of view of one service.
enum class RedirectState {
  NotRedirected = 0,              // no service has redirected this flow
  RedirectedBySelf = 1,           // the last redirect was to this service
  RedirectedByOther = 2,          // redirected, never by this service
  PreviouslyRedirectedBySelf = 3  // this service had it before another one
};
[[nodiscard]] RedirectState redirectStateOf(const RedirectRecords& records, uint32_t serviceId);
[[nodiscard]] const char* redirectStateName(RedirectState state);

// Wire format <-> struct. Parsing accepts newer versions (unknown header
// fields are skipped through header_len) and rejects anything inconsistent.
Result<RedirectContext> parseRedirectContext(std::span<const uint8_t> blob);
std::vector<uint8_t> encodeRedirectContext(const RedirectContext& context);
Result<RedirectRecords> parseRedirectRecords(std::span<const uint8_t> blob);
std::vector<uint8_t> encodeRedirectRecords(const RedirectRecords& records);

// Raw blobs from a socket, with the documented size query (NULL buffer first).
// ENOPROTOOPT: the socket carries no redirect flow.
Result<std::vector<uint8_t>> queryRedirectContextBlob(int fd);
Result<std::vector<uint8_t>> queryRedirectRecordsBlob(int fd);

Result<RedirectContext> readRedirectContext(int fd);
Result<RedirectRecords> readRedirectRecords(int fd);

// The same for a caller that knows the socket's family (AF_INET/AF_INET6),
// such as a service that knows its listener's: one getsockopt(SO_DOMAIN)
// less per call, per flow.
Result<RedirectContext> readRedirectContext(int fd, int family);
Result<std::vector<uint8_t>> queryRedirectRecordsBlob(int fd, int family);

// The state of the flow a socket carries (NotRedirected when it carries none).
Result<RedirectState> queryRedirectState(int fd, uint32_t serviceId);

// Attaches records read from an accepted socket to an outbound socket, before
// connect(), so that the flow continues along the chain and never loops.
// EPERM: the caller is not a registered redirect service. ENOPROTOOPT: no
// sockgate hook is attached (on IPv6 the kernel's IPV6_RECVPATHMTU, which
// shares the number, is switched back off).
Status attachRedirectRecords(int fd, std::span<const uint8_t> blob);
Status attachRedirectRecords(int fd, int family, std::span<const uint8_t> blob);

// SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST, as a proxy written for iptables
// REDIRECT asks it.
Result<Endpoint> queryOriginalDestination(int fd);

}  // namespace sockgate
