// Recording: each input goes to the machine, and the input's event and the events of the
// commands the machine answers with are written in one transaction together with the rows
// those commands need (tasks, timers, child runs, the run's status). Work happens only after
// that commit, so nothing is ever acted on that a crash could lose.
#include "engine_internal.h"

#include "kotoba/vm/json.h"
#include "kotoba/vm/retry.h"
#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

namespace kotoba::runtime {

namespace {

NewEvent commandEvent(const LoadedRun &run, EventType type, const vm::Command &command,
                      Object fields, int64_t nowMs) {
  NewEvent event;
  event.type = type;
  event.timeMs = nowMs;
  event.stepId = command.step;
  event.location = locationText(*run.module, command.location);
  if (command.id != 0) {
    Object withId;
    withId.set("command_id", Value(static_cast<int64_t>(command.id)));
    for (const ObjectEntry &entry : fields) {
      withId.set(entry.key, entry.value);
    }
    fields = std::move(withId);
  }
  event.payload = Value(std::move(fields));
  return event;
}

size_t payloadSize(const Value &value) {
  return toJson(value).size();
}

// When a failed run's workflow has a retry_policy that allows another attempt: the time the
// next attempt starts.
std::optional<int64_t> workflowRetryAt(const LoadedRun &run,
                                       const std::optional<WorkflowError> &failure, int64_t at) {
  const vm::Workflow &workflow = run.module->workflows[run.workflowIndex];
  if (workflow.retryPolicy.isNull() || !failure) {
    return std::nullopt;
  }
  Result<RetryPolicy> policy = retryPolicyFromValue(workflow.retryPolicy);
  if (!policy.ok()) {
    return std::nullopt;
  }
  WorkflowError error = *failure;
  error.retryable = true; // a workflow failure is retried unless the policy excludes its type
  RetryDecision decision = decideRetry(policy.value(), run.record.attempt, error, at, std::nullopt,
                                       run.record.id, "workflow");
  return decision.retry() ? std::optional<int64_t>(decision.retryAtMs) : std::nullopt;
}

} // namespace

StoreStatus Engine::Impl::deliver(LoadedRun &run, NewEvent event, std::optional<vm::Input> input,
                                  PendingWrite write) {
  write.events.push_back(std::move(event));
  if (input) {
    input->timeMs = write.events.back().timeMs;
    translate(run, run.machine->apply(*input), write);
  }
  return commit(run, std::move(write));
}

StoreStatus Engine::Impl::commit(LoadedRun &run, PendingWrite write) {
  const std::string runId = run.record.id;
  if (deferredRuns.contains(runId)) {
    // The run's previous transaction must be known to have committed before the next one
    // goes out: a failed one evicts the run, and this write was made by its stale machine.
    LoadedRun *before = &run;
    if (StoreStatus flushed = flushCommits(); !flushed.ok()) {
      return flushed;
    }
    auto still = runs.find(runId);
    if (still == runs.end() || still->second.get() != before) {
      return {};
    }
  }
  if (!write.update && !write.events.empty() &&
      storeStatus(run.machine->status()) != run.record.status) {
    // Only a changed status needs the run row written: appending the events moves its
    // last_seq and updated_ms already (7% of the batch writer's work per step, findings.md).
    RunUpdate update;
    update.timeMs = now();
    update.status = storeStatus(run.machine->status());
    write.update = update;
  }
  auto state = std::make_shared<CommitState>();
  state->runId = runId;
  // A checkpoint, when one is due, commits with the events it covers (engine_checkpoint.cpp).
  state->checkpoint = planCheckpoint(run, write);
  state->write = std::move(write);
  // The lease is extended by a commit past half its life; before that the fence only checks
  // that the row is still this engine's, which spares the row and its index a rewrite on
  // every step (7% of the batch writer's work, bench/findings.md).
  state->extendLease = run.leaseExpiryMs - now() < options.leaseMs / 2;
  state->expiry = state->extendLease ? now() + options.leaseMs : run.leaseExpiryMs;
  // In batch mode the function runs on the store's writer thread: it reads only `state`,
  // which nothing else touches until its commit is known.
  WriteFunction transaction = [this, state](Transaction &tx) -> StoreStatus {
    // The fence (docs/store.md, Leases): the run's writes commit only while this engine still
    // owns it. Only an owner's acquire changes the row, and every writer checks it here under
    // the write lock, so an engine whose run was taken over appends nothing, whatever its
    // machine believes. The owner's own lease may have run out without anyone taking it (a
    // virtual clock jumped past it, the process stalled): nobody else wrote, so renewing it
    // (which only the owner of the row can) is the check.
    if (state->extendLease) {
      auto renewed = tx.renewLease(state->runId, options.owner, state->expiry);
      if (!renewed.ok()) {
        return std::move(renewed).error();
      }
      state->leaseLost = !renewed.value();
    } else {
      auto held = tx.lease(state->runId);
      if (!held.ok()) {
        return std::move(held).error();
      }
      state->leaseLost = !held.value() || held.value()->owner != options.owner;
    }
    if (state->leaseLost) {
      return StoreError{StoreErrorKind::Conflict, fmt::format("run {} is no longer leased to {}",
                                                              state->runId, options.owner)};
    }
    PendingWrite &pending = state->write;
    if (!pending.events.empty()) {
      auto appended = tx.appendEvents(state->runId, pending.events);
      if (!appended.ok()) {
        return std::move(appended).error();
      }
      StoreStatus checkpointed = writeCheckpoint(tx, *state->checkpoint, appended.value());
      if (!checkpointed.ok()) {
        return checkpointed;
      }
    }
    if (pending.update) {
      StoreStatus updated = tx.updateRun(state->runId, *pending.update);
      if (!updated.ok()) {
        return updated;
      }
    }
    for (auto &extra : pending.writes) {
      StoreStatus done = extra(tx);
      if (!done.ok()) {
        return done;
      }
    }
    return {};
  };
  if (deferCommits && store.durability() == Durability::Batch) {
    deferredRuns.insert(runId);
    deferredCommits.push_back(DeferredCommit{state, store.submit(std::move(transaction))});
    return {};
  }
  return finishCommit(*state, store.write(transaction));
}

StoreStatus Engine::Impl::finishCommit(CommitState &state, StoreStatus status) {
  if (!status.ok()) {
    // The machine ran ahead of the store: forget it, the history rebuilds it.
    evict(state.runId);
    // A run another engine took over is that engine's business now, not a failure of this
    // one: what this engine was about to record is recorded (or retried) by the new owner.
    return state.leaseLost ? StoreStatus() : status;
  }
  auto found = runs.find(state.runId);
  bool finished = false;
  if (found != runs.end()) {
    found->second->leaseExpiryMs = state.expiry;
    if (state.write.update && state.write.update->status) {
      found->second->record.status = *state.write.update->status; // as the row has it now
    }
    finished = vm::isFinal(found->second->machine->status());
  }
  for (auto &action : state.write.afterCommit) {
    action();
  }
  found = runs.find(state.runId); // an action may have evicted it
  for (const NewTask &task : state.write.claimedTasks) {
    if (found == runs.end()) {
      break; // its claims lapse unused; whoever loads the run next takes the tasks
    }
    AttemptIdentity identity{task.runId, static_cast<uint64_t>(task.commandId), task.stepId,
                             task.activity, task.attempt};
    // An executor that has shut down leaves the claim to lapse in the same way.
    (void)launchAttempt(*found->second, identity, task.input, now(), *task.leaseExpiryMs);
  }
  if (finished) {
    evict(state.runId);
  }
  return {};
}

StoreStatus Engine::Impl::flushCommits() {
  std::vector<DeferredCommit> waiting;
  waiting.swap(deferredCommits);
  if (!waiting.empty()) {
    store.flush(); // everything of this step is queued: commit it without the window's wait
  }
  deferredRuns.clear();
  StoreStatus first;
  for (DeferredCommit &deferred : waiting) {
    StoreStatus status = finishCommit(*deferred.state, deferred.committed.get());
    if (first.ok() && !status.ok()) {
      first = std::move(status);
    }
  }
  return first;
}

Result<std::string> Engine::Impl::createRun(Transaction &tx, const std::string &runId,
                                            const std::string &chainId,
                                            const std::string &moduleHash, const vm::Module &module,
                                            uint32_t workflowIndex, const Value &inputs,
                                            std::optional<std::string> parentRunId,
                                            std::optional<int64_t> parentCommandId,
                                            const Value &host, int64_t nowMs, int64_t attempt) {
  const vm::Workflow &workflow = module.workflows[workflowIndex];
  NewRun run;
  run.id = runId;
  run.chainId = chainId;
  run.workflowId = workflow.id;
  run.moduleHash = moduleHash;
  run.inputs = inputs;
  run.parentRunId = std::move(parentRunId);
  run.parentCommandId = parentCommandId;
  run.attempt = attempt;
  run.createdMs = nowMs;
  run.host = host;
  if (workflow.timeoutMs) {
    run.timeoutMs = nowMs + *workflow.timeoutMs;
  }
  StoreStatus created = tx.createRun(run);
  if (!created.ok()) {
    return storeError(created.error());
  }
  NewEvent started;
  started.type = EventType::WorkflowStarted;
  started.timeMs = nowMs;
  started.payload =
      Value(payload({{"workflow_id", Value(workflow.id)},
                     {"workflow_version", Value(workflow.version)},
                     {"module_hash", Value(moduleHash)},
                     {"inputs", inputs},
                     {"attempt", Value(attempt)},
                     {"parent_run_id", run.parentRunId ? Value(*run.parentRunId) : Value()}}));
  auto appended = tx.appendEvents(runId, std::span<const NewEvent>(&started, 1));
  if (!appended.ok()) {
    return storeError(appended.error());
  }
  if (workflow.timeoutMs) {
    StoreStatus timer = tx.addTimer(
        TimerRecord{runId, 0, TimerKind::WorkflowTimeout, nowMs + *workflow.timeoutMs, nowMs});
    if (!timer.ok()) {
      return storeError(timer.error());
    }
  }
  auto leased = tx.acquireLease(runId, options.owner, nowMs, nowMs + options.leaseMs);
  if (!leased.ok()) {
    return storeError(leased.error());
  }
  return runId;
}

void Engine::Impl::translate(LoadedRun &run, std::vector<vm::Command> commands,
                             PendingWrite &write) {
  const std::string runId = run.record.id;
  std::deque<vm::Command> queue(std::make_move_iterator(commands.begin()),
                                std::make_move_iterator(commands.end()));
  while (!queue.empty()) {
    vm::Command command = std::move(queue.front());
    queue.pop_front();
    int64_t at = now();
    if (command.id != 0) {
      run.commands[command.id] = CommandInfo{command.kind,
                                             command.step,
                                             command.name,
                                             command.descriptor,
                                             at,
                                             {},
                                             locationText(*run.module, command.location)};
    }
    auto more = [&](const vm::Input &input) {
      for (vm::Command &next : run.machine->apply(input)) {
        queue.push_back(std::move(next));
      }
    };
    switch (command.kind) {
    case vm::CommandKind::ScheduleActivity: {
      size_t size = payloadSize(command.value);
      bool tooLarge = size > options.payloadLimitBytes;
      write.events.push_back(commandEvent(run, EventType::ActivityScheduled, command,
                                          payload({{"name", Value(command.name)},
                                                   {"input", tooLarge ? Value() : command.value},
                                                   {"attempt", Value(int64_t{1})}}),
                                          at));
      if (tooLarge) {
        // Nothing over the limit is written: the step fails instead, for good.
        WorkflowError error =
            makeError(error_types::PayloadTooLarge,
                      fmt::format("the input of activity '{}' is {} bytes, over the {} byte limit",
                                  command.name, size, options.payloadLimitBytes));
        write.events.push_back(commandEvent(run, EventType::ActivityFailed, command,
                                            payload({{"attempt", Value(int64_t{1})},
                                                     {"error", error.toValue()},
                                                     {"will_retry", Value(false)}}),
                                            at));
        vm::Input input;
        input.kind = vm::InputKind::ActivityResolved;
        input.id = command.id;
        input.error = error;
        input.timeMs = at;
        more(input);
        break;
      }
      NewTask task;
      task.runId = runId;
      task.commandId = static_cast<int64_t>(command.id);
      task.stepId = command.step;
      task.activity = command.name;
      task.input = command.value;
      task.attempt = 1;
      task.dueMs = at;
      task.idempotencyKey =
          idempotencyKey(AttemptIdentity{runId, command.id, command.step, command.name, 1});
      task.createdMs = at;
      if (claimScheduled) {
        // Claimed here, in the transaction that schedules it, and started once that commits:
        // one commit per step instead of a second one for the claim (bench/findings.md). A
        // crash leaves the claim to lapse, and the task is then taken like any other.
        task.owner = options.owner;
        task.leaseExpiryMs = at + options.leaseMs;
        write.claimedTasks.push_back(task);
      }
      write.writes.push_back([task](Transaction &tx) { return tx.addTask(task); });
      break;
    }
    case vm::CommandKind::StartTimer: {
      write.events.push_back(commandEvent(run, EventType::TimerStarted, command,
                                          payload({{"fire_at_ms", Value(*command.fireAtMs)}}), at));
      TimerRecord timer{runId, static_cast<int64_t>(command.id), TimerKind::Timer,
                        *command.fireAtMs, at};
      write.writes.push_back([timer](Transaction &tx) { return tx.addTimer(timer); });
      break;
    }
    case vm::CommandKind::WaitSignal:
    case vm::CommandKind::WaitEvent: {
      bool isSignal = command.kind == vm::CommandKind::WaitSignal;
      Object fields =
          payload({{"kind", Value(isSignal ? "signal" : "event")},
                   {"name", Value(command.name)},
                   {"timeout_at_ms", command.timeoutAtMs ? Value(*command.timeoutAtMs) : Value()}});
      if (!isSignal) {
        fields.set("filter", command.value);
      }
      write.events.push_back(
          commandEvent(run, EventType::WaitStarted, command, std::move(fields), at));
      if (command.timeoutAtMs) {
        TimerRecord timer{runId, static_cast<int64_t>(command.id), TimerKind::WaitTimeout,
                          *command.timeoutAtMs, at};
        write.writes.push_back([timer](Transaction &tx) { return tx.addTimer(timer); });
      }
      if (!isSignal) {
        lastPublishedCheck = -1; // look for a matching event on the next step
      }
      break;
    }
    case vm::CommandKind::StartChild: {
      std::string childId = fmt::format("{}.{}", runId, command.id);
      run.commands[command.id].childRunId = childId;
      write.events.push_back(commandEvent(run, EventType::ChildWorkflowStarted, command,
                                          payload({{"name", Value(command.name)},
                                                   {"child_run_id", Value(childId)},
                                                   {"input", command.value}}),
                                          at));
      const vm::Workflow *child = run.module->findWorkflow(command.name);
      uint32_t childIndex = static_cast<uint32_t>(child - run.module->workflows.data());
      std::string moduleHash = run.record.moduleHash;
      std::shared_ptr<const vm::Module> module = run.module;
      Value input = command.value;
      Value host = run.record.host; // a child resolves its activities as its parent does
      int64_t commandId = static_cast<int64_t>(command.id);
      write.writes.push_back([this, childId, moduleHash, module, childIndex, input, runId,
                              commandId, host, at](Transaction &tx) -> StoreStatus {
        auto created = createRun(tx, childId, "", moduleHash, *module, childIndex, input, runId,
                                 commandId, host, at);
        if (!created.ok()) {
          return StoreError{StoreErrorKind::Invalid, created.error().message};
        }
        return {};
      });
      // The child starts working on the next step.
      write.afterCommit.push_back([this, childId] { dirty.insert(childId); });
      break;
    }
    case vm::CommandKind::AskPredicate: {
      auto predicate = predicates.find(command.name);
      bool answer = false;
      if (predicate != predicates.end()) {
        Object state;
        state.set("vars", run.machine->vars());
        state.set("results", run.machine->results());
        state.set("inputs", run.record.inputs);
        answer = predicate->second(Value(std::move(state)));
      }
      write.events.push_back(
          commandEvent(run, EventType::PredicateEvaluated, command,
                       payload({{"name", Value(command.name)}, {"value", Value(answer)}}), at));
      vm::Input input;
      input.kind = vm::InputKind::PredicateAnswered;
      input.id = command.id;
      input.value = Value(answer);
      input.timeMs = at;
      more(input);
      break;
    }
    case vm::CommandKind::Cancel: {
      auto target = run.commands.find(command.target);
      if (target == run.commands.end()) {
        break;
      }
      CommandInfo info = target->second;
      vm::CommandId targetId = command.target;
      EventType type = EventType::WaitCancelled;
      switch (info.kind) {
      case vm::CommandKind::ScheduleActivity:
        type = EventType::ActivityCancelRequested;
        // Scheduled by this same transaction: it is not started at all.
        std::erase_if(write.claimedTasks, [&](const NewTask &task) {
          return task.commandId == static_cast<int64_t>(targetId);
        });
        write.writes.push_back([runId, targetId](Transaction &tx) -> StoreStatus {
          auto removed = tx.removeTask(runId, static_cast<int64_t>(targetId));
          return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
        });
        write.afterCommit.push_back([this, runId, targetId] { executor.cancel(runId, targetId); });
        break;
      case vm::CommandKind::StartTimer:
        type = EventType::TimerCancelled;
        write.writes.push_back([runId, targetId](Transaction &tx) -> StoreStatus {
          auto removed = tx.removeTimer(runId, static_cast<int64_t>(targetId), TimerKind::Timer);
          return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
        });
        break;
      case vm::CommandKind::StartChild: {
        type = EventType::ChildWorkflowCancelRequested;
        std::string child = info.childRunId;
        int64_t when = at;
        write.writes.push_back([child, when](Transaction &tx) -> StoreStatus {
          auto added = tx.addInboxMessage(child, InboxKind::Cancel, "", Value(), when);
          return added.ok() ? StoreStatus() : StoreStatus(std::move(added).error());
        });
        break;
      }
      default:
        write.writes.push_back([runId, targetId](Transaction &tx) -> StoreStatus {
          auto removed =
              tx.removeTimer(runId, static_cast<int64_t>(targetId), TimerKind::WaitTimeout);
          return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
        });
        break;
      }
      vm::Command described = command;
      described.step = info.step;
      write.events.push_back(commandEvent(
          run, type, described,
          payload({{"target_command_id", Value(static_cast<int64_t>(targetId))}}), at));
      write.events.back().location = info.location; // where the cancelled step is
      break;
    }
    case vm::CommandKind::RecordDecision:
      write.events.push_back(commandEvent(run, EventType::DecisionMade, command,
                                          payload({{"branch", Value(command.detail)}}), at));
      break;
    case vm::CommandKind::RecordCompensation: {
      EventType type = command.detail == "started"     ? EventType::CompensationStarted
                       : command.detail == "completed" ? EventType::CompensationCompleted
                                                       : EventType::CompensationFailed;
      Object fields;
      if (command.error) {
        fields.set("error", command.error->toValue());
      }
      write.events.push_back(commandEvent(run, type, command, std::move(fields), at));
      break;
    }
    case vm::CommandKind::Complete:
    case vm::CommandKind::Fail:
    case vm::CommandKind::Cancelled:
    case vm::CommandKind::TimedOut:
    case vm::CommandKind::ContinueAsNew: {
      RunUpdate update;
      update.timeMs = at;
      update.status = storeStatus(run.machine->status());
      EventType type = EventType::WorkflowCompleted;
      Object fields;
      std::optional<int64_t> retryAtMs;
      std::optional<WorkflowError> failure = command.error;
      if (command.kind == vm::CommandKind::Complete) {
        if (payloadSize(command.value) > options.payloadLimitBytes) {
          failure = makeError(
              error_types::PayloadTooLarge,
              fmt::format("the outputs are over the {} byte limit", options.payloadLimitBytes));
          type = EventType::WorkflowFailed;
          update.status = RunStatus::Failed;
          fields.set("error", failure->toValue());
          update.error = failure->toValue();
        } else {
          fields.set("outputs", command.value);
          update.outputs = command.value;
        }
      } else if (command.kind == vm::CommandKind::ContinueAsNew) {
        type = EventType::WorkflowContinuedAsNew;
        std::string next = newRunId();
        fields.set("inputs", command.value);
        fields.set("next_run_id", Value(next));
        std::string chain = run.record.chainId;
        std::string moduleHash = run.record.moduleHash;
        std::shared_ptr<const vm::Module> module = run.module;
        uint32_t index = run.workflowIndex;
        Value inputs = command.value;
        Value host = run.record.host;
        auto carried = run.machine->bufferedSignals();
        write.writes.push_back([this, next, chain, moduleHash, module, index, inputs, carried,
                                host, at](Transaction &tx) -> StoreStatus {
          auto created =
              createRun(tx, next, chain, moduleHash, *module, index, inputs, {}, {}, host, at);
          if (!created.ok()) {
            return StoreError{StoreErrorKind::Invalid, created.error().message};
          }
          // Signals the old run never consumed move to the new one.
          for (const auto &[name, signal] : carried) {
            auto added = tx.addInboxMessage(next, InboxKind::Signal, name, signal, at);
            if (!added.ok()) {
              return std::move(added).error();
            }
          }
          return {};
        });
        write.afterCommit.push_back([this, next] { dirty.insert(next); });
      } else {
        type = command.kind == vm::CommandKind::Fail        ? EventType::WorkflowFailed
               : command.kind == vm::CommandKind::Cancelled ? EventType::WorkflowCancelled
                                                            : EventType::WorkflowTimedOut;
        fields.set("error", failure ? failure->toValue() : Value());
        update.error = failure ? failure->toValue() : Value();
        if (command.kind == vm::CommandKind::Fail) {
          retryAtMs = workflowRetryAt(run, failure, at);
        }
        if (retryAtMs) {
          fields.set("will_retry", Value(true));
          fields.set("next_attempt", Value(run.record.attempt + 1));
          fields.set("retry_at_ms", Value(*retryAtMs));
        }
      }
      write.events.push_back(commandEvent(run, type, command, std::move(fields), at));
      write.update = update;
      write.writes.push_back([runId](Transaction &tx) -> StoreStatus {
        auto removed = tx.removeTimersOf(runId);
        return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
      });
      if (retryAtMs) {
        // The next attempt starts when this timer fires (engine_loop.cpp, fireTimers).
        TimerRecord retry{runId, 0, TimerKind::WorkflowRetry, *retryAtMs, at};
        write.writes.push_back([retry](Transaction &tx) { return tx.addTimer(retry); });
      }
      // A child reports to its parent in the same transaction, unless it will try again.
      if (run.record.parentRunId && run.record.parentCommandId && !retryAtMs) {
        std::string parent = *run.record.parentRunId;
        NewEvent report;
        report.timeMs = at;
        Object reportFields;
        reportFields.set("command_id", Value(*run.record.parentCommandId));
        reportFields.set("child_run_id", Value(runId));
        if (type == EventType::WorkflowCompleted) {
          report.type = EventType::ChildWorkflowCompleted;
          reportFields.set("outputs", command.value);
        } else {
          report.type = EventType::ChildWorkflowFailed;
          WorkflowError error =
              failure ? *failure : makeError("ContinuedAsNew", "the child continued as new");
          error.chain.push_back(run.record.workflowId);
          reportFields.set("error", error.toValue());
        }
        report.payload = Value(std::move(reportFields));
        write.writes.push_back([parent, report](Transaction &tx) -> StoreStatus {
          auto appended = tx.appendEvents(parent, std::span<const NewEvent>(&report, 1));
          return appended.ok() ? StoreStatus() : StoreStatus(std::move(appended).error());
        });
        write.afterCommit.push_back([this, parent] {
          evict(parent);
          dirty.insert(parent);
        });
      }
      std::string self = runId;
      write.writes.push_back([self, this](Transaction &tx) -> StoreStatus {
        auto released = tx.releaseLease(self, options.owner);
        return released.ok() ? StoreStatus() : StoreStatus(std::move(released).error());
      });
      break;
    }
    }
  }
}

} // namespace kotoba::runtime
