// `compensate_on: "attempted"` registers a step's compensation once the step was started,
// whatever ended the attempt: a failure, or a cancellation (a parallel branch cancelled
// because another branch failed, a cancelled run, the workflow timeout). A step with the
// default `completed` that was cut short registers nothing.
#include "harness.h"

#include "kotoba/compiler/check.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

namespace {

// Fails every attempt retryably, so that with an hour's backoff the step stays in flight
// (its command unanswered) for as long as a test needs.
ActivityFunction keepsRetrying() {
  return [](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError("Busy", "try again later");
    error.retryable = true;
    return error;
  };
}

ActivityFunction failsWith(const std::string &type) {
  return [type](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError(type, type + " happened");
    error.retryable = false;
    return error;
  };
}

const char *const kSlowRetry = R"(retry_policy: { initial_interval: "1h", maximum_attempts: 5 })";

std::string withSlowRetry(std::string text) {
  for (size_t at = text.find("SLOW"); at != std::string::npos; at = text.find("SLOW")) {
    text.replace(at, 4, kSlowRetry);
  }
  return text;
}

} // namespace

TEST_CASE("a parallel branch cancelled by a failing sibling registers its attempted step") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "parallel", branches: [
      { op: "activity", activity_ref: "boom" },
      { op: "activity", activity_ref: "charge", compensate_on: "attempted", SLOW,
        compensate: { activity_ref: "refund", input_mapping: { had: $.result ?? "nothing" } } },
      { op: "activity", activity_ref: "reserve", SLOW,
        compensate: { activity_ref: "release" } } ] } } } })"));
  harness.recordInputs = true;
  harness.activities["boom"] = failsWith("Boom");
  harness.activities["charge"] = keepsRetrying();
  harness.activities["reserve"] = keepsRetrying();
  CHECK(harness.run() == RunStatus::Failed);
  // charge was cancelled mid-attempt: refunded, with no result to refund from. reserve was
  // cancelled too, but compensates only on completion: nothing to release.
  CHECK(harness.calls == std::vector<std::string>{R"(boom({}))", R"(charge({}))", R"(reserve({}))",
                                                  R"(refund({"had":"nothing"}))"});
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Boom");
  CHECK(harness.error()->extensions.find("compensation")->asString() == "completed");
  // Both cancelled attempts were asked to stop.
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 2);
}

TEST_CASE("a cancelled branch's attempted step joins the saga's other compensations in order") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "parallel", branches: [
        { op: "seq", strategies: [
          { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
          { op: "activity", activity_ref: "charge", compensate_on: "attempted", SLOW,
            compensate: { activity_ref: "refund" } } ] },
        { op: "activity", activity_ref: "boom" } ] } ] } } } })"));
  harness.activities["boom"] = failsWith("Boom");
  harness.activities["charge"] = keepsRetrying();
  CHECK(harness.run() == RunStatus::Failed);
  // Newest registration first: the cancelled charge, then hold, then book.
  CHECK(harness.calls ==
        std::vector<std::string>{"book", "hold", "boom", "charge", "refund", "unhold", "unbook"});
}

TEST_CASE("cancelling the run registers the attempted step that was in flight") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "activity", activity_ref: "charge", compensate_on: "attempted", SLOW,
        compensate: { activity_ref: "refund" } } ] } } } })"));
  harness.activities["charge"] = keepsRetrying();
  harness.horizonMs = 60'000;
  CHECK(harness.run() == RunStatus::Running);
  vm::Input cancel;
  cancel.kind = vm::InputKind::CancelRequested;
  CHECK(harness.send(cancel) == RunStatus::Cancelled);
  CHECK(harness.calls == std::vector<std::string>{"book", "charge", "refund", "unbook"});
  REQUIRE(harness.error());
  CHECK(harness.error()->type == "Cancelled");
}

TEST_CASE("the workflow timeout registers the attempted step that was in flight") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "activity", activity_ref: "charge", compensate_on: "attempted", SLOW,
                 compensate: { activity_ref: "refund" } } } } })"));
  harness.activities["charge"] = keepsRetrying();
  harness.horizonMs = 60'000;
  CHECK(harness.run() == RunStatus::Running);
  vm::Input timeout;
  timeout.kind = vm::InputKind::TimeoutReached;
  CHECK(harness.send(timeout) == RunStatus::TimedOut);
  CHECK(harness.calls == std::vector<std::string>{"charge", "refund"});
}

TEST_CASE("a cancelled step that compensates only on completion registers nothing") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "activity", activity_ref: "charge", SLOW,
                 compensate: { activity_ref: "refund" } } } } })"));
  harness.activities["charge"] = keepsRetrying();
  harness.horizonMs = 60'000;
  CHECK(harness.run() == RunStatus::Running);
  vm::Input cancel;
  cancel.kind = vm::InputKind::CancelRequested;
  CHECK(harness.send(cancel) == RunStatus::Cancelled);
  CHECK(harness.calls == std::vector<std::string>{"charge"});
}

TEST_CASE("a try around an in-flight attempted step still cannot catch the cancellation") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", strategy: { op: "saga",
    main_flow: { op: "try",
      body: { op: "activity", activity_ref: "charge", compensate_on: "attempted", SLOW,
              compensate: { activity_ref: "refund" } },
      catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "swallowed" } }] } } } })"));
  harness.activities["charge"] = keepsRetrying();
  harness.horizonMs = 60'000;
  CHECK(harness.run() == RunStatus::Running);
  vm::Input cancel;
  cancel.kind = vm::InputKind::CancelRequested;
  CHECK(harness.send(cancel) == RunStatus::Cancelled);
  CHECK(harness.calls == std::vector<std::string>{"charge", "refund"});
}

TEST_CASE("error types starting with '!' are reserved for the compiler's own regions") {
  compiler::Compilation compilation;
  bool ok = compiler::checkSource(compilation, "test.kotoba", R"({ workflow: { id: "w",
    strategy: { op: "try", body: { op: "activity", activity_ref: "a" },
                catch: [{ errors: ["*", "!attempted"],
                          do: { op: "seq", strategies: [] } }] } } })");
  CHECK_FALSE(ok);
  std::ostringstream out;
  compilation.diagnostics.print(out);
  CHECK(out.str().find("error type '!attempted' is reserved") != std::string::npos);
}

TEST_CASE("a foreach iteration cancelled by a failing one registers its attempted step") {
  Harness harness(withSlowRetry(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "saga", main_flow: {
      op: "foreach", items: $.inputs.items, max_concurrency: 2,
      body: { op: "activity", activity_ref: "charge", input_mapping: { sku: $.item },
              compensate_on: "attempted", SLOW,
              compensate: { activity_ref: "refund", input_mapping: { sku: $.item } } } } } } })"));
  harness.recordInputs = true;
  harness.activities["charge"] = [](const Value &input, int64_t) -> Result<Value> {
    WorkflowError error =
        makeError(input.asObject().find("sku")->asString() == "a" ? "Declined" : "Busy", "no");
    error.retryable = input.asObject().find("sku")->asString() != "a";
    return error;
  };
  CHECK(harness.run(json(R"({"items": ["a", "b"]})")) == RunStatus::Failed);
  // a failed and b was cancelled: both attempts are compensated, newest registration first.
  CHECK(harness.calls ==
        std::vector<std::string>{R"(charge({"sku":"a"}))", R"(charge({"sku":"b"}))",
                                 R"(refund({"sku":"b"}))", R"(refund({"sku":"a"}))"});
  CHECK(harness.error()->type == "Declined");
}
