// A saga inside a parallel branch that is cancelled because its sibling failed, through the
// whole engine on SQLite: the branch's compensations run newest first and are recorded, the
// run fails with the sibling's error only after them, and the history replays exactly on
// the same module (docs/language-decisions.md, "Sagas in cancelled branches"). A branch
// already compensating when it is cancelled (by its sibling or a cancel request) finishes
// its compensations, none of them asked to stop.
#include "engine_support.h"

#include "kotoba/runtime/replay.h"

#include <chrono>
#include <set>
#include <thread>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

// A run of one workflow on the engine fixture, with its module kept to replay its history.
struct RecordedRun : EngineFixture {
  std::shared_ptr<const vm::Module> module;
  std::string runId;

  // Binds each name to a function that logs its call and returns {}.
  void bindLogging(std::initializer_list<const char *> names) {
    for (const char *name : names) {
      std::string activity = name;
      REQUIRE_FALSE(registry.bindFunction(activity, [this, activity](const Value &,
                                                                     ActivityContext &) {
        log.add(activity);
        return Result<Value>(Value(Object()));
      }));
    }
  }

  void start(const std::string &source) {
    load(source);
    module = std::make_shared<const vm::Module>(compileWorkflow(source));
    auto started = engine->start(StartRequest{hash, "", parse("{}"), {}, {}, {}});
    REQUIRE(started.ok());
    runId = started.value();
  }

  // Runs to the end, which must be the sibling's failure Boom.
  void runToBoom() {
    auto outcome = engine->runToCompletion(runId);
    REQUIRE(outcome.ok());
    CHECK(outcome.value().status == RunStatus::Failed);
    CHECK(outcome.value().error->type == "Boom");
  }

  void checkReplays() {
    auto run = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
    REQUIRE(run.ok());
    REQUIRE(run.value());
    Replay replay(module, 0, runInfoOf(*run.value(), module->workflows[0]), run.value()->inputs);
    bool replayed = replay.applyAll(history(*temp.store, runId)) && replay.expectEnded();
    CHECK_MESSAGE(replayed, (replay.mismatch() ? replay.mismatch()->message : std::string()));
  }
};

} // namespace

TEST_CASE("a cancelled branch's saga compensates through the engine and replays exactly") {
  RecordedRun fixture;
  fixture.bindLogging({"book", "hold", "unhold", "unbook"});
  fixture.start(R"({ workflow: { id: "w", strategy: {
    op: "parallel", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
          { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
          { op: "wait", signal: "go" } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] } } })");
  fixture.runToBoom();
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book", "hold", "unhold", "unbook"});

  std::vector<EventRecord> events = history(*fixture.temp.store, fixture.runId);
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
  fixture.checkReplays();
}

TEST_CASE("sagas nested in a cancelled branch compensate through the engine and replay") {
  RecordedRun fixture;
  fixture.bindLogging({"order", "unorder", "reserve", "release", "book", "unbook"});
  fixture.start(R"({ workflow: { id: "w", strategy: {
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
  fixture.runToBoom();
  // The nested sagas first (both at once), then the branch's own.
  std::vector<std::string> calls = fixture.log.snapshot();
  REQUIRE(calls.size() == 6);
  CHECK(std::vector<std::string>(calls.begin(), calls.begin() + 3) ==
        std::vector<std::string>{"order", "reserve", "book"});
  CHECK(std::set<std::string>(calls.begin() + 3, calls.begin() + 5) ==
        std::set<std::string>{"release", "unbook"});
  CHECK(calls[5] == "unorder");
  fixture.checkReplays();
}

namespace {

// Branch 0's saga fails by itself; its compensation is busy once and retried two minutes
// later, so the sibling's failure at one minute (or a cancel request) finds it compensating.
const char *const kCompensatingBranch = R"({ workflow: { id: "w", strategy: {
  op: "parallel", branches: [
    { op: "seq", strategies: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "book",
              compensate: { activity_ref: "unbook",
                            retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
            { op: "fail", error: "Nope" } ] },
          compensation: { op: "activity", activity_ref: "notify" } },
        { op: "activity", activity_ref: "next" } ] },
    { op: "seq", strategies: [{ op: "wait", timer: "PT1M" }, WAIT_THEN ] } ] } } })";

struct CompensatingBranch : RecordedRun {
  explicit CompensatingBranch(const std::string &afterMinute) {
    for (const char *name : {"book", "unbook", "notify", "next"}) {
      std::string activity = name;
      REQUIRE_FALSE(registry.bindFunction(
          activity, [this, activity](const Value &input, ActivityContext &context) {
            log.add(activity);
            if (activity == "unbook" && context.attempt() < 2) {
              WorkflowError busy = makeError("Busy", "try later");
              busy.retryable = true;
              return Result<Value>(busy);
            }
            return Result<Value>(input);
          }));
    }
    std::string source = kCompensatingBranch;
    source.replace(source.find("WAIT_THEN"), 9, afterMinute);
    start(source);
  }

  // The compensations recorded, and whether any activity was asked to stop.
  void checkCompensatedWithoutCancel() {
    std::vector<std::string> compensations;
    size_t cancelRequests = 0;
    for (const EventRecord &event : history(*temp.store, runId)) {
      if (event.type == EventType::CompensationStarted) {
        compensations.push_back("started " + event.stepId);
      } else if (event.type == EventType::CompensationCompleted) {
        compensations.push_back("completed " + event.stepId);
      }
      cancelRequests += event.type == EventType::ActivityCancelRequested;
    }
    CHECK(compensations == std::vector<std::string>{"started unbook", "completed unbook"});
    CHECK(cancelRequests == 0);
  }

};

} // namespace

TEST_CASE("a branch cancelled while compensating finishes through the engine and replays") {
  CompensatingBranch fixture(R"({ op: "fail", error: "Boom" })");
  fixture.runToBoom();
  // unbook is retried after the sibling failed, the block runs, and `next` never does.
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book", "unbook", "unbook", "notify"});
  fixture.checkCompensatedWithoutCancel();
  fixture.checkReplays();
}

TEST_CASE("a run cancelled while a branch compensates finishes it, ends Cancelled, replays") {
  CompensatingBranch fixture(R"({ op: "wait", signal: "never" })");
  // Step (without letting virtual time pass) until the branch compensates.
  auto storedStatus = [&] {
    auto run = fixture.temp.store->query(
        [&](const StoreReader &reader) { return reader.run(fixture.runId); });
    REQUIRE(run.ok());
    REQUIRE(run.value());
    return run.value()->status;
  };
  for (int tries = 0; tries < 10'000 && storedStatus() != RunStatus::Compensating; ++tries) {
    auto stepped = fixture.engine->step();
    REQUIRE(stepped.ok());
    if (!stepped.value()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1)); // an activity still runs
    }
  }
  REQUIRE(storedStatus() == RunStatus::Compensating);
  REQUIRE(fixture.engine->cancel(fixture.runId).ok());
  auto outcome = fixture.engine->runToCompletion(fixture.runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Cancelled);
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book", "unbook", "unbook", "notify"});
  fixture.checkCompensatedWithoutCancel();
  fixture.checkReplays();
}
