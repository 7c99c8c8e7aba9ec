// Checkpoints in the engine: deciding, for each commit of a run's events, whether the machine
// is due for a checkpoint, and writing it in the same transaction as the events it covers
// (so a checkpoint never covers an event that did not commit). A run is due after
// EngineOptions::checkpointEvery events since its last checkpoint, and whenever the commit
// leaves it waiting only for the outside world (timers, signals, events), the moment a
// long-lived run is most likely to be unloaded and resumed later. Loading restores the
// latest checkpoint (engine_replay.cpp, through rebuildRun in checkpoint.h).
#include "engine_internal.h"

#include "kotoba/runtime/checkpoint.h"

#include <algorithm>

namespace kotoba::runtime {

// One commit's checkpoint: decided before the transaction, checked and written inside it
// (possibly more than once: the store may run a transaction again when the database stays
// busy, so the fields below are assigned, never accumulated), and noted on the run after
// the commit.
struct CheckpointPlan {
  std::string runId;
  // The seqs the commit's events will get if the machine has seen every event before them.
  int64_t firstSeq = 0;
  int64_t lastSeq = 0;
  // The state to store; empty when no checkpoint is due or the run's seqs are not known.
  std::optional<std::string> state;
  // Set inside the transaction.
  bool coherent = false;
  bool written = false;
};

namespace {

// Waiting only for the outside world: no activity, child or predicate answer pending.
bool waitsOnTheOutside(const vm::Machine &machine) {
  std::vector<vm::Command> pending = machine.pendingCommands();
  if (pending.empty()) {
    return false;
  }
  return std::all_of(pending.begin(), pending.end(), [](const vm::Command &command) {
    switch (command.kind) {
    case vm::CommandKind::StartTimer:
    case vm::CommandKind::WaitSignal:
    case vm::CommandKind::WaitEvent:
      return true;
    case vm::CommandKind::ScheduleActivity:
    case vm::CommandKind::StartChild:
    case vm::CommandKind::AskPredicate:
    case vm::CommandKind::Cancel:
    case vm::CommandKind::RecordDecision:
    case vm::CommandKind::RecordCompensation:
    case vm::CommandKind::Complete:
    case vm::CommandKind::Fail:
    case vm::CommandKind::ContinueAsNew:
    case vm::CommandKind::Cancelled:
    case vm::CommandKind::TimedOut:
      return false;
    }
    return false;
  });
}

} // namespace

std::shared_ptr<CheckpointPlan> Engine::Impl::planCheckpoint(LoadedRun &run, PendingWrite &write) {
  auto plan = std::make_shared<CheckpointPlan>();
  plan->runId = run.record.id;
  if (write.events.empty() || run.coveredSeq < 0) {
    return plan; // nothing to cover, or the machine missed events (see below)
  }
  plan->firstSeq = run.coveredSeq + 1;
  plan->lastSeq = run.coveredSeq + static_cast<int64_t>(write.events.size());
  bool ending = vm::isFinal(run.machine->status()) ||
                (write.update && write.update->status && isFinalStatus(*write.update->status));
  // An ended run is never loaded again: a checkpoint would only cost a write.
  if (options.checkpointEvery > 0 && !ending) {
    bool dueByCount =
        plan->lastSeq - run.checkpointSeq >= static_cast<int64_t>(options.checkpointEvery);
    if (dueByCount || waitsOnTheOutside(*run.machine)) {
      plan->state = encodeCheckpoint(run.record.moduleHash, *run.machine, run.commands);
    }
  }
  write.afterCommit.push_back([this, plan] {
    // Looked up again: an earlier action of the same commit may have evicted the run.
    auto found = runs.find(plan->runId);
    if (found == runs.end()) {
      return;
    }
    LoadedRun &committed = *found->second;
    // Events appended behind the machine's back (a child's report written by another
    // process's engine) leave its state short of the history: no checkpoint may be taken
    // from it until the run is loaded again.
    committed.coveredSeq = plan->coherent ? plan->lastSeq : -1;
    if (plan->written) {
      committed.checkpointSeq = plan->lastSeq;
    }
  });
  return plan;
}

StoreStatus Engine::Impl::writeCheckpoint(Transaction &tx, CheckpointPlan &plan,
                                          const AppendedEvents &appended) {
  plan.coherent =
      plan.firstSeq != 0 && appended.firstSeq == plan.firstSeq && appended.lastSeq == plan.lastSeq;
  plan.written = false;
  if (!plan.coherent || !plan.state) {
    return {};
  }
  auto saved = tx.saveCheckpoint(plan.runId, plan.lastSeq, *plan.state, now());
  if (!saved.ok()) {
    return std::move(saved).error();
  }
  auto pruned = tx.pruneCheckpoints(plan.runId, std::max<size_t>(1, options.checkpointsKept));
  if (!pruned.ok()) {
    return std::move(pruned).error();
  }
  plan.written = true;
  return {};
}

} // namespace kotoba::runtime
