// Builds kernel-shaped netlink reply bytes for parser tests and fuzz seeds:
// the same layout the kernel's xfrm_user and inet_diag code emit.
#pragma once

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/xfrm.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace sockgate::testing {

class NetlinkBuilder {
 public:
  // Starts a message; returns a properly aligned copy of its fixed header
  // to fill, which end() writes into the (only 4-byte aligned) message.
  template <class T>
  T* begin(uint16_t type, uint16_t flags = NLM_F_MULTI) {
    current_ = bytes_.size();
    bytes_.resize(bytes_.size() + kMaxMessage);
    nlmsghdr* h = mnl_nlmsg_put_header(bytes_.data() + current_);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    mnl_nlmsg_put_extra_header(h, sizeof(T));
    auto staged = std::make_shared<T>();
    T* raw = staged.get();
    staged_ = staged;
    stagedSize_ = sizeof(T);
    return raw;
  }
  void attr(uint16_t type, const void* data, size_t len) {
    mnl_attr_put(header(), type, len, data);
  }
  template <class T>
  void attr(uint16_t type, const T& value) {
    attr(type, &value, sizeof(value));
  }
  void end() {
    if (staged_) std::memcpy(mnl_nlmsg_get_payload(header()), staged_.get(), stagedSize_);
    staged_.reset();
    bytes_.resize(current_ + header()->nlmsg_len);
  }
  void done() {
    current_ = bytes_.size();
    bytes_.resize(bytes_.size() + kMaxMessage);
    nlmsghdr* h = mnl_nlmsg_put_header(bytes_.data() + current_);
    h->nlmsg_type = NLMSG_DONE;
    h->nlmsg_flags = NLM_F_MULTI;
    int zero = 0;
    std::memcpy(mnl_nlmsg_put_extra_header(h, sizeof(zero)), &zero, sizeof(zero));
    staged_.reset();
    end();
  }
  void error(int err) {
    auto* e = begin<nlmsgerr>(NLMSG_ERROR, 0);
    e->error = -err;
    end();
  }
  [[nodiscard]] const std::vector<uint8_t>& bytes() const { return bytes_; }
  [[nodiscard]] std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  static constexpr size_t kMaxMessage = 8192;
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(bytes_.data() + current_); }
  std::vector<uint8_t> bytes_;
  size_t current_ = 0;
  std::shared_ptr<void> staged_;
  size_t stagedSize_ = 0;
};

inline xfrm_address_t v4(const char* text) {
  xfrm_address_t a{};
  inet_pton(AF_INET, text, &a);
  return a;
}

inline xfrm_address_t v6(const char* text) {
  xfrm_address_t a{};
  inet_pton(AF_INET6, text, &a);
  return a;
}

inline xfrm_selector selector4(const char* src, int srcPrefix, const char* dst, int dstPrefix,
                               uint8_t proto = 0, uint16_t sport = 0, uint16_t dport = 0) {
  xfrm_selector s{};
  s.family = AF_INET;
  s.saddr = v4(src);
  s.daddr = v4(dst);
  s.prefixlen_s = static_cast<uint8_t>(srcPrefix);
  s.prefixlen_d = static_cast<uint8_t>(dstPrefix);
  s.proto = proto;
  s.sport = htons(sport);
  s.sport_mask = sport != 0 ? 0xffff : 0;
  s.dport = htons(dport);
  s.dport_mask = dport != 0 ? 0xffff : 0;
  return s;
}

struct PolicySpec {
  xfrm_selector sel{};
  uint8_t dir = XFRM_POLICY_OUT;
  uint8_t action = XFRM_POLICY_ALLOW;
  uint32_t priority = 0;
  uint32_t index = 0;
  std::vector<xfrm_user_tmpl> templates;
  const xfrm_mark* mark = nullptr;
};

inline xfrm_user_tmpl transportTemplate(uint8_t proto, int family = AF_INET) {
  xfrm_user_tmpl t{};
  t.id.proto = proto;
  t.family = static_cast<uint16_t>(family);
  t.mode = XFRM_MODE_TRANSPORT;
  t.aalgos = t.ealgos = t.calgos = ~0U;
  return t;
}

inline void addPolicy(NetlinkBuilder& b, const PolicySpec& spec) {
  auto* info = b.begin<xfrm_userpolicy_info>(XFRM_MSG_NEWPOLICY);
  info->sel = spec.sel;
  info->dir = spec.dir;
  info->action = spec.action;
  info->priority = spec.priority;
  info->index = spec.index;
  info->lft.soft_byte_limit = info->lft.hard_byte_limit = XFRM_INF;
  if (!spec.templates.empty()) {
    b.attr(XFRMA_TMPL, spec.templates.data(), spec.templates.size() * sizeof(xfrm_user_tmpl));
  }
  if (spec.mark != nullptr) b.attr(XFRMA_MARK, *spec.mark);
  b.end();
}

struct StateSpec {
  xfrm_address_t src{};
  xfrm_address_t dst{};
  int family = AF_INET;
  uint8_t proto = IPPROTO_ESP;
  uint32_t spi = 0x1000;
  uint32_t reqid = 0;
  uint8_t mode = XFRM_MODE_TRANSPORT;
  std::string aead;
  std::string enc;
  std::string auth;
  xfrm_selector sel{};
};

inline void putAlgorithm(NetlinkBuilder& b, uint16_t type, const std::string& name,
                         size_t headerSize, size_t keyBytes) {
  std::vector<uint8_t> payload(headerSize + keyBytes, 0xAB);  // 0xAB: key bytes
  std::memset(payload.data(), 0, 64);
  std::memcpy(payload.data(), name.data(), std::min<size_t>(name.size(), 64));
  const uint32_t keyBits = static_cast<uint32_t>(keyBytes * 8);
  std::memcpy(payload.data() + 64, &keyBits, sizeof(keyBits));
  b.attr(type, payload.data(), payload.size());
}

inline void addState(NetlinkBuilder& b, const StateSpec& spec) {
  auto* info = b.begin<xfrm_usersa_info>(XFRM_MSG_NEWSA);
  info->sel = spec.sel;
  info->id.daddr = spec.dst;
  info->saddr = spec.src;
  info->id.spi = htonl(spec.spi);
  info->id.proto = spec.proto;
  info->family = static_cast<uint16_t>(spec.family);
  info->mode = spec.mode;
  info->reqid = spec.reqid;
  if (!spec.aead.empty()) putAlgorithm(b, XFRMA_ALG_AEAD, spec.aead, sizeof(xfrm_algo_aead), 20);
  if (!spec.enc.empty()) putAlgorithm(b, XFRMA_ALG_CRYPT, spec.enc, sizeof(xfrm_algo), 16);
  if (!spec.auth.empty())
    putAlgorithm(b, XFRMA_ALG_AUTH_TRUNC, spec.auth, sizeof(xfrm_algo_auth), 32);
  b.end();
}

}  // namespace sockgate::testing
