// The engine's loop: each step takes whatever is ready (activity outcomes, inbox messages,
// due timers, tasks to start, published events for waiting runs, runs nobody owns) and turns
// it into recorded inputs. Between steps the engine waits on the clock, which a virtual
// clock answers by jumping to the next due time.
#include "engine_internal.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

namespace kotoba::runtime {

namespace {

// The error of an attempt whose activity did not resolve: why, when resolving said so (a
// stored binding or a run's stored host that is malformed), else that nothing binds it.
WorkflowError unavailable(const ModuleActivities &resolved, const std::string &activity) {
  for (const WorkflowError &problem : resolved.problems) {
    // Problems name their activity; one about the run's host as a whole names none.
    bool aboutOther = problem.message.find("activity '") != std::string::npos &&
                      problem.message.find("'" + activity + "'") == std::string::npos;
    if (!aboutOther) {
      return makeError(activity_errors::ActivityUnavailable,
                       fmt::format("activity '{}' cannot run: {}", activity, problem.message));
    }
  }
  return makeError(activity_errors::ActivityUnavailable,
                   fmt::format("activity '{}' is not bound", activity));
}

// How often a real-clock engine looks for work other processes left in the store.
constexpr int64_t kPollIntervalMs = 50;
constexpr size_t kBatchLimit = 256;

} // namespace

Result<bool> Engine::Impl::step() {
  struct Stepping {
    bool &flag;
    explicit Stepping(bool &flag) : flag(flag) { flag = true; }
    ~Stepping() { flag = false; }
  } stepping(claimScheduled);
  bool progressed = false;
  std::vector<std::string> reload(dirty.begin(), dirty.end());
  dirty.clear();
  for (const std::string &runId : reload) {
    std::optional<WorkflowError> error;
    if (load(runId, error) == nullptr && error && error->type == engine_errors::StoreFailure) {
      return *error;
    }
    progressed = true;
  }
  // Looking for runs nobody holds walks every active run when all are held (the common
  // case): 10% of a step's engine-side work in the throughput benchmark when asked on every
  // step (bench/findings.md). While there is other work it waits for the poll interval; a
  // step that finds nothing else to do while no attempt runs asks below, so an engine that
  // goes idle has always looked.
  bool adoptionDue = !nextAdoptionMs || now() >= *nextAdoptionMs;
  // In batch mode the transactions of these stages go to the store's group commit together
  // and are waited for once, before anything acts on them (spec runtime.md section 6).
  deferCommits = true;
  for (auto stage : {&Impl::adoptRuns, &Impl::drainOutcomes, &Impl::drainInboxes,
                     &Impl::fireTimers, &Impl::matchEvents}) {
    if (stage == &Impl::adoptRuns && !adoptionDue) {
      continue;
    }
    Result<bool> result = (this->*stage)();
    if (!result.ok()) {
      deferCommits = false;
      (void)flushCommits(); // settles what was sent; the stage's error is the one to report
      return result;
    }
    progressed = progressed || result.value();
  }
  deferCommits = false;
  if (StoreStatus flushed = flushCommits(); !flushed.ok()) {
    return storeError(flushed.error());
  }
  // The tasks those transactions added are in the store now.
  Result<bool> started = startTasks();
  if (!started.ok()) {
    return started;
  }
  progressed = progressed || started.value();
  if (!progressed && !adoptionDue && !attemptsPending()) {
    Result<bool> adopted = adoptRuns();
    if (!adopted.ok()) {
      return adopted;
    }
    progressed = adopted.value();
  }
  // Keep the leases of the runs being worked on; a run whose lease another engine took while
  // this one stalled is that engine's now, and its machine here is stale.
  int64_t at = now();
  std::vector<std::string> lost;
  for (auto &[runId, run] : runs) {
    if (run->leaseExpiryMs - at < options.leaseMs / 2) {
      int64_t expiry = at + options.leaseMs;
      bool kept = true;
      StoreStatus renewed = store.write([&](Transaction &tx) -> StoreStatus {
        auto done = tx.renewLease(runId, options.owner, expiry);
        if (!done.ok()) {
          return std::move(done).error();
        }
        kept = done.value();
        return {};
      });
      if (renewed.ok() && kept) {
        run->leaseExpiryMs = expiry;
      } else if (renewed.ok()) {
        lost.push_back(runId);
      }
    }
  }
  for (const std::string &runId : lost) {
    evict(runId);
  }
  renewTaskClaims(at);
  return progressed;
}

void Engine::Impl::renewTaskClaims(int64_t at) {
  std::vector<std::pair<std::string, int64_t>> due;
  for (const auto &[task, expiry] : runningTasks) {
    if (expiry - at < options.leaseMs / 2) {
      due.push_back(task);
    }
  }
  if (due.empty()) {
    return;
  }
  int64_t expiry = at + options.leaseMs;
  std::vector<bool> kept(due.size(), false);
  StoreStatus renewed = store.write([&](Transaction &tx) -> StoreStatus {
    for (size_t i = 0; i < due.size(); ++i) {
      auto done = tx.renewTask(due[i].first, due[i].second, options.owner, expiry);
      if (!done.ok()) {
        return std::move(done).error();
      }
      kept[i] = done.value();
    }
    return {};
  });
  if (!renewed.ok()) {
    return; // tried again on the next step
  }
  for (size_t i = 0; i < due.size(); ++i) {
    if (kept[i]) {
      runningTasks[due[i]] = expiry;
    } else {
      // Removed (cancelled, the run ended) or claimed by another engine: nothing to keep.
      runningTasks.erase(due[i]);
    }
  }
}

void Engine::Impl::handleOutcome(AttemptOutcome outcome) {
  {
    std::lock_guard lock(outcomesMutex);
    outcomes.push_back(std::move(outcome));
  }
  clock.wake();
}

Result<bool> Engine::Impl::drainOutcomes() {
  std::deque<AttemptOutcome> ready;
  {
    std::lock_guard lock(outcomesMutex);
    ready.swap(outcomes);
  }
  for (AttemptOutcome &outcome : ready) {
    const std::string &runId = outcome.identity.runId;
    runningTasks.erase({runId, static_cast<int64_t>(outcome.identity.commandId)});
    std::optional<WorkflowError> error;
    LoadedRun *run = load(runId, error);
    if (run == nullptr) {
      if (error && error->type == engine_errors::StoreFailure) {
        return *error;
      }
      continue; // the run ended (terminated, cancelled) while the attempt ran
    }
    vm::CommandId commandId = outcome.identity.commandId;
    auto info = run->commands.find(commandId);
    if (info == run->commands.end()) {
      continue;
    }
    int64_t attempt = outcome.identity.attempt;
    int64_t at = now();
    NewEvent started;
    started.type = EventType::ActivityStarted;
    started.timeMs = outcome.startedAtMs.value_or(outcome.scheduledAtMs);
    started.stepId = info->second.step;
    started.location = info->second.location;
    // No idempotency key: it follows from the run id, step id, command id and attempt
    // (idempotencyKey), and repeating it cost every step some 40 bytes of store (histories
    // of schema version 2 and earlier still carry it).
    started.payload = Value(payload(
        {{"command_id", Value(static_cast<int64_t>(commandId))}, {"attempt", Value(attempt)}}));

    PendingWrite write;
    write.events.push_back(std::move(started));
    auto removeTask = [runId, commandId](Transaction &tx) -> StoreStatus {
      auto removed = tx.removeTask(runId, static_cast<int64_t>(commandId));
      return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
    };
    NewEvent event;
    event.timeMs = at;
    event.stepId = info->second.step;
    event.location = info->second.location;
    if (outcome.status == AttemptStatus::Cancelled) {
      event.type = EventType::ActivityCancelled;
      event.payload = Value(payload(
          {{"command_id", Value(static_cast<int64_t>(commandId))}, {"attempt", Value(attempt)}}));
      write.writes.push_back(removeTask);
      StoreStatus status = deliver(*run, std::move(event), std::nullopt, std::move(write));
      if (!status.ok()) {
        return storeError(status.error());
      }
      continue;
    }
    if (outcome.status == AttemptStatus::Completed) {
      event.type = EventType::ActivityCompleted;
      event.payload = Value(payload({{"command_id", Value(static_cast<int64_t>(commandId))},
                                     {"attempt", Value(attempt)},
                                     {"result", outcome.result}}));
      write.writes.push_back(removeTask);
      vm::Input input;
      input.kind = vm::InputKind::ActivityResolved;
      input.id = commandId;
      input.value = outcome.result;
      StoreStatus status = deliver(*run, std::move(event), input, std::move(write));
      if (!status.ok()) {
        return storeError(status.error());
      }
      continue;
    }
    WorkflowError failure = outcome.error.value_or(makeError("ActivityFailed", "no error given"));
    auto call = vm::decodeActivityCall(info->second.descriptor);
    RetryDecision decision;
    if (call.ok()) {
      decision = decideRetry(call.value(), attempt, failure, at, info->second.issuedMs, runId);
    }
    event.type = outcome.status == AttemptStatus::TimedOut ? EventType::ActivityTimedOut
                                                           : EventType::ActivityFailed;
    Object fields = payload({{"command_id", Value(static_cast<int64_t>(commandId))},
                             {"attempt", Value(attempt)},
                             {"error", failure.toValue()},
                             {"will_retry", Value(decision.retry())}});
    if (decision.retry()) {
      fields.set("next_attempt", Value(decision.nextAttempt));
      fields.set("retry_at_ms", Value(decision.retryAtMs));
    } else {
      fields.set("reason", Value(retryVerdictName(decision.verdict)));
    }
    event.payload = Value(std::move(fields));
    write.writes.push_back(removeTask);
    if (decision.retry()) {
      NewTask task;
      task.runId = runId;
      task.commandId = static_cast<int64_t>(commandId);
      task.stepId = info->second.step;
      task.activity = info->second.name;
      auto scheduled = store.query([&](const StoreReader &reader) {
        return reader.task(runId, static_cast<int64_t>(commandId));
      });
      task.input = scheduled.ok() && scheduled.value() ? scheduled.value()->input : Value();
      task.attempt = decision.nextAttempt;
      task.dueMs = decision.retryAtMs;
      task.idempotencyKey = idempotencyKey(
          AttemptIdentity{runId, commandId, task.stepId, task.activity, task.attempt});
      task.createdMs = at;
      write.writes.push_back([task](Transaction &tx) { return tx.addTask(task); });
      StoreStatus status = deliver(*run, std::move(event), std::nullopt, std::move(write));
      if (!status.ok()) {
        return storeError(status.error());
      }
      continue;
    }
    vm::Input input;
    input.kind = vm::InputKind::ActivityResolved;
    input.id = commandId;
    input.error = failure;
    StoreStatus status = deliver(*run, std::move(event), input, std::move(write));
    if (!status.ok()) {
      return storeError(status.error());
    }
  }
  return !ready.empty();
}

Result<bool> Engine::Impl::drainInboxes() {
  auto pending =
      store.query([&](const StoreReader &reader) { return reader.runsWithInbox(kBatchLimit); });
  if (!pending.ok()) {
    return storeError(pending.error());
  }
  bool progressed = false;
  for (const std::string &runId : pending.value()) {
    auto messages = store.query([&](const StoreReader &reader) { return reader.inbox(runId); });
    if (!messages.ok()) {
      return storeError(messages.error());
    }
    for (const InboxMessage &message : messages.value()) {
      std::optional<WorkflowError> error;
      LoadedRun *run = load(runId, error);
      int64_t messageId = message.id;
      auto consume = [messageId](Transaction &tx) -> StoreStatus {
        auto removed = tx.removeInboxMessage(messageId);
        return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
      };
      if (run == nullptr) {
        if (error && error->type == engine_errors::StoreFailure) {
          return *error;
        }
        // A finished run takes no more messages; one another engine owns is left alone.
        auto record = store.query([&](const StoreReader &reader) { return reader.run(runId); });
        if (record.ok() && record.value() && isFinalStatus(record.value()->status)) {
          (void)store.write(consume);
          progressed = true;
        }
        break;
      }
      NewEvent event;
      event.timeMs = now();
      PendingWrite write;
      write.writes.push_back(consume);
      std::optional<vm::Input> input;
      switch (message.kind) {
      case InboxKind::Signal:
        event.type = EventType::SignalReceived;
        event.payload =
            Value(payload({{"name", Value(message.name)}, {"payload", message.payload}}));
        input = vm::Input{vm::InputKind::SignalReceived, 0, message.name, message.payload, {}, 0};
        break;
      case InboxKind::Cancel:
        event.type = EventType::WorkflowCancelRequested;
        event.payload = Value(Object());
        input = vm::Input{vm::InputKind::CancelRequested, 0, {}, {}, {}, 0};
        break;
      case InboxKind::Terminate: {
        // Stopped at once: no compensation, nothing more runs.
        event.type = EventType::WorkflowTerminated;
        event.payload = Value(payload({{"reason", message.payload}}));
        RunUpdate update;
        update.timeMs = event.timeMs;
        update.status = RunStatus::Terminated;
        update.error =
            makeError("Terminated", message.payload.isString() ? message.payload.asString()
                                                               : std::string("terminated"))
                .toValue();
        write.update = update;
        std::string self = runId;
        write.writes.push_back([self](Transaction &tx) -> StoreStatus {
          auto timers = tx.removeTimersOf(self);
          if (!timers.ok()) {
            return std::move(timers).error();
          }
          auto tasks = tx.tasksOf(self);
          if (!tasks.ok()) {
            return std::move(tasks).error();
          }
          for (const TaskRecord &task : tasks.value()) {
            auto removed = tx.removeTask(self, task.commandId);
            if (!removed.ok()) {
              return std::move(removed).error();
            }
          }
          return {};
        });
        for (const auto &[id, info] : run->commands) {
          if (info.kind == vm::CommandKind::StartChild && !info.childRunId.empty()) {
            std::string child = info.childRunId;
            int64_t at = event.timeMs;
            write.writes.push_back([child, at](Transaction &tx) -> StoreStatus {
              auto added = tx.addInboxMessage(child, InboxKind::Terminate, "parent terminated",
                                              Value("parent terminated"), at);
              return added.ok() ? StoreStatus() : StoreStatus(std::move(added).error());
            });
          }
        }
        write.afterCommit.push_back([this, self] {
          executor.cancelRun(self);
          evict(self);
        });
        break;
      }
      }
      StoreStatus status = deliver(*run, std::move(event), input, std::move(write));
      if (!status.ok()) {
        return storeError(status.error());
      }
      progressed = true;
    }
  }
  return progressed;
}

Result<bool> Engine::Impl::fireTimers() {
  auto due =
      store.query([&](const StoreReader &reader) { return reader.dueTimers(now(), kBatchLimit); });
  if (!due.ok()) {
    return storeError(due.error());
  }
  bool progressed = false;
  for (const TimerRecord &timer : due.value()) {
    if (timer.kind == TimerKind::WorkflowRetry) {
      Result<bool> started = startNextAttempt(timer);
      if (!started.ok()) {
        return started;
      }
      progressed = progressed || started.value();
      continue;
    }
    std::optional<WorkflowError> error;
    LoadedRun *run = load(timer.runId, error);
    if (run == nullptr) {
      if (error && error->type == engine_errors::StoreFailure) {
        return *error;
      }
      continue;
    }
    NewEvent event;
    event.timeMs = std::max(now(), timer.fireMs);
    vm::Input input;
    input.id = static_cast<vm::CommandId>(timer.commandId);
    auto info = run->commands.find(input.id);
    event.stepId = info != run->commands.end() ? info->second.step : std::string();
    event.location = info != run->commands.end() ? info->second.location : std::string();
    event.payload = Value(
        payload({{"command_id", Value(timer.commandId)}, {"fire_at_ms", Value(timer.fireMs)}}));
    switch (timer.kind) {
    case TimerKind::Timer:
      event.type = EventType::TimerFired;
      input.kind = vm::InputKind::TimerFired;
      break;
    case TimerKind::WaitTimeout:
      event.type = EventType::WaitTimedOut;
      input.kind = vm::InputKind::WaitTimedOut;
      break;
    case TimerKind::WorkflowTimeout:
      event.type = EventType::WorkflowTimeoutReached;
      input.kind = vm::InputKind::TimeoutReached;
      event.payload = Value(payload({{"fire_at_ms", Value(timer.fireMs)}}));
      break;
    case TimerKind::WorkflowRetry:
      continue; // handled above: the run it belongs to has ended
    }
    PendingWrite write;
    TimerRecord fired = timer;
    write.writes.push_back([fired](Transaction &tx) -> StoreStatus {
      auto removed = tx.removeTimer(fired.runId, fired.commandId, fired.kind);
      return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
    });
    StoreStatus status = deliver(*run, std::move(event), input, std::move(write));
    if (!status.ok()) {
      return storeError(status.error());
    }
    progressed = true;
  }
  return progressed;
}

Result<bool> Engine::Impl::matchEvents() {
  // Published events are looked for when a wait starts, after an emit, and otherwise at
  // most once per poll interval (other processes publish too).
  if (lastPublishedCheck >= 0 && now() - lastPublishedCheck < kPollIntervalMs) {
    return false;
  }
  lastPublishedCheck = now();
  bool progressed = false;
  std::vector<std::string> waiting;
  for (const auto &[runId, run] : runs) {
    for (const vm::Command &command : run->machine->pendingCommands()) {
      if (command.kind == vm::CommandKind::WaitEvent) {
        waiting.push_back(runId);
        break;
      }
    }
  }
  for (const std::string &runId : waiting) {
    std::optional<WorkflowError> error;
    LoadedRun *run = load(runId, error);
    if (run == nullptr) {
      continue;
    }
    for (const vm::Command &command : run->machine->pendingCommands()) {
      if (command.kind != vm::CommandKind::WaitEvent) {
        continue;
      }
      Object filter = command.value.isObject() ? command.value.asObject() : Object();
      auto found = store.query([&](const StoreReader &reader) {
        return reader.findPublishedEvent(runId, command.name, run->record.createdMs, filter);
      });
      if (!found.ok()) {
        return storeError(found.error());
      }
      if (!found.value()) {
        continue;
      }
      PublishedEvent published = *found.value();
      NewEvent event;
      event.type = EventType::EventReceived;
      event.timeMs = now();
      event.stepId = command.step;
      event.location = locationText(*run->module, command.location);
      event.payload = Value(payload({{"command_id", Value(static_cast<int64_t>(command.id))},
                                     {"event_id", Value(published.id)},
                                     {"type", Value(published.type)},
                                     {"payload", published.payload}}));
      PendingWrite write;
      int64_t at = event.timeMs;
      write.writes.push_back([runId, published, at](Transaction &tx) -> StoreStatus {
        auto consumed = tx.consumePublishedEvent(runId, published.id, at);
        return consumed.ok() ? StoreStatus() : StoreStatus(std::move(consumed).error());
      });
      if (command.timeoutAtMs) {
        int64_t commandId = static_cast<int64_t>(command.id);
        write.writes.push_back([runId, commandId](Transaction &tx) -> StoreStatus {
          auto removed = tx.removeTimer(runId, commandId, TimerKind::WaitTimeout);
          return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
        });
      }
      vm::Input input;
      input.kind = vm::InputKind::EventDelivered;
      input.id = command.id;
      input.value = published.payload;
      StoreStatus status = deliver(*run, std::move(event), input, std::move(write));
      if (!status.ok()) {
        return storeError(status.error());
      }
      progressed = true;
      lastPublishedCheck = -1;
      break; // the machine changed; look again on the next step
    }
  }
  return progressed;
}

Result<bool> Engine::Impl::startTasks() {
  auto available = store.query(
      [&](const StoreReader &reader) { return reader.availableTasks(now(), kBatchLimit); });
  if (!available.ok()) {
    return storeError(available.error());
  }
  // The tasks of runs this engine holds, claimed together in one transaction: a claim is
  // only a lease on the task row, so one commit serves them all.
  std::vector<const TaskRecord *> candidates;
  for (const TaskRecord &task : available.value()) {
    if (runningTasks.contains({task.runId, task.commandId})) {
      continue; // its claim lapsed while it ran here: the renewal below catches up
    }
    std::optional<WorkflowError> error;
    if (load(task.runId, error) == nullptr) {
      continue; // another engine's run, or one that ended
    }
    candidates.push_back(&task);
  }
  if (candidates.empty()) {
    return false;
  }
  int64_t at = now();
  std::vector<bool> claims(candidates.size(), false);
  StoreStatus status = store.write([&](Transaction &tx) -> StoreStatus {
    for (size_t index = 0; index < candidates.size(); ++index) {
      const TaskRecord &task = *candidates[index];
      auto got = tx.claimTask(task.runId, task.commandId, options.owner, at, at + options.leaseMs);
      if (!got.ok()) {
        return std::move(got).error();
      }
      claims[index] = got.value();
    }
    return {};
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  bool progressed = false;
  for (size_t index = 0; index < candidates.size(); ++index) {
    if (!claims[index]) {
      continue;
    }
    const TaskRecord &task = *candidates[index];
    auto loaded = runs.find(task.runId);
    if (loaded == runs.end()) {
      continue; // evicted since (it ended): its claim lapses unused
    }
    progressed = true;
    AttemptIdentity identity{task.runId, static_cast<uint64_t>(task.commandId), task.stepId,
                             task.activity, task.attempt};
    if (!launchAttempt(*loaded->second, identity, task.input, at, at + options.leaseMs)) {
      return makeError("ExecutorStopped", "the activity executor has shut down");
    }
  }
  return progressed;
}

bool Engine::Impl::launchAttempt(LoadedRun &run, const AttemptIdentity &identity,
                                 const Value &input, int64_t at, int64_t claimExpiryMs) {
  const ModuleActivities &resolved =
      activitiesFor(run.record.moduleHash, *run.module, run.record.host);
  std::shared_ptr<Activity> activity = resolved.find(identity.activityName);
  runningTasks[{identity.runId, static_cast<int64_t>(identity.commandId)}] = claimExpiryMs;
  auto info = run.commands.find(static_cast<vm::CommandId>(identity.commandId));
  std::optional<int64_t> timeout;
  if (info != run.commands.end()) {
    auto call = vm::decodeActivityCall(info->second.descriptor);
    if (call.ok()) {
      timeout = attemptTimeoutMs(call.value(), info->second.issuedMs, at);
    }
  }
  AttemptRequest request;
  request.identity = identity;
  request.activity = activity;
  request.input = input;
  request.timeoutMs = timeout.value_or(5 * 60 * 1000);
  if (activity == nullptr || (timeout && *timeout <= 0)) {
    AttemptOutcome outcome;
    outcome.identity = request.identity;
    outcome.status = activity == nullptr ? AttemptStatus::Failed : AttemptStatus::TimedOut;
    outcome.error = activity == nullptr ? unavailable(resolved, identity.activityName)
                                        : makeError(activity_errors::ActivityTimeout,
                                                    "the schedule-to-close timeout has passed");
    outcome.error->retryable = false;
    outcome.scheduledAtMs = at;
    outcome.finishedAtMs = at;
    handleOutcome(std::move(outcome));
    return true;
  }
  return executor.submit(std::move(request),
                         [this](AttemptOutcome outcome) { handleOutcome(std::move(outcome)); });
}

Result<bool> Engine::Impl::adoptRuns() {
  if (Result<bool> released = releaseDeadOwners(); !released.ok()) {
    return released;
  }
  auto unowned = store.query(
      [&](const StoreReader &reader) { return reader.unownedActiveRuns(now(), kBatchLimit); });
  if (!unowned.ok()) {
    return storeError(unowned.error());
  }
  // A full listing may have left runs out: look again on the next step.
  nextAdoptionMs = unowned.value().size() < kBatchLimit
                       ? std::optional<int64_t>(now() + kPollIntervalMs)
                       : std::nullopt;
  bool progressed = false;
  for (const std::string &runId : unowned.value()) {
    if (runs.contains(runId)) {
      continue;
    }
    std::optional<WorkflowError> error;
    if (load(runId, error) != nullptr) {
      progressed = true;
    } else if (error && error->type == engine_errors::StoreFailure) {
      return *error;
    }
  }
  return progressed;
}

Result<bool> Engine::Impl::startNextAttempt(const TimerRecord &timer) {
  auto record = store.query([&](const StoreReader &reader) { return reader.run(timer.runId); });
  if (!record.ok()) {
    return storeError(record.error());
  }
  TimerRecord fired = timer;
  auto removeTimer = [fired](Transaction &tx) -> StoreStatus {
    auto removed = tx.removeTimer(fired.runId, fired.commandId, fired.kind);
    return removed.ok() ? StoreStatus() : StoreStatus(std::move(removed).error());
  };
  if (!record.value()) {
    StoreStatus status = store.write(removeTimer);
    return status.ok() ? Result<bool>(true) : Result<bool>(storeError(status.error()));
  }
  const RunRecord &failed = *record.value();
  auto module = moduleByHash(failed.moduleHash);
  if (!module.ok()) {
    return module.error();
  }
  const vm::Workflow *workflow = module.value()->findWorkflow(failed.workflowId);
  if (workflow == nullptr) {
    return makeError(engine_errors::UnknownWorkflow, "the retried workflow is gone");
  }
  auto index = static_cast<uint32_t>(workflow - module.value()->workflows.data());
  std::string next = newRunId();
  int64_t at = now();
  bool claimed = false;
  StoreStatus status = store.write([&](Transaction &tx) -> StoreStatus {
    // Removing the timer is the claim: of two engines, only one removes it.
    auto removed = tx.removeTimer(fired.runId, fired.commandId, fired.kind);
    if (!removed.ok()) {
      return std::move(removed).error();
    }
    claimed = removed.value();
    if (!claimed) {
      return {};
    }
    auto created = createRun(tx, next, failed.chainId, failed.moduleHash, *module.value(), index,
                             failed.inputs, failed.parentRunId, failed.parentCommandId, failed.host,
                             at, failed.attempt + 1);
    if (!created.ok()) {
      return StoreError{StoreErrorKind::Invalid, created.error().message};
    }
    return {};
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  if (claimed) {
    dirty.insert(next);
  }
  return claimed;
}

bool Engine::Impl::attemptsPending() {
  if (executor.inFlight() > 0) {
    return true;
  }
  std::lock_guard lock(outcomesMutex);
  return !outcomes.empty();
}

bool Engine::Impl::waitForWork(bool stopWhenOnlyExternal) {
  // One read transaction for both times: a step that waits for an attempt pays this wait.
  std::optional<int64_t> next;
  (void)store.read([&](const StoreReader &reader) -> StoreStatus {
    for (auto time : {reader.nextTimerMs(), reader.nextTaskAvailableMs()}) {
      if (time.ok() && time.value() && (!next || *time.value() < *next)) {
        next = *time.value();
      }
    }
    return {};
  });
  bool busy = attemptsPending();
  if (!busy && !next) {
    if (stopWhenOnlyExternal || clock.isVirtual()) {
      return false; // only a signal or an event could move anything now
    }
    clock.waitUntil(now() + kPollIntervalMs);
    return true;
  }
  if (!busy && clock.isVirtual()) {
    clock.markIdle(next);
    return true;
  }
  int64_t until = now() + kPollIntervalMs;
  if (next && *next < until) {
    until = *next;
  }
  clock.waitUntil(until);
  return true;
}

} // namespace kotoba::runtime
