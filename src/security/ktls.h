// Kernel TLS on a TCP socket: TCP_ULP "tls", then the TLS_TX / TLS_RX crypto
// info header (version and cipher only: the kernel hands back just the
// 4-byte header when asked for 4 bytes, so key material never enters us).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sockgate/security.h"

namespace sockgate::security {

// nullopt when the socket has no "tls" upper-layer protocol.
[[nodiscard]] Result<std::optional<KtlsStatus>> readKtls(int fd);

// Whether a getsockopt(TCP_ULP) reply (the bytes and the length the kernel
// reported) names the "tls" upper-layer protocol.
[[nodiscard]] bool ulpIsTls(std::string_view reply);

[[nodiscard]] std::string tlsCipherName(uint16_t cipherType);
[[nodiscard]] std::string tlsVersionName(uint16_t version);

}  // namespace sockgate::security
