// kotoba::Host (kotoba/kotoba.h): one store, one activity registry, one clock and one
// engine, put together for a host program and made safe to call from any thread.
//
// runtime::Engine expects one thread to call it. The Host gives every engine call that
// touches the engine's in-memory state (modules, loaded runs, predicates, step) one lock,
// and drives the engine with its own loop (step under the lock, wait on the clock without
// it), so that a host can start runs from a request thread while the engine runs on
// another. History reads go to the store, which serializes them itself.
//
// The clock's wake-up is a single token: of two threads waiting on it, only one sees a
// wake(), and the other may sleep on with a virtual clock whose time stands still. So only
// one thread at a time steps-and-waits (the driver lock); a caller of wait() that finds the
// driver lock taken waits for the progress its holder reports instead.
#include "kotoba/kotoba.h"

#include "kotoba/runtime/checkpoint.h"
#include "kotoba/stdlib/standard_activities.h"
#include "kotoba/vm/module_format.h"

#include <fmt/format.h>

#include <cassert>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace kotoba {

using runtime::engine_errors::RunNotFound;

namespace {

// How long a waiting caller sleeps between looks at the store when nothing in this process
// tells it about progress (another process may be finishing the run).
constexpr std::chrono::milliseconds kWaitSlice{50};

WorkflowError storeFailure(const runtime::StoreError &error) {
  return makeError(runtime::engine_errors::StoreFailure, error.message);
}

WorkflowError runNotFound(const std::string &runId) {
  return makeError(RunNotFound, fmt::format("no run '{}' in the store", runId));
}

bool settled(RunStatus status) {
  return runtime::isFinalStatus(status) || status == RunStatus::Blocked;
}

} // namespace

struct Host::State {
  HostOptions options;
  std::unique_ptr<runtime::Store> store;
  runtime::ActivityRegistry activities;
  std::unique_ptr<runtime::Clock> clock;

  // Guards every engine call that reads or changes the engine's in-memory state, and the
  // registration sets.
  std::mutex engineMutex;
  std::set<std::string, std::less<>> predicates;
  std::set<std::string, std::less<>> functions;

  // Held by whichever thread steps the engine and then waits on the clock.
  std::mutex driverMutex;
  // The driving loop (runForever or the Host's thread) and the callers waiting on it.
  mutable std::mutex driveMutex;
  std::condition_variable progressed;
  uint64_t progressCount = 0;
  std::optional<WorkflowError> threadError;
  std::atomic<bool> driving{false};
  std::atomic<bool> stopRequested{false};
  std::thread thread;

  // Last, so that it is destroyed first: it releases its leases through the store and
  // shuts down the executor, whose threads may still call activities.
  std::unique_ptr<runtime::Engine> engine;

  [[nodiscard]] Result<bool> lockedStep() {
    Result<bool> result = [&] {
      std::lock_guard lock(engineMutex);
      return engine->step();
    }();
    if (result.ok() && result.value()) {
      {
        std::lock_guard lock(driveMutex);
        ++progressCount;
      }
      progressed.notify_all();
    }
    return result;
  }

  // The loop of runForever and the Host's thread; the caller has set `driving`. A stop()
  // ends it, and is used up by it.
  [[nodiscard]] Result<bool> drive() {
    while (true) {
      std::lock_guard driver(driverMutex);
      if (stopRequested.exchange(false)) {
        return true;
      }
      Result<bool> stepped = lockedStep();
      if (!stepped.ok()) {
        return stepped;
      }
      if (!stepped.value() && !engine->waitForWork(/*stopWhenOnlyExternal=*/false)) {
        // A virtual clock with nothing due: only a signal, an event, a new run or stop()
        // can bring work, and each of them wakes the clock.
        (void)clock->waitUntil(std::nullopt);
      }
    }
  }

  // Claims the right to drive; false when a loop already drives.
  [[nodiscard]] bool claimDriving() {
    bool expected = false;
    return driving.compare_exchange_strong(expected, true);
  }

  void finishDriving() { driving = false; }

