// Facts about a process read from /proc.
#pragma once

#include <sys/types.h>

#include <string>

namespace sockgate {

// The executable's path, or "" when the process is gone or unreadable.
std::string executableOf(pid_t pid);

}  // namespace sockgate
