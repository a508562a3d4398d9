// A netlink request/response channel over libmnl, and the framing of reply
// bytes that the XFRM and sock_diag parsers share. Reply bytes are untrusted
// input to the parsers (they are fuzzed): every length is checked by libmnl's
// mnl_nlmsg_ok / mnl_attr_ok before a field is read.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <span>

#include "sockgate/error.h"
#include "sockgate/unique_fd.h"

namespace sockgate::security {

// Per reply message: Status error stops the walk.
using MessageHandler = std::function<Status(const nlmsghdr& message)>;

enum class BatchEnd { kMore, kDone };

// Walks one buffer of netlink replies (as one recv() returns them). seq and
// portid 0 skip the sequence/port checks (unit tests and fuzzing). An
// NLMSG_ERROR carrying an errno fails with that errno; NLMSG_DONE ends a dump.
// The buffer need not be aligned: it is copied when it is not.
[[nodiscard]] Result<BatchEnd> walkReplies(std::span<const uint8_t> bytes, uint32_t seq,
                                           uint32_t portid, const MessageHandler& onMessage);

// Reads a fixed-size header struct from a message's payload, or fails.
template <class T>
[[nodiscard]] bool readPayload(const nlmsghdr& message, T* out);

class NetlinkChannel {
 public:
  static Result<NetlinkChannel> open(int protocol, const char* what);

  // Sends `request` (its nlmsg_seq is filled in) and feeds every reply to
  // onMessage. dump: keep reading until NLMSG_DONE; otherwise one reply.
  Status transact(nlmsghdr* request, bool dump, const MessageHandler& onMessage);

 private:
  NetlinkChannel(UniqueFd fd, uint32_t portid, const char* what)
      : fd_(std::move(fd)), portid_(portid), what_(what) {}
  UniqueFd fd_;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  const char* what_ = "";
};

}  // namespace sockgate::security

#include <libmnl/libmnl.h>

#include <cstring>

namespace sockgate::security {
template <class T>
bool readPayload(const nlmsghdr& message, T* out) {
  if (message.nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(T)) return false;
  std::memcpy(out, mnl_nlmsg_get_payload(&message), sizeof(T));
  return true;
}
}  // namespace sockgate::security
