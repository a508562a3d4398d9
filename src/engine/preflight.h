// Everything the kernel side needs, checked before anything is touched, so a
// missing capability is one clear line instead of a crash or a hang.
#pragma once

#include <string>

#include "sockgate/error.h"

namespace sockgate {

struct KernelSupport {
  std::string cgroup2Mount;  // where the cgroup v2 hierarchy is mounted
};

// Fails with an Error whose message is the one line to print (what is missing
// and what to do about it).
Result<KernelSupport> preflight();

// The cgroup v2 mount point, from a mountinfo file (discovered, never assumed).
Result<std::string> findCgroup2Mount(const std::string& mountinfoPath = "/proc/self/mountinfo");

}  // namespace sockgate
