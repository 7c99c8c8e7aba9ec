// Taking over at once the runs of an owner that provably died (docs/durability.md, Leases):
// the engine lists the owners of live leases and claims, asks owner_identity.h about each,
// and gives up the leases and claims of the dead ones, so that the adoption that follows
// finds their runs unowned. Owners it cannot judge keep their leases until they expire.
#include "engine_internal.h"

#include "kotoba/runtime/owner_identity.h"

namespace kotoba::runtime {

namespace {

// How often an engine looks for dead owners. A look is one indexed query plus a kill(pid, 0)
// and a read of /proc/PID/stat per other owner; a second keeps that off the loop's hot path
// while a takeover still waits well under the 30 s default lease.
constexpr int64_t kOwnerCheckIntervalMs = 1000;

} // namespace

Result<bool> Engine::Impl::releaseDeadOwners() {
  int64_t at = now();
  if (nextOwnerCheckMs && at < *nextOwnerCheckMs) {
    return false;
  }
  nextOwnerCheckMs = at + kOwnerCheckIntervalMs;
  auto owners = store.query([&](const StoreReader &reader) { return reader.leaseOwners(at); });
  if (!owners.ok()) {
    return storeError(owners.error());
  }
  std::vector<std::string> dead;
  for (const std::string &owner : owners.value()) {
    if (owner != options.owner && ownerLiveness(owner) == OwnerLiveness::Dead) {
      dead.push_back(owner);
    }
  }
  if (dead.empty()) {
    return false;
  }
  // A dead owner cannot renew, so releasing its rows races with nobody but other engines
  // doing the same, and releasing twice is harmless.
  StoreStatus released = store.write([&](Transaction &tx) -> StoreStatus {
    for (const std::string &owner : dead) {
      auto done = tx.releaseOwner(owner);
      if (!done.ok()) {
        return std::move(done).error();
      }
    }
    return {};
  });
  if (!released.ok()) {
    return storeError(released.error());
  }
  return true;
}

} // namespace kotoba::runtime
