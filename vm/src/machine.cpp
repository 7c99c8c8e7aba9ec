// The machine's public face (see machine.h): starting a run, applying inputs, reading its
// state; plus the state helpers every part of the machine uses (issuing commands, resuming
// fibers, reading and writing scopes).
#include "kotoba/vm/machine.h"

#include "machine_state.h"

#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <cassert>

namespace kotoba::vm {

const char *runStatusName(RunStatus status) {
  switch (status) {
  case RunStatus::Running:
    return "RUNNING";
  case RunStatus::Compensating:
    return "COMPENSATING";
  case RunStatus::Completed:
    return "COMPLETED";
  case RunStatus::Failed:
    return "FAILED";
  case RunStatus::Cancelled:
    return "CANCELLED";
  case RunStatus::TimedOut:
    return "TIMED_OUT";
  case RunStatus::ContinuedAsNew:
    return "CONTINUED_AS_NEW";
  }
  return "UNKNOWN";
}

bool isFinal(RunStatus status) {
  return status != RunStatus::Running && status != RunStatus::Compensating;
}

const char *commandKindName(CommandKind kind) {
  switch (kind) {
  case CommandKind::ScheduleActivity:
    return "ScheduleActivity";
  case CommandKind::StartTimer:
    return "StartTimer";
  case CommandKind::WaitSignal:
    return "WaitSignal";
  case CommandKind::WaitEvent:
    return "WaitEvent";
  case CommandKind::StartChild:
    return "StartChild";
  case CommandKind::AskPredicate:
    return "AskPredicate";
  case CommandKind::Cancel:
    return "Cancel";
  case CommandKind::RecordDecision:
    return "RecordDecision";
  case CommandKind::RecordCompensation:
    return "RecordCompensation";
  case CommandKind::Complete:
    return "Complete";
  case CommandKind::Fail:
    return "Fail";
  case CommandKind::ContinueAsNew:
    return "ContinueAsNew";
  case CommandKind::Cancelled:
    return "Cancelled";
  case CommandKind::TimedOut:
    return "TimedOut";
  }
  return "Unknown";
}

const char *inputKindName(InputKind kind) {
  switch (kind) {
  case InputKind::ActivityResolved:
    return "ActivityResolved";
  case InputKind::TimerFired:
    return "TimerFired";
  case InputKind::SignalReceived:
    return "SignalReceived";
  case InputKind::EventDelivered:
    return "EventDelivered";
  case InputKind::WaitTimedOut:
    return "WaitTimedOut";
  case InputKind::ChildResolved:
    return "ChildResolved";
  case InputKind::PredicateAnswered:
    return "PredicateAnswered";
  case InputKind::CancelRequested:
    return "CancelRequested";
  case InputKind::TimeoutReached:
    return "TimeoutReached";
  }
  return "Unknown";
}

// ---- state helpers -------------------------------------------------------------------------

CommandId MachineState::issue(Fiber &fiber, Command command, WaitKind kind,
                              uint32_t resultRegister) {
  command.id = nextCommand++;
  command.fiber = fiber.id;
  // The fiber has already moved past the instruction that issued the command.
  command.location = locationAt(fiber, fiber.pc - 1);
  PendingCommand waiting;
  waiting.kind = kind;
  waiting.fiber = fiber.id;
  waiting.name = command.name;
  waiting.hasTimeout = command.timeoutAtMs.has_value();
  waiting.command = command;
  pending.emplace(command.id, std::move(waiting));
  fiber.state = FiberState::WaitingCommand;
  fiber.command = command.id;
  fiber.resultRegister = resultRegister;
  ready.erase(fiber.id);
  emit(std::move(command));
  return fiber.command;
}

void MachineState::resume(Fiber &fiber, Value value) {
  fiber.registers[fiber.resultRegister] = std::move(value);
  fiber.state = FiberState::Ready;
  fiber.command = 0;
  ready.insert(fiber.id);
}

Value MachineState::readRoot(StateRoot root, uint32_t scope) const {
  switch (root) {
  case StateRoot::Inputs:
    return inputs;
  case StateRoot::Signals:
    return Value(signals);
  case StateRoot::Events:
    return Value(events);
  case StateRoot::Run: {
    Object run;
    run.set("id", Value(info.runId));
    run.set("workflow_id", Value(workflow().id));
    run.set("workflow_version", Value(info.workflowVersion));
    run.set("attempt", Value(info.attempt));
    Result<std::string> started = formatTimestampMs(info.startedAtMs);
    run.set("started_at", started.ok() ? Value(started.value()) : Value());
    run.set("parent_run_id", info.parentRunId ? Value(*info.parentRunId) : Value());
    return Value(std::move(run));
  }
  case StateRoot::Vars:
  case StateRoot::Results: {
    // The run's own scope (no foreach iteration around): its view, without a chain.
    if (const Scope &own = scopes.at(scope); !own.parent) {
      Value &view = root == StateRoot::Vars ? own.varsView : own.resultsView;
      if (view.isNull()) {
        view = Value(root == StateRoot::Vars ? own.vars : own.results);
      }
      return view;
    }
    // Outer scopes first, so an iteration's own writes win.
    std::vector<const Scope *> chain;
    for (std::optional<uint32_t> at = scope; at;) {
      const Scope &current = scopes.at(*at);
      chain.push_back(&current);
      at = current.parent;
    }
    Object merged;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      for (const ObjectEntry &entry : root == StateRoot::Vars ? (*it)->vars : (*it)->results) {
        merged.set(entry.key, entry.value);
      }
    }
    return Value(std::move(merged));
  }
  }
  return Value();
}

