#include "security/peer_credentials.h"

#include <cerrno>
#include <climits>

namespace sockgate::security {
namespace {

// A label or group list bigger than this is not a kernel answer we trust.
constexpr socklen_t kMaxOptionSize = 1 << 20;
constexpr size_t kInitialGroups = 64;

}  // namespace

GetsockoptFn realGetsockopt(int fd, int level, int option) {
  return [fd, level, option](void* buf, socklen_t* len) {
    return ::getsockopt(fd, level, option, buf, len) == 0 ? 0 : errno;
  };
}

Result<std::optional<std::string>> readPeerSecurityLabel(const GetsockoptFn& get) {
  // socket(7)/SO_PEERSEC(2const): "allocate at least NAME_MAX bytes".
  std::string buf(NAME_MAX, '\0');
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto len = static_cast<socklen_t>(buf.size());
    const int err = get(buf.data(), &len);
    if (err == 0) {
      if (len > buf.size())
        return fail(EPROTO, "SO_PEERSEC: kernel reported more bytes than it was given");
      buf.resize(len);
      // "foo" and "foo\0" are the same label.
      if (!buf.empty() && buf.back() == '\0') buf.pop_back();
      if (buf.empty()) return std::optional<std::string>{};
      return std::optional<std::string>(std::move(buf));
    }
    if (err == ENOPROTOOPT) return std::optional<std::string>{};
    if (err != ERANGE) return fail(err, "getsockopt SO_PEERSEC");
    // The kernel wrote the size it needs; retry with exactly that.
    if (len <= buf.size() || len > kMaxOptionSize) {
      return fail(EPROTO, "SO_PEERSEC: ERANGE with unusable size " + std::to_string(len));
    }
    buf.assign(len, '\0');
  }
  return fail(EAGAIN, "SO_PEERSEC: label kept growing");
}

Result<std::vector<gid_t>> readPeerGroups(const GetsockoptFn& get) {
  std::vector<gid_t> groups(kInitialGroups);
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    const int err = get(groups.data(), &len);
    if (err == 0) {
      if (len % sizeof(gid_t) != 0 || len > groups.size() * sizeof(gid_t)) {
        return fail(EPROTO, "SO_PEERGROUPS: odd length " + std::to_string(len));
      }
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (err != ERANGE) return fail(err, "getsockopt SO_PEERGROUPS");
    if (len <= groups.size() * sizeof(gid_t) || len > kMaxOptionSize || len % sizeof(gid_t) != 0) {
      return fail(EPROTO, "SO_PEERGROUPS: ERANGE with unusable size " + std::to_string(len));
    }
    groups.assign(len / sizeof(gid_t), 0);
  }
  return fail(EAGAIN, "SO_PEERGROUPS: group list kept growing");
}

Result<UnixPeerCredentials> readPeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return failErrno("getsockopt SO_PEERCRED");
  if (len != sizeof(cred)) return fail(EPROTO, "SO_PEERCRED: short answer");
  return UnixPeerCredentials{cred.pid, cred.uid, cred.gid};
}

Result<std::optional<UniqueFd>> readPeerPidfd(int fd) {
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    if (errno == ENOPROTOOPT) return std::optional<UniqueFd>{};
    return failErrno("getsockopt SO_PEERPIDFD");
  }
  return std::optional<UniqueFd>(UniqueFd(pidfd));
}

}  // namespace sockgate::security
