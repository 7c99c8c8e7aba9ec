// The public embedding API: the one header a C++ host program includes to run Kotoba
// workflows in its own process (runtime.md section 10, docs/embedding.md). It covers the
// whole cycle: compile a .kotoba file or load a .kbc, open a store (a SQLite file or an
// in-memory database), register activities and predicates as callables, start runs, send
// signals, events, cancels and terminations, wait for results, drive the engine on a thread
// it owns or step it from the host's loop, read history and past state, and replay.
//
// Errors are values: every fallible call returns a Result<T> whose error is a WorkflowError
// {type, message, details}; the types each call can report are listed at the call and
// defined in host_errors below. No exception leaves this API, except those of the standard
// library itself (std::bad_alloc, std::system_error when no thread can be started).
//
// Threading: a Host is safe to use from many threads at once. Calls that touch the engine's
// in-memory state take one lock for their duration; reads of history go straight to the
// store. Activities run on the engine's executor threads, never on the caller's. One thread
// at a time drives the engine (steps it and sleeps until there is work); callers of wait()
// that find another thread driving wait for the progress it reports.
//
// The runtime's own types (runtime::Engine, runtime::Store, ...) stay reachable for hosts
// that need more than this facade: Host::store(), Host::activities(), Host::clock().
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/clock.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/runtime/event_types.h"
#include "kotoba/runtime/replay.h"
#include "kotoba/runtime/store.h"
#include "kotoba/runtime/store_types.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/machine.h"
#include "kotoba/vm/module.h"
#include "kotoba/vm/value.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kotoba {

// The names a host uses most, so that it rarely needs the runtime:: or vm:: namespaces.
using runtime::ActivityContext;
using runtime::ActivityFunction;
using runtime::Durability;
using runtime::EventRecord;
using runtime::EventType;
using runtime::eventTypeName;
using runtime::LogLevel;
using runtime::PredicateFunction;
using runtime::RunOutcome;
using runtime::RunRecord;
using runtime::RunStatus;
using runtime::runStatusName;

// The error types this API reports besides those of the engine (runtime::engine_errors:
// RunNotFound, RunFinished, UnknownWorkflow, UnboundActivities, NonDeterminism, StoreError)
// and of the language (error_types: InputValidationError, PayloadTooLarge).
namespace host_errors {
// A file does not exist, is not a regular file, or cannot be read.
inline constexpr std::string_view UnreadableFile = "UnreadableFile";
// A .kotoba file has errors; the message holds every diagnostic as file:line:col lines.
inline constexpr std::string_view CompileError = "CompileError";
// A file cannot be written (saveModuleFile).
inline constexpr std::string_view UnwritableFile = "UnwritableFile";
// A .kbc file (or a module stored in the store) does not decode or does not verify.
inline constexpr std::string_view InvalidModule = "InvalidModule";
// An activity or predicate name is registered already; the first registration stays.
inline constexpr std::string_view AlreadyRegistered = "AlreadyRegistered";
// runForever or startThread while another driving loop of the same Host is running, or
// runUntilIdle while one is.
inline constexpr std::string_view AlreadyDriving = "AlreadyDriving";
// wait() gave up after its timeout; the run goes on.
inline constexpr std::string_view WaitTimedOut = "WaitTimedOut";
// stateAt() was asked for an event the run does not have.
inline constexpr std::string_view EventNotFound = "EventNotFound";
} // namespace host_errors

// ---- Modules ----

// Checks and compiles a .kotoba file and the files it imports. Diagnostics (errors and
// warnings) are also written to `diagnostics` when it is given.
// Errors: UnreadableFile (the file is missing or unreadable); CompileError (the message
// lists each error as `file:line:col: error: ...`; details: {"errors": N}).
[[nodiscard]] Result<vm::Module> compileFile(const std::string &path,
                                             std::ostream *diagnostics = nullptr);

// Reads a .kbc file (`kotobac build`), checking its content hash and verifying its code.
// Errors: UnreadableFile; InvalidModule (the message names the first problem, details
// lists them all).
[[nodiscard]] Result<vm::Module> loadModuleFile(const std::string &path);

