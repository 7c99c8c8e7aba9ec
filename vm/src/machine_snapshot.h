// Shared by the two halves of machine snapshots: machine_snapshot.cpp writes and reads the
// format, machine_snapshot_check.cpp checks that a decoded state holds together.
#pragma once

#include "machine_state.h"

#include <optional>
#include <string>

namespace kotoba::vm {

// The first reference in a restored state that does not hold (a fiber's block, pc, scope,
// registers, frames, the command or join it waits on; a join's owner and slots; a pending
// command's fiber; the ready set; the scope tree; the id counters), or nothing. Once this
// passes, no lookup the machine makes can go out of bounds.
[[nodiscard]] std::optional<std::string> checkSnapshotState(const MachineState &state);

} // namespace kotoba::vm