void MachineState::writeVar(uint32_t scope, const std::string &name, Value value) {
  Scope &written = scopes.at(scope);
  written.vars.set(name, std::move(value));
  written.varsView = Value();
}

void MachineState::writeResult(uint32_t scope, const std::string &name, Value value) {
  Scope &written = scopes.at(scope);
  written.results.set(name, std::move(value));
  written.resultsView = Value();
}

const PathDescriptor &MachineState::pathDescriptor(uint32_t constant) {
  if (pathCache.size() <= constant) {
    pathCache.resize(module->constants.size() > constant ? module->constants.size() : constant + 1);
  }
  std::unique_ptr<const PathDescriptor> &cached = pathCache[constant];
  if (!cached) {
    Decoded<PathDescriptor> path = decodePath(module->constant(ConstIndex{constant}));
    assert(path.ok() && "the verifier checks descriptor shapes");
    cached = std::make_unique<const PathDescriptor>(std::move(path).value());
  }
  return *cached;
}

SourceLocation MachineState::locationOf(const Fiber &fiber) const {
  return locationAt(fiber, fiber.pc);
}

SourceLocation MachineState::locationAt(const Fiber &fiber, uint32_t index) const {
  const Block &block = workflow().blocks[fiber.block];
  if (block.locations.empty()) {
    return SourceLocation{};
  }
  return block.locations[index < block.locations.size() ? index : 0];
}

WorkflowError MachineState::located(WorkflowError error, const Fiber &fiber) const {
  SourceLocation where = locationOf(fiber);
  if (where.line != 0 && !error.extensions.contains("location")) {
    const std::string &file = module->sourceFiles[where.file.index];
    error.extensions.set("location", Value(fmt::format("{}:{}", file, where.line)));
  }
  return error;
}

// ---- public API ----------------------------------------------------------------------------

Machine::Machine(std::shared_ptr<const Module> module, uint32_t workflowIndex, RunInfo info)
    : state_(std::make_unique<MachineState>(std::move(module), workflowIndex, std::move(info))) {
  assert(workflowIndex < state_->module->workflows.size() && "workflow index out of range");
}

Machine::Machine(std::unique_ptr<MachineState> state) : state_(std::move(state)) {}
Machine::~Machine() = default;
Machine::Machine(Machine &&) noexcept = default;
Machine &Machine::operator=(Machine &&) noexcept = default;

std::vector<Command> Machine::start(Value inputs) {
  MachineState &state = *state_;
  assert(state.fibers.empty() && "start called twice");
  state.inputs = std::move(inputs);
  state.now = state.info.startedAtMs;
  state.scopes.emplace(0, Scope{});
  Fiber root;
  root.id = state.nextFiber++;
  root.block = 0;
  root.registers.resize(state.workflow().registerCount);
  state.fibers.emplace(root.id, std::move(root));
  state.ready.insert(0);
  state.run();
  return std::exchange(state.out, {});
}

