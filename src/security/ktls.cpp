#include "security/ktls.h"

#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace sockgate::security {
namespace {

constexpr size_t kUlpNameMax = 16;  // TCP_ULP_NAME_MAX

Result<std::optional<KtlsDirection>> readDirection(int fd, int option, const char* name) {
  tls_crypto_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, SOL_TLS, option, &info, &len) != 0) {
    // EBUSY: the ULP is attached but this direction has no keys yet.
    if (errno == EBUSY) return std::optional<KtlsDirection>{};
    return failErrno(std::string("getsockopt SOL_TLS ") + name);
  }
  KtlsDirection out;
  out.version = info.version;
  out.cipherType = info.cipher_type;
  out.cipherName = tlsCipherName(info.cipher_type);
  out.versionName = tlsVersionName(info.version);
  return std::optional<KtlsDirection>(out);
}

}  // namespace

std::string tlsCipherName(uint16_t cipherType) {
  switch (cipherType) {
    case TLS_CIPHER_AES_GCM_128:
      return "AES-GCM-128";
    case TLS_CIPHER_AES_GCM_256:
      return "AES-GCM-256";
    case TLS_CIPHER_AES_CCM_128:
      return "AES-CCM-128";
    case TLS_CIPHER_CHACHA20_POLY1305:
      return "CHACHA20-POLY1305";
    case 55:
      return "SM4-GCM";  // TLS_CIPHER_SM4_GCM (5.16)
    case 56:
      return "SM4-CCM";  // TLS_CIPHER_SM4_CCM (5.16)
    case 57:
      return "ARIA-GCM-128";  // TLS_CIPHER_ARIA_GCM_128 (6.2)
    case 58:
      return "ARIA-GCM-256";  // TLS_CIPHER_ARIA_GCM_256 (6.2)
    default:
      return "cipher " + std::to_string(cipherType);
  }
}

std::string tlsVersionName(uint16_t version) {
  switch (version) {
    case TLS_1_2_VERSION:
      return "TLS 1.2";
    case TLS_1_3_VERSION:
      return "TLS 1.3";
    default:
      return "version 0x" + [&] {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "%04x", version);
        return std::string(buf);
      }();
  }
}

bool ulpIsTls(std::string_view reply) {
  // The kernel copies min(optlen, TCP_ULP_NAME_MAX) bytes of the name field,
  // NUL padded, and reports that length, not the name's ("tls\0...", 16):
  // the name ends at the first NUL. No ULP at all is length 0.
  return reply.substr(0, reply.find('\0')) == "tls";
}

Result<std::optional<KtlsStatus>> readKtls(int fd) {
  char ulp[kUlpNameMax + 1] = {};
  socklen_t len = kUlpNameMax;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) != 0) {
    // Kernels without ULP support answer ENOPROTOOPT: no kernel TLS then.
    if (errno == ENOPROTOOPT) return std::optional<KtlsStatus>{};
    return failErrno("getsockopt TCP_ULP");
  }
  if (!ulpIsTls(std::string_view(ulp, std::min<size_t>(len, kUlpNameMax))))
    return std::optional<KtlsStatus>{};
  KtlsStatus status;
  auto tx = readDirection(fd, TLS_TX, "TLS_TX");
  if (!tx) return std::unexpected(std::move(tx.error()));
  auto rx = readDirection(fd, TLS_RX, "TLS_RX");
  if (!rx) return std::unexpected(std::move(rx.error()));
  status.tx = *tx;
  status.rx = *rx;
  return std::optional<KtlsStatus>(status);
}

}  // namespace sockgate::security
