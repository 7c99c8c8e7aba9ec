// Tasks claimed as they are scheduled: while it steps, the engine that schedules an activity
// writes the task already claimed by itself, in the transaction that records the command, and
// starts the attempt once that commits, so an activity step is one store transaction. The
// claim is an ordinary one: it lapses when its owner stops renewing it, and another engine
// then takes the task over; two engines on one store never run the same attempt.
#include "engine_support.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kLeaseMs = 1'000;

// `n` activity steps in sequence.
const char *const kSteps = R"({ workflow: { id: "steps",
  inputs: [{ name: "n", type: "integer", required: true }],
  outputs: [{ name: "count" }], output_mapping: { count: $.vars.i },
  strategy: { op: "seq", strategies: [
    { op: "set", vars: { i: 0 } },
    { op: "loop", while: $.vars.i < $.inputs.n, max_iterations: 1000,
      body: { op: "seq", strategies: [
        { op: "activity", activity_ref: "prepare", id: "step",
          input_mapping: { i: $.vars.i } },
        { op: "set", vars: { i: $.vars.i + 1 } } ] } } ] } } })";

EngineOptions ownedBy(const std::string &owner) {
  return kotoba::testing::ownedBy(owner, kLeaseMs);
}

StartRequest startRequest(const std::string &moduleHash, const std::string &inputs = "{}") {
  StartRequest request;
  request.moduleHash = moduleHash;
  request.inputs = parse(inputs);
  return request;
}

std::vector<TaskRecord> tasksOf(Store &store, const std::string &runId) {
  auto tasks = store.query([&](const StoreReader &reader) { return reader.tasksOf(runId); });
  REQUIRE(tasks.ok());
  return tasks.value();
}

size_t countOf(const std::vector<EventRecord> &events, EventType type) {
  size_t count = 0;
  for (const EventRecord &event : events) {
    count += event.type == type ? 1 : 0;
  }
  return count;
}

// An activity whose first `passes` attempts run through and whose later ones block until
// the gate opens; opened at the latest when it goes out of scope, so that the engine's
// shutdown never waits on it.
struct Gate {
  explicit Gate(int passes) : passes(passes) {}
  std::mutex mutex;
  std::condition_variable changed;
  int passes = 0;
  std::atomic<int> entered{0}; // changed under `mutex`, read without it by stepping loops
  bool open = false;

  Result<Value> pass(const Value &input) {
    std::unique_lock lock(mutex);
    int number = ++entered;
    changed.notify_all();
    changed.wait(lock, [&] { return open || number <= passes; });
    return input;
  }
  bool waitEntered(int count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return entered >= count; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
  ~Gate() { release(); }
};

// Engine A on a two-step run whose second attempt blocks at the gate: `start` returns once
// that attempt, scheduled and claimed by one of A's steps, has entered it.
struct SecondStepBlocked {
  TemporaryStore temp;
  VirtualClock clock{kStartMs};
  ActivityRegistry registry;
  Gate gate{1};
  std::unique_ptr<Engine> engine;
  std::string runId;
  std::vector<TaskRecord> firstTasks; // as start() left them

