// sockgate: socket-layer connection redirect and filtering for Linux.
#include <CLI/CLI.hpp>
#include <csignal>
#include <string_view>

#include "cli/policy_command.h"
#include "cli/query_command.h"
#include "cli/run_command.h"

int main(int argc, char** argv) {
  // A closed stdout/stderr (`sockgate run ... | head`) must not kill us
  // before we clean up; writes just fail. CMD gets the default back.
  std::signal(SIGPIPE, SIG_IGN);

  // Everything after the first "--" is the command, verbatim: CLI11 would
  // keep the "--" itself among the leftovers.
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      command.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  }

  CLI::App app{"sockgate: socket-layer connection redirect and filtering for Linux"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sockgate 0.1.0"));

  sockgate::cli::RunOptions run;
  auto* runCmd = app.add_subcommand(
      "run",
      "Run CMD with its TCP connections redirected through the built-in redirect service, "
      "then print the connection table. Needs root. Exits with CMD's status.");
  runCmd
      ->add_option("--policy", run.policyPath,
                   "Policy file (TOML) declaring the redirect services; default: one built-in "
                   "service for all TCP")
      ->check(CLI::ExistingFile);
  runCmd->add_option(
      "--service-port", run.servicePort,
      "Port of the default built-in service on 127.0.0.1 and [::1] (default: any free)");
  runCmd->add_option("--socket-policy", run.socketPolicy,
                     "Audit or deny socket creation, e.g. 'audit raw,packet; deny packet' "
                     "(see docs/socket-guard.md)");
  runCmd->add_flag("--trace", run.trace, "Print every connect() decision as it happens");
  runCmd->add_option("command", run.command, "The command and its arguments (after --)");
  // Everything after the first word of CMD belongs to CMD, not to us.
  runCmd->prefix_command();

  sockgate::cli::PolicyCommand policy;
  sockgate::cli::addPolicyCommand(app, policy);
  sockgate::cli::QueryCommand query;
  sockgate::cli::addQueryCommand(app, query);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (runCmd->parsed()) {
    for (const auto& extra : runCmd->remaining()) run.command.push_back(extra);
    run.command.insert(run.command.end(), command.begin(), command.end());
    return sockgate::cli::runCommand(run);
  }
  if (policy.check->parsed()) return sockgate::cli::runPolicyCommand(policy);
  if (query.app->parsed()) return sockgate::cli::runQueryCommand(query);
  return 2;
}
