#include "common/listeners.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace sockgate {

namespace {

// /proc/net/tcp prints each address as 32-bit words in host byte order.
std::string procAddress(const Endpoint& ep) {
  sg_endpoint abi = ep.toAbi();
  const int words = ep.family() == AF_INET ? 1 : 4;
  std::string out;
  char buf[9];
  for (int w = 0; w < words; ++w) {
    uint32_t v;
    std::memcpy(&v, abi.addr + 4 * w, 4);
    std::snprintf(buf, sizeof buf, "%08X", v);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, ":%04X", ep.port());
  return out + buf;
}

}  // namespace

std::optional<uint64_t> listeningSocketInode(const Endpoint& where) {
  const std::string wanted = procAddress(where);
  std::ifstream in(where.family() == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retr, uid, timeout;
    uint64_t inode = 0;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
        inode;
    if (state == "0A" && local == wanted) return inode;  // 0A: TCP_LISTEN
  }
  return std::nullopt;
}

}  // namespace sockgate
