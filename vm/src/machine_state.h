// The machine's state, shared by the machine_*.cpp files: fibers with their registers and
// handler frames, join groups for parallels, foreach loops and saga compensations, scopes
// for foreach iterations, and the run-wide buffers. Everything here is plain data so that a
// snapshot can write it out and a restore can read it back exactly.
#pragma once

#include "kotoba/vm/builtins.h"
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/machine.h"

#include <deque>
#include <map>
#include <set>

namespace kotoba::vm {

// Error types the machine raises itself.
inline constexpr std::string_view kCancelledError = "Cancelled";
inline constexpr std::string_view kWorkflowTimedOutError = "WorkflowTimedOut";
inline constexpr std::string_view kWaitTimeoutError = "WaitTimeout";
inline constexpr std::string_view kAllBranchesFailedError = "AllBranchesFailed";
inline constexpr std::string_view kNotEnoughBranchesError = "NotEnoughBranchesSucceeded";

// A compensation registered by a completed step: its block and the registers it captured.
struct CompensationRecord {
  uint32_t block = 0;
  std::vector<Value> registers;
  std::string step;
  uint32_t scope = 0;
  SourceLocation location;
};

// One entry of a fiber's handler stack.
struct Frame {
  enum class Kind : uint8_t { Try, Saga };
  Kind kind = Kind::Try;
  uint32_t handler = 0; // instruction index in the fiber's block
  uint32_t errorRegister = 0;
  uint32_t descriptor = 0; // constant: error types (try) or saga policy (saga)
  bool failed = false;     // saga: its main flow failed and the handler is running
  std::vector<CompensationRecord> compensations;
};

enum class FiberState : uint8_t {
  Ready,
  WaitingCommand, // on `command`
  WaitingJoin,    // on join group `join`
  Done,
  Failed,
  Cancelled,
};

struct Fiber {
  FiberId id = 0;
  uint32_t block = 0;
  uint32_t pc = 0;
  std::vector<Value> registers;
  uint32_t scope = 0;
  std::vector<Frame> frames;
  FiberState state = FiberState::Ready;
  CommandId command = 0;       // WaitingCommand
  uint32_t join = 0;           // WaitingJoin
  uint32_t resultRegister = 0; // where the awaited outcome goes
  // The join this fiber is a member of, and its slot there; none for fiber 0.
  std::optional<uint32_t> memberOf;
  uint32_t slot = 0;
  // The fiber that started this one: compensations registered without a saga frame of
  // their own go to its innermost saga.
  std::optional<FiberId> spawner;
  // Compensation code (and what it starts) keeps running while the run is cancelled.
  bool compensating = false;
  // While the fiber runs a saga's handler (its compensations, then its `compensation`
  // block): the number of frames below the outermost such handler. An error raised down to
  // that depth leaves the handler.
  std::optional<uint32_t> handlerDepth;
  // The branch was cancelled while its saga's handler ran: the handler runs to its end, and
  // only its re-raise ends the branch (or unwinds its outer sagas), never a `try`.
  bool cancelAfterHandler = false;

  // Whether the fiber runs a saga's handler: from the raise that enters it (the failed saga
  // is its innermost frame until COMPRUN) to the raise that leaves it.
  [[nodiscard]] bool inSagaHandler() const {
    return handlerDepth.has_value() ||
           (!frames.empty() && frames.back().kind == Frame::Kind::Saga && frames.back().failed);
  }
};

enum class JoinKind : uint8_t { Parallel, Foreach, Compensation };
enum class SlotState : uint8_t { Pending, Running, Completed, Failed, Cancelled, Skipped };

struct Slot {
  SlotState state = SlotState::Pending;
  FiberId fiber = 0;
  Value value;
  std::optional<WorkflowError> error;
};

struct Join {
  JoinKind kind = JoinKind::Parallel;
  FiberId owner = 0;
  uint32_t targetRegister = 0;
  SourceLocation location;
  bool finished = false;
  std::vector<Slot> slots;
  // parallel
  ParallelMode parallelMode = ParallelMode::All;
  uint32_t needed = 0;
  uint32_t firstBlock = 0;
  // foreach
  ForeachMode foreachMode = ForeachMode::All;
  Value items;
  uint32_t maxConcurrency = 1;
  uint32_t block = 0;
  uint32_t itemRegister = 0;
  uint32_t indexRegister = 0;
  // compensation
  std::vector<CompensationRecord> records; // in the order they run
  bool parallelCompensation = false;
  bool stopOnFailure = false;
};

// Workflow variables and step results. Scope 0 is the run's; each foreach iteration has one
// of its own whose writes are private and dropped when the iteration ends.
struct Scope {
  std::optional<uint32_t> parent;
  Object vars;
  Object results;
  // `vars` and `results` as Values, built by the first ROOT read after a write and shared by
  // the reads until the next write (null: not built). Without them every `$.vars.x` copied
  // the whole object; the expression loop of bench/ ran 1.3x faster with them. Derived
  // state: never part of a snapshot.
  mutable Value varsView;
  mutable Value resultsView;
};

enum class WaitKind : uint8_t { Activity, Timer, Signal, Event, Child, Predicate };

// A command the machine waits for an answer to.
struct PendingCommand {
  WaitKind kind = WaitKind::Activity;
  FiberId fiber = 0;
  std::string name; // signal name or event type, for delivery
  bool hasTimeout = false;
  Command command; // as issued, for inspection
};

class MachineState : public BuiltinContext {
public:
  MachineState(std::shared_ptr<const Module> module, uint32_t workflowIndex, RunInfo info)
      : module(std::move(module)), workflowIndex(workflowIndex), info(std::move(info)) {}

