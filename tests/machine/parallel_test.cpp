// Parallel branches and foreach iterations: completion rules, cancellation of losers, value
// order, scoping and concurrency limits.
#include "harness.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

namespace {

ActivityFunction failing(const std::string &type) {
  return [type](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError(type, type + " happened");
    error.retryable = false;
    return error;
  };
}

const char *threeBranches(const char *mode) {
  static std::string text;
  text = std::string(R"({ workflow: { id: "w", outputs: [{ name: "v" }],
    output_mapping: { v: $.results.fan },
    strategy: { op: "parallel", id: "fan", completion_condition: ")") +
         mode +
         R"(", count: 2,
      branches: [
        { op: "seq", strategies: [{ op: "wait", timer: "3s" },
                                  { op: "activity", activity_ref: "slow" }] },
        { op: "activity", activity_ref: "a" },
        { op: "seq", strategies: [{ op: "wait", timer: "1s" },
                                  { op: "activity", activity_ref: "b" }] },
      ] } } })";
  return text.c_str();
}

} // namespace

TEST_CASE("an all-parallel yields every branch value in branch order") {
  std::string source = threeBranches("all");
  source.replace(source.find(", count: 2"), 10, "");
  Harness harness(source);
  harness.activities["a"] = [](const Value &, int64_t) -> Result<Value> { return Value("A"); };
  harness.activities["b"] = [](const Value &, int64_t) -> Result<Value> { return Value("B"); };
  harness.activities["slow"] = [](const Value &, int64_t) -> Result<Value> { return Value("S"); };
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"a", "b", "slow"});
  CHECK(toJson(harness.outputs()) == R"({"v":["S","A","B"]})");
}

TEST_CASE("the first failure of an all-parallel cancels the other branches") {
  std::string source = threeBranches("all");
  source.replace(source.find(", count: 2"), 10, "");
  Harness harness(source);
  harness.activities["b"] = failing("Broken");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.error()->type == "Broken");
  // The slow branch never reached its activity: its timer was cancelled.
  CHECK(harness.calls == std::vector<std::string>{"a", "b"});
  CHECK(harness.commandsOf(vm::CommandKind::Cancel).size() == 1);
}

TEST_CASE("an any-parallel takes the first success and cancels the rest") {
  std::string source = threeBranches("any");
  source.replace(source.find(", count: 2"), 10, "");
  Harness harness(source);
  harness.activities["a"] = failing("NoLuck");
  harness.activities["b"] = [](const Value &, int64_t) -> Result<Value> { return Value("B"); };
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) == R"({"v":"B"})");
  CHECK(harness.calls == std::vector<std::string>{"a", "b"});
}

TEST_CASE("an any-parallel whose branches all fail reports each branch's error") {
  std::string source = threeBranches("any");
  source.replace(source.find(", count: 2"), 10, "");
  Harness harness(source);
  harness.activities["a"] = failing("A1");
  harness.activities["b"] = failing("B1");
  harness.activities["slow"] = failing("S1");
  CHECK(harness.run() == RunStatus::Failed);
  CHECK(harness.error()->type == "AllBranchesFailed");
  CHECK(toJson(harness.error()->details).find("\"S1\"") != std::string::npos);
}

TEST_CASE("an at_least parallel completes once enough branches succeeded") {
  Harness harness(threeBranches("at_least"));
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"a", "b"});
  CHECK(toJson(harness.outputs()) == R"({"v":[null,{},{}]})");

  Harness impossible(threeBranches("at_least"));
  impossible.activities["a"] = failing("A1");
  impossible.activities["b"] = failing("B1");
  CHECK(impossible.run() == RunStatus::Failed);
  CHECK(impossible.error()->type == "NotEnoughBranchesSucceeded");
}

TEST_CASE("an all_settled parallel never fails because of one branch") {
  std::string source = threeBranches("all_settled");
  source.replace(source.find(", count: 2"), 10, "");
  Harness harness(source);
  harness.activities["a"] = failing("Oops");
  CHECK(harness.run() == RunStatus::Completed);
  std::string text = toJson(harness.outputs());
  CHECK(text.find(R"({"status":"completed","value":{}})") != std::string::npos);
  CHECK(text.find(R"({"status":"failed","error":{"type":"Oops")") != std::string::npos);
}

TEST_CASE("foreach runs the body per item in order and keeps iteration writes private") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    outputs: [{ name: "values" }, { name: "leaked" }],
    output_mapping: { values: $.results.each, leaked: $.vars.inner ?? "none" },
    strategy: { op: "foreach", id: "each", items: $.inputs.items,
      body: { op: "seq", strategies: [
        { op: "set", vars: { inner: $.item } },
        { op: "activity", activity_ref: "work",
          input_mapping: { item: $.vars.inner, at: $.index } },
      ] } } } })");
  harness.recordInputs = true;
  CHECK(harness.run(json(R"({"items": ["x", "y", "z"]})")) == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{R"(work({"item":"x","at":0}))",
                                                  R"(work({"item":"y","at":1}))",
                                                  R"(work({"item":"z","at":2}))"});
  CHECK(
      toJson(harness.outputs()) ==
      R"({"values":[{"item":"x","at":0},{"item":"y","at":1},{"item":"z","at":2}],)"
      R"("leaked":"none"})");
}

TEST_CASE("foreach keeps at most max_concurrency iterations running") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "foreach", items: $.inputs.items, max_concurrency: 2,
      body: { op: "seq", strategies: [{ op: "wait", timer: "1s" },
                                       { op: "activity", activity_ref: "work" }] } } } })");
  CHECK(harness.run(json(R"({"items": [1, 2, 3, 4, 5]})")) == RunStatus::Completed);
  // Two at a time, one second each: 1s, 1s, 2s, 2s, 3s after the start.
  std::vector<int64_t> offsets;
  for (int64_t time : harness.attemptTimes) {
    offsets.push_back(time - 1'000'000);
  }
  CHECK(offsets == std::vector<int64_t>{1000, 1000, 2000, 2000, 3000});
}

TEST_CASE("foreach over something that is not an array fails with ExpressionError") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "foreach", items: $.inputs.items, body: { op: "seq", strategies: [] } } } })");
  CHECK(harness.run(json(R"({"items": 5})")) == RunStatus::Failed);
  CHECK(harness.error()->type == "ExpressionError");
}
