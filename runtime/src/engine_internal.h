// The engine's internal state, shared by the engine_*.cpp files: the runs it has loaded
// (each a machine plus what the engine knows about the machine's commands), the modules and
// activities it resolved, and the queue of activity outcomes the executor hands back.
#pragma once

#include "kotoba/runtime/engine.h"
#include "kotoba/runtime/replay.h"
#include "kotoba/vm/descriptors.h"

#include <atomic>
#include <deque>
#include <future>
#include <set>

namespace kotoba::runtime {

// CommandInfo, what the engine remembers about one command of a loaded run, is in replay.h:
// replay rebuilds it and checkpoints store it.

struct LoadedRun {
  RunRecord record; // status: as the run row has it after this engine's last commit
  std::shared_ptr<const vm::Module> module;
  uint32_t workflowIndex = 0;
  std::unique_ptr<vm::Machine> machine;
  std::map<vm::CommandId, CommandInfo> commands;
  int64_t leaseExpiryMs = 0;
  // The seq of the last event the machine has seen (-1: unknown, no checkpoints until the
  // run is loaded again), and of its latest checkpoint (engine_checkpoint.cpp).
  int64_t coveredSeq = 0;
  int64_t checkpointSeq = 0;
};

// One store transaction being assembled: a run's new events and the other writes that must
// commit with them, plus what to do once they have.
struct PendingWrite {
  std::vector<NewEvent> events;
  std::vector<std::function<StoreStatus(Transaction &)>> writes;
  std::vector<std::function<void()>> afterCommit;
  std::optional<RunUpdate> update;
  // Attempts this engine scheduled and claimed in the transaction (their task rows carry its
  // claim): started once it has committed, without a claim transaction of their own.
  std::vector<NewTask> claimedTasks;
};

struct CheckpointPlan;

// A run's transaction handed to batch mode's group commit and not yet known to have committed
// (engine_commands.cpp): what its commit callback reads and what the engine does after it.
struct CommitState {
  std::string runId;
  PendingWrite write;
  std::shared_ptr<CheckpointPlan> checkpoint;
  int64_t expiry = 0;
  bool extendLease = false; // renew the lease to `expiry`, or only check that it is held
  bool leaseLost = false;
};

struct DeferredCommit {
  std::shared_ptr<CommitState> state;
  std::future<StoreStatus> committed;
};

struct Engine::Impl {
  Impl(Store &store, ActivityRegistry &activities, Clock &clock, EngineOptions options);

  // ---- engine_replay.cpp ----
  // The loaded run, loading (replaying) it when needed. nullptr with `error` unset means the
  // run has ended or another engine holds it.
  LoadedRun *load(const std::string &runId, std::optional<WorkflowError> &error);
  Result<std::shared_ptr<const vm::Module>> moduleByHash(const std::string &hash);
  void evict(const std::string &runId) { runs.erase(runId); }

  // ---- engine_commands.cpp ----
  // Feeds one input to the machine and records it (its event first) with the commands the
  // machine answers, in one transaction. `input` empty: only record the event.
  [[nodiscard]] StoreStatus deliver(LoadedRun &run, NewEvent event, std::optional<vm::Input> input,
                                    PendingWrite write = {});
  // Turns commands into events and writes (appended to `write`), answering host predicates
  // and payload-limit failures at once.
  void translate(LoadedRun &run, std::vector<vm::Command> commands, PendingWrite &write);
  [[nodiscard]] StoreStatus commit(LoadedRun &run, PendingWrite write);
  // Waits for the commits deferred while deferCommits was set, in the order they were made,
  // and only then acts on each (its afterCommit actions, the run's lease, its eviction).
  // The first failure is returned once all have been settled.
  [[nodiscard]] StoreStatus flushCommits();
  // What follows a commit whose outcome is known: the actions after it, or the eviction of a
  // run whose machine ran ahead of the store.
  [[nodiscard]] StoreStatus finishCommit(CommitState &state, StoreStatus status);
  [[nodiscard]] Result<std::string> createRun(Transaction &tx, const std::string &runId,
                                              const std::string &chainId,
                                              const std::string &moduleHash,
                                              const vm::Module &module, uint32_t workflowIndex,
                                              const Value &inputs,
                                              std::optional<std::string> parentRunId,
                                              std::optional<int64_t> parentCommandId,
                                              const Value &host, int64_t nowMs,
                                              int64_t attempt = 1);
  // The activities of runs of `module` whose runs.host is `host` (null: none): resolved
  // afresh, or once and kept in moduleActivities under activitiesKey.
  [[nodiscard]] ModuleActivities resolveActivities(const vm::Module &module,
                                                   const Value &host) const;
  [[nodiscard]] static std::string activitiesKey(const std::string &moduleHash,
                                                 const Value &host);
  ModuleActivities &activitiesFor(const std::string &moduleHash, const vm::Module &module,
                                  const Value &host);

