// Waits: durable timers in virtual time, signals buffered in arrival order, timeouts that
// consume nothing afterwards, engine-wide events matched by filter; decisions; try/catch.
#include "harness.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

TEST_CASE("a timer fires after its duration in virtual time") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "seq", strategies: [
    { op: "wait", timer: "PT30S" }, { op: "activity", activity_ref: "after" } ] } } })");
  harness.horizonMs = 10'000;
  CHECK(harness.run() == RunStatus::Running);
  CHECK(harness.calls.empty());
  CHECK(harness.advance(20'000) == RunStatus::Completed);
  CHECK(harness.attemptTimes == std::vector<int64_t>{1'030'000});
}

TEST_CASE("a timer until a past time fires at once") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "wait",
    condition: { type: "timer", until: "2001-01-01T00:00:00Z" } } } })");
  harness.horizonMs = 0;
  CHECK(harness.run(Value(Object()), 1'700'000'000'000) == RunStatus::Completed);
}

TEST_CASE("a signal sent before the wait is consumed by the first wait for it") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "got" }],
    output_mapping: { got: $.signals.approve },
    strategy: { op: "seq", strategies: [
      { op: "wait", timer: "1m" }, { op: "wait", signal: "approve" } ] } } })");
  harness.horizonMs = 1'000;
  CHECK(harness.run() == RunStatus::Running);
  CHECK(harness.signal("approve", json(R"({"by": "ann"})")) == RunStatus::Running);
  CHECK(harness.advance(60'000) == RunStatus::Completed);
  std::string message = harness.error() ? harness.error()->message : std::string();
  INFO(message);
  CHECK(toJson(harness.outputs()) == R"({"got":{"by":"ann"}})");
}

TEST_CASE("buffered signals are consumed in arrival order") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "first" }, { name: "second" }],
    strategy: { op: "seq", strategies: [
      { op: "wait", timer: "1m" },
      { op: "wait", signal: "step", id: "one" }, { op: "wait", signal: "step", id: "two" } ] },
    output_mapping: { first: $.results.one, second: $.results.two } } })");
  harness.horizonMs = 1'000;
  harness.run();
  harness.signal("step", Value(1));
  harness.signal("step", Value(2));
  CHECK(harness.advance(60'000) == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) == R"({"first":1,"second":2})");
}

TEST_CASE("a wait that timed out consumes nothing afterwards") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "late" }],
    output_mapping: { late: $.results.later },
    strategy: { op: "seq", strategies: [
      { op: "try", body: { op: "wait", signal: "approve", timeout: "PT1M" },
        catch: [{ errors: ["WaitTimeout"], do: { op: "set", vars: { timedOut: true } } }] },
      { op: "wait", signal: "approve", id: "later" } ] } } })");
  harness.horizonMs = 120'000;
  CHECK(harness.run() == RunStatus::Running);
  CHECK(harness.machine().vars().asObject().find("timedOut") != nullptr);
  // The late signal goes to the second wait, not to the one that timed out.
  CHECK(harness.signal("approve", Value("yes")) == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) == R"({"late":"yes"})");
}

TEST_CASE("an uncaught wait timeout fails the run with WaitTimeout") {
  Harness harness(R"({ workflow: { id: "w", strategy: {
    op: "wait", signal: "approve", timeout: "PT1M" } } })");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.error()->type == "WaitTimeout");
  CHECK(harness.now() == 1'060'000);
}

TEST_CASE("an event wait takes the oldest published event that matches its filter") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "doc" }], outputs: [{ name: "e" }],
    output_mapping: { e: $.events.reviewed },
    strategy: { op: "wait", event: "reviewed", filter: { doc: $.inputs.doc } } } })");
  harness.published.emplace_back("reviewed", json(R"({"doc": "other", "n": 1})"));
  harness.published.emplace_back("reviewed", json(R"({"doc": "mine", "n": 2})"));
  harness.published.emplace_back("reviewed", json(R"({"doc": "mine", "n": 3})"));
  CHECK(harness.run(json(R"({"doc": "mine"})")) == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) == R"({"e":{"doc":"mine","n":2}})");
}

TEST_CASE("a decision takes the first true condition and records the branch") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "amount" }],
    predicates: { big: $.inputs.amount > 1000 },
    strategy: { op: "decision", id: "route", conditions: [
      { condition: "big", branch: { op: "activity", activity_ref: "review" } },
      { condition: "is_vip", branch: { op: "activity", activity_ref: "fast" } },
      { condition: $.inputs.amount > 10, branch: { op: "activity", activity_ref: "normal" } } ],
      default_branch: { op: "activity", activity_ref: "tiny" } } } })");
  harness.predicates["is_vip"] = false;
  CHECK(harness.run(json(R"({"amount": 50})")) == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"normal"});
  auto decisions = harness.commandsOf(vm::CommandKind::RecordDecision);
  REQUIRE(decisions.size() == 1);
  CHECK(decisions[0].step == "route");
  CHECK(decisions[0].detail == "2");
  CHECK(harness.commandsOf(vm::CommandKind::AskPredicate).size() == 1);
}

