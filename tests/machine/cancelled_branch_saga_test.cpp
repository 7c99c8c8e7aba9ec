// A saga inside a parallel branch or foreach iteration that is cancelled (because another
// branch failed, or an `any` parallel was won) compensates like any saga whose main flow
// fails: newest first, before the branch ends. The parallel waits for those compensations
// before it delivers its outcome (docs/language-decisions.md). Branches with nothing to
// compensate are cancelled exactly as before, so older histories replay unchanged. A branch
// cancelled while it already compensates (its own main flow failed first) finishes those
// compensations and its `compensation` block, then ends at its saga's re-raise.
#include "harness.h"

#include <algorithm>

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

// An activity that is busy (a retryable failure) until its `attempt`-th attempt succeeds.
// With `key` and `value`, only calls whose input has that value at that key are busy.
ActivityFunction busyUntil(int64_t attempt, const std::string &key = {}, Value value = {}) {
  return [attempt, key, value](const Value &input, int64_t tried) -> Result<Value> {
    const Value *field = key.empty() ? nullptr : input.asObject().find(key);
    if (tried < attempt && (key.empty() || (field != nullptr && *field == value))) {
      WorkflowError error = makeError("Busy", "try later");
      error.retryable = true;
      return error;
    }
    return input;
  };
}

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
  CHECK(harness.callsTo("release") ==
        std::vector<std::string>{R"(release({"sku":"a"}))", R"(release({"sku":"b"}))"});
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
  CHECK(harness.callsTo("release") ==
        std::vector<std::string>{R"(release({"sku":"a"}))", R"(release({"sku":"b"}))"});
  CHECK(harness.error()->type == "Declined");
}

namespace {

// Branch 0 fails its own saga at once, so it is compensating (`unhold` is busy on its first
// attempt and retried two minutes later) when branch 1 fails after one minute. A try inside
// branch 0 would catch its saga's error and go on; `next` follows the saga.
const char *const kCompensatingRace = R"({ workflow: { id: "w",
  strategy: { op: "try", body: { op: "parallel", branches: [
      { op: "seq", strategies: [
          { op: "try", body: { op: "saga",
              COMPENSATION_OPTIONS
              main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "book",
                    compensate: { activity_ref: "unbook", RETRY } },
                  { op: "activity", activity_ref: "hold",
                    compensate: { activity_ref: "unhold", RETRY } },
                  { op: "fail", error: "Nope" } ] },
              compensation: { op: "activity", activity_ref: "notify", RETRY,
                              input_mapping: { why: $.error.type } } },
            catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "recover" } }] },
          { op: "activity", activity_ref: "next" } ] },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] },
    catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] } } })";

std::string compensatingRace(const std::string &options = "") {
  std::string text = kCompensatingRace;
  text.replace(text.find("COMPENSATION_OPTIONS"), 20, options);
  for (size_t at = text.find("RETRY"); at != std::string::npos; at = text.find("RETRY")) {
    text.replace(at, 5, R"(retry_policy: { initial_interval: "2m", maximum_attempts: 3 })");
  }
  return text;
}

std::vector<std::string> compensationNotes(const Harness &harness) {
  std::vector<std::string> notes;
  for (const vm::Command &note : harness.commandsOf(vm::CommandKind::RecordCompensation)) {
    notes.push_back(note.step + ":" + note.detail);
  }
  return notes;
}

vm::Input control(vm::InputKind kind) {
  vm::Input input;
  input.kind = kind;
  return input;
}

} // namespace

