// The engine: drives workflow runs durably. It keeps a deterministic machine per run it
// owns, feeds it one outcome at a time, and records each outcome with the commands the
// machine answered it with in one store transaction; only after that commit does it act on
// the commands (run activities, arm timers, start children). A run it has not loaded yet is
// rebuilt by replaying its history, which also checks that the module still produces the
// recorded commands.
#pragma once

#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/clock.h"
#include "kotoba/runtime/executor.h"
#include "kotoba/runtime/store.h"
#include "kotoba/vm/machine.h"
#include "kotoba/vm/module.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kotoba::runtime {

// Error types the engine reports.
namespace engine_errors {
inline constexpr std::string_view NonDeterminism = "NonDeterminism";
inline constexpr std::string_view UnboundActivities = "UnboundActivities";
inline constexpr std::string_view RunNotFound = "RunNotFound";
inline constexpr std::string_view RunFinished = "RunFinished";
inline constexpr std::string_view UnknownWorkflow = "UnknownWorkflow";
inline constexpr std::string_view StoreFailure = "StoreError";
} // namespace engine_errors

using PredicateFunction = std::function<bool(const Value &state)>;

struct EngineOptions {
  // Identifies this engine in leases; unique per process.
  std::string owner;
  int64_t leaseMs = 30'000;
  size_t payloadLimitBytes = kDefaultPayloadLimitBytes;
  size_t executorThreads = 0;
  // Relative paths in activity implementations resolve against this directory, for runs
  // whose StartRequest::host named none.
  std::string baseDirectory;
  // Checkpoints (docs/durability.md): one after this many events since a run's last one,
  // and one whenever a commit leaves a run waiting only for timers, signals or events.
  // 0 turns checkpoints off.
  size_t checkpointEvery = 100;
  // How many of each run's newest checkpoints are kept (at least 1); older ones are pruned.
  size_t checkpointsKept = 3;
};

struct StartRequest {
  std::string moduleHash;
  std::string workflowId; // empty: the module's entry workflow
  Value inputs;           // an object
  // Signals delivered together with the start, in order (name, payload).
  std::vector<std::pair<std::string, Value>> signals;
  std::optional<std::string> runId; // generated when absent
  // How the run's activities resolve, stored with it and inherited by its children and
  // continuations, so that every engine driving it resolves them alike (a host binding of
  // the driving engine still wins). Absent: the driving engine's own options decide.
  std::optional<RunHost> host;
};

// What a finished (or blocked) run ended with.
struct RunOutcome {
  RunStatus status = RunStatus::Running;
  Value outputs;
  std::optional<WorkflowError> error;
  std::string runId; // the last run of the chain for continue-as-new chains
};

class Engine {
public:
  Engine(Store &store, ActivityRegistry &activities, Clock &clock, EngineOptions options = {});
  ~Engine();
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;

  // Stores a module by its content hash (idempotent) and returns the hash.
  [[nodiscard]] Result<std::string> addModule(const vm::Module &module);
  void registerPredicate(std::string name, PredicateFunction predicate);

  // Validates the inputs (InputValidationError lists every problem), checks that every
  // activity and host predicate the module needs is bound, then creates the run with its
  // WorkflowStarted event in one transaction. Nothing is written when any check fails.
  [[nodiscard]] Result<std::string> start(const StartRequest &request);

  // Outside inputs. Each is refused with RunFinished for a run that has ended.
  [[nodiscard]] Result<bool> signal(const std::string &runId, const std::string &name,
                                    const Value &payload);
  [[nodiscard]] Result<bool> cancel(const std::string &runId);
  [[nodiscard]] Result<bool> terminate(const std::string &runId, const std::string &reason);
  [[nodiscard]] Result<int64_t> emit(const std::string &type, const Value &payload);

  // Does whatever is ready now (inbox messages, due timers, finished activities, tasks to
  // start, published events for waiting runs). Returns false when nothing was ready.
  [[nodiscard]] Result<bool> step();
  // Steps until `runId` (and the runs it continued as) has ended or is blocked. With a
  // virtual clock, idle time jumps to the next timer.
  [[nodiscard]] Result<RunOutcome> runToCompletion(const std::string &runId);
  // Steps until every run in the store has ended, is blocked, or waits only for a signal or
  // an event (timers still pending are waited for).
  [[nodiscard]] Result<bool> runUntilIdle();
  // Steps until stop() is called from another thread.
  [[nodiscard]] Result<bool> runForever();
  void stop();
  // Waits on the clock until step() may find work: an activity finishing, a timer or task
  // coming due (a virtual clock jumps to it), or a wake() (signals, new runs). Returns false
  // at once when nothing can happen without an outside input; with a real clock it only
  // returns false when `stopWhenOnlyExternal`. For hosts that drive the engine from their own
  // loop (kotoba/kotoba.h); safe to call while another thread calls step().
  [[nodiscard]] bool waitForWork(bool stopWhenOnlyExternal);

  [[nodiscard]] Result<RunOutcome> outcome(const std::string &runId);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace kotoba::runtime
