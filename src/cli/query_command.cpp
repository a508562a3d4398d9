#include "cli/query_command.h"

#include <fmt/format.h>
#include <netinet/in.h>

#include "sockgate/security.h"

namespace sockgate::cli {

void addQueryCommand(CLI::App& app, QueryCommand& command) {
  command.app = app.add_subcommand(
      "query",
      "Say what protects a connection (IPsec, kernel TLS) and who the peer is (process, "
      "uid, executable, cgroup, label). Another process's socket needs root.");
  auto* pid = command.app->add_option("--pid", command.pid, "Process holding the socket");
  auto* fd = command.app->add_option("--fd", command.fd, "Its file descriptor number");
  auto* tcp =
      command.app->add_option("--tcp", command.tcp, "A TCP socket by its LOCAL and REMOTE ends")
          ->expected(2);
  auto* udp =
      command.app->add_option("--udp", command.udp, "A UDP socket by its LOCAL and REMOTE ends")
          ->expected(2);
  pid->needs(fd);
  fd->needs(pid);
  pid->excludes(tcp)->excludes(udp);
  tcp->excludes(udp);
  command.app->add_flag("--json", command.json, "JSON instead of a table");
}

namespace {

int failWith(const std::string& line) {
  fmt::print(stderr, "sockgate: {}\n", line);
  return 2;
}

}  // namespace

int runQueryCommand(const QueryCommand& command) {
  UniqueFd socket;
  std::string what;
  if (command.pid > 0) {
    auto s = socketOfProcess(command.pid, command.fd);
    if (!s) return failWith("query: " + s.error().message());
    socket = std::move(*s);
    what = fmt::format("pid {} fd {}", command.pid, command.fd);
  } else if (command.tcp.size() == 2 || command.udp.size() == 2) {
    const auto& ends = command.tcp.size() == 2 ? command.tcp : command.udp;
    auto local = Endpoint::parse(ends[0]);
    if (!local) return failWith("query: " + local.error().message());
    auto remote = Endpoint::parse(ends[1]);
    if (!remote) return failWith("query: " + remote.error().message());
    auto owned =
        socketByTuple(*local, *remote, command.tcp.size() == 2 ? IPPROTO_TCP : IPPROTO_UDP);
    if (!owned) return failWith("query: " + owned.error().message());
    socket = std::move(owned->socket);
    what = fmt::format("pid {} fd {}", owned->pid, owned->fd);
  } else {
    return failWith(
        "query: name a socket with --pid P --fd N, --tcp LOCAL REMOTE or --udp LOCAL REMOTE");
  }
  auto security = querySocketSecurity(socket.get());
  if (!security) return failWith("query " + what + ": " + security.error().message());
  if (command.json) {
    fmt::print("{}\n", formatSecurityJson(*security));
  } else {
    fmt::print("socket: {}\n{}", what, formatSecurityTable(*security));
  }
  return 0;
}

}  // namespace sockgate::cli
