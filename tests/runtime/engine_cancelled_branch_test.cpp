// A saga inside a parallel branch that is cancelled because its sibling failed, through the
// whole engine on SQLite: the branch's compensations run newest first and are recorded, the
// run fails with the sibling's error only after them, and the history replays exactly on
// the same module (docs/language-decisions.md, "Sagas in cancelled branches").
#include "engine_support.h"

#include "kotoba/runtime/replay.h"

#include <mutex>
#include <set>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

TEST_CASE("a cancelled branch's saga compensates through the engine and replays exactly") {
  TemporaryStore temp;
  VirtualClock clock{1'700'000'000'000};
  ActivityRegistry registry;
  std::mutex mutex;
  std::vector<std::string> calls;
  for (const char *name : {"book", "hold", "unhold", "unbook"}) {
    std::string activity = name;
    REQUIRE_FALSE(registry.bindFunction(activity, [&, activity](const Value &, ActivityContext &) {
      std::lock_guard lock(mutex);
      calls.push_back(activity);
      return Result<Value>(Value(Object()));
    }));
  }
  Engine engine(*temp.store, registry, clock);
  vm::Module compiled = compileWorkflow(R"({ workflow: { id: "w", strategy: {
    op: "parallel", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
          { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
          { op: "wait", signal: "go" } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] } } })");
  auto module = std::make_shared<const vm::Module>(compiled);
  auto added = engine.addModule(std::move(compiled));
  REQUIRE(added.ok());
  auto started = engine.start(StartRequest{added.value(), "", parse("{}"), {}, {}, {}});
  REQUIRE(started.ok());
  std::string runId = started.value();

  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Failed);
  CHECK(outcome.value().error->type == "Boom");
  CHECK(calls == std::vector<std::string>{"book", "hold", "unhold", "unbook"});

  std::vector<EventRecord> events = history(*temp.store, runId);
  std::vector<std::string> compensations;
  size_t compensatedAt = 0;
  size_t failedAt = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].type == EventType::CompensationStarted) {
      compensations.push_back("started " + events[i].stepId);
    } else if (events[i].type == EventType::CompensationCompleted) {
      compensations.push_back("completed " + events[i].stepId);
      compensatedAt = i;
    } else if (events[i].type == EventType::WorkflowFailed) {
      failedAt = i;
    }
  }
  CHECK(compensations == std::vector<std::string>{"started unhold", "completed unhold",
                                                  "started unbook", "completed unbook"});
  CHECK(compensatedAt < failedAt);

  auto run = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(run.ok());
  REQUIRE(run.value());
  Replay replay(module, 0, runInfoOf(*run.value(), module->workflows[0]), run.value()->inputs);
  bool replayed = replay.applyAll(events) && replay.expectEnded();
  CHECK_MESSAGE(replayed, (replay.mismatch() ? replay.mismatch()->message : std::string()));
}

TEST_CASE("sagas nested in a cancelled branch compensate through the engine and replay") {
  TemporaryStore temp;
  VirtualClock clock{1'700'000'000'000};
  ActivityRegistry registry;
  std::mutex mutex;
  std::vector<std::string> calls;
  for (const char *name : {"order", "unorder", "reserve", "release", "book", "unbook"}) {
    std::string activity = name;
    REQUIRE_FALSE(registry.bindFunction(activity, [&, activity](const Value &, ActivityContext &) {
      std::lock_guard lock(mutex);
      calls.push_back(activity);
      return Result<Value>(Value(Object()));
    }));
  }
  Engine engine(*temp.store, registry, clock);
  vm::Module compiled = compileWorkflow(R"({ workflow: { id: "w", strategy: {
    op: "parallel", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "order", compensate: { activity_ref: "unorder" } },
          { op: "parallel", branches: [
              { op: "saga", main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "reserve",
                    compensate: { activity_ref: "release" } },
                  { op: "wait", signal: "go" } ] } },
              { op: "saga", main_flow: { op: "seq", strategies: [
                  { op: "wait", timer: "PT10S" },
                  { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
                  { op: "wait", signal: "go" } ] } } ] } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] } } })");
  auto module = std::make_shared<const vm::Module>(compiled);
  auto added = engine.addModule(std::move(compiled));
  REQUIRE(added.ok());
  auto started = engine.start(StartRequest{added.value(), "", parse("{}"), {}, {}, {}});
  REQUIRE(started.ok());
  std::string runId = started.value();

  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Failed);
  CHECK(outcome.value().error->type == "Boom");
  // The nested sagas first (both at once), then the branch's own.
  REQUIRE(calls.size() == 6);
  CHECK(std::vector<std::string>(calls.begin(), calls.begin() + 3) ==
        std::vector<std::string>{"order", "reserve", "book"});
  CHECK(std::set<std::string>(calls.begin() + 3, calls.begin() + 5) ==
        std::set<std::string>{"release", "unbook"});
  CHECK(calls[5] == "unorder");

  std::vector<EventRecord> events = history(*temp.store, runId);
  auto run = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(run.ok());
  REQUIRE(run.value());
  Replay replay(module, 0, runInfoOf(*run.value(), module->workflows[0]), run.value()->inputs);
  bool replayed = replay.applyAll(events) && replay.expectEnded();
  CHECK_MESSAGE(replayed, (replay.mismatch() ? replay.mismatch()->message : std::string()));
}

TEST_CASE("a run whose compensating branch was cancelled is stored RUNNING again") {
  TemporaryStore temp;
  VirtualClock clock{1'700'000'000'000};
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction("book", [](const Value &, ActivityContext &) {
    return Result<Value>(Value(Object()));
  }));
  REQUIRE_FALSE(registry.bindFunction("unbook", [](const Value &, ActivityContext &) {
    WorkflowError busy = makeError("Busy", "try later");
    busy.retryable = true;
    return Result<Value>(busy);
  }));
  Engine engine(*temp.store, registry, clock);
  vm::Module compiled = compileWorkflow(R"({ workflow: { id: "w", strategy: { op: "seq",
    strategies: [
      { op: "try", body: { op: "parallel", branches: [
          { op: "saga", main_flow: { op: "seq", strategies: [
              { op: "activity", activity_ref: "book",
                compensate: { activity_ref: "unbook",
                              retry_policy: { initial_interval: "1h", maximum_attempts: 5 } } },
              { op: "fail", error: "Nope" } ] } },
          { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                    { op: "fail", error: "Boom" }] } ] },
        catch: [{ errors: ["Boom"], do: { op: "set", vars: { caught: true } } }] },
      { op: "wait", signal: "go" } ] } } })");
  auto added = engine.addModule(std::move(compiled));
  REQUIRE(added.ok());
  auto started = engine.start(StartRequest{added.value(), "", parse("{}"), {}, {}, {}});
  REQUIRE(started.ok());
  std::string runId = started.value();

  // The sibling's failure cancels the branch while its compensation waits for a retry: the
  // run goes on to wait for the signal as RUNNING, not COMPENSATING.
  REQUIRE(engine.runUntilIdle().ok());
  auto waiting = engine.outcome(runId);
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == RunStatus::Running);
  auto run = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(run.ok());
  REQUIRE(run.value());
  CHECK(run.value()->status == RunStatus::Running);
}
