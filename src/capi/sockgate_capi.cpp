// The C ABI (include/sockgate/sockgate.h): a thin shell over the C++ API of
// sockgate/redirect.h that turns Result<T> into 0 / -errno and guarantees
// that nothing thrown inside ever crosses into C.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <vector>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"
#include "sockgate/sockgate.h"

namespace {

using sockgate::Result;

static_assert(SG_REDIRECT_CONTEXT_MAX == sizeof(sg_redirect_context));
static_assert(SG_REDIRECT_RECORDS_MAX == sizeof(sg_redirect_records));
static_assert(sizeof(sg_redirect_context_info::origin_comm) == SG_COMM_LEN + 1);
static_assert(static_cast<int>(sockgate::RedirectState::PreviouslyRedirectedBySelf) ==
              SG_REDIRECT_STATE_PREVIOUSLY_REDIRECTED_BY_SELF);

// The one place an exception could come from is an allocation (the C++ API
// returns blobs in vectors); it becomes -ENOMEM, never an unwind into C.
template <class F>
int guarded(F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

int errorOf(const sockgate::Error& e) { return e.code > 0 ? -e.code : -EIO; }

// The size protocol shared by both queries, applied to a blob the C++ API
// already read with the kernel's own size protocol.
int copyOut(const Result<std::vector<uint8_t>>& blob, void* buf, size_t* len) {
  if (!blob) return errorOf(blob.error());
  const size_t needed = blob->size();
  if (buf == nullptr) {
    *len = needed;
    return 0;
  }
  if (*len < needed) {
    *len = needed;
    return -ERANGE;
  }
  std::memcpy(buf, blob->data(), needed);
  *len = needed;
  return 0;
}

}  // namespace

extern "C" {

int sg_capi_version(void) { return SG_CAPI_VERSION; }

int sg_query_redirect_context(int fd, void* buf, size_t* len) {
  if (len == nullptr) return -EFAULT;
  return guarded([&] { return copyOut(sockgate::queryRedirectContextBlob(fd), buf, len); });
}

int sg_query_redirect_records(int fd, void* buf, size_t* len) {
  if (len == nullptr) return -EFAULT;
  return guarded([&] { return copyOut(sockgate::queryRedirectRecordsBlob(fd), buf, len); });
}

int sg_attach_redirect_records(int fd, const void* blob, size_t len) {
  if (blob == nullptr) return -EFAULT;
  if (len > SG_TAG_MAX * 4) return -EINVAL;  // far beyond any records blob
  return guarded([&] {
    auto done = sockgate::attachRedirectRecords(
        fd, std::span<const uint8_t>(static_cast<const uint8_t*>(blob), len));
    return done ? 0 : errorOf(done.error());
  });
}

int sg_parse_redirect_context(const void* blob, size_t len, sg_redirect_context_info* out) {
  if (blob == nullptr || out == nullptr) return -EFAULT;
  return guarded([&] {
    const auto bytes = std::span<const uint8_t>(static_cast<const uint8_t*>(blob), len);
    auto ctx = sockgate::parseRedirectContext(bytes);
    if (!ctx) return errorOf(ctx.error());
    // The parser validated header_len and tag_len against the blob; the tag
    // the caller gets is the one inside its own blob, not a copy.
    uint16_t headerLen = 0;
    std::memcpy(&headerLen, bytes.data() + offsetof(sg_redirect_context, header_len),
                sizeof headerLen);
    if (static_cast<size_t>(headerLen) + ctx->tag.size() > len) return -EINVAL;

    sg_redirect_context_info info{};
    const auto& dst = ctx->originalDestination;
    std::memcpy(&info.original_dst, dst.sockaddrPtr(), dst.length());
    info.original_dst_len = dst.length();
    info.origin_pid = ctx->originTgid;
    info.origin_tid = ctx->originTid;
    info.origin_uid = ctx->originUid;
    info.origin_gid = ctx->originGid;
    info.origin_cgroup_id = ctx->originCgroupId;
    info.flow_id = ctx->flowId;
    info.redirect_time_ns = ctx->redirectTimeNs;
    std::memcpy(info.origin_comm, ctx->originComm.data(),
                std::min(ctx->originComm.size(), sizeof info.origin_comm - 1));
    info.service_id = ctx->serviceId;
    info.tag_len = ctx->tag.size();
    info.tag = info.tag_len ? bytes.data() + headerLen : nullptr;
    *out = info;
    return 0;
  });
}

int sg_query_redirect_state(int fd, uint32_t service_id, sg_redirect_state* state) {
  if (state == nullptr) return -EFAULT;
  return guarded([&] {
    auto s = sockgate::queryRedirectState(fd, service_id);
    if (!s) return errorOf(s.error());
    *state = static_cast<sg_redirect_state>(*s);
    return 0;
  });
}

const char* sg_redirect_state_name(int state) {
  if (state < SG_REDIRECT_STATE_NOT_REDIRECTED ||
      state > SG_REDIRECT_STATE_PREVIOUSLY_REDIRECTED_BY_SELF)
    return "unknown";
  return sockgate::redirectStateName(static_cast<sockgate::RedirectState>(state));
}

int sg_query_original_destination(int fd, sockaddr* addr, socklen_t* len) {
  if (addr == nullptr || len == nullptr) return -EFAULT;
  return guarded([&] {
    auto ep = sockgate::queryOriginalDestination(fd);
    if (!ep) return errorOf(ep.error());
    if (ep->empty()) return -EAFNOSUPPORT;
    if (*len < ep->length()) {
      *len = ep->length();
      return -EINVAL;
    }
    std::memcpy(addr, ep->sockaddrPtr(), ep->length());
    *len = ep->length();
    return 0;
  });
}

const char* sg_strerror(int err) {
  if (err < 0) err = -err;
  switch (err) {
    case 0:
      return "success";
    case ENOPROTOOPT:
      return "the socket carries no redirect flow";
    case EPERM:
      return "not allowed: the caller is not a registered redirect service";
    case ERANGE:
      return "the buffer is too small; the length says how much is needed";
    case EISCONN:
      return "the socket is already connected: attach records before connect()";
    case EAFNOSUPPORT:
      return "not an IPv4 or IPv6 socket";
    case EINVAL:
      return "invalid argument, or the blob is not valid sockgate redirect data";
    case EFAULT:
      return "a required pointer is NULL";
    default:
      break;
  }
  // strerrordesc_np (glibc >= 2.32) returns a static string: thread-safe,
  // unlike strerror.
  if (const char* text = strerrordesc_np(err)) return text;
  return "unknown error";
}

}  // extern "C"
