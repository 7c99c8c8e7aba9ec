// Sagas: compensations newest first, only for steps that completed (or were attempted),
// captured at registration, both policies and both failure modes, nesting, cancellation.
#include "harness.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

namespace {

ActivityFunction failing(const std::string &type, bool retryable = false) {
  return [type, retryable](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError(type, type + " happened");
    error.retryable = retryable;
    return error;
  };
}

const char *const bookTrip = R"({
  workflow: { id: "trip",
    strategy: { op: "saga",
      compensation_policy: "POLICY", on_compensation_failure: "MODE",
      main_flow: { op: "seq", strategies: [
        { op: "activity", activity_ref: "flight", input_mapping: { n: 1 },
          compensate: { activity_ref: "cancel_flight", input_mapping: { id: $.result.n } } },
        { op: "activity", activity_ref: "hotel", input_mapping: { n: 2 },
          compensate: { activity_ref: "cancel_hotel", input_mapping: { id: $.result.n } } },
        { op: "activity", activity_ref: "car", input_mapping: { n: 3 },
          compensate: { activity_ref: "cancel_car", input_mapping: { id: $.result.n } } },
      ] },
      compensation: { op: "activity", activity_ref: "notify",
                      input_mapping: { why: $.error.type } } } } })";

std::string trip(const std::string &policy, const std::string &mode) {
  std::string text = bookTrip;
  text.replace(text.find("POLICY"), 6, policy);
  text.replace(text.find("MODE"), 4, mode);
  return text;
}

} // namespace

TEST_CASE("a failed saga compensates completed steps newest first, then runs compensation") {
  Harness harness(trip("reverse", "continue"));
  harness.recordInputs = true;
  harness.activities["car"] = failing("NoCars");
  CHECK(harness.run() == RunStatus::Failed);
  // The car never completed, so it is not compensated.
  CHECK(harness.calls == std::vector<std::string>{R"(flight({"n":1}))", R"(hotel({"n":2}))",
                                                  R"(car({"n":3}))", R"(cancel_hotel({"id":2}))",
                                                  R"(cancel_flight({"id":1}))",
                                                  R"(notify({"why":"NoCars"}))"});
  REQUIRE(harness.error().has_value());
  CHECK(harness.error()->type == "NoCars");
  CHECK(toJson(*harness.error()->extensions.find("compensation")) == R"("completed")");
  CHECK(harness.commandsOf(vm::CommandKind::RecordCompensation).size() == 4);
}

TEST_CASE("a failing compensation is reported and the rest still run with continue") {
  Harness harness(trip("reverse", "continue"));
  harness.activities["car"] = failing("NoCars");
  harness.activities["cancel_hotel"] = failing("HotelClosed");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{"flight", "hotel", "car", "cancel_hotel",
                                                  "cancel_flight", "notify"});
  CHECK(toJson(*harness.error()->extensions.find("compensation")) == R"("partial")");
  CHECK(toJson(*harness.error()->extensions.find("compensation_errors")).find("HotelClosed") !=
        std::string::npos);
}

TEST_CASE("stop skips the remaining compensations after one fails") {
  Harness harness(trip("reverse", "stop"));
  harness.activities["car"] = failing("NoCars");
  harness.activities["cancel_hotel"] = failing("HotelClosed");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls ==
        std::vector<std::string>{"flight", "hotel", "car", "cancel_hotel", "notify"});
  CHECK(toJson(*harness.error()->extensions.find("compensation")) == R"("failed")");
}

TEST_CASE("compensations are retried ten times by default") {
  Harness harness(trip("reverse", "continue"));
  harness.activities["car"] = failing("NoCars");
  int attempts = 0;
  harness.activities["cancel_hotel"] = [&](const Value &, int64_t attempt) -> Result<Value> {
    ++attempts;
    if (attempt < 10) {
      WorkflowError error = makeError("Flaky", "try again");
      error.retryable = true;
      return error;
    }
    return Value("ok");
  };
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(attempts == 10);
  CHECK(toJson(*harness.error()->extensions.find("compensation")) == R"("completed")");
}

TEST_CASE("a parallel compensation policy starts every compensation at once") {
  Harness harness(trip("parallel", "continue"));
  harness.activities["car"] = failing("NoCars");
  CHECK(harness.run() == RunStatus::Failed);
  auto started = harness.commandsOf(vm::CommandKind::ScheduleActivity);
  REQUIRE(started.size() == 6);
  // Both compensations are issued before either is answered.
  CHECK(started[3].name == "cancel_hotel");
  CHECK(started[4].name == "cancel_flight");
}

TEST_CASE("compensate_on attempted registers even when the step failed") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "activity", activity_ref: "charge", compensate_on: "attempted",
    compensate: { activity_ref: "refund",
                  input_mapping: { had: $.result ?? "nothing" } } } } } })");
  harness.recordInputs = true;
  harness.activities["charge"] = failing("Declined");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{R"(charge({}))", R"(refund({"had":"nothing"}))"});
}

TEST_CASE("a completed inner saga hands its compensations to the outer saga") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "saga", main_flow: { op: "activity", activity_ref: "inner",
          compensate: { activity_ref: "undo_inner" } } },
      { op: "activity", activity_ref: "outer", compensate: { activity_ref: "undo_outer" } },
      { op: "fail", error: "Later", message: "after both" },
    ] } } } })");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{"inner", "outer", "undo_outer", "undo_inner"});
  CHECK(harness.error()->type == "Later");
}

TEST_CASE("each foreach iteration registers its own compensation with its own data") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "saga", main_flow: { op: "seq", strategies: [
      { op: "foreach", items: $.inputs.items, body: { op: "activity", activity_ref: "reserve",
          input_mapping: { sku: $.item },
          compensate: { activity_ref: "release", input_mapping: { sku: $.result.sku } } } },
      { op: "fail", error: "Abort" } ] } } } })");
  harness.recordInputs = true;
  CHECK(harness.run(json(R"({"items": ["a", "b"]})")) == RunStatus::Failed);
  CHECK(harness.calls ==
        std::vector<std::string>{R"(reserve({"sku":"a"}))", R"(reserve({"sku":"b"}))",
                                 R"(release({"sku":"b"}))", R"(release({"sku":"a"}))"});
}

TEST_CASE("cancelling a run compensates its sagas and ends it Cancelled") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "wait", signal: "go" } ] } } } })");
  CHECK(harness.run() == RunStatus::Running);
  vm::Input cancel;
  cancel.kind = vm::InputKind::CancelRequested;
  CHECK(harness.send(cancel) == RunStatus::Cancelled);
  CHECK(harness.calls == std::vector<std::string>{"book", "unbook"});
  CHECK(harness.error()->type == "Cancelled");
  // A second request changes nothing.
  CHECK(harness.send(cancel) == RunStatus::Cancelled);
}

TEST_CASE("the workflow timeout compensates and ends the run TimedOut") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "wait", timer: "1h" } ] } } } })");
  harness.horizonMs = 60'000;
  CHECK(harness.run() == RunStatus::Running);
  vm::Input timeout;
  timeout.kind = vm::InputKind::TimeoutReached;
  CHECK(harness.send(timeout) == RunStatus::TimedOut);
  CHECK(harness.calls == std::vector<std::string>{"book", "unbook"});
}
