#include "security/netlink.h"

#include <libmnl/libmnl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstddef>
#include <ctime>
#include <string>
#include <vector>

namespace sockgate::security {
namespace {

struct WalkState {
  const MessageHandler* handler;
  Error error;
  bool failed = false;
};

int dataCallback(const nlmsghdr* message, void* data) {
  auto* state = static_cast<WalkState*>(data);
  Status status = (*state->handler)(*message);
  if (!status) {
    state->error = std::move(status.error());
    state->failed = true;
    return MNL_CB_ERROR;
  }
  return MNL_CB_OK;
}

// Large enough for a kernel dump batch (the kernel fills up to ~32 KiB).
constexpr size_t kReceiveBufferSize = 64 * 1024;
constexpr time_t kReplyTimeoutSeconds = 5;

}  // namespace

Result<BatchEnd> walkReplies(std::span<const uint8_t> bytes, uint32_t seq, uint32_t portid,
                             const MessageHandler& onMessage) {
  // libmnl reads nlmsghdr in place: give it 4-byte aligned memory.
  std::vector<uint32_t> aligned;
  const void* base = bytes.data();
  if (reinterpret_cast<uintptr_t>(base) % alignof(nlmsghdr) != 0) {
    aligned.resize((bytes.size() + 3) / 4);
    if (!bytes.empty()) std::memcpy(aligned.data(), bytes.data(), bytes.size());
    base = aligned.data();
  }
  // libmnl 1.0.4's mnl_nlmsg_ok compares (int)nlmsg_len <= len, so a length
  // >= 2^31 passes as negative and the walk runs off the buffer (found by
  // netlink_parsers_fuzz). Check the framing unsigned before handing it over.
  {
    size_t offset = 0;
    while (bytes.size() - offset >= sizeof(nlmsghdr)) {
      uint32_t messageLen = 0;
      std::memcpy(&messageLen, bytes.data() + offset + offsetof(nlmsghdr, nlmsg_len),
                  sizeof(messageLen));
      if (messageLen < sizeof(nlmsghdr) || messageLen > bytes.size() - offset) {
        return fail(EBADMSG, "netlink reply: message length " + std::to_string(messageLen) +
                                 " out of bounds");
      }
      offset += NLMSG_ALIGN(messageLen);
      if (offset >= bytes.size()) break;
    }
  }
  WalkState state{&onMessage, {}, false};
  errno = 0;
  const int rc = mnl_cb_run(base, bytes.size(), seq, portid, dataCallback, &state);
  if (state.failed) return std::unexpected(std::move(state.error));
  if (rc == MNL_CB_ERROR) {
    // NLMSG_ERROR from the kernel, a sequence mismatch (ESRCH/EPROTO) or a
    // truncated message (EBADMSG): errno says which.
    const int err = errno != 0 ? errno : EBADMSG;
    return fail(err, "netlink reply");
  }
  return rc == MNL_CB_STOP ? BatchEnd::kDone : BatchEnd::kMore;
}

Result<NetlinkChannel> NetlinkChannel::open(int protocol, const char* what) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (!fd) return failErrno(std::string(what) + ": netlink socket");
  // A kernel that never answers must not hang the query.
  timeval timeout{kReplyTimeoutSeconds, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return failErrno(std::string(what) + ": netlink bind");
  }
  socklen_t len = sizeof(local);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return failErrno(std::string(what) + ": netlink getsockname");
  }
  return NetlinkChannel(std::move(fd), local.nl_pid, what);
}

Status NetlinkChannel::transact(nlmsghdr* request, bool dump, const MessageHandler& onMessage) {
  request->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), request, request->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return failErrno(std::string(what_) + ": netlink send");
  }
  std::vector<uint32_t> buffer(kReceiveBufferSize / sizeof(uint32_t));
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buffer.data(), kReceiveBufferSize, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(std::string(what_) + ": netlink receive");
    }
    auto batch =
        walkReplies({reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(n)},
                    request->nlmsg_seq, portid_, onMessage);
    if (!batch) {
      batch.error().context = std::string(what_) + ": " + batch.error().context;
      return std::unexpected(std::move(batch.error()));
    }
    if (*batch == BatchEnd::kDone || !dump) return {};
  }
}

}  // namespace sockgate::security