  // ---- engine_checkpoint.cpp ----
  // Decides, before a commit of the run's events, whether it writes a checkpoint.
  [[nodiscard]] std::shared_ptr<CheckpointPlan> planCheckpoint(LoadedRun &run,
                                                               PendingWrite &write);
  // Inside the commit's transaction, after the events were appended.
  [[nodiscard]] StoreStatus writeCheckpoint(Transaction &tx, CheckpointPlan &plan,
                                            const AppendedEvents &appended);

  // ---- engine_loop.cpp ----
  Result<bool> step();
  Result<bool> drainOutcomes();
  Result<bool> drainInboxes();
  Result<bool> fireTimers();
  Result<bool> startTasks();
  // Hands an attempt whose task this engine has claimed until claimExpiryMs to the executor
  // (or reports at once why it cannot run). False when the executor has shut down.
  [[nodiscard]] bool launchAttempt(LoadedRun &run, const AttemptIdentity &identity,
                                   const Value &input, int64_t at, int64_t claimExpiryMs);
  Result<bool> matchEvents();
  // Loads runs nobody holds (another process started them, their owner's lease lapsed or
  // the owner died). Asked at most once per poll interval while other work goes on, and by
  // every step that would otherwise have nothing to do (step()).
  Result<bool> adoptRuns();
  // A failed run's workflow retry_policy timer fired: start the next attempt of its chain.
  Result<bool> startNextAttempt(const TimerRecord &timer);
  void handleOutcome(AttemptOutcome outcome);
  // Extends the claims of the tasks running here that are past half their lease.
  void renewTaskClaims(int64_t at);
  // Whether an attempt runs or its outcome waits to be drained.
  [[nodiscard]] bool attemptsPending();
  // Waits for something to become ready; false when nothing ever will (idle for good).
  bool waitForWork(bool stopWhenOnlyExternal);

  // ---- engine_owners.cpp ----
  // Gives up the leases and claims of owners proved dead (owner_identity.h), at most once per
  // interval, so that adoptRuns takes their runs over without waiting for the expiry.
  Result<bool> releaseDeadOwners();

  [[nodiscard]] int64_t now() const { return clock.nowMs(); }

  Store &store;
  ActivityRegistry &activities;
  Clock &clock;
  EngineOptions options;
  Executor executor;
  std::map<std::string, std::shared_ptr<const vm::Module>> modules;
  std::map<std::string, ModuleActivities> moduleActivities;
  std::map<std::string, PredicateFunction> predicates;
  std::map<std::string, std::unique_ptr<LoadedRun>> runs;
  std::mutex outcomesMutex;
  std::deque<AttemptOutcome> outcomes;
  std::atomic<bool> stopping{false};
  int64_t lastPublishedCheck = -1;
  // Runs whose history grew behind their machine's back (a child reported to its parent):
  // loaded again, from the history, on the next step.
  std::set<std::string> dirty;
  // Tasks this engine claimed and runs now, with their claims' expiry: renewed while they
  // run (a claim that lapsed would let startTasks, here or elsewhere, run the attempt twice).
  std::map<std::pair<std::string, int64_t>, int64_t> runningTasks;
  // When releaseDeadOwners looks next; unset until its first look.
  std::optional<int64_t> nextOwnerCheckMs;
  // When adoptRuns looks next; unset while it should look on every step.
  std::optional<int64_t> nextAdoptionMs;
  // Batch mode: while set, commit() submits to the store's group commit without waiting, so
  // the writes of a whole engine step share one group (and one fsync); flushCommits() waits.
  // At most one deferred commit per run: load() and commit() flush before a second.
  // Set while step() runs: attempts scheduled then are claimed in their scheduling
  // transaction and started by this engine once it commits. A run started outside a step
  // (`run --detach` returns right after) leaves its first task for whoever steps next.
  bool claimScheduled = false;
  bool deferCommits = false;
  std::vector<DeferredCommit> deferredCommits;
  std::set<std::string> deferredRuns;
};

// ---- engine.cpp helpers ----
[[nodiscard]] RunStatus storeStatus(vm::RunStatus status);
[[nodiscard]] WorkflowError storeError(const StoreError &error);
[[nodiscard]] Object payload(std::initializer_list<std::pair<const char *, Value>> fields);
[[nodiscard]] std::string locationText(const vm::Module &module, const vm::SourceLocation &at);
// A run id: random, so ids from different processes never collide.
[[nodiscard]] std::string newRunId();

} // namespace kotoba::runtime
