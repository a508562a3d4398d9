// The socket security query: what protects a connection (IPsec from the
// kernel's XFRM state, kernel TLS) and who is on the other end (the local peer
// process, the IPsec SA of a remote peer). The Linux meaning of
// WSAQuerySocketSecurity, SO_PEERCRED and SO_PEERSEC; see docs/security.md.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sockgate/endpoint.h"
#include "sockgate/error.h"
#include "sockgate/unique_fd.h"

namespace sockgate {

// One end-to-end flow as seen from the queried socket. IPv4-mapped IPv6
// addresses are normalised to AF_INET (Endpoint::unmapped), because that is
// the family the kernel's IPsec and socket lookups use for such a flow.
struct Flow {
  int protocol = 0;  // IPPROTO_TCP / IPPROTO_UDP
  Endpoint local;
  Endpoint remote;
};

// The Windows SOCKET_SECURITY_PROTOCOL values that a Linux answer can take.
enum class SecurityProtocol : uint8_t { kNone = 0, kIpsec = 1 };

// SOCKET_INFO_CONNECTION_* with the Windows meanings: SECURED = a security
// protocol protects the traffic; ENCRYPTED = it is also encrypted (never
// without SECURED); IMPERSONATED = the reported peer is not the socket's
// direct peer but the process it acts for (set only by a redirect resolver).
inline constexpr uint32_t kSecurityFlagSecured = 0x1;
inline constexpr uint32_t kSecurityFlagEncrypted = 0x2;
inline constexpr uint32_t kSecurityFlagImpersonated = 0x4;

// ---- IPsec ----------------------------------------------------------------

enum class IpsecMode : uint8_t {
  kTransport = 0,
  kTunnel = 1,
  kRouteOptimization = 2,
  kInTrigger = 3,
  kBeet = 4
};

// One installed security association (no key material is ever copied).
struct IpsecSa {
  uint8_t proto = 0;  // IPPROTO_ESP (50), IPPROTO_AH (51), IPPROTO_COMP (108)
  IpsecMode mode = IpsecMode::kTransport;
  uint32_t spi = 0;  // host order
  uint32_t reqid = 0;
  int family = AF_UNSPEC;
  Endpoint source;             // SA outer source (port 0)
  Endpoint destination;        // SA outer destination (port 0)
  std::string aead;            // "rfc4106(gcm(aes))", empty if none
  std::string encryption;      // "cbc(aes)", "ecb(cipher_null)", empty if none
  std::string authentication;  // "hmac(sha256)", empty if none
  std::string compression;
  // ESP with a real cipher or an AEAD. AH, and ESP with ecb(cipher_null),
  // authenticate only.
  [[nodiscard]] bool encrypts() const;
};

// What the kernel's XFRM state says about one direction of the flow.
struct IpsecDirection {
  bool policyFound = false;   // a policy's selector covers this direction
  bool socketPolicy = false;  // it is a per-socket policy (setsockopt IP_XFRM_POLICY)
  uint32_t policyIndex = 0;
  uint8_t policyAction = 0;    // XFRM_POLICY_ALLOW (0) / BLOCK (1)
  bool requiresIpsec = false;  // ALLOW with at least one ESP/AH template
  bool allTemplatesHaveSa = false;
  std::vector<IpsecSa> sas;  // the SAs that satisfy the policy's templates
};

struct IpsecStatus {
  IpsecDirection outbound;
  IpsecDirection inbound;
  bool secured = false;    // both directions need IPsec and every required template has an SA
  bool encrypted = false;  // ... and both directions have an encrypting ESP SA
  size_t policiesSeen = 0;
  size_t statesSeen = 0;
  std::vector<std::string> notes;  // policies seen but not attributable, etc.
};

// ---- kernel TLS -------------------------------------------------------------

struct KtlsDirection {
  uint16_t version = 0;     // 0x0303 TLS 1.2, 0x0304 TLS 1.3
  uint16_t cipherType = 0;  // TLS_CIPHER_* from <linux/tls.h>
  std::string cipherName;   // "AES-GCM-128"
  std::string versionName;  // "TLS 1.3"
};

struct KtlsStatus {
  std::optional<KtlsDirection> tx;
  std::optional<KtlsDirection> rx;
  // Both directions offloaded to the kernel with a real cipher.
  [[nodiscard]] bool encryptsBothWays() const { return tx.has_value() && rx.has_value(); }
};

// ---- the peer -----------------------------------------------------------------

// How the peer process was found.
enum class PeerSource : uint8_t {
  kUnixCredentials,  // AF_UNIX SO_PEERCRED / SO_PEERPIDFD / SO_PEERGROUPS
  kSockDiag,         // loopback TCP/UDP: peer socket by sock_diag, owner by /proc
  kRedirectContext,  // a redirected flow: the origin process from the redirect context
  kOther,            // a resolver installed by someone else
};

struct PeerProcess {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);  // effective uid (AF_UNIX: at connect time)
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;            // supplementary groups
  std::string executable;               // /proc/<pid>/exe target
  std::string command;                  // /proc/<pid>/comm
  std::string cgroup;                   // cgroup v2 path ("0::" line of /proc/<pid>/cgroup)
  std::optional<std::string> lsmLabel;  // /proc/<pid>/attr/current when an LSM provides one
  UniqueFd pidfd;                       // refers to exactly this process; empty if not asked
  PeerSource source = PeerSource::kOther;
  bool impersonated = false;  // the identity is the one a redirecting service acts for
};