  [[nodiscard]] uint64_t progressSoFar() {
    std::lock_guard lock(driveMutex);
    return progressCount;
  }

  // Blocks until a step made progress after the caller saw `seen`, or until `deadline`, but
  // at most one slice: work that other processes (or a loop that ended) leave is noticed.
  void awaitProgress(uint64_t seen, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(driveMutex);
    auto until = std::min(deadline, std::chrono::steady_clock::now() + kWaitSlice);
    progressed.wait_until(lock, until, [&] { return progressCount != seen; });
  }
};

Host::Host(std::unique_ptr<State> state) : state_(std::move(state)) {}

Host::~Host() {
  stop();
}

Result<std::unique_ptr<Host>> Host::open(HostOptions options) {
  auto state = std::make_unique<State>();
  runtime::StoreOptions storeOptions;
  storeOptions.durability = options.durability;
  auto store = options.storePath.empty() || options.storePath == ":memory:"
                   ? runtime::Store::openInMemory(storeOptions)
                   : runtime::Store::open(options.storePath, storeOptions);
  if (!store.ok()) {
    return storeFailure(store.error());
  }
  state->store = std::move(store).value();
  switch (options.clock) {
  case ClockKind::Real:
    state->clock = std::make_unique<runtime::RealClock>();
    break;
  case ClockKind::Virtual:
    state->clock = std::make_unique<runtime::VirtualClock>();
    break;
  }
  runtime::EngineOptions engineOptions;
  engineOptions.owner = options.owner;
  engineOptions.executorThreads = options.executorThreads;
  engineOptions.baseDirectory = options.baseDirectory;
  engineOptions.checkpointEvery = options.checkpointEvery;
  state->options = std::move(options);
  state->engine = std::make_unique<runtime::Engine>(*state->store, state->activities, *state->clock,
                                                    engineOptions);
  return std::unique_ptr<Host>(new Host(std::move(state)));
}

// ---- Modules and host code ----

Result<std::string> Host::addModule(const vm::Module &module) {
  std::lock_guard lock(state_->engineMutex);
  return state_->engine->addModule(module);
}

Result<bool> Host::registerActivity(std::string name, ActivityFunction function) {
  std::string shown = name;
  if (std::optional<WorkflowError> error =
          state_->activities.bindFunction(std::move(name), std::move(function))) {
    if (shown.empty()) {
      return *error;
    }
    return makeError(
        host_errors::AlreadyRegistered,
        fmt::format("activity '{}' is registered already; register each name once", shown));
  }
  return true;
}

Result<bool> Host::registerFunction(std::string name, ActivityFunction function) {
  std::lock_guard lock(state_->engineMutex);
  if (!state_->functions.insert(name).second) {
    return makeError(
        host_errors::AlreadyRegistered,
        fmt::format("function '{}' is registered already; register each name once", name));
  }
  state_->activities.registerFunction(std::move(name), std::move(function));
  return true;
}

Result<bool> Host::registerPredicate(std::string name, PredicateFunction predicate) {
  std::lock_guard lock(state_->engineMutex);
  if (!state_->predicates.insert(name).second) {
    return makeError(
        host_errors::AlreadyRegistered,
        fmt::format("predicate '{}' is registered already; register each name once", name));
  }
  state_->engine->registerPredicate(std::move(name), std::move(predicate));
  return true;
}

void Host::registerStandardActivities() {
  stdlib::registerStandardActivities(state_->activities);
}

// ---- Runs ----

Result<std::string> Host::start(const std::string &moduleHash, Value inputs,
                                const StartOptions &options) {
  runtime::StartRequest request;
  request.moduleHash = moduleHash;
  request.workflowId = options.workflowId;
  request.inputs = std::move(inputs);
  request.signals = options.signals;
  request.runId = options.runId;
  Result<std::string> started = [&] {
    std::lock_guard lock(state_->engineMutex);
    return state_->engine->start(request);
  }();
  if (started.ok()) {
    state_->clock->wake(); // a loop waiting for outside input has work now
  }
  return started;
}

