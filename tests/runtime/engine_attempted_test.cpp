// `compensate_on: "attempted"` through the whole engine on SQLite: a step whose attempt was
// cancelled (a parallel branch that lost, a cancelled run) still has its compensation run,
// and the history records it like any other.
#include "engine_support.h"

#include <algorithm>
#include <chrono>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

struct Fixture : EngineFixture {
  void bind(const std::string &name, std::function<Result<Value>(ActivityContext &)> body) {
    REQUIRE_FALSE(
        registry.bindFunction(name, [this, name, body](const Value &, ActivityContext &context) {
          log.add(name);
          return body(context);
        }));
  }
  void echo(const std::string &name) {
    bind(name, [](ActivityContext &) { return Result<Value>(Value(Object())); });
  }
  // Runs until the engine cancels it, then reports the cancellation as activities should.
  void untilCancelled(const std::string &name) {
    bind(name, [](ActivityContext &context) -> Result<Value> {
      while (!context.waitForCancellation(std::chrono::milliseconds(10'000))) {
      }
      return stoppedError(context.identity(), context.stopReason());
    });
  }
  std::string start() {
    auto started = engine->start(StartRequest{hash, "", parse("{}"), {}, {}, {}});
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
    return started.value();
  }
  // The compensation events of the run, as "started STEP" / "completed STEP".
  std::vector<std::string> compensations(const std::string &runId) {
    std::vector<std::string> found;
    for (const EventRecord &event : history(*temp.store, runId)) {
      if (event.type == EventType::CompensationStarted) {
        found.push_back("started " + event.stepId);
      } else if (event.type == EventType::CompensationCompleted) {
        found.push_back("completed " + event.stepId);
      }
    }
    return found;
  }
};

WorkflowError final(const std::string &type) {
  WorkflowError error = makeError(type, type + " happened");
  error.retryable = false;
  return error;
}

} // namespace

TEST_CASE("a branch cancelled because its sibling failed compensates its attempted step") {
  Fixture fixture;
  fixture.untilCancelled("charge");
  fixture.untilCancelled("reserve");
  fixture.echo("refund");
  fixture.echo("release");
  fixture.bind("boom", [](ActivityContext &) -> Result<Value> {
    // Late enough that both siblings are running when the parallel fails.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return final("Boom");
  });
  fixture.load(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "parallel", branches: [
      { op: "activity", activity_ref: "charge", compensate_on: "attempted",
        compensate: { activity_ref: "refund" } },
      { op: "activity", activity_ref: "reserve", compensate: { activity_ref: "release" } },
      { op: "activity", activity_ref: "boom" } ] } } } })");
  std::string runId = fixture.start();
  auto outcome = fixture.engine->runToCompletion(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Failed);
  CHECK(outcome.value().error->type == "Boom");
  std::vector<std::string> calls = fixture.log.snapshot();
  REQUIRE(calls.size() == 4);
  std::sort(calls.begin(), calls.begin() + 3); // the branches start concurrently
  CHECK(calls == std::vector<std::string>{"boom", "charge", "reserve", "refund"});
  CHECK(fixture.compensations(runId) ==
        std::vector<std::string>{"started refund", "completed refund"});
  // The cancelled attempt is in the history too.
  bool cancelledCharge = false;
  for (const EventRecord &event : history(*fixture.temp.store, runId)) {
    cancelledCharge = cancelledCharge || (event.stepId == "charge" &&
                                          event.type == EventType::ActivityCancelRequested);
  }
  CHECK(cancelledCharge);
}

TEST_CASE("cancelling a run compensates its attempted step that was in flight") {
  Fixture fixture;
  fixture.echo("book");
  fixture.echo("unbook");
  fixture.echo("refund");
  fixture.untilCancelled("charge");
  fixture.load(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "activity", activity_ref: "charge", compensate_on: "attempted",
        compensate: { activity_ref: "refund" } } ] } } } })");
  std::string runId = fixture.start();
  // Cancel once charge is running.
  std::thread canceller([&] {
    for (int i = 0; i < 1000; ++i) {
      std::vector<std::string> calls = fixture.log.snapshot();
      if (std::find(calls.begin(), calls.end(), "charge") != calls.end()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(fixture.engine->cancel(runId).ok());
  });
  auto outcome = fixture.engine->runToCompletion(runId);
  canceller.join();
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Cancelled);
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book", "charge", "refund", "unbook"});
  CHECK(fixture.compensations(runId) ==
        std::vector<std::string>{"started refund", "completed refund", "started unbook",
                                 "completed unbook"});
}
