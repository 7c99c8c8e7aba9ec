// Replay: feeding a run's recorded history back to a machine, event by event, and checking
// that the module still issues exactly the recorded commands (runtime.md section 4). The
// engine loads every run through it, and `kotoba-vm replay`, `state --at` and
// `resume --upgrade` use it offline, so the rules that map events to machine inputs and
// commands to command events live here once.
//
// Each command the machine issues must meet the next command event of the history: same
// event type, same step id, same activity or workflow name. The first command or event that
// finds no partner is a mismatch, reported with the event's seq, the step and what differed;
// everything after it is ignored.
#pragma once

#include "kotoba/runtime/store_types.h"
#include "kotoba/vm/machine.h"
#include "kotoba/vm/module.h"

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kotoba::runtime {

// What the engine remembers about a command of a run, besides what the machine keeps: what
// it needs to act on the command's outcome (retry policy, timeouts) or to cancel it later.
// Rebuilt by replay from the command events, and stored with checkpoints.
struct CommandInfo {
  vm::CommandKind kind = vm::CommandKind::ScheduleActivity;
  std::string step;
  std::string name;
  Value descriptor;
  int64_t issuedMs = 0;
  std::string childRunId; // StartChild
  // file:line of the step that issued it: outcome events carry it too.
  std::string location;
};
using CommandInfos = std::map<vm::CommandId, CommandInfo>;

// Where a history stops matching the module.
struct ReplayMismatch {
  int64_t seq = 0;     // the event at which it was found
  std::string step;    // the step involved, '' when the run itself is
  std::string message; // what differs, e.g. "the workflow now issues ScheduleActivity ..."
};

// The NonDeterminism error a mismatch makes: "run R does not replay at event N: ...", with
// details {"seq": N, "step": S}.
[[nodiscard]] WorkflowError nonDeterminismError(std::string_view runId,
                                                const ReplayMismatch &mismatch);

// What a run's machine is built with ($.run), from its row.
[[nodiscard]] vm::RunInfo runInfoOf(const RunRecord &run, const vm::Workflow &workflow);

class Replay {
public:
  // From the start of a history: the machine starts at the WorkflowStarted event.
  Replay(std::shared_ptr<const vm::Module> module, uint32_t workflowIndex, vm::RunInfo info,
         Value inputs);
  // From a restored machine that covers the events up to `seq` (a checkpoint's).
  Replay(std::unique_ptr<vm::Machine> machine, CommandInfos commands, int64_t seq);

  // Feeds the next event, which must carry the seq after lastSeq(). False at the first
  // mismatch (mismatch() says where); from then on every call returns false and changes
  // nothing.
  [[nodiscard]] bool apply(const EventRecord &event);
  [[nodiscard]] bool applyAll(std::span<const EventRecord> events);

  [[nodiscard]] const std::optional<ReplayMismatch> &mismatch() const { return mismatch_; }
  // The seq of the last event applied (or covered by the restored machine); 0 before any.
  [[nodiscard]] int64_t lastSeq() const { return lastSeq_; }
  // Whether the WorkflowStarted event has been applied (or the machine was restored).
  [[nodiscard]] bool started() const { return started_; }
  // Commands the machine issued that no event records yet. After a whole history this is
  // what the last input produced when no transaction recorded its commands (a child's
  // result appended to its parent's history by the child's engine); the engine records them.
  [[nodiscard]] const std::deque<vm::Command> &unrecorded() const { return expected_; }
  // Says that the history fed so far is the whole of a run that has ended (its row has a
  // final status): nobody will record another command for it, so a command the machine
  // issued that no event records is a mismatch at the last event. False at a mismatch.
  [[nodiscard]] bool expectEnded();

  [[nodiscard]] vm::Machine &machine() { return *machine_; }
  [[nodiscard]] const vm::Machine &machine() const { return *machine_; }
  // Hands the machine over (to a loaded run); the replay is spent afterwards.
  [[nodiscard]] std::unique_ptr<vm::Machine> takeMachine() { return std::move(machine_); }
  [[nodiscard]] CommandInfos &commands() { return commands_; }
  [[nodiscard]] const CommandInfos &commands() const { return commands_; }

private:
  bool fail(int64_t seq, std::string step, std::string message);
  void expect(std::vector<vm::Command> commands);

  std::unique_ptr<vm::Machine> machine_;
  CommandInfos commands_;
  Value inputs_;
  std::deque<vm::Command> expected_;
  std::optional<ReplayMismatch> mismatch_;
  int64_t lastSeq_ = 0;
  bool started_ = false;
  bool terminated_ = false; // events after WorkflowTerminated are not fed
};

} // namespace kotoba::runtime
