// Checkpoints (runtime.md section 5): what a checkpoint stores, and rebuilding a run's machine
// from the nearest checkpoint plus the events after it. The engine loads runs this way, so
// that resuming a run costs the events since its latest checkpoint rather than its whole
// history; `kotoba-vm state --at` rebuilds any past state the same way. docs/durability.md
// describes the format.
//
// A checkpoint is a cache: the history alone determines the state, so a checkpoint that
// cannot be used (taken with another module, written by another format version, damaged) is
// passed over and the history is replayed from its start instead.
#pragma once

#include "kotoba/runtime/replay.h"
#include "kotoba/runtime/store.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba::runtime {

// Raised when the checkpoint's layout changes; checkpoints of other formats are passed over.
inline constexpr int64_t kCheckpointFormat = 1;

// The bytes of a checkpoint's state: compact JSON
//   {"format": 1, "module_hash": H, "machine": SNAPSHOT, "commands": [COMMAND_INFO...]}
// where SNAPSHOT is vm::Machine::snapshot() and the commands are the engine's CommandInfos of
// the commands still pending and of the child runs it started; the infos of commands that
// were answered long ago would make a checkpoint grow with the history.
[[nodiscard]] std::string encodeCheckpoint(std::string_view moduleHash, const vm::Machine &machine,
                                           const CommandInfos &commands);

// The replay position a checkpoint holds: its machine and command infos, covering the events
// up to its seq. `covered` is the event at that seq; the checkpoint's hash, recomputed over
// its bytes and that event's hash, must match the stored one. Refused (with a message saying
// why) when the hash does not match, when it was taken with another module than
// `moduleHash`, when its format is not kCheckpointFormat, or when its state is malformed.
[[nodiscard]] Result<Replay> restoreCheckpoint(std::shared_ptr<const vm::Module> module,
                                               std::string_view moduleHash,
                                               const CheckpointRecord &checkpoint,
                                               const EventRecord &covered);

struct RebuiltRun {
  Replay replay;
  // The checkpoint the replay started from; empty when it started from the first event.
  std::optional<int64_t> checkpointSeq;
  // Why the nearest checkpoint was passed over, when it was.
  std::optional<std::string> checkpointSkipped;
  // How many events were fed to the machine (those after the checkpoint).
  size_t eventsReplayed = 0;
};

// Rebuilds the machine of `run` (whose module is `module`) as of event `atSeq`, or of its
// last event when `atSeq` is empty, from the nearest usable checkpoint at or before it and
// the events after that. A history that does not replay is not an error here: the result's
// replay.mismatch() says where it stopped. Errors: UnknownWorkflow when the module has no
// such workflow, StoreError when the store cannot be read.
[[nodiscard]] Result<RebuiltRun> rebuildRun(const StoreReader &reader, const RunRecord &run,
                                            std::shared_ptr<const vm::Module> module,
                                            std::optional<int64_t> atSeq = std::nullopt);

} // namespace kotoba::runtime
