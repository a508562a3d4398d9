// A cgroup v2 directory we own: create, place processes, kill, remove.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "sockgate/error.h"

namespace sockgate {

class Cgroup {
 public:
  static Result<Cgroup> create(const std::string& path);  // mkdir; EEXIST is an error
  static Result<Cgroup> open(const std::string& path);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] uint64_t id() const { return id_; }  // what bpf_get_current_cgroup_id() says

  Status addProcess(pid_t pid) const;
  [[nodiscard]] std::vector<pid_t> processes() const;
  Status signalAll(int sig) const;  // SIGKILL uses cgroup.kill where the kernel has it
  // Moves every process to another cgroup (a stale run's survivors keep running).
  Status moveAllTo(const std::string& otherPath) const;
  Status remove();  // rmdir; the cgroup must be empty

 private:
  Cgroup(std::string path, UniqueFd fd, uint64_t id)
      : path_(std::move(path)), fd_(std::move(fd)), id_(id) {}
  std::string path_;
  UniqueFd fd_;
  uint64_t id_ = 0;
};

// The cgroup id of a path (the kernfs inode number, as BPF reports it).
Result<uint64_t> cgroupIdOf(const std::string& path);

// The depth of a cgroup below the hierarchy root (root = 0), as
// bpf_get_current_ancestor_cgroup_id counts it: read from the path of the
// cgroup relative to its mount, which /proc/self/mountinfo names.
Result<uint32_t> cgroupLevelOf(const std::string& path);

}  // namespace sockgate
