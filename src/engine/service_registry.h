// The services of every sockgate instance on this kernel, in one BPF map
// pinned at kRegistryPin. Each instance's setsockopt hook refuses redirect
// records from any process that is not a service; without a shared list it
// would also refuse the services of another `sockgate run` started beside it.
//
// The first instance creates and pins the map, later ones reuse it; each
// registers its services' processes and cgroups under its own pid and start
// time, and removes them when it ends. Entries of an instance that was
// killed are swept by the next one; the last instance out removes the pin.
// Where no BPF filesystem is mounted the map stays private to the instance.
#pragma once

#include <sys/types.h>

#include <set>
#include <span>
#include <string>
#include <tuple>

#include "common/unique_fd.h"
#include "sockgate/abi/sockgate_abi.h"
#include "sockgate/error.h"

struct bpf_map;

namespace sockgate {

struct ServiceSpec;

inline constexpr const char* kRegistryPin = "/sys/fs/bpf/sockgate/service_registry";

class ServiceRegistry {
 public:
  // Held from before prepare() until open() returns, and while an instance
  // leaves: no instance loses the pin to one that finds the map empty.
  // An empty fd where there is no bpffs (nothing to share).
  static Result<UniqueFd> lock();
  // Before the BPF object is loaded: share the pinned map if bpffs is there.
  static Status prepare(bpf_map* map);
  // After the load: sweeps what dead instances left, marks this one alive.
  static Result<ServiceRegistry> open(bpf_map* map);

  ServiceRegistry(ServiceRegistry&& other) noexcept;
  ServiceRegistry& operator=(ServiceRegistry&&) = delete;
  ServiceRegistry(const ServiceRegistry&) = delete;
  ~ServiceRegistry();

  // Makes this instance's entries exactly those of `services`.
  Status replace(std::span<const ServiceSpec> services);

 private:
  using Key = std::tuple<uint64_t, uint32_t>;  // id, sg_registry_kind
  ServiceRegistry(int fd, bool pinned);
  Status put(const Key& key);

  int fd_ = -1;  // owned by the skeleton
  bool pinned_ = false;
  sg_registry_owner self_{};
  std::set<Key> mine_;
};

}  // namespace sockgate
