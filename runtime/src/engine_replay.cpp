// Loading a run: rebuild its machine by replaying the recorded history, matching every
// command the machine issues against the command events written when it first ran. A
// mismatch means the module no longer produces the recorded history: NonDeterminism, and
// the run is BLOCKED without a single event appended.
#include "engine_internal.h"

#include "kotoba/vm/module_format.h"

#include <fmt/format.h>

namespace kotoba::runtime {

namespace {

std::optional<EventType> eventFor(const vm::Command &command,
                                  const std::map<vm::CommandId, CommandInfo> &known) {
  switch (command.kind) {
  case vm::CommandKind::ScheduleActivity:
    return EventType::ActivityScheduled;
  case vm::CommandKind::StartTimer:
    return EventType::TimerStarted;
  case vm::CommandKind::WaitSignal:
  case vm::CommandKind::WaitEvent:
    return EventType::WaitStarted;
  case vm::CommandKind::StartChild:
    return EventType::ChildWorkflowStarted;
  case vm::CommandKind::AskPredicate:
    return EventType::PredicateEvaluated;
  case vm::CommandKind::RecordDecision:
    return EventType::DecisionMade;
  case vm::CommandKind::RecordCompensation:
    return command.detail == "started"     ? EventType::CompensationStarted
           : command.detail == "completed" ? EventType::CompensationCompleted
                                           : EventType::CompensationFailed;
  case vm::CommandKind::Complete:
    return EventType::WorkflowCompleted;
  case vm::CommandKind::Fail:
    return EventType::WorkflowFailed;
  case vm::CommandKind::ContinueAsNew:
    return EventType::WorkflowContinuedAsNew;
  case vm::CommandKind::Cancelled:
    return EventType::WorkflowCancelled;
  case vm::CommandKind::TimedOut:
    return EventType::WorkflowTimedOut;
  case vm::CommandKind::Cancel: {
    auto target = known.find(command.target);
    if (target == known.end()) {
      return std::nullopt;
    }
    switch (target->second.kind) {
    case vm::CommandKind::ScheduleActivity:
      return EventType::ActivityCancelRequested;
    case vm::CommandKind::StartTimer:
      return EventType::TimerCancelled;
    case vm::CommandKind::StartChild:
      return EventType::ChildWorkflowCancelRequested;
    default:
      return EventType::WaitCancelled;
    }
  }
  }
  return std::nullopt;
}

// The machine input a recorded outcome event stands for; nullopt for events that record
// progress only (an attempt that will be retried, an activity that stopped after a cancel).
std::optional<vm::Input> inputFor(const EventRecord &event) {
  vm::Input input;
  input.timeMs = event.timeMs;
  const Object *fields = event.payload.isObject() ? &event.payload.asObject() : nullptr;
  auto field = [&](const char *name) -> Value {
    const Value *value = fields != nullptr ? fields->find(name) : nullptr;
    return value != nullptr ? *value : Value();
  };
  auto commandId = [&]() {
    Value id = field("command_id");
    return id.isInt() ? static_cast<vm::CommandId>(id.asInt()) : 0;
  };
  switch (event.type) {
  case EventType::ActivityCompleted:
    input.kind = vm::InputKind::ActivityResolved;
    input.id = commandId();
    input.value = field("result");
    return input;
  case EventType::ActivityFailed:
  case EventType::ActivityTimedOut:
    if (field("will_retry").isBool() && field("will_retry").asBool()) {
      return std::nullopt;
    }
    input.kind = vm::InputKind::ActivityResolved;
    input.id = commandId();
    input.error = workflowErrorFromValue(field("error"));
    return input;
  case EventType::TimerFired:
    input.kind = vm::InputKind::TimerFired;
    input.id = commandId();
    return input;
  case EventType::SignalReceived:
    input.kind = vm::InputKind::SignalReceived;
    input.name = field("name").isString() ? field("name").asString() : "";
    input.value = field("payload");
    return input;
  case EventType::EventReceived:
    input.kind = vm::InputKind::EventDelivered;
    input.id = commandId();
    input.value = field("payload");
    return input;
  case EventType::WaitTimedOut:
    input.kind = vm::InputKind::WaitTimedOut;
    input.id = commandId();
    return input;
  case EventType::ChildWorkflowCompleted:
    input.kind = vm::InputKind::ChildResolved;
    input.id = commandId();
    input.value = field("outputs");
    return input;
  case EventType::ChildWorkflowFailed:
    input.kind = vm::InputKind::ChildResolved;
    input.id = commandId();
    input.error = workflowErrorFromValue(field("error"));
    return input;
  case EventType::WorkflowCancelRequested:
    input.kind = vm::InputKind::CancelRequested;
    return input;
  case EventType::WorkflowTimeoutReached:
    input.kind = vm::InputKind::TimeoutReached;
    return input;
  default:
    return std::nullopt;
  }
}

// What differs between a command and the event recorded for it; empty when they match.
std::string mismatch(const vm::Command &command, const EventRecord &event,
                     std::optional<EventType> expected) {
  // Outputs over the payload limit turn a completion into a failure when recorded.
  bool oversizedOutputs = command.kind == vm::CommandKind::Complete &&
                          event.type == EventType::WorkflowFailed;
  if (!oversizedOutputs && (!expected || *expected != event.type)) {
    return fmt::format("the workflow now issues {}{} where the history has {}",
                       vm::commandKindName(command.kind),
                       command.step.empty() ? "" : " for step '" + command.step + "'",
                       eventTypeName(event.type));
  }
  if (!command.step.empty() && command.step != event.stepId) {
    return fmt::format("the workflow now runs step '{}' where the history has step '{}'",
                       command.step, event.stepId);
  }
  const Value *name = event.payload.isObject() ? event.payload.asObject().find("name") : nullptr;
  if (!command.name.empty() && name != nullptr && name->isString() &&
      name->asString() != command.name) {
    return fmt::format("step '{}' now names '{}' where the history has '{}'", command.step,
                       command.name, name->asString());
  }
  return {};
}

} // namespace

Result<std::shared_ptr<const vm::Module>> Engine::Impl::moduleByHash(const std::string &hash) {
  auto cached = modules.find(hash);
  if (cached != modules.end()) {
    return cached->second;
  }
  auto bytes = store.query([&](const StoreReader &reader) { return reader.module(hash); });
  if (!bytes.ok()) {
    return storeError(bytes.error());
  }
  if (!bytes.value()) {
    return makeError("ModuleMissing", fmt::format("the store has no module {}", hash));
  }
  auto loaded = vm::loadModule(*bytes.value());
  if (!loaded.ok()) {
    return makeError("ModuleCorrupt", fmt::format("module {} does not load: {}", hash,
                                                  loaded.errors().front().describe()));
  }
  auto module = std::make_shared<const vm::Module>(std::move(loaded).value().module);
  modules.emplace(hash, module);
  return std::shared_ptr<const vm::Module>(module);
}

LoadedRun *Engine::Impl::load(const std::string &runId, std::optional<WorkflowError> &error) {
  auto cached = runs.find(runId);
  if (cached != runs.end()) {
    return cached->second.get();
  }
  auto record = store.query([&](const StoreReader &reader) { return reader.run(runId); });
  if (!record.ok()) {
    error = storeError(record.error());
    return nullptr;
  }
  if (!record.value() || isFinalStatus(record.value()->status) ||
      record.value()->status == RunStatus::Blocked) {
    return nullptr;
  }
  int64_t expiry = now() + options.leaseMs;
  bool leased = false;
  StoreStatus acquired = store.write([&](Transaction &tx) -> StoreStatus {
    auto got = tx.acquireLease(runId, options.owner, now(), expiry);
    if (!got.ok()) {
      return std::move(got).error();
    }
    leased = got.value();
    return {};
  });
  if (!acquired.ok()) {
    error = storeError(acquired.error());
    return nullptr;
  }
  if (!leased) {
    return nullptr; // another engine works on it
  }

  auto run = std::make_unique<LoadedRun>();
  run->record = std::move(*record.value());
  run->leaseExpiryMs = expiry;
  auto module = moduleByHash(run->record.moduleHash);
  if (!module.ok()) {
    error = module.error();
    return nullptr;
  }
  run->module = module.value();
  const vm::Workflow *workflow = run->module->findWorkflow(run->record.workflowId);
  if (workflow == nullptr) {
    error = makeError(engine_errors::UnknownWorkflow,
                      fmt::format("module {} has no workflow '{}'", run->record.moduleHash,
                                  run->record.workflowId));
    return nullptr;
  }
  run->workflowIndex = static_cast<uint32_t>(workflow - run->module->workflows.data());
  vm::RunInfo info{run->record.id, workflow->version, run->record.attempt,
                   run->record.createdMs, run->record.parentRunId};
  run->machine = std::make_unique<vm::Machine>(run->module, run->workflowIndex, info);

  auto events = store.query([&](const StoreReader &reader) { return reader.events(runId); });
  if (!events.ok()) {
    error = storeError(events.error());
    return nullptr;
  }
  std::deque<vm::Command> expected;
  auto remember = [&](const vm::Command &command, int64_t timeMs) {
    if (command.id != 0) {
      run->commands[command.id] =
          CommandInfo{command.kind, command.step, command.name, command.descriptor, timeMs, {}};
    }
  };
  std::string problem;
  int64_t problemSeq = 0;
  for (const EventRecord &event : events.value()) {
    if (event.type == EventType::WorkflowStarted) {
      for (vm::Command &command : run->machine->start(run->record.inputs)) {
        expected.push_back(std::move(command));
      }
      continue;
    }
    if (isCommandEvent(event.type)) {
      if (expected.empty()) {
        problem = fmt::format("the history has {} for step '{}' but the workflow issues no "
                              "command there",
                              eventTypeName(event.type), event.stepId);
        problemSeq = event.seq;
        break;
      }
      vm::Command command = std::move(expected.front());
      expected.pop_front();
      problem = mismatch(command, event, eventFor(command, run->commands));
      if (!problem.empty()) {
        problemSeq = event.seq;
        break;
      }
      remember(command, event.timeMs);
      if (command.kind == vm::CommandKind::StartChild && event.payload.isObject()) {
        const Value *child = event.payload.asObject().find("child_run_id");
        run->commands[command.id].childRunId = child != nullptr && child->isString()
                                                   ? child->asString()
                                                   : std::string();
      }
      if (event.type == EventType::PredicateEvaluated) {
        vm::Input answer;
        answer.kind = vm::InputKind::PredicateAnswered;
        answer.id = command.id;
        answer.value = *event.payload.asObject().find("value");
        answer.timeMs = event.timeMs;
        for (vm::Command &next : run->machine->apply(answer)) {
          expected.push_back(std::move(next));
        }
      }
      continue;
    }
    std::optional<vm::Input> input = inputFor(event);
    if (!input) {
      continue;
    }
    if (!expected.empty()) {
      problem = fmt::format("the workflow issues {} for step '{}' that the history does not "
                            "have before {}",
                            vm::commandKindName(expected.front().kind), expected.front().step,
                            eventTypeName(event.type));
      problemSeq = event.seq;
      break;
    }
    for (vm::Command &command : run->machine->apply(*input)) {
      expected.push_back(std::move(command));
    }
  }
  if (!problem.empty()) {
    WorkflowError blocked = makeError(
        engine_errors::NonDeterminism,
        fmt::format("run {} does not replay at event {}: {}", runId, problemSeq, problem));
    Object details;
    details.set("seq", Value(problemSeq));
    blocked.details = Value(std::move(details));
    RunUpdate update;
    update.timeMs = now();
    update.status = RunStatus::Blocked;
    update.error = blocked.toValue();
    // BLOCKED changes the run row only: the history stays exactly as it was.
    StoreStatus written = store.write([&](Transaction &tx) { return tx.updateRun(runId, update); });
    if (!written.ok()) {
      error = storeError(written.error());
      return nullptr;
    }
    error = blocked;
    return nullptr;
  }

  LoadedRun *loaded = run.get();
  runs[runId] = std::move(run);
  if (!expected.empty()) {
    // Commands the last recorded input produced but no transaction recorded: record them
    // now (a child's result appended by the child's engine ends up here).
    PendingWrite write;
    translate(*loaded, std::vector<vm::Command>(expected.begin(), expected.end()), write);
    StoreStatus status = commit(*loaded, std::move(write));
    if (!status.ok()) {
      error = storeError(status.error());
      evict(runId);
      return nullptr;
    }
  }
  return runs.contains(runId) ? runs[runId].get() : nullptr;
}

} // namespace kotoba::runtime
