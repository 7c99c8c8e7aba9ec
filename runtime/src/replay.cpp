// Replay (replay.h): which machine input each recorded event stands for, which command event
// each command must meet, and the loop that matches the two.
#include "kotoba/runtime/replay.h"

#include "kotoba/runtime/engine.h"

#include <fmt/format.h>

#include <cassert>

namespace kotoba::runtime {

namespace {

// The command event a command is recorded as. A Cancel is recorded by what it cancels, so
// it needs the commands issued before it; nullopt when its target is unknown.
std::optional<EventType> eventFor(const vm::Command &command, const CommandInfos &known) {
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
    case vm::CommandKind::WaitSignal:
    case vm::CommandKind::WaitEvent:
    case vm::CommandKind::AskPredicate:
    case vm::CommandKind::Cancel:
    case vm::CommandKind::RecordDecision:
    case vm::CommandKind::RecordCompensation:
    case vm::CommandKind::Complete:
    case vm::CommandKind::Fail:
    case vm::CommandKind::ContinueAsNew:
    case vm::CommandKind::Cancelled:
    case vm::CommandKind::TimedOut:
      return EventType::WaitCancelled;
    }
    return EventType::WaitCancelled;
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
  // Command events are matched, not fed; the rest record progress only.
  case EventType::WorkflowStarted:
  case EventType::WorkflowCompleted:
  case EventType::WorkflowFailed:
  case EventType::WorkflowCancelled:
  case EventType::WorkflowTimedOut:
  case EventType::WorkflowTerminated:
  case EventType::WorkflowContinuedAsNew:
  case EventType::ActivityScheduled:
  case EventType::ActivityStarted:
  case EventType::ActivityCancelRequested:
  case EventType::ActivityCancelled:
  case EventType::TimerStarted:
  case EventType::TimerCancelled:
  case EventType::WaitStarted:
  case EventType::WaitCancelled:
  case EventType::DecisionMade:
  case EventType::PredicateEvaluated:
  case EventType::ChildWorkflowStarted:
  case EventType::ChildWorkflowCancelRequested:
  case EventType::CompensationStarted:
  case EventType::CompensationCompleted:
  case EventType::CompensationFailed:
    return std::nullopt;
  }
  return std::nullopt;
}