// compileFile for a `.kotoba` path, loadModuleFile for a `.kbc` one; the same errors.
[[nodiscard]] Result<vm::Module> loadWorkflowFile(const std::string &path,
                                                  std::ostream *diagnostics = nullptr);

// Writes the module as a .kbc file (what `kotobac build` writes), so that a host can compile
// once and ship the module; returns the module's content hash (the one addModule returns).
// Errors: UnwritableFile.
[[nodiscard]] Result<std::string> saveModuleFile(const vm::Module &module, const std::string &path);

// ---- The host ----

enum class ClockKind : uint8_t {
  // Wall-clock time: a one-day timer takes a day.
  Real,
  // Time jumps to the next timer whenever the engine has nothing else to do (tests, demos,
  // simulations). A run's history looks the same as under a real clock.
  Virtual,
};

struct HostOptions {
  // The SQLite file, created on first use. ":memory:" (or empty) keeps the store in memory
  // for as long as the Host lives.
  std::string storePath = ":memory:";
  Durability durability = Durability::Normal;
  ClockKind clock = ClockKind::Real;
  // Threads that run activities; 0 picks the executor's default (a few per hardware
  // thread, since activities mostly wait on I/O).
  size_t executorThreads = 0;
  // Where relative paths in activity implementations (a process `command`) resolve from;
  // empty means the working directory.
  std::string baseDirectory;
  // This engine's name in run leases; empty picks a unique one. Two engines (in this or
  // another process) on one store share its runs through leases. The name picked ends in a
  // token naming this process, so that should it die another process on the same machine
  // takes its runs over at once; a name given here has none, and its leases are waited out
  // (docs/durability.md, Leases).
  std::string owner;
  // A checkpoint every this many events (0: none); see docs/durability.md.
  size_t checkpointEvery = 100;
};

// What to start besides the module and the inputs.
struct StartOptions {
  // The workflow to run; empty runs the module's entry workflow.
  std::string workflowId;
  // The run id; generated when absent.
  std::optional<std::string> runId;
  // Signals delivered together with the start, in order (name, payload).
  std::vector<std::pair<std::string, Value>> signals;
};

// A run's state as of one event of its history, rebuilt from the nearest checkpoint and
// the events after it (what `kotoba-vm state --at` prints).
struct RunState {
  std::string runId;
  // The event the state is as of.
  int64_t seq = 0;
  EventType event = EventType::WorkflowStarted;
  int64_t timeMs = 0;
  // The machine's status name ("RUNNING", "COMPLETED", ...), or TERMINATED / BLOCKED when
  // the history says so where the machine cannot know it.
  std::string status;
  Value vars;
  Value results;
  // Commands issued and not answered yet as of that event, oldest first.
  std::vector<vm::Command> pending;
  // The checkpoint the rebuild started from, and how many events it replayed after it.
  std::optional<int64_t> checkpointSeq;
  size_t eventsReplayed = 0;
};

// What replaying a run's recorded history against a module found.
struct ReplayReport {
  std::string runId;
  // The module replayed against.
  std::string moduleHash;
  // How many events the history has.
  size_t events = 0;
  // Where the history stops matching the module; empty when every event replays.
  std::optional<runtime::ReplayMismatch> mismatch;
  // Commands the module issues after the last event that the history does not record yet
  // (the run records them when it continues).
  size_t unrecordedCommands = 0;

  [[nodiscard]] bool ok() const { return !mismatch.has_value(); }
};

class Host {
public:
  // Opens (or creates) the store and sets up an engine over it. The engine does nothing
  // until it is driven (step, runUntilIdle, wait, runForever or startThread).
  // Errors: StoreError (the file cannot be created or opened, is not a Kotoba store, or was
  // written by a newer version).
  [[nodiscard]] static Result<std::unique_ptr<Host>> open(HostOptions options = {});

  // Stops the engine's thread if it runs (as stop() does), then hands the runs this engine
  // held back to the store so that another process can take them at once. A runForever on
  // a host thread must have returned before the Host is destroyed.
  ~Host();
  Host(const Host &) = delete;
  Host &operator=(const Host &) = delete;