Result<bool> Host::signal(const std::string &runId, const std::string &name, const Value &payload) {
  return state_->engine->signal(runId, name, payload);
}

Result<int64_t> Host::emit(const std::string &type, const Value &payload) {
  // emit resets the engine's published-event poll, which step() reads.
  std::lock_guard lock(state_->engineMutex);
  return state_->engine->emit(type, payload);
}

Result<bool> Host::cancel(const std::string &runId) {
  return state_->engine->cancel(runId);
}

Result<bool> Host::terminate(const std::string &runId, const std::string &reason) {
  return state_->engine->terminate(runId, reason);
}

Result<RunOutcome> Host::outcome(const std::string &runId) {
  return state_->engine->outcome(runId);
}

Result<RunOutcome> Host::wait(const std::string &runId,
                              std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  while (true) {
    uint64_t seen = state_->progressSoFar(); // before the look, so no progress is missed
    Result<RunOutcome> current = outcome(runId);
    if (!current.ok() || settled(current.value().status)) {
      return current;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      Object details;
      details.set("run_id", runId);
      details.set("status", std::string(runStatusName(current.value().status)));
      return makeError(host_errors::WaitTimedOut,
                       fmt::format("run '{}' is still {} after {} ms; it goes on", runId,
                                   runStatusName(current.value().status), timeout->count()),
                       Value(std::move(details)));
    }
    std::unique_lock driver(state_->driverMutex, std::defer_lock);
    if (driving() || !driver.try_lock()) {
      state_->awaitProgress(seen, deadline); // another thread drives
      continue;
    }
    Result<bool> stepped = state_->lockedStep();
    if (!stepped.ok()) {
      return stepped.error();
    }
    if (!stepped.value() && !state_->engine->waitForWork(/*stopWhenOnlyExternal=*/false)) {
      return outcome(runId); // nothing more can happen without a signal or an event
    }
  }
}

// ---- Driving ----

Result<bool> Host::step() {
  return state_->lockedStep();
}

Result<bool> Host::runUntilIdle() {
  while (true) {
    if (driving()) {
      return makeError(host_errors::AlreadyDriving,
                       "the engine is driven by runForever or the Host's thread; it needs no "
                       "runUntilIdle");
    }
    uint64_t seen = state_->progressSoFar();
    std::unique_lock driver(state_->driverMutex, std::try_to_lock);
    if (!driver) {
      state_->awaitProgress(seen, std::chrono::steady_clock::time_point::max());
      continue;
    }
    Result<bool> stepped = state_->lockedStep();
    if (!stepped.ok()) {
      return stepped;
    }
    if (!stepped.value() && !state_->engine->waitForWork(/*stopWhenOnlyExternal=*/true)) {
      return true;
    }
  }
}

Result<bool> Host::runForever() {
  if (!state_->claimDriving()) {
    return makeError(host_errors::AlreadyDriving,
                     "the engine is already being driven; call stop() before driving it again");
  }
  Result<bool> result = state_->drive();
  state_->finishDriving();
  return result;
}

Result<bool> Host::startThread() {
  if (!state_->claimDriving()) {
    return makeError(host_errors::AlreadyDriving,
                     "the engine is already being driven; call stop() before driving it again");
  }
  if (state_->thread.joinable()) {
    state_->thread.join(); // a thread that ended on an error
  }
  // The caller wants the engine running now: a stop() from before does not apply.
  state_->stopRequested = false;
  {
    std::lock_guard lock(state_->driveMutex);
    state_->threadError.reset();
  }
  state_->thread = std::thread([state = state_.get()] {
    Result<bool> result = state->drive();
    if (!result.ok()) {
      std::lock_guard lock(state->driveMutex);
      state->threadError = result.error();
    }
    state->finishDriving();
  });
  return true;
}

void Host::stop() {
  state_->stopRequested = true;
  state_->clock->wake();
  if (state_->thread.joinable() && state_->thread.get_id() != std::this_thread::get_id()) {
    state_->thread.join();
  }
}