struct SocketSecurity {
  SecurityProtocol protocol = SecurityProtocol::kNone;
  uint32_t flags = 0;  // kSecurityFlag*
  int family = AF_UNSPEC;
  int type = 0;
  std::optional<Flow> flow;              // AF_INET/AF_INET6 only
  std::optional<IpsecStatus> ipsec;      // empty if not asked or not readable (see notes)
  std::optional<KtlsStatus> ktls;        // TCP only
  std::optional<PeerProcess> peer;       // a local peer process, if one was found
  std::optional<std::string> peerLabel;  // SO_PEERSEC; empty = "no label"
  std::vector<std::string> notes;        // why something is missing ("XFRM dump: EPERM")
};

// A peer process resolver: given the queried socket and its flow (empty for
// AF_UNIX), returns the peer, nothing ("not mine: ask the next one"), or an
// error (recorded in SocketSecurity::notes, and the next resolver is asked).
struct PeerResolver {
  std::string name;
  std::function<Result<std::optional<PeerProcess>>(int fd, const std::optional<Flow>& flow,
                                                   bool wantPidfd)>
      resolve;
};

struct QueryOptions {
  // The peer of a UDP socket (the Winsock template's PeerAddress); for a
  // connected socket getpeername() is used when this is empty. A v4-mapped
  // address is taken as the IPv4 one (see Flow).
  std::optional<Endpoint> peer;
  bool wantPeerProcess = true;
  bool wantPidfd = true;
  bool wantIpsec = true;
  bool wantKtls = true;
  bool wantLabel = true;
  // Empty: peerResolvers() (the process-wide chain).
  std::vector<PeerResolver> resolvers;
};

[[nodiscard]] Result<SocketSecurity> querySocketSecurity(int fd, const QueryOptions& options = {});

// The process-wide resolver chain, first asked first. The built-in chain is
// {"redirect-context", "unix-credentials", "sock-diag"}: on a redirect
// service's accepted socket the peer is the origin process named by the
// redirect context (flag IMPERSONATED), not the service's loopback client.
[[nodiscard]] std::vector<PeerResolver> peerResolvers();
void prependPeerResolver(PeerResolver resolver);
[[nodiscard]] std::vector<PeerResolver> builtinPeerResolvers();

// ---- output for the CLI -------------------------------------------------------

[[nodiscard]] std::string formatSecurityTable(const SocketSecurity& security);
[[nodiscard]] std::string formatSecurityJson(const SocketSecurity& security, int indent = 2);

// ---- a socket of another process ------------------------------------------------

// pidfd_open + pidfd_getfd: a duplicate of fd `fd` of process `pid` (needs
// ptrace access to it, e.g. root or the same uid without Yama restrictions).
[[nodiscard]] Result<UniqueFd> socketOfProcess(pid_t pid, int fd);

// The TCP/UDP socket whose local end is `local` and remote end is `remote`,
// found with sock_diag, its owner found in /proc, duplicated with pidfd_getfd.
struct OwnedSocket {
  UniqueFd socket;
  pid_t pid = 0;
  int fd = -1;
};
[[nodiscard]] Result<OwnedSocket> socketByTuple(const Endpoint& local, const Endpoint& remote,
                                                int protocol = 6 /* IPPROTO_TCP */);

}  // namespace sockgate