  // ---- Modules and host code ----

  // Stores a module by its content hash (idempotent) and returns the hash, which start()
  // takes. Errors: StoreError.
  [[nodiscard]] Result<std::string> addModule(const vm::Module &module);

  // Binds the activity `name` to a C++ callable, run on an executor thread once per
  // attempt. It returns the result or a WorkflowError (retryable unless it says otherwise);
  // a C++ exception it throws becomes a retryable ActivityException. It replaces a module's
  // declaration of the same name. Register before starting runs that call it: a run whose
  // module calls an unregistered activity is refused with UnboundActivities.
  // Errors: AlreadyRegistered.
  [[nodiscard]] Result<bool> registerActivity(std::string name, ActivityFunction function);
  // Makes `name` available to `implementation: {type: "function", function_name: name}`
  // declarations. Errors: AlreadyRegistered.
  [[nodiscard]] Result<bool> registerFunction(std::string name, ActivityFunction function);
  // Registers the decision condition `name` that the workflow does not define itself. It is
  // called on the engine's thread with the run's state ({inputs, vars, results}) and must
  // be quick and deterministic in what it decides; the answer is recorded in the history.
  // Errors: AlreadyRegistered.
  [[nodiscard]] Result<bool> registerPredicate(std::string name, PredicateFunction predicate);
  // Installs the `sql`, `http`, `webhook` and `email` activity types (docs/activities.md)
  // for modules that declare them. Opt-in: without it those declarations fail with
  // ActivityUnavailable, so a host decides whether its workflows may reach the network.
  void registerStandardActivities();

  // ---- Runs ----

  // Validates the inputs (an object; InputValidationError lists every problem), checks that
  // every activity and predicate the module needs is registered, and creates the run. It
  // does not run yet: the engine picks it up on its next step.
  // Errors: ModuleMissing (no module with that hash in the store); UnknownWorkflow (no
  // workflow `workflowId` in it); InputValidationError (details: one line per problem);
  // PayloadTooLarge; InvalidPayload (a signal name in `signals` that signal() would refuse);
  // UnboundActivities (details: the missing names, predicates as "predicate NAME");
  // StoreError (also when the run id is taken).
  [[nodiscard]] Result<std::string> start(const std::string &moduleHash, Value inputs,
                                          const StartOptions &options = {});

  // Delivers the signal `name` to the run (buffered until a wait consumes it).
  // Errors: InvalidPayload (a name that is empty, not UTF-8 or holds a control character);
  // RunNotFound; RunFinished (the run has ended); PayloadTooLarge; StoreError.
  [[nodiscard]] Result<bool> signal(const std::string &runId, const std::string &name,
                                    const Value &payload);
  // Publishes an engine-wide event that waiting runs whose filter matches receive; returns
  // its id. Errors: InvalidPayload (a type that is empty, not UTF-8 or holds a control
  // character); PayloadTooLarge; StoreError.
  [[nodiscard]] Result<int64_t> emit(const std::string &type, const Value &payload);
  // Asks the run to cancel: its sagas compensate, then it ends CANCELLED.
  // Errors: RunNotFound; RunFinished; StoreError.
  [[nodiscard]] Result<bool> cancel(const std::string &runId);
  // Ends the run at once, TERMINATED, without compensations; `reason` is recorded.
  // Errors: InvalidPayload (a reason that is not UTF-8); RunNotFound; RunFinished; StoreError.
  [[nodiscard]] Result<bool> terminate(const std::string &runId, const std::string &reason);

  // The run's status and, once it has ended, its outputs or error, following a
  // continue-as-new chain to its last run. Never waits. Errors: RunNotFound; StoreError.
  [[nodiscard]] Result<RunOutcome> outcome(const std::string &runId);

