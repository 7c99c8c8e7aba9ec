// A saga inside a parallel branch or foreach iteration that is cancelled (because another
// branch failed, or an `any` parallel was won) compensates like any saga whose main flow
// fails: newest first, before the branch ends. The parallel waits for those compensations
// before it delivers its outcome (docs/language-decisions.md). Branches with nothing to
// compensate are cancelled exactly as before, so older histories replay unchanged.
#include "harness.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

namespace {

// Branch 0 books and holds inside its own saga, then waits for a signal that never comes;
// branch 1 fails after a minute. A try around the parallel runs `after` once it has failed.
const char *const kBookingRace = R"({ workflow: { id: "w",
  strategy: { op: "seq", strategies: [
    { op: "try", body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
            { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
            { op: "wait", signal: "go" } ] },
          compensation: { op: "activity", activity_ref: "notify",
                          input_mapping: { why: $.error.type } } },
        { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                  { op: "fail", error: "Boom" }] } ] },
      catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] } ] } } })";

} // namespace

TEST_CASE("a branch cancelled by a failing sibling compensates its saga newest first") {
  Harness harness(kBookingRace);
  harness.recordInputs = true;
  CHECK(harness.run() == RunStatus::Completed);
  // The saga's compensation block sees the cancellation as its error; `after` runs only once
  // the cancelled branch has finished compensating.
  CHECK(harness.calls == std::vector<std::string>{"book({})", "hold({})", "unhold({})",
                                                  "unbook({})", R"(notify({"why":"Cancelled"}))",
                                                  "after({})"});
  std::vector<vm::Command> notes = harness.commandsOf(vm::CommandKind::RecordCompensation);
  REQUIRE(notes.size() == 4);
  CHECK(notes[0].step == "unhold");
  CHECK(notes[0].detail == "started");
  CHECK(notes[3].step == "unbook");
  CHECK(notes[3].detail == "completed");
  // The signal wait was withdrawn.
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
}

TEST_CASE("the parallel fails with the sibling's error after the cancelled branch compensated") {
  std::string source = kBookingRace;
  source.replace(source.find(R"(errors: ["Boom"])"), 16, R"(errors: ["Other"])");
  Harness harness(source);
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{"book", "hold", "unhold", "unbook", "notify"});
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Boom");
}

TEST_CASE("the losing branch of an any-parallel compensates and the winner's value stands") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "v" }],
    output_mapping: { v: $.results.race },
    strategy: { op: "parallel", id: "race", completion_condition: "any", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "reserve", compensate: { activity_ref: "release" } },
          { op: "wait", timer: "PT1H" },
          { op: "activity", activity_ref: "slow" } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "activity", activity_ref: "fast",
                                  input_mapping: { won: true } }] } ] } } })");
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"reserve", "fast", "release"});
  CHECK(toJson(harness.outputs()) == R"({"v":{"won":true}})");
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
}

TEST_CASE("a foreach iteration cancelled by a failing one compensates its own saga") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "foreach", items: $.inputs.items, max_concurrency: 2,
      body: { op: "saga", main_flow: { op: "seq", strategies: [
        { op: "activity", activity_ref: "reserve", input_mapping: { sku: $.item },
          compensate: { activity_ref: "release", input_mapping: { sku: $.result.sku } } },
        { op: "wait", timer: "PT1M" },
        { op: "activity", activity_ref: "charge", input_mapping: { sku: $.item },
          retry_policy: { initial_interval: "1h", maximum_attempts: 5 } } ] } } } } })");
  harness.recordInputs = true;
  harness.activities["charge"] = [](const Value &input, int64_t) -> Result<Value> {
    // a is declined at once; b keeps being busy, so it is in flight when a fails.
    bool declined = input.asObject().find("sku")->asString() == "a";
    WorkflowError error = makeError(declined ? "Declined" : "Busy", "no");
    error.retryable = !declined;
    return error;
  };
  CHECK(harness.run(json(R"({"items": ["a", "b"]})")) == RunStatus::Failed);
  // a's own saga compensates its failure; then b, cancelled with its charge in flight,
  // compensates too, with its own item.
  std::vector<std::string> releases;
  for (const std::string &call : harness.calls) {
    if (call.rfind("release", 0) == 0) {
      releases.push_back(call);
    }
  }
  CHECK(releases == std::vector<std::string>{R"(release({"sku":"a"}))", R"(release({"sku":"b"}))"});
  CHECK(harness.error()->type == "Declined");
}

