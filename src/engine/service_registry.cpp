#include "engine/service_registry.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/process.h"
#include "engine/redirect_engine.h"

namespace sockgate {

namespace {

constexpr const char* kBpffs = "/sys/fs/bpf";
constexpr const char* kRegistryDir = "/sys/fs/bpf/sockgate";

bool bpffsMounted() {
  struct statfs fs{};
  return ::statfs(kBpffs, &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

uint64_t startTicks(pid_t pid) {
  const std::string s = startTimeOf(pid);
  return s.empty() ? 0 : std::stoull(s);
}

sg_registry_key toKey(uint64_t id, uint32_t kind) {
  sg_registry_key k{};
  k.id = id;
  k.kind = kind;
  return k;
}

}  // namespace

Result<UniqueFd> ServiceRegistry::lock() {
  if (!bpffsMounted()) return UniqueFd();
  UniqueFd dir(::open(kBpffs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return failErrno(std::string("open ") + kBpffs);
  while (::flock(dir.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return failErrno(std::string("lock ") + kBpffs);
  }
  return dir;
}

Status ServiceRegistry::prepare(bpf_map* map) {
  if (!bpffsMounted()) return {};
  if (::mkdir(kRegistryDir, 0700) != 0 && errno != EEXIST)
    return failErrno(std::string("create ") + kRegistryDir);
  if (int err = bpf_map__set_pin_path(map, kRegistryPin); err != 0)
    return fail(-err, std::string("pin the service registry at ") + kRegistryPin);
  return {};
}

Result<ServiceRegistry> ServiceRegistry::open(bpf_map* map) {
  ServiceRegistry r(bpf_map__fd(map), bpf_map__is_pinned(map));
  // Entries whose instance is gone (killed, so it could not remove them).
  sg_registry_key key{}, next{};
  const sg_registry_key* prev = nullptr;
  std::vector<sg_registry_key> stale;
  while (bpf_map_get_next_key(r.fd_, prev, &next) == 0) {
    sg_registry_owner owner{};
    if (bpf_map_lookup_elem(r.fd_, &next, &owner) == 0 &&
        startTicks(static_cast<pid_t>(owner.pid)) != owner.start)
      stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const auto& k : stale) (void)bpf_map_delete_elem(r.fd_, &k);
  // This instance's own mark keeps the pin while it runs, services or not.
  if (auto st = r.put({static_cast<uint64_t>(r.self_.pid), SG_REGISTRY_INSTANCE}); !st)
    return std::unexpected(st.error());
  return r;
}

ServiceRegistry::ServiceRegistry(int fd, bool pinned) : fd_(fd), pinned_(pinned) {
  self_.pid = static_cast<uint32_t>(::getpid());
  self_.start = startTicks(::getpid());
}

ServiceRegistry::ServiceRegistry(ServiceRegistry&& other) noexcept
    : fd_(other.fd_), pinned_(other.pinned_), self_(other.self_), mine_(std::move(other.mine_)) {
  other.fd_ = -1;
  other.mine_.clear();
}

Status ServiceRegistry::put(const Key& key) {
  const sg_registry_key k = toKey(std::get<0>(key), std::get<1>(key));
  if (bpf_map_update_elem(fd_, &k, &self_, BPF_ANY) != 0)
    return failErrno("register a service in " + std::string(kRegistryPin));
  mine_.insert(key);
  return {};
}

Status ServiceRegistry::replace(std::span<const ServiceSpec> services) {
  std::set<Key> wanted{{static_cast<uint64_t>(self_.pid), SG_REGISTRY_INSTANCE}};
  for (const auto& s : services) {
    if (s.tgid) wanted.insert({s.tgid, SG_REGISTRY_TGID});
    if (s.cgroupId) wanted.insert({s.cgroupId, SG_REGISTRY_CGROUP});
  }
  for (auto it = mine_.begin(); it != mine_.end();) {
    if (wanted.contains(*it)) {
      ++it;
      continue;
    }
    const sg_registry_key k = toKey(std::get<0>(*it), std::get<1>(*it));
    (void)bpf_map_delete_elem(fd_, &k);
    it = mine_.erase(it);
  }
  for (const auto& key : wanted) {
    if (mine_.contains(key)) continue;
    if (auto st = put(key); !st) return st;
  }
  return {};
}

ServiceRegistry::~ServiceRegistry() {
  if (fd_ < 0) return;
  auto held = lock();  // an instance starting now must not lose the pin under it
  for (const auto& key : mine_) {
    const sg_registry_key k = toKey(std::get<0>(key), std::get<1>(key));
    (void)bpf_map_delete_elem(fd_, &k);
  }
  sg_registry_key first{};
  if (pinned_ && bpf_map_get_next_key(fd_, nullptr, &first) != 0 && errno == ENOENT) {
    (void)::unlink(kRegistryPin);
    (void)::rmdir(kRegistryDir);
  }
}

}  // namespace sockgate
