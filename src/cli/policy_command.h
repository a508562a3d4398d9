// `sockgate policy check FILE`: validates a policy file exactly as `sockgate
// run --policy` would, without attaching anything and without root.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "redirect/policy.h"

namespace sockgate::cli {

struct PolicyCommand {
  CLI::App* check = nullptr;  // set by addPolicyCommand; parsed() says it was asked for
  std::string file;
};

// Adds `policy check FILE` to the app.
void addPolicyCommand(CLI::App& app, PolicyCommand& command);

// Runs what was parsed: 0 when the file is valid (the table on stdout), 2
// when it is not (the one error line on stderr).
int runPolicyCommand(const PolicyCommand& command);

// The services in priority order, columns aligned; ends with a newline.
std::string formatPolicyTable(const Policy& policy);
// "any TCP", or e.g. "tcp; dst 10.0.0.0/8; port 80,8000-8999; comm curl".
std::string filterSummary(const sg_filter& filter);

}  // namespace sockgate::cli