TEST_CASE("a cancelled branch whose saga registered nothing is cancelled as before") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "parallel", branches: [
      { op: "saga", main_flow: { op: "wait", signal: "go" },
        compensation: { op: "activity", activity_ref: "notify" } },
      { op: "fail", error: "Boom" } ] } } })");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls.empty());
  CHECK(harness.commandsOf(vm::CommandKind::RecordCompensation).empty());
  CHECK(harness.error()->type == "Boom");
}

namespace {

// Branch 0 runs a saga of its own around a nested parallel of two sagas, all holding
// compensations while they wait for a signal that never comes; branch 1 fails after a minute.
const char *const kNestedRace = R"({ workflow: { id: "w",
  strategy: { op: "try", body: { op: "parallel", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "order", compensate: { activity_ref: "unorder" } },
          { op: "parallel", branches: [
              { op: "saga", main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "reserve",
                    compensate: { activity_ref: "release" } },
                  { op: "wait", signal: "go" } ] } },
              { op: "saga", main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
                  { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
                  { op: "wait", signal: "go" } ] } } ] } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] },
    catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] } } })";

} // namespace

TEST_CASE("sagas in a parallel nested within a cancelled branch compensate innermost first") {
  Harness harness(kNestedRace);
  harness.recordInputs = true;
  CHECK(harness.run() == RunStatus::Completed);
  // The nested sagas undo their steps (each newest first) before the branch's own saga
  // undoes `order`, and `after` runs only once all of them have finished.
  CHECK(harness.calls == std::vector<std::string>{"order({})", "reserve({})", "book({})",
                                                  "hold({})", "release({})", "unhold({})",
                                                  "unbook({})", "unorder({})", "after({})"});
  // Both signal waits were withdrawn; nothing else was in flight.
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 2);
  std::vector<vm::Command> notes = harness.commandsOf(vm::CommandKind::RecordCompensation);
  CHECK(notes.size() == 8);
}

TEST_CASE("a cancelled branch without a saga still waits for its nested parallel's sagas") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "parallel", branches: [
      { op: "seq", strategies: [
          { op: "activity", activity_ref: "prepare" },
          { op: "parallel", branches: [
              { op: "saga", main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "reserve",
                    compensate: { activity_ref: "release" } },
                  { op: "wait", signal: "go" } ] } },
              { op: "wait", signal: "go" } ] } ] },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] } } })");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{"prepare", "reserve", "release"});
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Boom");
}

TEST_CASE("a foreach iteration cancelled inside a nested parallel compensates its saga") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "foreach", items: $.inputs.items, max_concurrency: 2,
      body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "reserve", input_mapping: { sku: $.item },
              compensate: { activity_ref: "release",
                            input_mapping: { sku: $.result.sku } } },
            { op: "wait", timer: "PT1H" } ] } },
        { op: "seq", strategies: [
            { op: "wait", timer: "PT1M" },
            { op: "activity", activity_ref: "check", input_mapping: { sku: $.item } } ] }
      ] } } } })");
  harness.recordInputs = true;
  harness.activities["check"] = [](const Value &input, int64_t) -> Result<Value> {
    if (input.asObject().find("sku")->asString() == "a") {
      return makeError("Declined", "no");
    }
    return input;
  };
  CHECK(harness.run(json(R"({"items": ["a", "b"]})")) == RunStatus::Failed);
  // Iteration a's parallel fails, cancelling a's own saga branch; the foreach then cancels
  // iteration b, whose nested saga compensates too, before the run fails.
  std::vector<std::string> releases;
  for (const std::string &call : harness.calls) {
    if (call.rfind("release", 0) == 0) {
      releases.push_back(call);
    }
  }
  CHECK(releases == std::vector<std::string>{R"(release({"sku":"a"}))", R"(release({"sku":"b"}))"});
  CHECK(harness.error()->type == "Declined");
}

TEST_CASE("a run whose cancelled branch was compensating is no longer COMPENSATING") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "seq", strategies: [
    { op: "try", body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "book",
              compensate: { activity_ref: "unbook",
                            retry_policy: { initial_interval: "1h", maximum_attempts: 5 } } },
            { op: "fail", error: "Nope" } ] } },
        { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                  { op: "fail", error: "Boom" }] } ] },
      catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] },
    { op: "wait", signal: "go" } ] } } })");
  harness.horizonMs = 10 * 60 * 1000;
  harness.activities["unbook"] = [](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError("Busy", "try later");
    error.retryable = true;
    return error;
  };
  // The saga's compensation is still being retried when the sibling fails: the cancel stops
  // it, and the run goes on RUNNING rather than staying COMPENSATING.
  CHECK(harness.run() == RunStatus::Running);
  CHECK(harness.calls == std::vector<std::string>{"book", "unbook", "after"});
  CHECK(harness.signal("go", Value(Object())) == RunStatus::Completed);
}