  // Waits until the run (or the last run of its chain) has ended or is BLOCKED, and returns
  // its outcome. When a driving loop runs (startThread, runForever) it only waits; otherwise
  // it drives the engine on the calling thread, and returns the still-running outcome when
  // nothing more can happen without a signal or event (virtual clock only: a real clock
  // waits for one). `timeout` is real time, whatever the clock.
  // Errors: RunNotFound; WaitTimedOut (details: {"run_id", "status"}); StoreError and the
  // engine's errors when it drives.
  [[nodiscard]] Result<RunOutcome>
  wait(const std::string &runId, std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // ---- Driving the engine ----

  // Does whatever is ready now (new runs, activity results, signals, due timers, matching
  // events). Returns false when nothing was. Never waits for work; safe next to a driving
  // loop, just redundant.
  // Errors: StoreError (the store failed; the engine keeps no half-done step).
  [[nodiscard]] Result<bool> step();
  // Steps until every run in the store has ended, is blocked, or waits only for a signal or
  // an event; timers that are pending are waited for (at once with a virtual clock).
  // Errors: AlreadyDriving (runForever or the Host's thread drives the engine); StoreError.
  [[nodiscard]] Result<bool> runUntilIdle();
  // Drives the engine on the calling thread until stop() is called from another thread.
  // A stop() that came while no loop was running ends the next runForever at once, so that
  // a host whose shutdown races the start of its engine thread does not wait forever.
  // Returns true when stopped. Errors: AlreadyDriving; StoreError (the loop ends).
  [[nodiscard]] Result<bool> runForever();
  // Drives the engine on a thread the Host owns until stop() or the Host's destruction.
  // Errors: AlreadyDriving. A StoreError ends the thread; threadError() then returns it.
  [[nodiscard]] Result<bool> startThread();
  // Ends runForever or the Host's thread (joining it) after its current step. A Host may be
  // driven again afterwards (startThread ignores an earlier stop; runForever does not, see
  // above). Safe from any thread.
  void stop();
  // Whether runForever or the Host's thread is driving the engine.
  [[nodiscard]] bool driving() const;
  // The error that ended the Host's thread, if one did.
  [[nodiscard]] std::optional<WorkflowError> threadError() const;

  // ---- History and state ----

  // The run's row: workflow, module hash, status, inputs, outputs or error, times.
  // Errors: RunNotFound; StoreError.
  [[nodiscard]] Result<RunRecord> run(const std::string &runId);
  // Runs, newest first, optionally only those with `status` (at most `limit`).
  // Errors: StoreError.
  [[nodiscard]] Result<std::vector<RunRecord>> runs(std::optional<RunStatus> status = std::nullopt,
                                                    size_t limit = 1000);
  // The run's history from event `fromSeq` on, in order. Errors: RunNotFound; StoreError.
  [[nodiscard]] Result<std::vector<EventRecord>> events(const std::string &runId,
                                                        int64_t fromSeq = 1);
  // The run's state as of event `seq` (its last event when absent).
  // Errors: RunNotFound; EventNotFound (no such seq); NonDeterminism (the history does
  // not replay on its module up to that event); InvalidModule; StoreError.
  [[nodiscard]] Result<RunState> stateAt(const std::string &runId,
                                         std::optional<int64_t> seq = std::nullopt);
  // Replays the run's whole history against its own module, or against `module` (to check
  // that a changed workflow can still continue runs started before the change). A history
  // that does not replay is a report with a mismatch, not an error.
  // Errors: RunNotFound; UnknownWorkflow (the module lacks the run's workflow);
  // InvalidModule (the stored module does not load); StoreError.
  [[nodiscard]] Result<ReplayReport> replay(const std::string &runId,
                                            const vm::Module *module = nullptr);
  // Recomputes the run's event and checkpoint hash chains and reports the first broken
  // link. Errors: RunNotFound; StoreError.
  [[nodiscard]] Result<runtime::ChainReport> verify(const std::string &runId);

  // ---- The parts, for what this facade does not cover ----

  [[nodiscard]] runtime::Store &store();
  // Factories, bindImplementation (`--bind NAME=SPEC` specs), the environment `$.env` reads.
  [[nodiscard]] runtime::ActivityRegistry &activities();
  // The VirtualClock when options.clock is Virtual (tests may advance it).
  [[nodiscard]] runtime::Clock &clock();

private:
  struct State;
  explicit Host(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

} // namespace kotoba
