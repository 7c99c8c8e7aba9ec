// Fibers and structure: starting and finishing fibers, join groups (parallel completion
// rules, foreach concurrency, saga compensations), raising errors through try and saga
// frames, cancelling branches that lost, and ending the run.
#include "machine_state.h"

#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <cassert>
#include <utility>

namespace kotoba::vm {

namespace {

bool catchable(const WorkflowError &error) {
  // Cancellation and the workflow timeout end the run: a try cannot swallow them, only a
  // saga compensates on the way out.
  return error.type != kCancelledError && error.type != kWorkflowTimedOutError;
}

// Whether a try frame is the region around a `compensate_on: "attempted"` step, whose
// handler registers the compensation and re-raises (descriptors.h).
bool registersAttempted(const Module &module, const Frame &frame) {
  if (frame.kind != Frame::Kind::Try) {
    return false;
  }
  Decoded<std::vector<std::string>> types =
      decodeErrorTypes(module.constant(ConstIndex{frame.descriptor}));
  assert(types.ok() && "the verifier checks try descriptors");
  for (const std::string &type : types.value()) {
    if (type == kAttemptedRegionMarker) {
      return true;
    }
  }
  return false;
}

bool typeMatches(const std::vector<std::string> &types, const std::string &type) {
  for (const std::string &candidate : types) {
    if (candidate == "*" || candidate == type) {
      return true;
    }
  }
  return false;
}

// Whether a branch being cancelled has something its own sagas must undo: compensations
// registered with one of its open sagas, or an attempted step in flight whose handler
// registers one with such a saga. Only then does the branch unwind instead of vanishing, so
// histories without such a cancellation replay with the commands they always had.
bool hasCompensationsToRun(const Module &module, const Fiber &fiber) {
  if (fiber.compensating) {
    return false; // compensation code itself runs to its end (or is dropped) as before
  }
  bool openSaga = false;
  for (const Frame &frame : fiber.frames) {
    if (frame.kind == Frame::Kind::Saga && !frame.failed) {
      openSaga = true;
      if (!frame.compensations.empty()) {
        return true;
      }
    }
  }
  return openSaga && fiber.state == FiberState::WaitingCommand && !fiber.frames.empty() &&
         registersAttempted(module, fiber.frames.back());
}

// Members of a decided join that were cancelled but still unwind through their sagas'
// compensations: the join delivers its outcome once none is left.
size_t unwindingMembers(const Join &join, const std::map<FiberId, Fiber> &fibers) {
  size_t count = 0;
  for (const Slot &slot : join.slots) {
    count += slot.state == SlotState::Cancelled && fibers.count(slot.fiber) != 0;
  }
  return count;
}

Value settled(const Slot &slot) {
  Object object;
  if (slot.state == SlotState::Completed) {
    object.set("status", Value("completed"));
    object.set("value", slot.value);
  } else {
    object.set("status", Value("failed"));
    object.set("error", slot.error ? slot.error->toValue() : Value());
  }
  return Value(std::move(object));
}

} // namespace

Fiber &MachineState::spawn(uint32_t block, const Fiber &parent, uint32_t scope) {
  Fiber fiber;
  fiber.id = nextFiber++;
  fiber.block = block;
  fiber.registers = parent.registers;
  fiber.scope = scope;
  fiber.spawner = parent.id;
  fiber.compensating = parent.compensating;
  ready.insert(fiber.id);
  return fibers.emplace(fiber.id, std::move(fiber)).first->second;
}

void MachineState::run() {
  // Lowest fiber id first, until every fiber waits: the order never depends on timing.
  while (!ready.empty() && !isFinal(status)) {
    FiberId id = *ready.begin();
    Fiber &fiber = fibers.at(id);
    assert(fiber.state == FiberState::Ready && "only ready fibers are in the ready set");
    execute(fiber);
  }
}

void MachineState::raise(Fiber &fiber, WorkflowError error) {
  if (unwindingCancelled == fiber.id) {
    // The re-raise that ends an attempted step's handler in a cancelled branch: the branch
    // is gone, so the error goes nowhere (registerAttemptedOnCancel).
    fiber.state = FiberState::Cancelled;
    ready.erase(fiber.id);
    return;
  }
  for (;;) {
    if (fiber.handlerDepth && fiber.frames.size() <= *fiber.handlerDepth &&
        !leaveSagaHandler(fiber, error)) {
      return; // the cancelled branch ended at its saga's re-raise
    }
    if (fiber.frames.empty()) {
      break;
    }
    Frame &frame = fiber.frames.back();
    if (frame.kind == Frame::Kind::Try) {
      Frame popped = std::move(frame);
      fiber.frames.pop_back();
      if (!catchable(error)) {
        // Only an attempted step's region sees a cancellation or the workflow timeout: its
        // handler registers the compensation and raises the same error on.
        if (registersAttempted(*module, popped)) {
          fiber.registers[popped.errorRegister] = error.toValue();
          fiber.pc = popped.handler;
          fiber.state = FiberState::Ready;
          ready.insert(fiber.id);
          return;
        }
        continue;
      }
      Decoded<std::vector<std::string>> types =
          decodeErrorTypes(module->constant(ConstIndex{popped.descriptor}));
      assert(types.ok() && "the verifier checks try descriptors");
      if (typeMatches(types.value(), error.type)) {
        fiber.registers[popped.errorRegister] = error.toValue();
        fiber.pc = popped.handler;
        fiber.state = FiberState::Ready;
        ready.insert(fiber.id);
        return;
      }
      continue;
    }
    if (!frame.failed) {
      // The saga's main flow failed: its handler runs the compensations (COMPRUN).
      frame.failed = true;
      fiber.registers[frame.errorRegister] = error.toValue();
      fiber.pc = frame.handler;
      fiber.state = FiberState::Ready;
      ready.insert(fiber.id);
      return;
    }
    // A failure inside a saga's own compensation code: the saga is done with.
    fiber.frames.pop_back();
  }
  fiber.state = FiberState::Failed;
  ready.erase(fiber.id);
  fiber.registers.clear();
  fiber.registers.push_back(error.toValue());
  finishFiber(fiber);
}

bool MachineState::leaveSagaHandler(Fiber &fiber, WorkflowError &error) {
  fiber.handlerDepth.reset();
  if (!std::exchange(fiber.cancelAfterHandler, false)) {
    return true;
  }
  if (ending && !runsCompensationCode(fiber, /*inclusive=*/false)) {
    // The run was cancelled (or timed out) while the handler ran: the fiber now fails with
    // that, as every waiting fiber did at the request, so no `try` resumes its main work.
    if (catchable(error)) {
      error = *ending;
    }
    return true;
  }
  // A branch cancelled by its parallel or foreach while compensating: it unwinds its outer
  // sagas (innermost first) as a branch cancelled at a wait does, or ends here.
  if (hasCompensationsToRun(*module, fiber)) {
    error = located(makeError(kCancelledError, "the branch was cancelled"), fiber);
    return true;
  }
  (void)endCancellation(fiber, /*unwinds=*/false);
  finishFiber(fiber); // its slot is Cancelled already: the join counts it ended
  return false;
}

bool MachineState::inLineage(const Fiber &fiber, bool (*test)(const Fiber &)) const {
  for (const Fiber *at = &fiber;;) {
    if (test(*at)) {
      return true;
    }
    auto spawner = at->spawner ? fibers.find(*at->spawner) : fibers.end();
    if (spawner == fibers.end()) {
      return false;
    }
    at = &spawner->second;
  }
}

bool MachineState::runsCompensationCode(const Fiber &fiber, bool inclusive) const {
  if (fiber.compensating || (inclusive && fiber.inSagaHandler())) {
    return true;
  }
  auto spawner = fiber.spawner ? fibers.find(*fiber.spawner) : fibers.end();
  return spawner != fibers.end() && inLineage(spawner->second, [](const Fiber &at) {
           return at.compensating || at.inSagaHandler();
         });
}

bool MachineState::endsWithRun(const Join &join) const {
  // Compensation code that was running when the run's ending arrived (parallels and foreach
  // loops within it included) runs to its end. Compensation code started after it keeps
  // the rule it always had, so histories without a cancel during compensation replay as
  // recorded.
  return ending && join.kind != JoinKind::Compensation &&
         !inLineage(fibers.at(join.owner),
                    [](const Fiber &at) { return at.cancelAfterHandler && at.inSagaHandler(); });
}

void MachineState::finishFiber(Fiber &fiber) {
  ready.erase(fiber.id);
  if (!fiber.memberOf) {
    // Fiber 0: the run ends with it.
    if (fiber.state == FiberState::Failed) {
      WorkflowError error = workflowErrorFromValue(fiber.registers.front());
      RunStatus final = RunStatus::Failed;
      if (ending && error.type == ending->type) {
        final = error.type == kCancelledError ? RunStatus::Cancelled : RunStatus::TimedOut;
      }
      Command command;
      command.kind = final == RunStatus::Failed      ? CommandKind::Fail
                     : final == RunStatus::Cancelled ? CommandKind::Cancelled
                                                     : CommandKind::TimedOut;
      command.error = std::move(error);
      endRun(final, std::move(command));
    }
    return;
  }
  uint32_t joinId = *fiber.memberOf;
  auto found = joins.find(joinId);
  if (found == joins.end()) {
    return; // the join gave up on this member already
  }
  if (found->second.finished) {
    // The join's owner is being cancelled and waits for its cancelled members to finish
    // compensating: this one has.
    onAbandonedMemberFinished(found->second, joinId, fiber);
    return;
  }
  onMemberFinished(found->second, joinId, fiber);
}

void MachineState::onMemberFinished(Join &join, uint32_t joinId, Fiber &member) {
  Slot &slot = join.slots[member.slot];
  if (slot.state == SlotState::Cancelled) {
    // A cancelled branch that has finished compensating: the join was decided without it.
  } else if (member.state == FiberState::Done) {
    slot.state = SlotState::Completed;
    slot.value = member.registers.empty() ? Value() : member.registers.front();
  } else {
    slot.state = SlotState::Failed;
    slot.error = workflowErrorFromValue(member.registers.front());
  }
  if (join.kind == JoinKind::Foreach && member.scope != 0) {
    scopes.erase(member.scope); // an iteration's vars and results die with it
  }
  if (join.kind == JoinKind::Compensation) {
    const CompensationRecord &record = join.records[member.slot];
    Command note;
    note.kind = CommandKind::RecordCompensation;
    note.fiber = member.id;
    note.step = record.step;
    note.location = record.location;
    note.detail = slot.state == SlotState::Completed ? "completed" : "failed";
    note.error = slot.error;
    emit(std::move(note));
    if (slot.state == SlotState::Failed && join.stopOnFailure) {
      for (Slot &other : join.slots) {
        if (other.state == SlotState::Pending) {
          other.state = SlotState::Skipped;
        }
      }
    }
    startNextCompensation(join, joinId);
  }
  // Finished fibers keep nothing: their value now lives in the slot.
  fibers.erase(member.id);
  resolveJoin(join, joinId);
}

void MachineState::resolveJoin(Join &join, uint32_t joinId) {
  size_t completed = 0;
  size_t failed = 0;
  size_t running = 0;
  size_t pendingSlots = 0;
  const WorkflowError *firstFailure = nullptr;
  for (const Slot &slot : join.slots) {
    completed += slot.state == SlotState::Completed;
    running += slot.state == SlotState::Running;
    pendingSlots += slot.state == SlotState::Pending;
    if (slot.state == SlotState::Failed) {
      ++failed;
      firstFailure = firstFailure != nullptr ? firstFailure : &*slot.error;
    }
  }
  size_t total = join.slots.size();

  std::optional<Value> value;
  std::optional<WorkflowError> error;
  if (endsWithRun(join)) {
    // The run is ending: every member unwinds (and compensates) by itself; the join fails
    // once none is left running.
    if (running == 0) {
      error = *ending;
    }
  } else if (join.kind == JoinKind::Compensation) {
    if (running == 0 && pendingSlots == 0) {
      Array errors;
      for (const Slot &slot : join.slots) {
        if (slot.state == SlotState::Failed) {
          errors.push_back(slot.error->toValue());
        }
      }
      Object outcome;
      outcome.set("compensation", Value(failed == 0 && completed == total ? "completed"
                                        : completed == 0 && total > 0     ? "failed"
                                                                          : "partial"));
      outcome.set("compensation_errors", Value(std::move(errors)));
      value = Value(std::move(outcome));
    }
  } else {
    bool settledMode =
        (join.kind == JoinKind::Parallel && join.parallelMode == ParallelMode::AllSettled) ||
        (join.kind == JoinKind::Foreach && join.foreachMode == ForeachMode::AllSettled);
    ParallelMode mode = join.kind == JoinKind::Foreach ? ParallelMode::All : join.parallelMode;
    if (settledMode) {
      if (running == 0 && pendingSlots == 0) {
        Array array;
        for (const Slot &slot : join.slots) {
          array.push_back(settled(slot));
        }
        value = Value(std::move(array));
      }
    } else if (mode == ParallelMode::All) {
      if (failed > 0) {
        error = *firstFailure;
      } else if (completed == total) {
        Array array;
        for (const Slot &slot : join.slots) {
          array.push_back(slot.value);
        }
        value = Value(std::move(array));
      }
    } else if (mode == ParallelMode::Any) {
      if (completed > 0) {
        for (const Slot &slot : join.slots) {
          if (slot.state == SlotState::Completed) {
            value = slot.value; // the first to succeed: only one can have finished so far
            break;
          }
        }
      } else if (failed == total) {
        Array details;
        for (const Slot &slot : join.slots) {
          details.push_back(slot.error->toValue());
        }
        error = makeError(kAllBranchesFailedError, "every branch of the parallel failed",
                          Value(std::move(details)));
      }
    } else { // AtLeast
      if (completed >= join.needed) {
        Array array;
        for (const Slot &slot : join.slots) {
          array.push_back(slot.state == SlotState::Completed ? slot.value : Value());
        }
        value = Value(std::move(array));
      } else if (total - failed < join.needed) {
        Array details;
        for (const Slot &slot : join.slots) {
          if (slot.state == SlotState::Failed) {
            details.push_back(slot.error->toValue());
          }
        }
        error = makeError(kNotEnoughBranchesError,
                          fmt::format("only {} of the {} branches needed can still succeed",
                                      total - failed, join.needed),
                          Value(std::move(details)));
      }
    }
  }
  if (!value && !error) {
    if (join.kind == JoinKind::Foreach && !endsWithRun(join)) {
      startForeachIterations(join, joinId);
    }
    return;
  }

  join.finished = true;
  cancelRunningSlots(join, /*unwindSagas=*/true);
  if (unwindingMembers(join, fibers) > 0) {
    // Cancelled branches compensate first (docs/language-decisions.md); the last one to end
    // calls resolveJoin again, which decides the same outcome from the same slots.
    join.finished = false;
    return;
  }
  FiberId ownerId = join.owner;
  uint32_t target = join.targetRegister;
  if (join.kind == JoinKind::Compensation) {
    lowerCompensations();
  }
  joins.erase(joinId);
  Fiber &resumed = fibers.at(ownerId);
  if (value) {
    resumed.registers[target] = std::move(*value);
    resumed.state = FiberState::Ready;
    resumed.join = 0;
    ready.insert(ownerId);
  } else {
    resumed.join = 0;
    raise(resumed, std::move(*error));
  }
}

void MachineState::cancelRunningSlots(Join &join, bool unwindSagas) {
  for (Slot &slot : join.slots) {
    bool unwinding = slot.state == SlotState::Cancelled && fibers.count(slot.fiber) != 0;
    if (slot.state == SlotState::Running || (unwinding && !unwindSagas)) {
      // A join given up on as a whole (its owner is cancelled) drops even the members that
      // were unwinding: nothing would wait for them.
      auto found = fibers.find(slot.fiber);
      if (found != fibers.end() && !cancelFiber(found->second, unwindSagas && !unwinding)) {
        fibers.erase(slot.fiber);
      }
      slot.state = SlotState::Cancelled;
    } else if (slot.state == SlotState::Pending) {
      slot.state = SlotState::Skipped;
    }
  }
}

bool MachineState::cancelFiber(Fiber &fiber, bool unwindSagas) {
  if (unwindSagas && fiber.inSagaHandler()) {
    // Already compensating: a cancel changes nothing (language.md). The handler runs its
    // compensations and `compensation` block to their end, nothing it waits on is cancelled,
    // and its re-raise ends the branch (leaveSagaHandler); the join waits for it meanwhile.
    fiber.cancelAfterHandler = true;
    return true;
  }
  ready.erase(fiber.id);
  bool unwinds = unwindSagas && hasCompensationsToRun(*module, fiber);
  if (fiber.state == FiberState::WaitingCommand) {
    pending.erase(fiber.command);
    Command cancel;
    cancel.kind = CommandKind::Cancel;
    cancel.fiber = fiber.id;
    cancel.target = fiber.command;
    emit(std::move(cancel));
    if (!unwinds) {
      registerAttemptedOnCancel(fiber);
    }
    fiber.command = 0;
  } else if (fiber.state == FiberState::WaitingJoin) {
    auto found = joins.find(fiber.join);
    if (found != joins.end()) {
      found->second.finished = true;
      // Innermost first: the branches of a parallel (or the iterations of a foreach) the
      // fiber waits on unwind their own sagas before the fiber's cancellation goes on.
      // Compensation code is not unwound into: it runs to its end or is dropped.
      bool nested = unwindSagas && !fiber.compensating;
      cancelRunningSlots(found->second, nested);
      if (nested && unwindingMembers(found->second, fibers) > 0) {
        // The join stays, finished, until its last unwinding member has ended
        // (onAbandonedMemberFinished); the fiber keeps waiting on it meanwhile.
        return true;
      }
      dropJoin(found->first);
    }
    fiber.join = 0;
  }
  return endCancellation(fiber, unwinds);
}

bool MachineState::endCancellation(Fiber &fiber, bool unwinds) {
  if (unwinds) {
    // The branch fails with Cancelled where it waits: try regions let it pass (only an
    // attempted step's region registers on the way), and its sagas compensate newest first
    // as for any failing main flow (language.md: "including by cancellation").
    fiber.state = FiberState::Ready;
    raise(fiber, located(makeError(kCancelledError, "the branch was cancelled"), fiber));
    assert(fiber.state == FiberState::Ready &&
           "a branch with an open saga stops at the saga's handler when cancelled");
    return true;
  }
  if (fiber.scope != 0 && fiber.memberOf) {
    auto join = joins.find(*fiber.memberOf);
    if (join != joins.end() && join->second.kind == JoinKind::Foreach) {
      scopes.erase(fiber.scope);
    }
  }
  fiber.state = FiberState::Cancelled;
  return false;
}

void MachineState::onAbandonedMemberFinished(Join &join, uint32_t joinId, Fiber &member) {
  if (join.kind == JoinKind::Foreach && member.scope != 0) {
    scopes.erase(member.scope);
  }
  fibers.erase(member.id);
  if (unwindingMembers(join, fibers) > 0) {
    return;
  }
  // The last nested branch has compensated: the owner's own cancellation goes on, its
  // sagas compensating next (innermost first) or, with nothing to undo, it ends at once.
  FiberId ownerId = join.owner;
  dropJoin(joinId);
  Fiber &owner = fibers.at(ownerId);
  owner.join = 0;
  if (!endCancellation(owner, hasCompensationsToRun(*module, owner))) {
    finishFiber(owner); // its slot is Cancelled already: the enclosing join counts it ended
  }
}

void MachineState::dropJoin(uint32_t joinId) {
  auto found = joins.find(joinId);
  if (found == joins.end()) {
    return;
  }
  if (found->second.kind == JoinKind::Compensation) {
    // Compensations stopped by a cancel no longer keep the run COMPENSATING.
    lowerCompensations();
  }
  joins.erase(found);
}

void MachineState::lowerCompensations() {
  assert(activeCompensations > 0 && "a compensation join ends only once");
  if (--activeCompensations == 0 && !isFinal(status)) {
    status = RunStatus::Running;
  }
}

void MachineState::registerAttemptedOnCancel(Fiber &fiber) {
  // A fiber waiting on an attempted step has the step's region as its innermost frame (the
  // region holds the call alone). Its handler evaluates the compensation's input, registers
  // it with the innermost saga and re-raises; it waits for nothing, so it runs to its end
  // here, and raise() ends the fiber at the re-raise instead of unwinding further.
  if (fiber.frames.empty() || !registersAttempted(*module, fiber.frames.back())) {
    return;
  }
  Frame region = std::move(fiber.frames.back());
  fiber.frames.pop_back();
  fiber.registers[region.errorRegister] =
      makeError(kCancelledError, "the branch was cancelled").toValue();
  fiber.pc = region.handler;
  fiber.state = FiberState::Ready;
  unwindingCancelled = fiber.id;
  execute(fiber);
  unwindingCancelled.reset();
  ready.erase(fiber.id);
  assert(fiber.state == FiberState::Cancelled &&
         "an attempted step's handler ends by re-raising without waiting");
}

void MachineState::startForeachIterations(Join &join, uint32_t joinId) {
  size_t running = 0;
  for (const Slot &slot : join.slots) {
    running += slot.state == SlotState::Running;
  }
  const Array &items = join.items.asArray();
  for (size_t i = 0; i < join.slots.size() && running < join.maxConcurrency; ++i) {
    Slot &slot = join.slots[i];
    if (slot.state != SlotState::Pending) {
      continue;
    }
    Fiber &owner = fibers.at(join.owner);
    uint32_t scopeId = nextScope++;
    Scope scope;
    scope.parent = owner.scope;
    scopes.emplace(scopeId, std::move(scope));
    Fiber &iteration = spawn(join.block, owner, scopeId);
    iteration.memberOf = joinId;
    iteration.slot = static_cast<uint32_t>(i);
    iteration.registers[join.itemRegister] = items[i];
    iteration.registers[join.indexRegister] = Value(static_cast<int64_t>(i));
    slot.state = SlotState::Running;
    slot.fiber = iteration.id;
    ++running;
  }
}

void MachineState::startNextCompensation(Join &join, uint32_t joinId) {
  size_t running = 0;
  for (const Slot &slot : join.slots) {
    running += slot.state == SlotState::Running;
  }
  for (size_t i = 0; i < join.slots.size(); ++i) {
    if (!join.parallelCompensation && running > 0) {
      return; // reverse order: one at a time
    }
    Slot &slot = join.slots[i];
    if (slot.state != SlotState::Pending) {
      continue;
    }
    const CompensationRecord &record = join.records[i];
    Fiber &owner = fibers.at(join.owner);
    Fiber &compensation = spawn(record.block, owner, record.scope);
    compensation.registers = record.registers;
    compensation.compensating = true;
    compensation.memberOf = joinId;
    compensation.slot = static_cast<uint32_t>(i);
    slot.state = SlotState::Running;
    slot.fiber = compensation.id;
    ++running;
    Command note;
    note.kind = CommandKind::RecordCompensation;
    note.fiber = compensation.id;
    note.step = record.step;
    note.location = record.location;
    note.detail = "started";
    emit(std::move(note));
  }
}

Frame *MachineState::innermostSaga(Fiber &fiber, Fiber **owner) {
  for (Fiber *at = &fiber;;) {
    for (auto frame = at->frames.rbegin(); frame != at->frames.rend(); ++frame) {
      if (frame->kind == Frame::Kind::Saga && !frame->failed) {
        *owner = at;
        return &*frame;
      }
    }
    if (!at->spawner) {
      return nullptr;
    }
    auto parent = fibers.find(*at->spawner);
    if (parent == fibers.end()) {
      return nullptr;
    }
    at = &parent->second;
  }
}

void MachineState::registerCompensation(Fiber &fiber, CompensationRecord record) {
  Fiber *owner = nullptr;
  Frame *saga = innermostSaga(fiber, &owner);
  if (saga == nullptr) {
    return; // no saga to undo it: the compiler allows compensate only inside one
  }
  record.scope = owner->scope;
  saga->compensations.push_back(std::move(record));
}

void MachineState::endRun(RunStatus final, Command command) {
  status = final;
  emit(std::move(command));
  // Nothing else may run: whatever is still waiting is abandoned with the run.
  ready.clear();
}

} // namespace kotoba::vm
