// `sockgate query`, as an administrator uses it on a running process's
// connection: by 4-tuple and by pid/fd, table and JSON, and its errors.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockgate/endpoint.h"
#include "sockgate/unique_fd.h"
#include "support/http_server.h"
#include "support/subprocess.h"

namespace sockgate::testing {
namespace {

using namespace std::chrono_literals;

TEST(QueryCommand, NamesThePeerProcessByTupleAndByPidFd) {
  const uint16_t port = freeTcpPort();
  BackgroundProcess server({toolBin("netcheck"), "serve-echo", std::to_string(port)});
  ASSERT_TRUE(waitFor([&] { return tcpPortListening(port); }, 10s));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  const auto to = Endpoint::loopback(AF_INET, port);
  ASSERT_EQ(::connect(fd.get(), to.sockaddrPtr(), to.length()), 0);
  const std::string local = localEndpoint(fd.get())->toString();

  auto byTuple = runProcess({sockgateBin(), "query", "--tcp", local, to.toString()});
  ASSERT_EQ(byTuple.exitCode, 0) << byTuple.err;
  EXPECT_NE(byTuple.out.find("socket: pid " + std::to_string(::getpid()) + " fd " +
                             std::to_string(fd.get())),
            std::string::npos)
      << byTuple.out;
  EXPECT_NE(byTuple.out.find("peer pid        " + std::to_string(server.pid())), std::string::npos)
      << byTuple.out;
  EXPECT_NE(byTuple.out.find("netcheck"), std::string::npos);

  auto byFd = runProcess({sockgateBin(), "query", "--pid", std::to_string(::getpid()), "--fd",
                          std::to_string(fd.get()), "--json"});
  ASSERT_EQ(byFd.exitCode, 0) << byFd.err;
  EXPECT_NE(byFd.out.find("\"remote\": \"" + to.toString() + "\""), std::string::npos) << byFd.out;
  EXPECT_NE(byFd.out.find(std::to_string(server.pid())), std::string::npos) << byFd.out;

  auto missing = runProcess({sockgateBin(), "query", "--tcp", "127.0.0.1:1", "127.0.0.1:2"});
  EXPECT_EQ(missing.exitCode, 2);
  EXPECT_EQ(missing.err.rfind("sockgate: query: ", 0), 0u) << missing.err;
  EXPECT_EQ(missing.err.find('\n'), missing.err.size() - 1) << missing.err;
}

}  // namespace
}  // namespace sockgate::testing