TEST_CASE("a decision with no match and no default fails with NoBranchMatched") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "n" }],
    strategy: { op: "decision", conditions: [
      { condition: $.inputs.n > 5, branch: { op: "seq", strategies: [] } } ] } } })");
  CHECK(harness.run(json(R"({"n": 1})")) == RunStatus::Failed);
  CHECK(harness.error()->type == "NoBranchMatched");
}

TEST_CASE("a non-boolean condition fails with ExpressionError") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "n" }],
    strategy: { op: "decision", conditions: [
      { condition: $.inputs.n, branch: { op: "seq", strategies: [] } } ] } } })");
  CHECK(harness.run(json(R"({"n": 1})")) == RunStatus::Failed);
  CHECK(harness.error()->type == "ExpressionError");
}

TEST_CASE("try catches by type, finally always runs, and the catch value is the try's") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "v" }],
    output_mapping: { v: $.results.guarded },
    strategy: { op: "try", id: "guarded",
      body: { op: "activity", activity_ref: "risky" },
      catch: [{ errors: ["Other"], do: { op: "activity", activity_ref: "wrong" } },
              { errors: ["Declined"], do: { op: "activity", activity_ref: "handle",
                                            input_mapping: { type: $.error.type } } }],
      finally: { op: "activity", activity_ref: "cleanup" } } } })");
  harness.activities["risky"] = [](const Value &, int64_t) -> Result<Value> {
    return makeError("Declined", "card declined");
  };
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"risky", "handle", "cleanup"});
  CHECK(toJson(harness.outputs()) == R"({"v":{"type":"Declined"}})");
}

TEST_CASE("an uncaught error still runs finally and then fails the run") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "try",
      body: { op: "fail", error: "Boom", message: "no" },
      catch: [{ errors: ["Other"], do: { op: "seq", strategies: [] } }],
      finally: { op: "activity", activity_ref: "cleanup" } } } })");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.calls == std::vector<std::string>{"cleanup"});
  CHECK(harness.error()->type == "Boom");
}

TEST_CASE("retries wait exactly the policy's backoff between attempts") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "flaky",
    retry_policy: { initial_interval: "200ms", backoff_coefficient: 2, maximum_attempts: 10,
                    maximum_interval: "1h" } } } })");
  harness.activities["flaky"] = [](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError("Flaky", "again");
    error.retryable = true;
    return error;
  };
  CHECK(harness.run() == RunStatus::Failed);
  REQUIRE(harness.attemptTimes.size() == 10);
  std::vector<int64_t> gaps;
  for (size_t i = 1; i < harness.attemptTimes.size(); ++i) {
    gaps.push_back(harness.attemptTimes[i] - harness.attemptTimes[i - 1]);
  }
  CHECK(gaps == std::vector<int64_t>{200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200});
}

TEST_CASE("a huge backoff coefficient caps at the maximum interval") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "flaky",
    retry_policy: { initial_interval: "1s", backoff_coefficient: 1e300, maximum_attempts: 4,
                    maximum_interval: "PT10S" } } } })");
  harness.activities["flaky"] = [](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError("Flaky", "again");
    error.retryable = true;
    return error;
  };
  CHECK(harness.run() == RunStatus::Failed);
  REQUIRE(harness.attemptTimes.size() == 4);
  CHECK(harness.attemptTimes[1] - harness.attemptTimes[0] == 1000);
  CHECK(harness.attemptTimes[2] - harness.attemptTimes[1] == 10000);
  CHECK(harness.attemptTimes[3] - harness.attemptTimes[2] == 10000);
}

TEST_CASE("a child's error surfaces in the parent with its type, catchable by type") {
  Harness harness(R"({ workflows: [
    { id: "parent", outputs: [{ name: "caught" }], output_mapping: { caught: $.vars.caught },
      strategy: { op: "try", body: { op: "subworkflow", workflow_ref: "child" },
        catch: [{ errors: ["DeepProblem"], do: { op: "set", vars: { caught: $.error } } }] } },
    { id: "child", strategy: { op: "fail", error: "DeepProblem" } } ] })");
  harness.children["child"] = [](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError("DeepProblem", "three levels down");
    error.chain = {"grandchild", "child"};
    return error;
  };
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) ==
        R"({"caught":{"type":"DeepProblem","message":"three levels down","details":null,)"
        R"("chain":["grandchild","child"]}})");
}