bool Host::driving() const {
  return state_->driving.load();
}

std::optional<WorkflowError> Host::threadError() const {
  std::lock_guard lock(state_->driveMutex);
  return state_->threadError;
}

// ---- History and state ----

Result<RunRecord> Host::run(const std::string &runId) {
  auto record =
      state_->store->query([&](const runtime::StoreReader &reader) { return reader.run(runId); });
  if (!record.ok()) {
    return storeFailure(record.error());
  }
  if (!record.value()) {
    return runNotFound(runId);
  }
  return std::move(*record.value());
}

Result<std::vector<RunRecord>> Host::runs(std::optional<RunStatus> status, size_t limit) {
  runtime::RunQuery query;
  query.status = status;
  query.limit = limit;
  auto found =
      state_->store->query([&](const runtime::StoreReader &reader) { return reader.runs(query); });
  if (!found.ok()) {
    return storeFailure(found.error());
  }
  return std::move(found).value();
}

namespace {

// Answers a question about run `runId` from one snapshot of the store: RunNotFound when there
// is no such run, StoreError when the store fails, else what `answer(reader, run, result)`
// put in `result` (the function returns a store failure, or success).
template <typename T, typename Answer>
Result<T> readRun(runtime::Store &store, const std::string &runId, Answer &&answer) {
  std::optional<Result<T>> result;
  runtime::StoreStatus status =
      store.read([&](const runtime::StoreReader &reader) -> runtime::StoreStatus {
        auto record = reader.run(runId);
        if (!record.ok()) {
          return record.error();
        }
        if (!record.value()) {
          result.emplace(runNotFound(runId));
          return {};
        }
        return answer(reader, *record.value(), result);
      });
  if (!status.ok()) {
    return storeFailure(status.error());
  }
  assert(result && "readRun: the answer neither answered nor failed");
  return std::move(*result);
}

} // namespace

Result<std::vector<EventRecord>> Host::events(const std::string &runId, int64_t fromSeq) {
  return readRun<std::vector<EventRecord>>(
      *state_->store, runId,
      [&](const runtime::StoreReader &reader, const RunRecord &,
          std::optional<Result<std::vector<EventRecord>>> &answer) -> runtime::StoreStatus {
        auto events =
            reader.events(runId, runtime::EventRange{std::max<int64_t>(1, fromSeq), {}, {}});
        if (!events.ok()) {
          return events.error();
        }
        answer.emplace(std::move(events).value());
        return {};
      });
}

namespace {

// The module stored under `hash`, loaded and verified.
Result<std::shared_ptr<const vm::Module>> storedModule(const runtime::StoreReader &reader,
                                                       const std::string &hash) {
  auto bytes = reader.module(hash);
  if (!bytes.ok()) {
    return storeFailure(bytes.error());
  }
  if (!bytes.value()) {
    return makeError(host_errors::InvalidModule,
                     fmt::format("{}: the store has no module {}", reader.path(), hash));
  }
  auto loaded = vm::loadModule(*bytes.value());
  if (!loaded.ok()) {
    return makeError(host_errors::InvalidModule,
                     fmt::format("{}: module {} does not load: {}", reader.path(), hash,
                                 loaded.errors().front().describe()));
  }
  return std::make_shared<const vm::Module>(std::move(loaded).value().module);
}

} // namespace

