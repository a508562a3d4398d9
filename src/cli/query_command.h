// `sockgate query --pid P --fd N | --tcp LOCAL REMOTE | --udp LOCAL REMOTE [--json]`:
// what protects a connection of a running process, and who is on the other end.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace sockgate::cli {

struct QueryCommand {
  CLI::App* app = nullptr;  // parsed() says it was asked for
  int pid = 0;
  int fd = -1;
  std::vector<std::string> tcp;  // LOCAL REMOTE
  std::vector<std::string> udp;
  bool json = false;
};

void addQueryCommand(CLI::App& app, QueryCommand& command);

// 0 with the answer on stdout; 2 with one error line on stderr.
int runQueryCommand(const QueryCommand& command);

}  // namespace sockgate::cli
