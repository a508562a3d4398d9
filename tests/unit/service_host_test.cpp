// The built-in services' process, without privileges: it listens on
// loopback, answers a stop with its tables, and reports a failure to start.
#include "proxy/service_host.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace sockgate::proxy {
namespace {

using namespace std::chrono_literals;

// The session (sixth field of /proc/PID/stat; sockgate-svc has no space).
long sessionOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string field;
  for (int i = 0; i < 5; ++i) stat >> field;
  long session = -1;
  stat >> session;
  return session;
}

TEST(ServiceHost, ServesFromASessionOfItsOwnAndHandsBackItsTable) {
  ServiceOptions options;
  options.name = "host-test";
  options.listen = {*Endpoint::parse("127.0.0.1:0")};
  options.loops = 1;
  auto host = ServiceHost::start({options});
  ASSERT_TRUE(host) << host.error().message();
  const pid_t pid = (*host)->pid();
  ASSERT_GT(pid, 0);
  EXPECT_NE(pid, ::getpid());
  EXPECT_EQ(sessionOf(pid), pid) << "the services' process leads a session of its own";
  EXPECT_NE(sessionOf(pid), sessionOf(::getpid()));
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  comm >> name;
  EXPECT_EQ(name, "sockgate-svc");

  ASSERT_EQ((*host)->listening().size(), 1u);
  const auto& listen4 = (*host)->listening()[0].listen4;
  ASSERT_TRUE(listen4);
  EXPECT_NE(listen4->port(), 0);
  EXPECT_FALSE((*host)->listening()[0].listen6);

  // Its listener is live: a connection made straight to it is accepted
  // (and, carrying no redirected flow, closed without a row).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::connect(fd, listen4->sockaddrPtr(), listen4->length()), 0);
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "closed by the service";
  ::close(fd);

  auto tables = (*host)->stop(100ms);
  ASSERT_TRUE(tables) << tables.error().message();
  ASSERT_EQ(tables->size(), 1u);
  EXPECT_TRUE((*tables)[0].rows.empty());
  EXPECT_TRUE((*tables)[0].groups.empty());
  EXPECT_NE(::kill(pid, 0), 0) << "reaped by stop()";
  EXPECT_FALSE((*host)->stop(0ms)) << "a second stop has nothing to stop";
}

TEST(ServiceHost, SaysWhichServiceCouldNotStartAndWhy) {
  ServiceOptions fine;
  fine.name = "fine";
  fine.listen = {*Endpoint::parse("127.0.0.1:0")};
  fine.loops = 1;
  ServiceOptions broken = fine;
  broken.name = "broken";
  broken.listen = {*Endpoint::parse("192.0.2.1:9")};  // TEST-NET-1: no local address
  auto host = ServiceHost::start({fine, broken});
  ASSERT_FALSE(host);
  EXPECT_NE(host.error().message().find("start the built-in redirect service 'broken'"),
            std::string::npos)
      << host.error().message();
  EXPECT_NE(host.error().message().find("EADDRNOTAVAIL"), std::string::npos)
      << host.error().message();
}

}  // namespace
}  // namespace sockgate::proxy
