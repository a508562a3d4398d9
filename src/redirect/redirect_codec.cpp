// The redirect context and records wire formats (sockgate_abi.h), parsed
// defensively: these bytes come from another process's socket option.
#include <arpa/inet.h>

#include <cstddef>
#include <cstring>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/redirect.h"

namespace sockgate {

static_assert(offsetof(sg_redirect_context, tag) == SG_CONTEXT_HEADER_LEN);
static_assert(sizeof(sg_redirect_context) == SG_CONTEXT_HEADER_LEN + SG_TAG_MAX);
static_assert(sizeof(sg_redirect_records) == 160);
static_assert(sizeof(sg_endpoint) == 24);

namespace {

template <class T>
T load(std::span<const uint8_t> blob, size_t offset) {
  T value;
  std::memcpy(&value, blob.data() + offset, sizeof(T));
  return value;
}

constexpr size_t kCommonPrefix = offsetof(sg_redirect_context, original_dst);

}  // namespace

Result<RedirectContext> parseRedirectContext(std::span<const uint8_t> blob) {
  if (blob.size() < kCommonPrefix)
    return fail(EINVAL, "redirect context: " + std::to_string(blob.size()) +
                            " bytes, shorter than its fixed prefix");
  if (load<uint32_t>(blob, offsetof(sg_redirect_context, magic)) != SG_CONTEXT_MAGIC)
    return fail(EINVAL, "redirect context: bad magic");
  const auto version = load<uint16_t>(blob, offsetof(sg_redirect_context, version));
  const auto headerLen = load<uint16_t>(blob, offsetof(sg_redirect_context, header_len));
  const auto totalLen = load<uint32_t>(blob, offsetof(sg_redirect_context, total_len));
  if (version < 1) return fail(EINVAL, "redirect context: version 0");
  if (headerLen < SG_CONTEXT_HEADER_LEN)
    return fail(EINVAL, "redirect context: header_len " + std::to_string(headerLen) +
                            " below version 1's " + std::to_string(SG_CONTEXT_HEADER_LEN));
  if (totalLen < headerLen || totalLen > blob.size())
    return fail(EINVAL, "redirect context: total_len " + std::to_string(totalLen) +
                            " does not fit " + std::to_string(blob.size()) + " bytes");
  sg_redirect_context raw{};
  std::memcpy(&raw, blob.data(), SG_CONTEXT_HEADER_LEN);
  if (raw.tag_len > totalLen - headerLen || raw.tag_len > SG_TAG_MAX)
    return fail(EINVAL,
                "redirect context: tag_len " + std::to_string(raw.tag_len) + " exceeds the blob");
  if (raw.original_dst.family != AF_INET && raw.original_dst.family != AF_INET6)
    return fail(EINVAL, "redirect context: original destination family " +
                            std::to_string(raw.original_dst.family));

  RedirectContext c;
  c.originalDestination = Endpoint::fromAbi(raw.original_dst);
  c.originTgid = raw.origin_tgid;
  c.originTid = raw.origin_tid;
  c.originUid = raw.origin_uid;
  c.originGid = raw.origin_gid;
  c.originCgroupId = raw.origin_cgroup_id;
  c.flowId = raw.flow_id;
  c.redirectTimeNs = raw.redirect_time_ns;
  c.originComm.assign(raw.origin_comm, strnlen(raw.origin_comm, SG_COMM_LEN));
  c.serviceId = raw.service_id;
  const auto* tag = blob.data() + headerLen;
  c.tag.assign(tag, tag + raw.tag_len);
  return c;
}

std::vector<uint8_t> encodeRedirectContext(const RedirectContext& c) {
  sg_redirect_context raw{};
  const size_t tagLen = std::min<size_t>(c.tag.size(), SG_TAG_MAX);
  raw.magic = SG_CONTEXT_MAGIC;
  raw.version = SG_ABI_VERSION;
  raw.header_len = SG_CONTEXT_HEADER_LEN;
  raw.total_len = static_cast<uint32_t>(SG_CONTEXT_HEADER_LEN + ((tagLen + 7) & ~size_t{7}));
  raw.original_dst = c.originalDestination.toAbi();
  raw.origin_tgid = c.originTgid;
  raw.origin_tid = c.originTid;
  raw.origin_uid = c.originUid;
  raw.origin_gid = c.originGid;
  raw.origin_cgroup_id = c.originCgroupId;
  raw.flow_id = c.flowId;
  raw.redirect_time_ns = c.redirectTimeNs;
  std::memcpy(raw.origin_comm, c.originComm.data(),
              std::min<size_t>(c.originComm.size(), SG_COMM_LEN - 1));
  raw.service_id = c.serviceId;
  raw.tag_len = static_cast<uint32_t>(tagLen);
  if (tagLen) std::memcpy(raw.tag, c.tag.data(), tagLen);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&raw);
  return {bytes, bytes + raw.total_len};
}

