// The deterministic workflow machine: executes one run of one workflow of a verified module.
// It performs no I/O and reads no clock. The runtime feeds it inputs (the run's start, then
// one outcome at a time, in history order) and carries out the commands it returns; because
// the machine sees the world only through those inputs, feeding the same inputs again always
// reaches the same state and returns the same commands. That is replay.
//
// Fibers: block 0 runs in fiber 0; each parallel branch, foreach iteration and compensation
// runs in a fiber of its own. After each input, ready fibers run lowest id first until every
// fiber waits; only then does the machine return.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/module.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kotoba::vm {

// Identifies one command of a run; outcomes name the command they answer. Assigned 1, 2, ...
// in the order the machine issues commands, so replay issues the same ids.
using CommandId = uint64_t;
using FiberId = uint32_t;

enum class RunStatus : uint8_t {
  Running,
  Compensating, // a saga is running compensations after a failure, cancel or timeout
  Completed,
  Failed,
  Cancelled,
  TimedOut,
  ContinuedAsNew,
};
[[nodiscard]] const char *runStatusName(RunStatus status);
[[nodiscard]] bool isFinal(RunStatus status);

enum class CommandKind : uint8_t {
  ScheduleActivity, // run an activity (with retries) and report ActivityResolved
  StartTimer,       // report TimerFired at fireAtMs
  WaitSignal,       // a fiber waits for a signal; arm the timeout when timeoutAtMs is set
  WaitEvent,        // deliver the oldest matching published event; arm the timeout if set
  StartChild,       // start a child run and report ChildResolved
  AskPredicate,     // evaluate a host predicate and report PredicateAnswered
  Cancel,           // cancel the command `target` (a branch lost, or the run is ending)
  RecordDecision,   // history only: a decision took a branch
  RecordCompensation, // history only: a compensation started, completed or failed
  Complete,         // the run completed with `value` as its outputs
  Fail,             // the run failed with `error`
  ContinueAsNew,    // the run ends; start the next one with `value` as inputs
  Cancelled,        // the run finished cancelling (compensations done)
  TimedOut,         // the run finished timing out (compensations done)
};
[[nodiscard]] const char *commandKindName(CommandKind kind);

struct Command {
  CommandKind kind = CommandKind::Complete;
  CommandId id = 0; // 0 for the history-only and ending commands
  FiberId fiber = 0;
  std::string step;           // the step id the command belongs to
  SourceLocation location;    // where in the source the instruction is
  std::string name;           // activity, signal, event type, child workflow or predicate
  Value value;                // activity/child input, event filter, outputs, next inputs
  Value descriptor;           // the instruction's descriptor (timeouts, retry policy, ...)
  std::optional<int64_t> fireAtMs;    // StartTimer
  std::optional<int64_t> timeoutAtMs; // WaitSignal, WaitEvent, StartChild
  CommandId target = 0;       // Cancel
  std::string detail;         // RecordDecision: branch; RecordCompensation: started/...
  std::optional<WorkflowError> error; // Fail, RecordCompensation failed
};

enum class InputKind : uint8_t {
  ActivityResolved,  // command `id` finished: `value` or `error` (after all retries)
  TimerFired,        // command `id`
  SignalReceived,    // a signal `name` with `value` arrived (buffered until consumed)
  EventDelivered,    // command `id` (a WaitEvent) receives `value`
  WaitTimedOut,      // the wait of command `id` timed out
  ChildResolved,     // command `id`: the child's outputs in `value`, or `error`
  PredicateAnswered, // command `id`: `value` is the boolean answer
  CancelRequested,   // cancel the run: sagas compensate, then the run ends Cancelled
  TimeoutReached,    // the workflow timeout: as cancel, but the run ends TimedOut
};
[[nodiscard]] const char *inputKindName(InputKind kind);

struct Input {
  InputKind kind = InputKind::ActivityResolved;
  CommandId id = 0;
  std::string name;
  Value value;
  std::optional<WorkflowError> error;
  // The logical time of this input (the event's time): what now() returns while the
  // machine processes it.
  int64_t timeMs = 0;
};

// What a run knows about itself ($.run) besides its inputs.
struct RunInfo {
  std::string runId;
  std::string workflowVersion;
  int64_t attempt = 1;
  int64_t startedAtMs = 0;
  std::optional<std::string> parentRunId;
};

class MachineState;

class Machine {
public:
  // `workflowIndex` into module->workflows. The module must have passed verifyModule.
  Machine(std::shared_ptr<const Module> module, uint32_t workflowIndex, RunInfo info);
  ~Machine();
  Machine(Machine &&) noexcept;
  Machine &operator=(Machine &&) noexcept;

  // Runs the body with validated inputs (defaults applied); returns the first commands.
  [[nodiscard]] std::vector<Command> start(Value inputs);
  // Applies one outcome. Inputs that answer a command the machine no longer waits for (a
  // result arriving after its branch was cancelled) change nothing and return no commands.
  [[nodiscard]] std::vector<Command> apply(const Input &input);

  [[nodiscard]] RunStatus status() const;
  // For $.results, $.vars and the state command: the root scope's current values.
  [[nodiscard]] Value vars() const;
  [[nodiscard]] Value results() const;
  // Commands issued and not yet answered, oldest first (for inspection).
  [[nodiscard]] std::vector<Command> pendingCommands() const;
  // Signals that arrived and no wait has consumed yet, per name in arrival order: what
  // continue-as-new hands to the next run.
  [[nodiscard]] std::vector<std::pair<std::string, Value>> bufferedSignals() const;

  // The whole state as a Value (fibers, registers, frames, sagas, buffers, counters); a
  // machine restored from it continues exactly as this one would.
  [[nodiscard]] Value snapshot() const;
  [[nodiscard]] static Result<Machine> restore(std::shared_ptr<const Module> module,
                                               const Value &snapshot);

private:
  explicit Machine(std::unique_ptr<MachineState> state);
  std::unique_ptr<MachineState> state_;
};

} // namespace kotoba::vm
