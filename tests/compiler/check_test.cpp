// The checker's model of a program: what a checked file means, as the code generator and the
// runtime will read it.
#include "kotoba/compiler/check.h"

#include <doctest/doctest.h>

#include <string>

using namespace kotoba::compiler;

namespace {

const std::string samplePath =
    KOTOBA_SOURCE_DIR "/tests/compiler/check/order-processing-sample.kotoba";

struct Checked {
  Compilation compilation;
  bool ok = false;
};

void checkText(Checked &checked, std::string text) {
  checked.ok = checkSource(checked.compilation, "test.kotoba", std::move(text));
}

std::string kinds(const Compilation &compilation) {
  std::string out;
  for (const Diagnostic &diagnostic : compilation.diagnostics.diagnostics()) {
    out += std::string(out.empty() ? "" : ",") + diagnosticKindName(diagnostic.kind);
  }
  return out;
}

} // namespace

TEST_CASE("the order processing sample checks into a saga over a three-branch parallel") {
  Compilation compilation;
  REQUIRE(checkProgram(compilation, samplePath));
  const Program &program = compilation.program;
  REQUIRE(program.workflows.size() == 1);
  const Workflow &workflow = *program.workflows[program.entry];
  CHECK(workflow.id == "order_processing");
  CHECK(workflow.version == "1.0.0");
  CHECK(workflow.timeoutMs == 30 * 60 * 1000);
  REQUIRE(workflow.inputs.size() == 4);
  CHECK(workflow.inputs[3].name == "items");
  CHECK(workflow.inputs[3].defaultValue->isArray());

  const Strategy *saga = workflow.strategy;
  REQUIRE(saga->op == StrategyOp::Saga);
  REQUIRE(saga->compensation != nullptr);
  CHECK(saga->compensation->activityRef == "send_failure_notification");
  const Strategy *flow = saga->mainFlow;
  REQUIRE(flow->children.size() == 3);
  const Strategy *validate = flow->children[0];
  CHECK(validate->stepId == "validate_order");
  REQUIRE(validate->retryPolicy.has_value());
  CHECK(validate->retryPolicy->policy.backoffCoefficient == doctest::Approx(1.5));
  CHECK(validate->retryPolicy->policy.maximumIntervalMs == 30000);
  const Strategy *parallel = flow->children[1];
  REQUIRE(parallel->op == StrategyOp::Parallel);
  REQUIRE(parallel->children.size() == 3);
  REQUIRE(parallel->children[0]->compensate != nullptr);
  CHECK(parallel->children[0]->compensate->activityRef == "cancel_payment");
  CHECK(parallel->children[2]->children[0]->waitKind == WaitKind::Timer);

  // Declared without an implementation: every one must be bound by the host.
  CHECK(program.hostActivities.size() == 8);
}

TEST_CASE("quoted strings in evaluated positions become expressions or templates") {
  Checked checked;
  checkText(checked, R"({ workflow: { id: "w", inputs: [{ name: "x" }],
    strategy: { op: "set", vars: { a: "$.inputs.x", b: "x=${$.inputs.x}!", c: "plain",
                                   d: "$${not}" } } } })");
  REQUIRE(checked.ok);
  const auto &vars = checked.compilation.program.workflows[0]->strategy->vars;
  REQUIRE(vars.size() == 4);
  CHECK(vars[0].value->kind == Expr::Kind::Syntax);
  CHECK(vars[0].value->syntax->kind == NodeKind::Member);
  REQUIRE(vars[1].value->kind == Expr::Kind::Template);
  REQUIRE(vars[1].value->parts.size() == 3);
  CHECK(vars[1].value->parts[0].text == "x=");
  CHECK(vars[1].value->parts[1].expression != nullptr);
  CHECK(vars[1].value->parts[2].text == "!");
  CHECK(vars[2].value->syntax->kind == NodeKind::String);
  CHECK(vars[3].value->kind == Expr::Kind::Template);
  CHECK(vars[3].value->parts.size() == 1);
  CHECK(vars[3].value->parts[0].text == "${not}");
}

TEST_CASE("every problem in a file is reported, not only the first") {
  Checked checked;
  checkText(checked, R"({ workflow: { id: "w", strategy: { op: "seq", strategies: [
    { op: "paralel" }, { op: "activity" }, { op: "wait", timer: "soon" } ] } } })");
  CHECK_FALSE(checked.ok);
  CHECK(kinds(checked.compilation) == "unknown-op,missing-field,invalid-duration");
}

TEST_CASE("the entry workflow can be chosen by id") {
  Checked checked;
  CheckOptions options;
  options.entryWorkflow = "second";
  checked.ok =
      checkSource(checked.compilation, "test.kotoba",
                  R"({ workflows: [
                    { id: "first", strategy: { op: "seq", strategies: [] } },
                    { id: "second", strategy: { op: "seq", strategies: [] } }] })",
                  options);
  REQUIRE(checked.ok);
  CHECK(checked.compilation.program.entry == 1);
}

TEST_CASE("decision names that no predicate defines are host predicates") {
  Checked checked;
  checkText(checked, R"({ workflow: { id: "w", predicates: { big: 1 > 0 },
    strategy: { op: "decision", conditions: [
      { condition: "big", branch: { op: "seq", strategies: [] } },
      { condition: "is_vip", branch: { op: "seq", strategies: [] } } ] } } })");
  REQUIRE(checked.ok);
  const Workflow &workflow = *checked.compilation.program.workflows[0];
  CHECK(workflow.hostPredicates == std::vector<std::string>{"is_vip"});
  CHECK_FALSE(workflow.strategy->cases[0].hostPredicate);
  CHECK(workflow.strategy->cases[1].hostPredicate);
}

TEST_CASE("compensations are allowed only inside a saga, at any depth") {
  Checked inside;
  checkText(inside, R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [{ op: "activity", activity_ref: "pay",
      compensate: { activity_ref: "refund", input_mapping: { id: $.result.id } } }] } } } })");
  CHECK(inside.ok);

  Checked outside;
  checkText(outside, R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "pay",
    compensate: { activity_ref: "refund" } } } })");
  CHECK_FALSE(outside.ok);
  CHECK(kinds(outside.compilation) == "compensate-outside-saga");
}
