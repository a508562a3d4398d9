// Reading a flow's redirect data from a socket with plain getsockopt calls,
// so services in any language can do the same without this library.
#include <sys/socket.h>

#include <cstring>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"

namespace sockgate {

namespace {

// The level that matches the socket's family, as the Windows pages ask
// (IP_WFP_* on IPv4 sockets, IPV6_WFP_* on IPv6 ones).
Result<int> levelOf(int fd, int family) {
  if (family == AF_INET) return SOL_IP;
  if (family == AF_INET6) return SOL_IPV6;
  return fail(EAFNOSUPPORT, "fd " + std::to_string(fd) + " is not an IPv4/IPv6 socket");
}

Result<int> levelFor(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
    return failErrno("getsockopt(fd " + std::to_string(fd) + ", SO_DOMAIN)");
  return levelOf(fd, domain);
}

// On SOL_IPV6, 60 and 70 are also IPV6_RECVPATHMTU and IPV6_AUTOFLOWLABEL:
// on a socket that carries no flow the kernel answers those with an int.
// Only a blob that starts with our magic is redirect data.
Result<std::vector<uint8_t>> ours(std::vector<uint8_t> blob, uint32_t magic,
                                  const std::string& ctx) {
  uint32_t got = 0;
  if (blob.size() >= sizeof got) std::memcpy(&got, blob.data(), sizeof got);
  if (blob.size() < 8 || got != magic)
    return fail(ENOPROTOOPT, ctx + ": the kernel's own option answered; no redirect data");
  return blob;
}

Result<std::vector<uint8_t>> queryBlob(int fd, Result<int> level, int optname, const char* what,
                                       size_t largest, uint32_t magic) {
  if (!level) return std::unexpected(level.error());
  const std::string ctx = std::string("getsockopt(fd ") + std::to_string(fd) + ", " + what + ")";
  // One call does it when the largest blob this version knows fits.
  std::vector<uint8_t> buf(largest);
  socklen_t got = static_cast<socklen_t>(largest);
  if (::getsockopt(fd, *level, optname, buf.data(), &got) == 0) {
    buf.resize(got);
    return ours(std::move(buf), magic, ctx);
  }
  if (errno != ERANGE) return failErrno(ctx);
  // A newer, larger blob: the size query (a NULL buffer is the one case
  // where the answer may exceed the buffer).
  socklen_t needed = 0;
  if (::getsockopt(fd, *level, optname, nullptr, &needed) != 0) return failErrno(ctx);
  if (needed == 0) return fail(ENOPROTOOPT, ctx + ": no redirect data");
  std::vector<uint8_t> blob(needed);
  socklen_t len = needed;
  if (::getsockopt(fd, *level, optname, blob.data(), &len) != 0) return failErrno(ctx);
  blob.resize(len);
  return ours(std::move(blob), magic, ctx);
}

Result<std::vector<uint8_t>> contextBlob(int fd, Result<int> level) {
  return queryBlob(fd, std::move(level), SG_IP_WFP_REDIRECT_CONTEXT, "IP_WFP_REDIRECT_CONTEXT",
                   sizeof(sg_redirect_context), SG_CONTEXT_MAGIC);
}

Result<std::vector<uint8_t>> recordsBlob(int fd, Result<int> level) {
  return queryBlob(fd, std::move(level), SG_IP_WFP_REDIRECT_RECORDS, "IP_WFP_REDIRECT_RECORDS",
                   sizeof(sg_redirect_records), SG_RECORDS_MAGIC);
}

Result<RedirectContext> contextFrom(Result<std::vector<uint8_t>> blob) {
  if (!blob) return std::unexpected(blob.error());
  return parseRedirectContext(*blob);
}

Status attach(int fd, Result<int> level, std::span<const uint8_t> blob);

}  // namespace

Result<std::vector<uint8_t>> queryRedirectContextBlob(int fd) {
  return contextBlob(fd, levelFor(fd));
}

Result<std::vector<uint8_t>> queryRedirectRecordsBlob(int fd) {
  return recordsBlob(fd, levelFor(fd));
}

Result<std::vector<uint8_t>> queryRedirectRecordsBlob(int fd, int family) {
  return recordsBlob(fd, levelOf(fd, family));
}

Result<RedirectContext> readRedirectContext(int fd) {
  return contextFrom(queryRedirectContextBlob(fd));
}

Result<RedirectContext> readRedirectContext(int fd, int family) {
  return contextFrom(contextBlob(fd, levelOf(fd, family)));
}

Result<RedirectRecords> readRedirectRecords(int fd) {
  auto blob = queryRedirectRecordsBlob(fd);
  if (!blob) return std::unexpected(blob.error());
  return parseRedirectRecords(*blob);
}

Result<RedirectState> queryRedirectState(int fd, uint32_t serviceId) {
  auto records = readRedirectRecords(fd);
  if (!records) {
    if (records.error().code == ENOPROTOOPT) return RedirectState::NotRedirected;
    return std::unexpected(records.error());
  }
  return redirectStateOf(*records, serviceId);
}

Status attachRedirectRecords(int fd, std::span<const uint8_t> blob) {
  return attach(fd, levelFor(fd), blob);
}

Status attachRedirectRecords(int fd, int family, std::span<const uint8_t> blob) {
  return attach(fd, levelOf(fd, family), blob);
}

namespace {

Status attach(int fd, Result<int> level, std::span<const uint8_t> blob) {
  if (!level) return std::unexpected(level.error());
  const std::string ctx = "setsockopt(fd " + std::to_string(fd) + ", IP_WFP_REDIRECT_RECORDS)";
  if (::setsockopt(fd, *level, SG_IP_WFP_REDIRECT_RECORDS, blob.data(),
                   static_cast<socklen_t>(blob.size())) != 0)
    return failErrno(ctx);
  if (*level == SOL_IP) return {};  // without sockgate, SOL_IP 60 is ENOPROTOOPT
  // On SOL_IPV6, 60 is also IPV6_RECVPATHMTU: with no sockgate hook attached
  // the kernel takes the blob's first bytes as that flag and succeeds. Only
  // reading the records back tells the two apart.
  if (recordsBlob(fd, SOL_IPV6)) return {};
  const int off = 0;
  (void)::setsockopt(fd, SOL_IPV6, SG_IP_WFP_REDIRECT_RECORDS, &off, sizeof off);
  return fail(ENOPROTOOPT, ctx +
                               ": no sockgate hook took the records (the kernel read them as "
                               "IPV6_RECVPATHMTU); is sockgate attached?");
}

}  // namespace

Result<Endpoint> queryOriginalDestination(int fd) {
  auto level = levelFor(fd);
  if (!level) return std::unexpected(level.error());
  sockaddr_storage ss{};
  socklen_t len = *level == SOL_IP ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (::getsockopt(fd, *level, SG_SO_ORIGINAL_DST, &ss, &len) != 0)
    return failErrno("getsockopt(fd " + std::to_string(fd) + ", SO_ORIGINAL_DST)");
  return Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace sockgate