Result<RunState> Host::stateAt(const std::string &runId, std::optional<int64_t> seq) {
  return readRun<RunState>(
      *state_->store, runId,
      [&](const runtime::StoreReader &reader, const RunRecord &run,
          std::optional<Result<RunState>> &answer) -> runtime::StoreStatus {
        int64_t at = seq.value_or(run.lastSeq);
        if (at < 1 || at > run.lastSeq) {
          answer.emplace(makeError(host_errors::EventNotFound,
                                   fmt::format("run {} has events 1 to {}; there is no event {}",
                                               runId, run.lastSeq, at)));
          return {};
        }
        Result<std::shared_ptr<const vm::Module>> module = storedModule(reader, run.moduleHash);
        if (!module.ok()) {
          answer.emplace(module.error());
          return {};
        }
        auto event = reader.events(runId, runtime::EventRange{at, at, {}});
        if (!event.ok()) {
          return event.error();
        }
        Result<runtime::RebuiltRun> rebuilt = runtime::rebuildRun(reader, run, module.value(), at);
        if (!rebuilt.ok()) {
          answer.emplace(rebuilt.error());
          return {};
        }
        const runtime::Replay &replay = rebuilt.value().replay;
        if (replay.mismatch()) {
          answer.emplace(runtime::nonDeterminismError(runId, *replay.mismatch()));
          return {};
        }
        const EventRecord &covered = event.value().front();
        RunState state;
        state.runId = runId;
        state.seq = at;
        state.event = covered.type;
        state.timeMs = covered.timeMs;
        state.status = vm::runStatusName(replay.machine().status());
        // What the machine cannot know: a terminated run, and a BLOCKED one at its end.
        if (covered.type == EventType::WorkflowTerminated) {
          state.status = runStatusName(RunStatus::Terminated);
        } else if (at == run.lastSeq && run.status == RunStatus::Blocked) {
          state.status = runStatusName(RunStatus::Blocked);
        }
        state.vars = replay.machine().vars();
        state.results = replay.machine().results();
        state.pending = replay.machine().pendingCommands();
        state.checkpointSeq = rebuilt.value().checkpointSeq;
        state.eventsReplayed = rebuilt.value().eventsReplayed;
        answer.emplace(std::move(state));
        return {};
      });
}

Result<ReplayReport> Host::replay(const std::string &runId, const vm::Module *module) {
  return readRun<ReplayReport>(
      *state_->store, runId,
      [&](const runtime::StoreReader &reader, const RunRecord &run,
          std::optional<Result<ReplayReport>> &answer) -> runtime::StoreStatus {
        std::shared_ptr<const vm::Module> code;
        std::string hash;
        if (module == nullptr) {
          Result<std::shared_ptr<const vm::Module>> own = storedModule(reader, run.moduleHash);
          if (!own.ok()) {
            answer.emplace(own.error());
            return {};
          }
          code = own.value();
          hash = run.moduleHash;
        } else {
          code = std::make_shared<const vm::Module>(*module);
          hash = vm::hashToHex(vm::computeContentHash(vm::writeModule(*module)));
        }
        const vm::Workflow *workflow = code->findWorkflow(run.workflowId);
        if (workflow == nullptr) {
          answer.emplace(makeError(runtime::engine_errors::UnknownWorkflow,
                                   fmt::format("run {} does not replay on module {}: the module "
                                               "has no workflow '{}'",
                                               runId, hash, run.workflowId)));
          return {};
        }
        auto events = reader.events(runId);
        if (!events.ok()) {
          return events.error();
        }
        auto index = static_cast<uint32_t>(workflow - code->workflows.data());
        runtime::Replay replay(code, index, runtime::runInfoOf(run, *workflow), run.inputs);
        (void)replay.applyAll(events.value());
        ReplayReport report;
        report.runId = runId;
        report.moduleHash = hash;
        report.events = events.value().size();
        report.mismatch = replay.mismatch();
        report.unrecordedCommands = replay.unrecorded().size();
        answer.emplace(std::move(report));
        return {};
      });
}

Result<runtime::ChainReport> Host::verify(const std::string &runId) {
  Result<RunRecord> record = run(runId);
  if (!record.ok()) {
    return record.error();
  }
  auto report = state_->store->query(
      [&](const runtime::StoreReader &reader) { return reader.verifyRun(runId); });
  if (!report.ok()) {
    return storeFailure(report.error());
  }
  return std::move(report).value();
}

// ---- The parts ----

runtime::Store &Host::store() {
  return *state_->store;
}

runtime::ActivityRegistry &Host::activities() {
  return state_->activities;
}

runtime::Clock &Host::clock() {
  return *state_->clock;
}

} // namespace kotoba