  void start() {
    REQUIRE_FALSE(registry.bindFunction(
        "prepare", [&](const Value &input, ActivityContext &) { return gate.pass(input); }));
    engine = std::make_unique<Engine>(*temp.store, registry, clock, ownedBy("engine-a"));
    auto hash = engine->addModule(compileWorkflow(kSteps));
    REQUIRE(hash.ok());
    auto started = engine->start(startRequest(hash.value(), R"({"n": 2})"));
    REQUIRE(started.ok());
    runId = started.value();
    firstTasks = tasksOf(*temp.store, runId);
    for (int i = 0; i < 400 && gate.entered < 2; ++i) {
      REQUIRE(engine->step().ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(gate.waitEntered(2));
  }
  ~SecondStepBlocked() {
    gate.release(); // before the engine's shutdown waits for the attempt
    engine.reset();
  }
};

} // namespace

TEST_CASE("an activity step of a running workflow commits one store transaction") {
  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction(
      "prepare", [](const Value &input, ActivityContext &) { return Result<Value>(input); }));
  Engine engine(*temp.store, registry, clock, ownedBy("engine-a"));
  auto hash = engine.addModule(compileWorkflow(kSteps));
  REQUIRE(hash.ok());
  auto started = engine.start(startRequest(hash.value(), R"({"n": 20})"));
  REQUIRE(started.ok());
  StoreStats before = temp.store->stats();
  auto done = engine.runToCompletion(started.value());
  REQUIRE(done.ok());
  REQUIRE(done.value().status == RunStatus::Completed);
  CHECK(toJson(done.value().outputs) == R"({"count":20})");
  // Per step: the outcome with the next schedule and its claim. The first task, scheduled
  // by start() outside a step, is claimed in a transaction of its own; a claim per step
  // would make it 40 and more.
  uint64_t commits = temp.store->stats().commits - before.commits;
  CHECK(commits <= 22);
  CHECK(countOf(history(*temp.store, started.value()), EventType::ActivityCompleted) == 20);
}

TEST_CASE_FIXTURE(SecondStepBlocked,
                  "a task scheduled by a stepping engine is claimed by it until its lease") {
  start();
  // start() records the first schedule outside a step: the task is ready, not claimed.
  REQUIRE(firstTasks.size() == 1);
  CHECK_FALSE(firstTasks.front().owner.has_value());
  CHECK(firstTasks.front().availableMs == kStartMs);
  // The step that recorded the first outcome scheduled the second attempt and claimed it.
  std::vector<TaskRecord> tasks = tasksOf(*temp.store, runId);
  REQUIRE(tasks.size() == 1);
  const TaskRecord &second = tasks.front();
  CHECK(second.commandId != firstTasks.front().commandId);
  REQUIRE(second.owner.has_value());
  CHECK(*second.owner == "engine-a");
  CHECK(second.leaseExpiryMs == std::optional<int64_t>(kStartMs + kLeaseMs));
  CHECK(second.availableMs == kStartMs + kLeaseMs);
  // The schedule and its claim are one transaction: the ActivityScheduled event of the second
  // step shares its tx with the completion of the first.
  std::vector<EventRecord> events = history(*temp.store, runId);
  std::optional<int64_t> completedTx;
  std::optional<int64_t> scheduledTx;
  for (const EventRecord &event : events) {
    if (event.type == EventType::ActivityCompleted && !completedTx) {
      completedTx = event.tx;
    }
    if (event.type == EventType::ActivityScheduled && completedTx) {
      scheduledTx = event.tx;
    }
  }
  REQUIRE(completedTx.has_value());
  CHECK(scheduledTx == completedTx);
  gate.release();
  auto done = engine->runToCompletion(runId);
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
}

TEST_CASE_FIXTURE(SecondStepBlocked,
                  "a task claimed as it was scheduled is taken over once its claim lapses") {
  start();

  // Engine A stalls: it neither renews the run's lease nor the task's claim. Until the claim
  // lapses nobody else may take the task; after it, engine B takes run and task over.
  ActivityRegistry activities;
  std::mutex mutex;
  std::vector<int64_t> calls;
  REQUIRE_FALSE(activities.bindFunction("prepare", [&](const Value &input, ActivityContext &c) {
    std::lock_guard lock(mutex);
    calls.push_back(c.attempt());
    return Result<Value>(input);
  }));
  auto early = temp.store->query(
      [&](const StoreReader &reader) { return reader.availableTasks(clock.nowMs(), 10); });
  REQUIRE(early.ok());
  CHECK(early.value().empty());
  clock.advanceBy(kLeaseMs * 5);
  Engine next(*temp.store, activities, clock, ownedBy("engine-b"));
  auto done = next.runToCompletion(runId);
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
  CHECK(toJson(done.value().outputs) == R"({"count":2})");
  {
    std::lock_guard lock(mutex);
    CHECK(calls == std::vector<int64_t>{1}); // the second step, run once by B
  }
  // A's attempt finishes late; A records nothing for the run it lost.
  const size_t recorded = history(*temp.store, runId).size();
  gate.release();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(engine->step().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CHECK(history(*temp.store, runId).size() == recorded);
  CHECK(countOf(history(*temp.store, runId), EventType::ActivityCompleted) == 2);
}

TEST_CASE("two engines stepping one store run each activity step once") {
  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  std::mutex mutex;
  std::map<std::string, int> executions; // idempotency key: times run
  REQUIRE_FALSE(registry.bindFunction("prepare", [&](const Value &input, ActivityContext &c) {
    std::lock_guard lock(mutex);
    ++executions[c.idempotencyKey()];
    return Result<Value>(input);
  }));
  Engine first(*temp.store, registry, clock, ownedBy("engine-a"));
  Engine second(*temp.store, registry, clock, ownedBy("engine-b"));
  auto hash = first.addModule(compileWorkflow(kSteps));
  REQUIRE(hash.ok());
  REQUIRE(second.addModule(compileWorkflow(kSteps)).ok());
  constexpr int kRuns = 10;
  constexpr int kStepsPerRun = 5;
  std::vector<std::string> runIds;
  for (int i = 0; i < kRuns; ++i) {
    Engine &starter = i % 2 == 0 ? first : second;
    auto started = starter.start(startRequest(hash.value(), R"({"n": 5})"));
    REQUIRE(started.ok());
    runIds.push_back(started.value());
  }
  auto allDone = [&] {
    for (const std::string &runId : runIds) {
      auto run = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
      REQUIRE(run.ok());
      if (!run.value() || run.value()->status != RunStatus::Completed) {
        return false;
      }
    }
    return true;
  };
  for (int i = 0; i < 2000 && !allDone(); ++i) {
    REQUIRE(first.step().ok());
    REQUIRE(second.step().ok());
    if (i % 50 == 49) {
      clock.advanceBy(kLeaseMs / 4); // leases and claims are renewed, not lost
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  REQUIRE(allDone());
  std::lock_guard lock(mutex);
  CHECK(executions.size() == static_cast<size_t>(kRuns * kStepsPerRun));
  for (const auto &[key, count] : executions) {
    CHECK_MESSAGE(count == 1, key);
  }
}