TEST_CASE("a branch cancelled while compensating finishes its compensations, then ends") {
  Harness harness(compensatingRace());
  harness.recordInputs = true;
  harness.activities["unhold"] = busyUntil(2);
  harness.horizonMs = 90'000;
  // At 1m30s the sibling has failed, and the branch still waits for unhold's retry.
  CHECK(harness.run() == RunStatus::Compensating);
  CHECK(harness.calls == std::vector<std::string>{"book({})", "hold({})", "unhold({})"});
  CHECK(harness.advance(60 * 60'000) == RunStatus::Completed);
  // unhold is retried and unbook and the compensation block run, seeing the branch's own
  // error; the saga's error ends the branch: neither the try inside it nor `next` runs.
  CHECK(harness.calls == std::vector<std::string>{"book({})", "hold({})", "unhold({})",
                                                  "unhold({})", "unbook({})",
                                                  R"(notify({"why":"Nope"}))", "after({})"});
  CHECK(compensationNotes(harness) == std::vector<std::string>{"unhold:started", "unhold:completed",
                                                               "unbook:started",
                                                               "unbook:completed"});
  // Nothing was in flight to withdraw: the compensation was not cancelled.
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("the parallel fails with the sibling's error once the compensating branch ended") {
  std::string source = compensatingRace();
  source.replace(source.find(R"(errors: ["Boom"])"), 16, R"(errors: ["Other"])");
  Harness harness(source);
  harness.activities["unhold"] = busyUntil(2);
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls ==
        std::vector<std::string>{"book", "hold", "unhold", "unhold", "unbook", "notify"});
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Boom");
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a branch cancelled in its saga's compensation block runs the block to its end") {
  Harness harness(compensatingRace());
  harness.activities["notify"] = busyUntil(2);
  CHECK(harness.run() == RunStatus::Completed);
  // notify was in its retry when the sibling failed; it is retried, not cancelled.
  CHECK(harness.calls ==
        std::vector<std::string>{"book", "hold", "unhold", "unbook", "notify", "notify", "after"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a branch cancelled while compensating in parallel finishes every compensation") {
  Harness harness(compensatingRace(R"(compensation_policy: "parallel",)"));
  harness.activities["unhold"] = busyUntil(2);
  harness.activities["unbook"] = busyUntil(3);
  CHECK(harness.run() == RunStatus::Completed);
  // Both start together; unhold succeeds at 2m, unbook at 6m; then notify and `after`.
  CHECK(harness.calls == std::vector<std::string>{"book", "hold", "unhold", "unbook", "unhold",
                                                  "unbook", "unbook", "notify", "after"});
  CHECK(compensationNotes(harness) == std::vector<std::string>{"unhold:started", "unbook:started",
                                                               "unhold:completed",
                                                               "unbook:completed"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a failing compensation of a cancelled branch stops the rest under stop") {
  Harness harness(compensatingRace(R"(on_compensation_failure: "stop",)"));
  harness.activities["unhold"] = busyUntil(4); // fails for good on its third attempt
  CHECK(harness.run() == RunStatus::Completed);
  // unhold is retried to its limit after the cancel; unbook is skipped; the block runs.
  CHECK(harness.calls ==
        std::vector<std::string>{"book", "hold", "unhold", "unhold", "unhold", "notify", "after"});
  CHECK(compensationNotes(harness) == std::vector<std::string>{"unhold:started", "unhold:failed"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a failing compensation of a cancelled branch lets the rest run under continue") {
  Harness harness(compensatingRace());
  harness.activities["unhold"] = busyUntil(4);
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"book", "hold", "unhold", "unhold", "unhold",
                                                  "unbook", "notify", "after"});
  CHECK(compensationNotes(harness) == std::vector<std::string>{"unhold:started", "unhold:failed",
                                                               "unbook:started",
                                                               "unbook:completed"});
}

TEST_CASE("an inner saga cancelled while compensating finishes, then the outer compensates") {
  Harness harness(R"({ workflow: { id: "w",
    strategy: { op: "try", body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "order", compensate: { activity_ref: "unorder" } },
            { op: "try", body: { op: "saga", main_flow: { op: "seq", strategies: [
                { op: "activity", activity_ref: "reserve",
                  compensate: { activity_ref: "release",
                    retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
                { op: "fail", error: "Nope" } ] } },
              catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "recover" } }] },
            { op: "activity", activity_ref: "next" } ] },
          compensation: { op: "activity", activity_ref: "notify",
                          input_mapping: { why: $.error.type } } },
        { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                  { op: "fail", error: "Boom" }] } ] },
      catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] } } })");
  harness.recordInputs = true;
  harness.activities["release"] = busyUntil(2);
  CHECK(harness.run() == RunStatus::Completed);
  // The inner saga finishes release; its error does not reach the try: the branch is
  // cancelled, so the outer saga compensates next with the cancellation as its error.
  CHECK(harness.calls == std::vector<std::string>{"order({})", "reserve({})", "release({})",
                                                  "release({})", "unorder({})",
                                                  R"(notify({"why":"Cancelled"}))", "after({})"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a foreach iteration cancelled while compensating finishes its compensation") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "foreach", items: $.inputs.items, max_concurrency: 2,
      body: { op: "seq", strategies: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "reserve", input_mapping: { sku: $.item },
              compensate: { activity_ref: "release", input_mapping: { sku: $.result.sku },
                retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
            { op: "activity", activity_ref: "charge", input_mapping: { sku: $.item } } ] } },
        { op: "activity", activity_ref: "next", input_mapping: { sku: $.item } } ] } } } })");
  harness.recordInputs = true;
  // Both charges are declined; a is released at once, b's release is busy once.
  harness.activities["charge"] = [](const Value &, int64_t) -> Result<Value> {
    return makeError("Declined", "no");
  };
  harness.activities["release"] = busyUntil(2, "sku", Value("b"));
  CHECK(harness.run(json(R"({"items": ["a", "b"]})")) == RunStatus::Failed);
  // Iteration a fails and cancels b while b compensates: b's release is retried, not
  // cancelled, and b ends at its saga without reaching `next`.
  CHECK(harness.calls ==
        std::vector<std::string>{R"(reserve({"sku":"a"}))", R"(reserve({"sku":"b"}))",
                                 R"(charge({"sku":"a"}))", R"(charge({"sku":"b"}))",
                                 R"(release({"sku":"a"}))", R"(release({"sku":"b"}))",
                                 R"(release({"sku":"b"}))"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Declined");
}

TEST_CASE("a branch whose nested parallel compensates waits for it, then compensates itself") {
  Harness harness(R"({ workflow: { id: "w",
    strategy: { op: "try", body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "order", compensate: { activity_ref: "unorder" } },
            { op: "parallel", branches: [
                { op: "saga", main_flow: { op: "seq", strategies: [
                    { op: "activity", activity_ref: "reserve",
                      compensate: { activity_ref: "release",
                        retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
                    { op: "fail", error: "Nope" } ] } },
                { op: "wait", signal: "go" } ] } ] } },
        { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                  { op: "fail", error: "Boom" }] } ] },
      catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] } } })");
  harness.activities["release"] = busyUntil(2);
  CHECK(harness.run() == RunStatus::Completed);
  // The nested branch finishes release before the outer branch's saga undoes `order`.
  CHECK(harness.calls ==
        std::vector<std::string>{"order", "reserve", "release", "release", "unorder", "after"});
  // Only the nested signal wait was withdrawn.
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
}

