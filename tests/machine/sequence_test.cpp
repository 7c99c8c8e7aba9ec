// Sequences, step values, variables, results and outputs, driven through the machine.
#include "harness.h"

#include "kotoba/vm/builtins.h"

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

TEST_CASE("a sequence calls its activities in order and maps the outputs") {
  Harness harness(R"({
    workflow: { id: "w", inputs: [{ name: "n", type: "integer", required: true }],
      outputs: [{ name: "total", type: "integer" }, { name: "label", type: "string" }],
      output_mapping: { label: "n=${$.inputs.n}" },
      strategy: { op: "seq", strategies: [
        { op: "activity", activity_ref: "first", input_mapping: { n: $.inputs.n } },
        { op: "activity", activity_ref: "second", input_mapping: { prev: $.results.first.n },
          output_mapping: { total: $.result.prev * 10 } },
      ] } } })");
  CHECK(harness.run(json(R"({"n": 4})")) == RunStatus::Completed);
  CHECK(harness.calls == std::vector<std::string>{"first", "second"});
  CHECK(toJson(harness.outputs()) == R"({"total":40,"label":"n=4"})");
  // Each command carries the line of the step that issued it.
  auto scheduled = harness.commandsOf(vm::CommandKind::ScheduleActivity);
  REQUIRE(scheduled.size() == 2);
  CHECK(scheduled[0].location.line == 6);
  CHECK(scheduled[1].location.line == 7);
}

TEST_CASE("an output that nothing sets reads as null and wrong types fail the run") {
  Harness nullOutput(R"({ workflow: { id: "w", outputs: [{ name: "x", type: "integer" }],
    strategy: { op: "seq", strategies: [] } } })");
  CHECK(nullOutput.run() == RunStatus::Completed);
  CHECK(toJson(nullOutput.outputs()) == R"({"x":null})");

  Harness wrong(R"({ workflow: { id: "w", outputs: [{ name: "x", type: "integer" }],
    output_mapping: { x: "text" }, strategy: { op: "seq", strategies: [] } } })");
  CHECK(wrong.run() == RunStatus::Failed);
  REQUIRE(wrong.error().has_value());
  CHECK(wrong.error()->type == "OutputValidationError");
}

TEST_CASE("reading a missing path fails with PathError naming the path") {
  Harness harness(R"({ workflow: { id: "w",
    strategy: { op: "set", vars: { x: $.vars.nothing.deeper } } } })");
  CHECK(harness.run() == RunStatus::Failed);
  REQUIRE(harness.error().has_value());
  CHECK(harness.error()->type == "PathError");
  CHECK(harness.error()->message.find("$.vars.nothing") != std::string::npos);
  CHECK(toJson(*harness.error()->extensions.find("location")) == R"("test.kotoba:2")");
}

TEST_CASE("?? reads optional data and type mismatches fail with ExpressionError") {
  Harness fallback(R"({ workflow: { id: "w", outputs: [{ name: "x" }],
    strategy: { op: "set", vars: { x: $.vars.nothing ?? "default" } } } })");
  CHECK(fallback.run() == RunStatus::Completed);
  CHECK(toJson(fallback.outputs()) == R"({"x":"default"})");

  Harness mismatch(R"({ workflow: { id: "w", inputs: [{ name: "s" }],
    strategy: { op: "set", vars: { x: $.inputs.s + 1 } } } })");
  CHECK(mismatch.run(json(R"({"s": "text"})")) == RunStatus::Failed);
  CHECK(mismatch.error()->type == "ExpressionError");
}

TEST_CASE("unicode payloads survive activities byte for byte") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "text" }], outputs: [{ name: "echo" }],
    output_mapping: { echo: $.results.echo.text },
    strategy: { op: "activity", activity_ref: "echo",
                input_mapping: { text: $.inputs.text } } } })");
  std::string text = "emoji \xF0\x9F\x98\x80 combining e\xCC\x81 nonchar \xEF\xBF\xBE";
  Object inputs;
  inputs.set("text", Value(text));
  CHECK(harness.run(Value(std::move(inputs))) == RunStatus::Completed);
  CHECK(harness.outputs().asObject().find("echo")->asString() == text);
}

TEST_CASE("set assigns in order, each visible to the next") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "b" }],
    strategy: { op: "set", vars: { a: 2, b: $.vars.a * 3 } } } })");
  CHECK(harness.run() == RunStatus::Completed);
  CHECK(toJson(harness.outputs()) == R"({"b":6})");
}

TEST_CASE("loop checks its condition before each iteration and enforces its limit") {
  Harness counting(R"({ workflow: { id: "w", outputs: [{ name: "n" }],
    strategy: { op: "loop", while: ($.vars.n ?? 0) < 5,
                body: { op: "set", vars: { n: ($.vars.n ?? 0) + 1 } } } } })");
  CHECK(counting.run() == RunStatus::Completed);
  CHECK(toJson(counting.outputs()) == R"({"n":5})");

  Harness endless(R"({ workflow: { id: "w", strategy: { op: "loop", while: true,
    max_iterations: 3, body: { op: "activity", activity_ref: "tick" } } } })");
  CHECK(endless.run() == RunStatus::Failed);
  CHECK(endless.error()->type == "LoopLimitExceeded");
  CHECK(endless.calls.size() == 3);
}

TEST_CASE("continue_as_new ends the run with the next run's inputs") {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "n" }],
    strategy: { op: "continue_as_new", input_mapping: { n: $.inputs.n + 1 } } } })");
  CHECK(harness.run(json(R"({"n": 1})")) == RunStatus::ContinuedAsNew);
  CHECK(toJson(harness.outputs()) == R"({"n":2})");
}

TEST_CASE("now() is the logical time and uuid() is stable for the run") {
  Harness harness(R"({ workflow: { id: "w", outputs: [{ name: "t" }, { name: "ids" }],
    strategy: { op: "set", vars: { t: now(), ids: [uuid(), uuid()] } } } })");
  CHECK(harness.run(Value(Object()), 1'700'000'000'000) == RunStatus::Completed);
  CHECK(toJson(*harness.outputs().asObject().find("t")) == R"("2023-11-14T22:13:20.000Z")");
  const Array &ids = harness.outputs().asObject().find("ids")->asArray();
  CHECK(ids[0].asString() != ids[1].asString());
  CHECK(ids[0].asString() == deterministicUuid("run-1", 0));
}
