// A saga inside a parallel branch that is cancelled because its sibling failed, through the
// whole engine on SQLite: the branch's compensations run newest first and are recorded, the
// run fails with the sibling's error only after them, and the history replays exactly on
// the same module (docs/language-decisions.md, "Sagas in cancelled branches").
#include "engine_support.h"

#include "kotoba/runtime/replay.h"

#include <mutex>

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
  auto started = engine.start(StartRequest{added.value(), "", parse("{}"), {}, {}});
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
