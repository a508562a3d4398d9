// `sockgate run [--policy FILE | --service-port N] [--trace] -- CMD ARGS...`:
// no daemon, and no configuration unless a policy file asks for more. A cgroup for CMD, the hooks
// on it, the built-in service, CMD run inside, the connection table at the end, and nothing left
// behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sockgate::cli {

struct RunOptions {
  uint16_t servicePort = 0;  // the default policy's built-in service
  std::string policyPath;    // empty: the embedded default policy
  std::string socketPolicy;  // "audit raw,packet; deny packet"; empty: no socket guard
  bool trace = false;
  std::vector<std::string> command;
};

// Returns the exit status for the sockgate process: CMD's own status (128+N
// when a signal N killed it), or 2 when sockgate could not set up.
int runCommand(const RunOptions& options);

}  // namespace sockgate::cli
