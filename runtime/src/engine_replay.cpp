// Loading a run: rebuild its machine from its latest checkpoint and the events after it
// (rebuildRun, checkpoint.h), matching every command the machine issues against the command
// events written when it first ran (replay.h). A mismatch means the module no longer
// produces the recorded history: NonDeterminism, and the run is BLOCKED without a single
// event appended.
#include "engine_internal.h"

#include "kotoba/runtime/checkpoint.h"
#include "kotoba/vm/module_format.h"

#include <fmt/format.h>

namespace kotoba::runtime {

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
  if (deferredRuns.contains(runId)) {
    // The next input waits for the commit of the last one (batch mode's group commit).
    if (StoreStatus flushed = flushCommits(); !flushed.ok()) {
      error = storeError(flushed.error());
      return nullptr;
    }
  }
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
  // The latest usable checkpoint and the events after it, in one consistent read.
  std::optional<Result<RebuiltRun>> rebuilt;
  StoreStatus read = store.read([&](const StoreReader &reader) -> StoreStatus {
    rebuilt.emplace(rebuildRun(reader, run->record, run->module));
    return {};
  });
  if (!read.ok()) {
    error = storeError(read.error());
    return nullptr;
  }
  if (!rebuilt->ok()) {
    error = rebuilt->error();
    return nullptr;
  }
  Replay &replay = rebuilt->value().replay;
  if (replay.mismatch()) {
    WorkflowError blocked = nonDeterminismError(runId, *replay.mismatch());
    RunUpdate update;
    update.timeMs = now();
    update.status = RunStatus::Blocked;
    update.error = blocked.toValue();
    // BLOCKED changes the run row only: the history stays exactly as it was. No engine works
    // on a BLOCKED run, so the lease taken above goes back at once (or `resume --upgrade`
    // from another process would wait for it to expire).
    StoreStatus written = store.write([&](Transaction &tx) -> StoreStatus {
      StoreStatus updated = tx.updateRun(runId, update);
      if (!updated.ok()) {
        return updated;
      }
      auto released = tx.releaseLease(runId, options.owner);
      return released.ok() ? StoreStatus() : StoreStatus(std::move(released).error());
    });
    if (!written.ok()) {
      error = storeError(written.error());
      return nullptr;
    }
    error = blocked;
    return nullptr;
  }

  run->machine = replay.takeMachine();
  run->commands = std::move(replay.commands());
  run->coveredSeq = replay.lastSeq();
  run->checkpointSeq = rebuilt->value().checkpointSeq.value_or(0);
  std::deque<vm::Command> expected = replay.unrecorded();

  LoadedRun *loaded = run.get();
  runs[runId] = std::move(run);
  lastPublishedCheck = -1; // a run just loaded may be waiting for an event already published
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
