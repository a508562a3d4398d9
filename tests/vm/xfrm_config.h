// Static transport-mode IPsec between the two sides of a NetnsPair: the
// `ip -batch` lines for SAs and policies, and removing them again. Each
// namespace has its own SAD and SPD, so a side gets both SAs and its own
// out/in policies.
#pragma once

#include <sys/socket.h>

#include <cstdio>
#include <string>

#include "netns_pair.h"

namespace sockgate::vmtest {

struct SaCase {
  const char* name;
  int family;
  const char* proto;  // esp or ah
  // The algorithm part of `ip xfrm state add`; KEY is where the key goes.
  const char* algo;
  const char* key;  // hex, for both directions
};

// The SA kinds the tier uses.
inline constexpr SaCase kEspGcmV4{"ESP rfc4106(gcm(aes)) over IPv4", AF_INET, "esp",
                                  "aead 'rfc4106(gcm(aes))' 0xKEY 128",
                                  "0123456789abcdef0123456789abcdef01020304"};
inline constexpr SaCase kEspNullV4{
    "ESP ecb(cipher_null)+hmac(sha256) over IPv4", AF_INET, "esp",
    "enc 'ecb(cipher_null)' '' auth-trunc 'hmac(sha256)' 0xKEY 128",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
inline constexpr SaCase kAhV4{"AH hmac(sha256) over IPv4", AF_INET, "ah",
                              "auth-trunc 'hmac(sha256)' 0xKEY 128",
                              "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"};
inline constexpr SaCase kEspGcmV6{"ESP rfc4106(gcm(aes)) over IPv6", AF_INET6, "esp",
                                  "aead 'rfc4106(gcm(aes))' 0xKEY 128",
                                  "fedcba9876543210fedcba9876543210a1b2c3d4"};

inline constexpr unsigned kSpiForward = 0x5a01;  // from A to B
inline constexpr unsigned kSpiReturn = 0x5a02;   // from B to A

inline std::string algoArgs(const SaCase& c, const char* key) {
  std::string s = c.algo;
  return s.replace(s.find("KEY"), 3, key);
}

inline std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

inline const std::string& addressOf(const Side& s, int family) {
  return family == AF_INET ? s.v4 : s.v6;
}

// One SA carrying `from` -> `to`.
inline std::string saLine(const SaCase& c, const Side& from, const Side& to, unsigned spi,
                          int reqid, const char* key) {
  return "xfrm state add src " + addressOf(from, c.family) + " dst " + addressOf(to, c.family) +
         " proto " + c.proto + " spi " + hex(spi) + " reqid " + std::to_string(reqid) +
         " mode transport " + algoArgs(c, key) + "\n";
}

// A policy for the host pair `from` -> `to` in direction `dir` (out or in,
// seen from the namespace it is installed in) that requires an SA of the
// case's protocol with `reqid`.
inline std::string policyLine(const SaCase& c, const Side& from, const Side& to, const char* dir,
                              int reqid) {
  const std::string prefix = c.family == AF_INET ? "/32" : "/128";
  const std::string f = addressOf(from, c.family);
  const std::string t = addressOf(to, c.family);
  return "xfrm policy add src " + f + prefix + " dst " + t + prefix + " dir " + dir + " tmpl src " +
         f + " dst " + t + " proto " + c.proto + " reqid " + std::to_string(reqid) +
         " mode transport\n";
}

// The xfrm configuration of one side: both SAs (A->B reqid 1 keyed with
// `forwardKey`, B->A reqid 2) and the out/in policies that require them.
inline std::string sideConfig(const SaCase& c, const Side& self, const Side& peer, const Side& a,
                              const Side& b, const char* forwardKey) {
  std::string s =
      saLine(c, a, b, kSpiForward, 1, forwardKey) + saLine(c, b, a, kSpiReturn, 2, c.key);
  const int outReqid = &self == &a ? 1 : 2;
  s += policyLine(c, self, peer, "out", outReqid);
  s += policyLine(c, peer, self, "in", 3 - outReqid);
  return s;
}

inline bool flushXfrm(const Side& s) {
  return NetnsPair::ipBatch(s, "xfrm policy flush\nxfrm state flush\n").status == 0;
}

}  // namespace sockgate::vmtest