namespace {

// Branch 0 compensates after its own failure (unbook or notify busy once, retried after two
// minutes); branch 1 waits for a signal. The run is cancelled (or times out) at 30s.
const char *const kCompensatingWhileWaiting = R"({ workflow: { id: "w",
  strategy: { op: "try", body: { op: "parallel", branches: [
      { op: "seq", strategies: [
          { op: "try", body: { op: "saga",
              main_flow: { op: "seq", strategies: [
                  { op: "activity", activity_ref: "book",
                    compensate: { activity_ref: "unbook",
                      retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
                  { op: "fail", error: "Nope" } ] },
              compensation: { op: "activity", activity_ref: "notify",
                retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
            catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "recover" } }] },
          { op: "activity", activity_ref: "next" } ] },
      { op: "wait", signal: "go" } ] },
    catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "after" } }] } } })";

// Runs kCompensatingWhileWaiting with `busy` (unbook or notify) busy once and sends `ending`
// twice at 30s: the branch finishes compensating before the run ends `final`.
void endRunWhileCompensating(vm::InputKind ending, const std::string &busy, RunStatus whileBusy,
                             RunStatus final, const std::string &errorType) {
  Harness harness(kCompensatingWhileWaiting);
  harness.activities[busy] = busyUntil(2);
  harness.horizonMs = 30'000;
  CHECK(harness.run() == whileBusy);
  CHECK(harness.send(control(ending)) == whileBusy);
  CHECK(harness.send(control(ending)) == whileBusy); // a second request changes nothing
  CHECK(harness.advance(60 * 60'000) == final);
  // The busy call is retried and the block runs; the branch then fails with the ending
  // error, which neither its own try nor the outer one catches. Only the signal wait was
  // withdrawn.
  std::vector<std::string> expected{"book", "unbook", "notify"};
  expected.insert(std::find(expected.begin(), expected.end(), busy), busy);
  CHECK(harness.calls == expected);
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
  REQUIRE(harness.error());
  CHECK(harness.error()->type == errorType);
}

} // namespace

TEST_CASE("a run cancelled while a branch compensates lets it finish, then ends Cancelled") {
  endRunWhileCompensating(vm::InputKind::CancelRequested, "unbook", RunStatus::Compensating,
                          RunStatus::Cancelled, "Cancelled");
}

TEST_CASE("the workflow timeout in a branch's compensation block lets it finish first") {
  // Past its compensations, in the block, the run is RUNNING again.
  endRunWhileCompensating(vm::InputKind::TimeoutReached, "notify", RunStatus::Running,
                          RunStatus::TimedOut, "WorkflowTimedOut");
}

TEST_CASE("a run cancelled while a cancelled branch compensates changes nothing for it") {
  Harness harness(compensatingRace());
  harness.activities["unhold"] = busyUntil(2);
  harness.horizonMs = 90'000;
  CHECK(harness.run() == RunStatus::Compensating);
  CHECK(harness.send(control(vm::InputKind::CancelRequested)) == RunStatus::Compensating);
  CHECK(harness.advance(60 * 60'000) == RunStatus::Cancelled);
  // The compensations and the block finish; the run then ends Cancelled, without `after`.
  CHECK(harness.calls ==
        std::vector<std::string>{"book", "hold", "unhold", "unhold", "unbook", "notify"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
  CHECK(harness.error()->type == "Cancelled");
}

TEST_CASE("a cancelled branch's compensation keeps the run COMPENSATING until it ends") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "seq", strategies: [
    { op: "try", body: { op: "parallel", branches: [
        { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", activity_ref: "book",
              compensate: { activity_ref: "unbook",
                            retry_policy: { initial_interval: "1h", maximum_attempts: 3 } } },
            { op: "fail", error: "Nope" } ] } },
        { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                  { op: "fail", error: "Boom" }] } ] },
      catch: [{ errors: ["Boom"], do: { op: "activity", activity_ref: "after" } }] },
    { op: "wait", signal: "go" } ] } } })");
  harness.horizonMs = 10 * 60 * 1000;
  harness.activities["unbook"] = busyUntil(5); // fails for good on its third attempt
  // The saga's compensation is still being retried when the sibling fails: the cancel does
  // not stop it, and the run stays COMPENSATING until it has failed for good.
  CHECK(harness.run() == RunStatus::Compensating);
  CHECK(harness.calls == std::vector<std::string>{"book", "unbook"});
  CHECK(harness.advance(5 * 60 * 60'000) == RunStatus::Running);
  CHECK(harness.calls == std::vector<std::string>{"book", "unbook", "unbook", "unbook", "after"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
  CHECK(harness.signal("go", Value(Object())) == RunStatus::Completed);
}

TEST_CASE("a losing branch that compensates finishes before the any-parallel's winner stands") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "v" }],
    output_mapping: { v: $.results.race },
    strategy: { op: "parallel", id: "race", completion_condition: "any", branches: [
      { op: "seq", strategies: [
          { op: "saga", main_flow: { op: "seq", strategies: [
              { op: "activity", activity_ref: "reserve",
                compensate: { activity_ref: "release",
                  retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
              { op: "fail", error: "Nope" } ] } },
          { op: "activity", activity_ref: "next" } ] },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "activity", activity_ref: "fast",
                                  input_mapping: { won: true } }] } ] } } })");
  harness.activities["release"] = busyUntil(2);
  harness.horizonMs = 90'000;
  // The winner has finished, but the parallel waits for the losing branch's release.
  CHECK(harness.run() == RunStatus::Compensating);
  CHECK(harness.advance(60 * 60'000) == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"reserve", "release", "fast", "release"});
  CHECK(toJson(harness.outputs()) == R"({"v":{"won":true}})");
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).empty());
}

TEST_CASE("a foreach in a compensation block running at a cancel request goes on to its end") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "parallel", branches: [
      { op: "saga", main_flow: { op: "fail", error: "Nope" },
        compensation: { op: "foreach", items: [1, 2], max_concurrency: 1,
          body: { op: "activity", activity_ref: "notify", input_mapping: { n: $.item },
                  retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } } },
      { op: "wait", signal: "go" } ] } } })");
  harness.recordInputs = true;
  harness.activities["notify"] = busyUntil(2, "n", Value(int64_t{1})); // the first item
  harness.horizonMs = 30'000;
  CHECK(harness.run() == RunStatus::Running);
  CHECK(harness.send(control(vm::InputKind::CancelRequested)) == RunStatus::Running);
  CHECK(harness.advance(60 * 60'000) == RunStatus::Cancelled);
  // The second iteration still starts after the first: the foreach is compensation code.
  CHECK(harness.calls ==
        std::vector<std::string>{R"(notify({"n":1}))", R"(notify({"n":1}))", R"(notify({"n":2}))"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
}