  // BuiltinContext
  int64_t logicalTimeMs() const override { return now; }
  std::string_view runId() const override { return info.runId; }
  uint64_t nextUuidSequence() override { return uuidCounter++; }

  [[nodiscard]] const Workflow &workflow() const { return module->workflows[workflowIndex]; }

  // ---- machine_fibers.cpp ----
  Fiber &spawn(uint32_t block, const Fiber &parent, uint32_t scope);
  void run();
  void raise(Fiber &fiber, WorkflowError error);
  void finishFiber(Fiber &fiber);
  void onMemberFinished(Join &join, uint32_t joinId, Fiber &member);
  void resolveJoin(Join &join, uint32_t joinId);
  // Cancels a branch. With unwindSagas, a branch whose own sagas have compensations to run
  // raises Cancelled instead and stays (true is returned): its sagas compensate and the
  // join waits for it. Otherwise the fiber is done with (false) and the caller erases it.
  // A branch waiting on a parallel or foreach first has that join's branches unwind their
  // sagas (true: the join stays, finished, and the fiber waits for them).
  [[nodiscard]] bool cancelFiber(Fiber &fiber, bool unwindSagas);
  // Ends a cancelled fiber that waits for nothing any more: raises Cancelled into its sagas
  // when unwinds (true: it stays), or marks it Cancelled (false: the caller is done with it).
  [[nodiscard]] bool endCancellation(Fiber &fiber, bool unwinds);
  // Whether the fiber runs compensation code: a compensation, or code started by a saga
  // handler of the fiber itself (inclusive) or of a fiber that started it. Such code runs to
  // its end when its branch or the run is cancelled (language.md).
  [[nodiscard]] bool runsCompensationCode(const Fiber &fiber, bool inclusive) const;
  // Whether `test` holds for the fiber or for one of the fibers that started it.
  [[nodiscard]] bool inLineage(const Fiber &fiber, bool (*test)(const Fiber &)) const;
  // Called by raise() when an error leaves the fiber's outermost saga handler. For a fiber
  // cancelled while the handler ran, the error becomes the cancellation (or the run's ending)
  // and goes on into its outer sagas, or the branch ends there (false: it is done with).
  [[nodiscard]] bool leaveSagaHandler(Fiber &fiber, WorkflowError &error);
  // Whether a parallel or foreach fails with the run's ending instead of resolving by its
  // completion rule: not within compensation code that ran when the ending arrived.
  [[nodiscard]] bool endsWithRun(const Join &join) const;
  void onAbandonedMemberFinished(Join &join, uint32_t joinId, Fiber &member);
  // Erases a join, lowering the compensation count when it ran compensations.
  void dropJoin(uint32_t joinId);
  void lowerCompensations();
  void registerAttemptedOnCancel(Fiber &fiber);
  void cancelRunningSlots(Join &join, bool unwindSagas);
  void startForeachIterations(Join &join, uint32_t joinId);
  void startNextCompensation(Join &join, uint32_t joinId);
  void registerCompensation(Fiber &fiber, CompensationRecord record);
  Frame *innermostSaga(Fiber &fiber, Fiber **owner);
  void endRun(RunStatus final, Command command);

  // ---- machine_interpreter.cpp ----
  void execute(Fiber &fiber);

  // ---- machine.cpp ----
  CommandId issue(Fiber &fiber, Command command, WaitKind kind, uint32_t resultRegister);
  void emit(Command command) { out.push_back(std::move(command)); }
  void resume(Fiber &fiber, Value value);
  [[nodiscard]] Value readRoot(StateRoot root, uint32_t scope) const;
  void writeVar(uint32_t scope, const std::string &name, Value value);
  void writeResult(uint32_t scope, const std::string &name, Value value);
  [[nodiscard]] SourceLocation locationOf(const Fiber &fiber) const;
  [[nodiscard]] SourceLocation locationAt(const Fiber &fiber, uint32_t index) const;
  [[nodiscard]] WorkflowError located(WorkflowError error, const Fiber &fiber) const;

  std::shared_ptr<const Module> module;
  uint32_t workflowIndex = 0;
  RunInfo info;
  Value inputs;
  int64_t now = 0;
  uint64_t uuidCounter = 0;
  CommandId nextCommand = 1;
  FiberId nextFiber = 0;
  uint32_t nextJoin = 0;
  uint32_t nextScope = 1;
  // Compensation joins still running: while any is, the run's status is Compensating.
  uint32_t activeCompensations = 0;
  RunStatus status = RunStatus::Running;
  // Set by a cancel request or the workflow timeout: the error every waiting fiber raises.
  std::optional<WorkflowError> ending;
  // The fiber whose attempted-step handler runs while the fiber is being cancelled: its
  // re-raise stops there. Set only inside cancelFiber, so never part of a snapshot.
  std::optional<FiberId> unwindingCancelled;

  std::map<FiberId, Fiber> fibers;
  std::set<FiberId> ready;
  std::map<uint32_t, Join> joins;
  std::map<uint32_t, Scope> scopes;
  std::map<CommandId, PendingCommand> pending;
  // Signals that arrived with no fiber waiting for them, per name in arrival order.
  std::map<std::string, std::deque<Value>> signalBuffer;
  Object signals; // $.signals: the last payload consumed per name
  Object events;  // $.events: the last payload consumed per type

  std::vector<Command> out; // commands produced while handling the current input

  // PATH descriptors decoded once per constant, on first use: decoding one per PATH
  // instruction (strings and vectors rebuilt from the constant) was the largest cost of
  // expression evaluation under perf. Derived from the module: never part of a snapshot.
  [[nodiscard]] const PathDescriptor &pathDescriptor(uint32_t constant);
  std::vector<std::unique_ptr<const PathDescriptor>> pathCache;
};

} // namespace kotoba::vm