// What differs between a command and the event recorded for it; empty when they match.
std::string difference(const vm::Command &command, const EventRecord &event,
                       std::optional<EventType> expected) {
  // Outputs over the payload limit turn a completion into a failure when recorded.
  bool oversizedOutputs =
      command.kind == vm::CommandKind::Complete && event.type == EventType::WorkflowFailed;
  if (!oversizedOutputs && (!expected || *expected != event.type)) {
    return fmt::format("the workflow now issues {}{} where the history has {}{}",
                       vm::commandKindName(command.kind),
                       command.step.empty() ? "" : " for step '" + command.step + "'",
                       eventTypeName(event.type),
                       event.stepId.empty() ? "" : " for step '" + event.stepId + "'");
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

WorkflowError nonDeterminismError(std::string_view runId, const ReplayMismatch &mismatch) {
  WorkflowError error =
      makeError(engine_errors::NonDeterminism, fmt::format("run {} does not replay at event {}: {}",
                                                           runId, mismatch.seq, mismatch.message));
  Object details;
  details.set("seq", Value(mismatch.seq));
  details.set("step", Value(mismatch.step));
  error.details = Value(std::move(details));
  return error;
}

vm::RunInfo runInfoOf(const RunRecord &run, const vm::Workflow &workflow) {
  return vm::RunInfo{run.id, workflow.version, run.attempt, run.createdMs, run.parentRunId};
}

Replay::Replay(std::shared_ptr<const vm::Module> module, uint32_t workflowIndex, vm::RunInfo info,
               Value inputs)
    : machine_(std::make_unique<vm::Machine>(std::move(module), workflowIndex, std::move(info))),
      inputs_(std::move(inputs)) {}

Replay::Replay(std::unique_ptr<vm::Machine> machine, CommandInfos commands, int64_t seq)
    : machine_(std::move(machine)), commands_(std::move(commands)), lastSeq_(seq), started_(true) {
  assert(machine_ != nullptr && "a restored replay needs the restored machine");
}

bool Replay::fail(int64_t seq, std::string step, std::string message) {
  mismatch_ = ReplayMismatch{seq, std::move(step), std::move(message)};
  return false;
}

void Replay::expect(std::vector<vm::Command> commands) {
  for (vm::Command &command : commands) {
    expected_.push_back(std::move(command));
  }
}

bool Replay::applyAll(std::span<const EventRecord> events) {
  for (const EventRecord &event : events) {
    if (!apply(event)) {
      return false;
    }
  }
  return !mismatch_;
}

bool Replay::expectEnded() {
  if (mismatch_) {
    return false;
  }
  if (expected_.empty()) {
    return true;
  }
  const vm::Command &extra = expected_.front();
  return fail(lastSeq_, extra.step,
              fmt::format("the run ended at event {} but the workflow now issues {}{} after it",
                          lastSeq_, vm::commandKindName(extra.kind),
                          extra.step.empty() ? "" : " for step '" + extra.step + "'"));
}

bool Replay::apply(const EventRecord &event) {
  if (mismatch_) {
    return false;
  }
  if (event.seq != lastSeq_ + 1) {
    return fail(event.seq, event.stepId,
                fmt::format("the history goes from event {} to event {}", lastSeq_, event.seq));
  }
  lastSeq_ = event.seq;
  if (terminated_) {
    // A child's result can still reach a terminated parent (the child finished before it saw
    // the terminate request); nothing after the termination moves the run any more.
    return true;
  }
  if (event.type == EventType::WorkflowTerminated) {
    terminated_ = true;
    return true;
  }

  if (event.type == EventType::WorkflowStarted) {
    if (started_) {
      return fail(event.seq, "", "the history starts the run a second time");
    }
    started_ = true;
    expect(machine_->start(inputs_));
    return true;
  }
  if (!started_) {
    return fail(
        event.seq, event.stepId,
        fmt::format("the history has {} before WorkflowStarted", eventTypeName(event.type)));
  }

  if (isCommandEvent(event.type)) {
    if (expected_.empty()) {
      return fail(event.seq, event.stepId,
                  fmt::format("the history has {} for step '{}' but the workflow issues no "
                              "command there",
                              eventTypeName(event.type), event.stepId));
    }
    vm::Command command = std::move(expected_.front());
    expected_.pop_front();
    std::string problem = difference(command, event, eventFor(command, commands_));
    if (!problem.empty()) {
      return fail(event.seq, command.step.empty() ? event.stepId : command.step,
                  std::move(problem));
    }
    if (command.id != 0) {
      CommandInfo &info = commands_[command.id];
      info = CommandInfo{command.kind,       command.step, command.name,
                         command.descriptor, event.timeMs, {},
                         event.location};
      const Value *child =
          event.payload.isObject() ? event.payload.asObject().find("child_run_id") : nullptr;
      if (command.kind == vm::CommandKind::StartChild && child != nullptr && child->isString()) {
        info.childRunId = child->asString();
      }
    }
    if (event.type == EventType::PredicateEvaluated) {
      // The answer is part of the command event: the engine asks and records at once.
      const Value *answer =
          event.payload.isObject() ? event.payload.asObject().find("value") : nullptr;
      if (answer == nullptr || !answer->isBool()) {
        return fail(
            event.seq, command.step,
            fmt::format("the history's answer to predicate '{}' is not a boolean", command.name));
      }
      vm::Input input;
      input.kind = vm::InputKind::PredicateAnswered;
      input.id = command.id;
      input.value = *answer;
      input.timeMs = event.timeMs;
      expect(machine_->apply(input));
    }
    return true;
  }

  std::optional<vm::Input> input = inputFor(event);
  if (!input) {
    return true;
  }
  if (!expected_.empty()) {
    const vm::Command &missing = expected_.front();
    return fail(event.seq, missing.step,
                fmt::format("the workflow issues {} for step '{}' that the history does not "
                            "have before {}",
                            vm::commandKindName(missing.kind), missing.step,
                            eventTypeName(event.type)));
  }
  expect(machine_->apply(*input));
  return true;
}

} // namespace kotoba::runtime
