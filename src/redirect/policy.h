// The policy file: which redirect services exist, in what order, for which
// flows. TOML, validated completely before anything is attached; every error
// names the file, the line and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/endpoint.h"
#include "sockgate/error.h"

namespace sockgate {

struct PolicyService {
  enum class Kind { Builtin, External };

  std::string name;  // unique within the file
  Kind kind = Kind::Builtin;
  // Builtin: where sockgate's own service listens (port 0 = any free port,
  // the same one on both families). External: where the already running
  // service listens; at least one is required.
  std::optional<Endpoint> listen4;
  std::optional<Endpoint> listen6;
  int priority = 100;  // lower goes first; ties keep file order
  bool failClosed = false;
  std::vector<uint8_t> tag;  // at most SG_TAG_MAX bytes
  std::string cgroupPath;    // an external service's own cgroup, if it has one
  // External only: the service attaches each flow's records to its onward
  // connection itself (SDK or socket options), so none need inferring.
  bool attachesRecords = false;
  sg_filter filter{};  // cgroup paths already resolved to id and level
  int line = 0;        // where the [[service]] table starts
};

struct Policy {
  std::string source;                   // file path, or "<default>"
  std::vector<PolicyService> services;  // in priority order
};

// An invalid policy fails with an Error whose message() is one line,
//   FILE:LINE: service 'NAME': FIELD: what is wrong (what is expected)
// (FILE:LINE:COLUMN: ... for TOML syntax), with code 0: nothing failed in the
// OS. A file that cannot be read fails with its errno. Neither throws.
// Cgroup paths are resolved with stat() only: no privileges needed.
Result<Policy> parsePolicy(std::string_view text, const std::string& sourceName);
Result<Policy> loadPolicy(const std::string& path);

// The embedded default: one built-in service, "builtin", for all TCP.
Policy defaultPolicy();

}  // namespace sockgate