Result<RedirectRecords> parseRedirectRecords(std::span<const uint8_t> blob) {
  if (blob.size() < sizeof(sg_redirect_records))
    return fail(EINVAL, "redirect records: " + std::to_string(blob.size()) + " bytes, need " +
                            std::to_string(sizeof(sg_redirect_records)));
  sg_redirect_records raw{};
  std::memcpy(&raw, blob.data(), sizeof raw);
  if (raw.magic != SG_RECORDS_MAGIC) return fail(EINVAL, "redirect records: bad magic");
  if (raw.version < 1) return fail(EINVAL, "redirect records: version 0");
  if (raw.count > SG_MAX_CHAIN)
    return fail(EINVAL, "redirect records: chain of " + std::to_string(raw.count) + " exceeds " +
                            std::to_string(SG_MAX_CHAIN));
  RedirectRecords r;
  r.flowId = raw.flow_id;
  r.chain.assign(raw.chain, raw.chain + raw.count);
  r.originTgid = raw.origin.tgid;
  r.originTid = raw.origin.tid;
  r.originUid = raw.origin.uid;
  r.originGid = raw.origin.gid;
  r.originCgroupId = raw.origin.cgroup_id;
  r.originTimeNs = raw.origin.time_ns;
  r.originComm.assign(raw.origin.comm, strnlen(raw.origin.comm, SG_COMM_LEN));
  return r;
}

std::vector<uint8_t> encodeRedirectRecords(const RedirectRecords& r) {
  sg_redirect_records raw{};
  raw.magic = SG_RECORDS_MAGIC;
  raw.version = SG_ABI_VERSION;
  raw.count = static_cast<uint16_t>(std::min<size_t>(r.chain.size(), SG_MAX_CHAIN));
  raw.flow_id = r.flowId;
  if (raw.count) std::memcpy(raw.chain, r.chain.data(), raw.count * sizeof(uint32_t));
  raw.origin.tgid = r.originTgid;
  raw.origin.tid = r.originTid;
  raw.origin.uid = r.originUid;
  raw.origin.gid = r.originGid;
  raw.origin.cgroup_id = r.originCgroupId;
  raw.origin.time_ns = r.originTimeNs;
  std::memcpy(raw.origin.comm, r.originComm.data(),
              std::min<size_t>(r.originComm.size(), SG_COMM_LEN - 1));
  const auto* bytes = reinterpret_cast<const uint8_t*>(&raw);
  return {bytes, bytes + sizeof raw};
}

RedirectState redirectStateOf(const RedirectRecords& records, uint32_t serviceId) {
  if (records.chain.empty()) return RedirectState::NotRedirected;
  if (records.chain.back() == serviceId) return RedirectState::RedirectedBySelf;
  for (uint32_t id : records.chain)
    if (id == serviceId) return RedirectState::PreviouslyRedirectedBySelf;
  return RedirectState::RedirectedByOther;
}

const char* redirectStateName(RedirectState state) {
  switch (state) {
    case RedirectState::NotRedirected:
      return "not redirected";
    case RedirectState::RedirectedBySelf:
      return "redirected by self";
    case RedirectState::RedirectedByOther:
      return "redirected by other";
    case RedirectState::PreviouslyRedirectedBySelf:
      return "previously redirected by self";
  }
  return "?";
}

}  // namespace sockgate