std::vector<Command> Machine::apply(const Input &input) {
  MachineState &state = *state_;
  if (isFinal(state.status)) {
    return {};
  }
  state.now = input.timeMs;
  switch (input.kind) {
  case InputKind::SignalReceived: {
    // The oldest wait for this name gets it; otherwise it waits in the buffer.
    for (auto &[id, waiting] : state.pending) {
      if (waiting.kind == WaitKind::Signal && waiting.name == input.name) {
        Fiber &fiber = state.fibers.at(waiting.fiber);
        bool hadTimeout = waiting.hasTimeout;
        CommandId command = id;
        state.pending.erase(command);
        state.signals.set(input.name, input.value);
        if (hadTimeout) {
          Command disarm;
          disarm.kind = CommandKind::Cancel;
          disarm.fiber = fiber.id;
          disarm.target = command;
          state.emit(std::move(disarm));
        }
        state.resume(fiber, input.value);
        state.run();
        return std::exchange(state.out, {});
      }
    }
    state.signalBuffer[input.name].push_back(input.value);
    return {};
  }
  case InputKind::CancelRequested:
  case InputKind::TimeoutReached: {
    if (state.ending) {
      return {}; // a second cancel changes nothing
    }
    bool timeout = input.kind == InputKind::TimeoutReached;
    state.ending =
        makeError(timeout ? kWorkflowTimedOutError : kCancelledError,
                  timeout ? "the workflow timeout was reached" : "the run was cancelled");
    // Every fiber waiting on a command fails with the ending error at its wait; sagas catch
    // it on the way up and compensate. Compensation code is left to run to its end: a fiber
    // in a saga's handler fails with the ending error once the handler re-raises.
    std::vector<FiberId> waiting;
    for (auto &[id, fiber] : state.fibers) {
      if (state.runsCompensationCode(fiber, /*inclusive=*/false)) {
        continue;
      }
      if (fiber.inSagaHandler()) {
        fiber.cancelAfterHandler = true;
      } else if (fiber.state == FiberState::WaitingCommand) {
        waiting.push_back(id);
      }
    }
    for (FiberId id : waiting) {
      Fiber &fiber = state.fibers.at(id);
      if (fiber.state != FiberState::WaitingCommand) {
        continue; // already unwound by an earlier one's join
      }
      CommandId command = fiber.command;
      state.pending.erase(command);
      Command cancel;
      cancel.kind = CommandKind::Cancel;
      cancel.fiber = id;
      cancel.target = command;
      state.emit(std::move(cancel));
      fiber.command = 0;
      state.raise(fiber, *state.ending);
    }
    state.run();
    return std::exchange(state.out, {});
  }
  case InputKind::ActivityResolved:
  case InputKind::TimerFired:
  case InputKind::EventDelivered:
  case InputKind::WaitTimedOut:
  case InputKind::ChildResolved:
  case InputKind::PredicateAnswered:
    break;
  }

  auto found = state.pending.find(input.id);
  if (found == state.pending.end()) {
    return {}; // answers a command that was cancelled or already answered: ignored
  }
  PendingCommand waiting = std::move(found->second);
  state.pending.erase(found);
  Fiber &fiber = state.fibers.at(waiting.fiber);
  switch (input.kind) {
  case InputKind::ActivityResolved:
  case InputKind::ChildResolved:
    if (input.error) {
      fiber.command = 0;
      state.raise(fiber, *input.error);
    } else {
      state.resume(fiber, input.value);
    }
    break;
  case InputKind::TimerFired:
    state.resume(fiber, Value());
    break;
  case InputKind::EventDelivered:
    state.events.set(waiting.name, input.value);
    state.resume(fiber, input.value);
    break;
  case InputKind::WaitTimedOut: {
    std::string what = waiting.kind == WaitKind::Signal ? "signal" : "event";
    fiber.command = 0;
    state.raise(fiber, state.located(
                           makeError(kWaitTimeoutError, fmt::format("no {} '{}' arrived before the "
                                                                    "wait's timeout",
                                                                    what, waiting.name)),
                           fiber));
    break;
  }
  case InputKind::PredicateAnswered:
    if (!input.value.isBool()) {
      fiber.command = 0;
      state.raise(fiber, state.located(expressionError(fmt::format(
                                           "host predicate '{}' answered {}, not a boolean",
                                           waiting.name, describeValue(input.value))),
                                       fiber));
    } else {
      state.resume(fiber, input.value);
    }
    break;
  case InputKind::SignalReceived:
  case InputKind::CancelRequested:
  case InputKind::TimeoutReached:
    assert(false && "handled above");
    break;
  }
  state.run();
  return std::exchange(state.out, {});
}

RunStatus Machine::status() const {
  return state_->status;
}

Value Machine::vars() const {
  return state_->readRoot(StateRoot::Vars, 0);
}

Value Machine::results() const {
  return state_->readRoot(StateRoot::Results, 0);
}

std::vector<Command> Machine::pendingCommands() const {
  std::vector<Command> commands;
  for (const auto &[id, waiting] : state_->pending) {
    commands.push_back(waiting.command);
  }
  return commands;
}

std::vector<std::pair<std::string, Value>> Machine::bufferedSignals() const {
  std::vector<std::pair<std::string, Value>> signals;
  for (const auto &[name, queue] : state_->signalBuffer) {
    for (const Value &payload : queue) {
      signals.emplace_back(name, payload);
    }
  }
  return signals;
}

} // namespace kotoba::vm
