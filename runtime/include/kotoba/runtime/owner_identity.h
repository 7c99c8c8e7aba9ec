// Owner identities that can prove a lease holder dead (docs/durability.md, Leases). An owner
// name that ends in a process token, `/proc:BOOT_ID:PID_NS:PID:START_TICKS`, names one
// process of one boot of one machine: the kernel's boot id, the inode of the process's pid
// namespace, its pid and its start time in clock ticks since boot (field 22 of
// /proc/PID/stat, which tells a reused pid from the original). Another process on the same
// boot and pid namespace can then see that the owner is gone and take its runs over at once
// instead of waiting for the lease to expire.
//
// Only a proof counts: a live owner must never be judged dead, or two processes would run
// the same step. Whatever cannot be proved (another machine or container, an unreadable
// /proc, a zombie not yet reaped, an owner name without a token or in an old format, a host
// program's own names) is Unknown, and its lease is waited out as before.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba::runtime {

// One process on one boot of one machine, as its owner token carries it.
struct ProcessIdentity {
  std::string bootId;
  uint64_t pidNamespace = 0;
  int64_t pid = 0;
  uint64_t startTicks = 0;

  friend bool operator==(const ProcessIdentity &, const ProcessIdentity &) = default;
};

enum class OwnerLiveness {
  Alive,   // the owner's process runs on this boot, in this pid namespace
  Dead,    // provably gone: its pid is free or belongs to a process started later
  Unknown, // nothing can be proved from here; wait for the lease to expire
};

// The identity of process `pid` as this process sees it through /proc; nullopt when /proc
// does not tell it (not Linux, not mounted, another pid namespace's /proc, no such process).
[[nodiscard]] std::optional<ProcessIdentity> readProcessIdentity(int64_t pid);
// This process's identity, read once; nullopt when /proc does not tell it.
[[nodiscard]] const std::optional<ProcessIdentity> &currentProcessIdentity();

// `prefix` followed by this process's token, or `prefix` alone when the process cannot
// identify itself (its leases are then waited out by others, as before).
[[nodiscard]] std::string ownerWithProcessToken(std::string_view prefix);
// The token's text, without the leading '/'.
[[nodiscard]] std::string formatProcessToken(const ProcessIdentity &identity);
// The identity in an owner name's last '/'-separated part; nullopt when it holds no token.
[[nodiscard]] std::optional<ProcessIdentity> parseOwnerIdentity(std::string_view owner);

// Whether the owner named `owner` is alive, as seen from this process.
[[nodiscard]] OwnerLiveness ownerLiveness(std::string_view owner);

} // namespace kotoba::runtime
