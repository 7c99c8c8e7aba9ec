// A small deterministic driver for machine tests: compiles a workflow, answers its commands
// with scripted activities, fires timers in virtual time, and records what happened, so a
// test can assert the exact order of activity calls and the run's outcome without a store.
#pragma once

#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/machine.h"
#include "kotoba/vm/retry.h"

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace kotoba::testing {

using ActivityFunction = std::function<Result<Value>(const Value &input, int64_t attempt)>;

struct HarnessEvent {
  int64_t timeMs = 0;
  vm::Input input;
};

class Harness {
public:
  explicit Harness(const std::string &source, const std::string &workflow = {}) {
    compiler::Compilation compilation;
    compiler::CheckOptions options;
    if (!workflow.empty()) {
      options.entryWorkflow = workflow;
    }
    std::string path = "test.kotoba";
    bool ok = compiler::checkSource(compilation, path, source, options);
    if (!ok) {
      std::ostringstream out;
      compilation.diagnostics.print(out);
      FAIL(out.str());
    }
    module_ = std::make_shared<vm::Module>(
        compiler::generateModule(compilation.program, compilation.sources));
  }

  // Scripted activities by name; an activity without a script returns its input.
  std::map<std::string, ActivityFunction> activities;
  // Host predicates by name.
  std::map<std::string, bool> predicates;
  // Child workflows answered by a scripted function (the harness runs no child machines).
  std::map<std::string, ActivityFunction> children;

  // Every activity call in order: "name" or "name(input json)" when recordInputs.
  std::vector<std::string> calls;
  std::vector<vm::Command> commands;

  // The calls of one activity, in order, as `calls` spells them.
  [[nodiscard]] std::vector<std::string> callsTo(const std::string &activity) const {
    std::vector<std::string> found;
    for (const std::string &call : calls) {
      if (call == activity || call.rfind(activity + "(", 0) == 0) {
        found.push_back(call);
      }
    }
    return found;
  }
  // Every input the machine was given after start(), in order and with its time: a
  // transcript another machine can be fed (tests/machine/snapshot_test.cpp).
  std::vector<vm::Input> inputs;
  bool recordInputs = false;
  // When set, run() and send() advance virtual time at most this far past the start.
  std::optional<int64_t> horizonMs;

  // Starts the run and drives it until nothing more can happen without outside help.
  vm::RunStatus run(Value inputs = Value(Object()), int64_t startMs = 1'000'000) {
    now_ = startMs;
    machine_ = std::make_unique<vm::Machine>(module_, 0, vm::RunInfo{"run-1", "1", 1, startMs, {}});
    if (horizonMs) {
      limit_ = startMs + *horizonMs;
    }
    handle(machine_->start(std::move(inputs)));
    drive();
    passTime();
    return machine_->status();
  }

  // Sends an input from outside (a signal, a cancel) and drives again.
  vm::RunStatus send(vm::Input input) {
    input.timeMs = now_;
    inputs.push_back(input);
    handle(machine_->apply(input));
    drive();
    return machine_->status();
  }

  vm::RunStatus signal(const std::string &name, Value payload) {
    vm::Input input;
    input.kind = vm::InputKind::SignalReceived;
    input.name = name;
    input.value = std::move(payload);
    return send(std::move(input));
  }

  // Advances virtual time, firing every timer and timeout due by then.
  vm::RunStatus advance(int64_t ms) {
    std::optional<int64_t> saved = limit_;
    limit_ = now_ + ms;
    drive();
    passTime();
    limit_ = saved;
    return machine_->status();
  }

  vm::Machine &machine() { return *machine_; }
  const Value &outputs() const { return outputs_; }
  const std::optional<WorkflowError> &error() const { return error_; }
  int64_t now() const { return now_; }
  const vm::Module &module() const { return *module_; }

  // The commands of one kind, in order.
  std::vector<vm::Command> commandsOf(vm::CommandKind kind) const {
    std::vector<vm::Command> found;
    for (const vm::Command &command : commands) {
      if (command.kind == kind) {
        found.push_back(command);
      }
    }
    return found;
  }

private:
  void handle(std::vector<vm::Command> issued) {
    for (vm::Command &command : issued) {
      commands.push_back(command);
      switch (command.kind) {
      case vm::CommandKind::ScheduleActivity:
        scheduleAttempt(command, 1);
        break;
      case vm::CommandKind::StartTimer:
        timers_.emplace(std::make_pair(*command.fireAtMs, command.id),
                        vm::Input{vm::InputKind::TimerFired, command.id, {}, {}, {}, 0});
        break;
      case vm::CommandKind::WaitSignal:
      case vm::CommandKind::WaitEvent:
        if (command.timeoutAtMs) {
          timers_.emplace(std::make_pair(*command.timeoutAtMs, command.id),
                          vm::Input{vm::InputKind::WaitTimedOut, command.id, {}, {}, {}, 0});
        }
        if (command.kind == vm::CommandKind::WaitEvent) {
          waitingEvents_.push_back(command);
        }
        break;
      case vm::CommandKind::StartChild: {
        auto script = children.find(command.name);
        Result<Value> outcome = script != children.end() ? script->second(command.value, 1)
                                                         : Result<Value>(Value(Object()));
        queue_.push_back(resolved(vm::InputKind::ChildResolved, command.id, std::move(outcome)));
        break;
      }
      case vm::CommandKind::AskPredicate:
        queue_.push_back(vm::Input{vm::InputKind::PredicateAnswered,
                                   command.id,
                                   {},
                                   Value(predicates[command.name]),
                                   {},
                                   0});
        break;
      case vm::CommandKind::Cancel:
        cancelled_.insert(command.target);
        for (auto it = timers_.begin(); it != timers_.end();) {
          it = it->first.second == command.target ? timers_.erase(it) : std::next(it);
        }
        break;
      case vm::CommandKind::Complete:
        outputs_ = command.value;
        break;
      case vm::CommandKind::Fail:
      case vm::CommandKind::Cancelled:
      case vm::CommandKind::TimedOut:
        error_ = command.error;
        break;
      case vm::CommandKind::ContinueAsNew:
        outputs_ = command.value;
        break;
      case vm::CommandKind::RecordDecision:
      case vm::CommandKind::RecordCompensation:
        break;
      }
    }
  }

  // Time passes up to the limit even when nothing happens in it.
  void passTime() {
    if (limit_ && !vm::isFinal(machine_->status())) {
      now_ = std::max(now_, *limit_);
    }
  }

  static vm::Input resolved(vm::InputKind kind, vm::CommandId id, Result<Value> outcome) {
    vm::Input input;
    input.kind = kind;
    input.id = id;
    if (outcome.ok()) {
      input.value = outcome.value();
    } else {
      input.error = outcome.error();
    }
    return input;
  }

  // Runs one attempt now; a retryable failure is retried by the descriptor's policy after
  // its backoff in virtual time, as the runtime would.
  void scheduleAttempt(const vm::Command &command, int64_t attempt) {
    std::string entry = command.name;
    if (recordInputs) {
      entry += "(" + toJson(command.value) + ")";
    }
    calls.push_back(entry);
    attemptTimes.push_back(now_);
    auto script = activities.find(command.name);
    Result<Value> outcome = script != activities.end() ? script->second(command.value, attempt)
                                                       : Result<Value>(command.value);
    if (!outcome.ok() && outcome.error().retryable) {
      Result<RetryPolicy> policy =
          retryPolicyFromValue(*command.descriptor.asObject().find("retry"));
      REQUIRE(policy.ok());
      bool nonRetryable = false;
      for (const std::string &type : policy.value().nonRetryableErrors) {
        nonRetryable = nonRetryable || type == outcome.error().type;
      }
      if (!nonRetryable &&
          (!policy.value().maximumAttempts || attempt < *policy.value().maximumAttempts)) {
        int64_t delay = delayBeforeAttempt(policy.value(), attempt + 1);
        retries_.emplace(std::make_pair(now_ + delay, command.id),
                         std::make_pair(command, attempt + 1));
        return;
      }
    }
    queue_.push_back(resolved(vm::InputKind::ActivityResolved, command.id, std::move(outcome)));
  }

  void drive() {
    for (int guard = 0; guard < 100000; ++guard) {
      if (vm::isFinal(machine_->status())) {
        return;
      }
      if (!queue_.empty()) {
        vm::Input input = std::move(queue_.front());
        queue_.erase(queue_.begin());
        if (cancelled_.contains(input.id)) {
          continue;
        }
        input.timeMs = now_;
        inputs.push_back(input);
        handle(machine_->apply(input));
        continue;
      }
      if (!waitingEvents_.empty() && !published.empty()) {
        deliverEvents();
        if (!queue_.empty()) {
          continue;
        }
      }
      // Nothing ready: jump to the next timer or retry, if it is within the limit.
      std::optional<int64_t> next;
      if (!timers_.empty()) {
        next = timers_.begin()->first.first;
      }
      if (!retries_.empty() && (!next || retries_.begin()->first.first < *next)) {
        next = retries_.begin()->first.first;
      }
      if (!next || (limit_ && *next > *limit_)) {
        return;
      }
      now_ = std::max(now_, *next);
      if (!retries_.empty() && retries_.begin()->first.first == *next) {
        auto [command, attempt] = retries_.begin()->second;
        retries_.erase(retries_.begin());
        scheduleAttempt(command, attempt);
      } else {
        vm::Input input = timers_.begin()->second;
        timers_.erase(timers_.begin());
        queue_.push_back(std::move(input));
      }
    }
    FAIL("the run did not settle");
  }

  void deliverEvents() {
    for (auto waiting = waitingEvents_.begin(); waiting != waitingEvents_.end();) {
      bool delivered = false;
      if (!cancelled_.contains(waiting->id)) {
        for (auto event = published.begin(); event != published.end(); ++event) {
          if (event->first != waiting->name || !matches(waiting->value, event->second)) {
            continue;
          }
          queue_.push_back(
              vm::Input{vm::InputKind::EventDelivered, waiting->id, {}, event->second, {}, 0});
          published.erase(event);
          delivered = true;
          break;
        }
      }
      waiting = delivered || cancelled_.contains(waiting->id) ? waitingEvents_.erase(waiting)
                                                              : std::next(waiting);
    }
  }

  static bool matches(const Value &filter, const Value &payload) {
    if (!filter.isObject()) {
      return true;
    }
    for (const ObjectEntry &entry : filter.asObject()) {
      const Value *field = payload.isObject() ? payload.asObject().find(entry.key) : nullptr;
      if (field == nullptr || !(*field == entry.value)) {
        return false;
      }
    }
    return true;
  }

public:
  // Events published engine-wide: (type, payload), oldest first.
  std::vector<std::pair<std::string, Value>> published;
  // The virtual time of each activity attempt, parallel to `calls`.
  std::vector<int64_t> attemptTimes;

private:
  std::shared_ptr<vm::Module> module_;
  std::unique_ptr<vm::Machine> machine_;
  int64_t now_ = 0;
  std::optional<int64_t> limit_;
  std::vector<vm::Input> queue_;
  std::map<std::pair<int64_t, vm::CommandId>, vm::Input> timers_;
  std::map<std::pair<int64_t, vm::CommandId>, std::pair<vm::Command, int64_t>> retries_;
  std::vector<vm::Command> waitingEvents_;
  std::set<vm::CommandId> cancelled_;
  Value outputs_;
  std::optional<WorkflowError> error_;
};

inline Value json(const std::string &text) {
  Result<Value> parsed = parseJson(text);
  REQUIRE_MESSAGE(parsed.ok(), text);
  return parsed.value();
}

} // namespace kotoba::testing
