// Facts about a process read from /proc.
#pragma once

#include <sys/types.h>

#include <string>

namespace sockgate {

// The executable's path, or "" when the process is gone or unreadable.
std::string executableOf(pid_t pid);

// Field 22 of /proc/PID/stat: start time in clock ticks since boot, "" when
// the process is gone. With the pid it names a process across pid reuse.
std::string startTimeOf(pid_t pid);

}  // namespace sockgate
