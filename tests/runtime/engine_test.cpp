// The engine end to end on a real SQLite store: runs complete through recorded history,
// survive being reloaded by a fresh engine, refuse bad starts without writing anything, and
// record every step as events.
#include "engine_support.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <thread>

using namespace kotoba;
using namespace kotoba::runtime;

namespace {

vm::Module compile(const std::string &source) {
  return testing::compileWorkflow(source);
}

Value json(const std::string &text) {
  return testing::parse(text);
}

using TempStore = testing::TemporaryStore;

using testing::eventTypes;
using testing::stepUntil;

const char *const kOrder = R"({
  workflow: { id: "order", inputs: [{ name: "amount", type: "number", required: true }],
    outputs: [{ name: "receipt" }],
    output_mapping: { receipt: $.results.confirm.text },
    strategy: { op: "saga", main_flow: { op: "seq", strategies: [
      { op: "activity", activity_ref: "charge", input_mapping: { amount: $.inputs.amount },
        compensate: { activity_ref: "refund", input_mapping: { id: $.result.id } } },
      { op: "wait", timer: "PT10M" },
      { op: "activity", activity_ref: "confirm", input_mapping: { charge: $.results.charge.id } },
    ] } } } })";

} // namespace

TEST_CASE("a run completes through the store with every step recorded in order") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  ActivityRegistry registry;
  std::vector<std::string> calls;
  REQUIRE_FALSE(registry.bindFunction("charge", [&](const Value &input, ActivityContext &) {
    calls.push_back("charge");
    return Result<Value>(json(R"({"id": "ch_1"})"));
  }));
  REQUIRE_FALSE(registry.bindFunction("confirm", [&](const Value &input, ActivityContext &) {
    calls.push_back("confirm");
    Object result;
    result.set("text", Value("paid " + input.asObject().find("charge")->asString()));
    return Result<Value>(Value(std::move(result)));
  }));
  REQUIRE_FALSE(registry.bindFunction("refund", [&](const Value &, ActivityContext &) {
    calls.push_back("refund");
    return Result<Value>(Value());
  }));
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(kOrder));
  REQUIRE(hash.ok());
  auto runId =
      engine.start(StartRequest{hash.value(), "", json(R"({"amount": 12.5})"), {}, {}, {}});
  REQUIRE(runId.ok());
  auto outcome = engine.runToCompletion(runId.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"receipt":"paid ch_1"})");
  CHECK(calls == std::vector<std::string>{"charge", "confirm"});
  // The ten minute timer took no real time.
  CHECK(clock.nowMs() >= 1'700'000'000'000 + 10 * 60 * 1000);
  CHECK(eventTypes(*temp.store, runId.value()) ==
        std::vector<std::string>{"WorkflowStarted", "ActivityScheduled", "ActivityStarted",
                                 "ActivityCompleted", "TimerStarted", "TimerFired",
                                 "ActivityScheduled", "ActivityStarted", "ActivityCompleted",
                                 "WorkflowCompleted"});
  // Every event a step caused says where the step is.
  for (const EventRecord &event : testing::history(*temp.store, runId.value())) {
    if (!event.stepId.empty()) {
      CHECK_MESSAGE(event.location.starts_with("engine.kotoba:"), eventTypeName(event.type));
    }
  }
  auto verified =
      temp.store->query([&](const StoreReader &reader) { return reader.verifyRun(runId.value()); });
  REQUIRE(verified.ok());
  CHECK_FALSE(verified.value().firstBroken.has_value());
}

TEST_CASE("a fresh engine picks a run up from its history without repeating completed steps") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> charges{0};
  std::string runId;
  {
    ActivityRegistry registry;
    REQUIRE_FALSE(registry.bindFunction("charge", [&](const Value &, ActivityContext &) {
      ++charges;
      return Result<Value>(json(R"({"id": "ch_1"})"));
    }));
    REQUIRE_FALSE(registry.bindFunction("confirm", [](const Value &, ActivityContext &) {
      return Result<Value>(json(R"({"text": "first engine"})"));
    }));
    REQUIRE_FALSE(registry.bindFunction(
        "refund", [](const Value &, ActivityContext &) { return Result<Value>(Value()); }));
    EngineOptions options;
    options.owner = "first";
    options.leaseMs = 1000;
    Engine engine(*temp.store, registry, clock, options);
    auto hash = engine.addModule(compile(kOrder));
    REQUIRE(hash.ok());
    auto started =
        engine.start(StartRequest{hash.value(), "", json(R"({"amount": 1})"), {}, {}, {}});
    REQUIRE(started.ok());
    runId = started.value();
    // Work until the run sits on its timer, then the engine goes away.
    stepUntil(engine, *temp.store, runId, "TimerStarted");
    CHECK(charges == 1);
  }
  clock.advanceBy(60 * 60 * 1000); // the first engine's lease has long expired
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction("charge", [&](const Value &, ActivityContext &) {
    ++charges;
    return Result<Value>(json(R"({"id": "again"})"));
  }));
  REQUIRE_FALSE(registry.bindFunction("confirm", [](const Value &input, ActivityContext &) {
    Object result;
    result.set("text", Value("second engine " + input.asObject().find("charge")->asString()));
    return Result<Value>(Value(std::move(result)));
  }));
  REQUIRE_FALSE(registry.bindFunction(
      "refund", [](const Value &, ActivityContext &) { return Result<Value>(Value()); }));
  EngineOptions options;
  options.owner = "second";
  Engine engine(*temp.store, registry, clock, options);
  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"receipt":"second engine ch_1"})");
  CHECK(charges == 1);
}

TEST_CASE("invalid inputs are refused with every problem and no run is created") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(R"({ workflow: { id: "w",
    inputs: [{ name: "a", type: "integer", required: true }, { name: "b", type: "string" }],
    strategy: { op: "seq", strategies: [] } } })"));
  REQUIRE(hash.ok());
  auto started =
      engine.start(StartRequest{hash.value(), "", json(R"({"b": 5, "c": 1})"), {}, {}, {}});
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().type == "InputValidationError");
  CHECK(started.error().message.find("'a' is required") != std::string::npos);
  CHECK(started.error().message.find("input 'b'") != std::string::npos);
  CHECK(started.error().message.find("unknown input 'c'") != std::string::npos);
  auto runs = temp.store->query([](const StoreReader &reader) { return reader.runs(RunQuery{}); });
  REQUIRE(runs.ok());
  CHECK(runs.value().empty());
}

TEST_CASE("a run needing unbound activities is refused before it starts") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(kOrder));
  REQUIRE(hash.ok());
  auto started = engine.start(StartRequest{hash.value(), "", json(R"({"amount": 1})"), {}, {}, {}});
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().type == "UnboundActivities");
  CHECK(started.error().message.find("charge, confirm, refund") != std::string::npos);
  auto runs = temp.store->query([](const StoreReader &reader) { return reader.runs(RunQuery{}); });
  REQUIRE(runs.ok());
  CHECK(runs.value().empty());
}

TEST_CASE("signals sent with the start and later are consumed; a finished run refuses them") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(R"({ workflow: { id: "w",
    outputs: [{ name: "first" }, { name: "second" }],
    output_mapping: { first: $.results.one, second: $.results.two },
    strategy: { op: "seq", strategies: [
      { op: "wait", signal: "go", id: "one" }, { op: "wait", signal: "go", id: "two" } ] } } })"));
  REQUIRE(hash.ok());
  StartRequest request{hash.value(), "", Value(Object()), {{"go", Value(1)}}, {}, {}};
  auto runId = engine.start(request);
  REQUIRE(runId.ok());
  auto waiting = engine.runToCompletion(runId.value());
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == RunStatus::Running);
  REQUIRE(engine.signal(runId.value(), "go", Value(2)).ok());
  auto done = engine.runToCompletion(runId.value());
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
  CHECK(toJson(done.value().outputs) == R"({"first":1,"second":2})");
  auto refused = engine.signal(runId.value(), "go", Value(3));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().type == "RunFinished");
}

TEST_CASE("cancel compensates and ends the run Cancelled; terminate stops it at once") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  std::vector<std::string> calls;
  for (const char *name : {"charge", "confirm", "refund"}) {
    REQUIRE_FALSE(registry.bindFunction(name, [&calls, name](const Value &, ActivityContext &) {
      calls.push_back(name);
      return Result<Value>(json(R"({"id": "x"})"));
    }));
  }
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(kOrder));
  REQUIRE(hash.ok());
  auto first = engine.start(StartRequest{hash.value(), "", json(R"({"amount": 1})"), {}, {}, {}});
  REQUIRE(first.ok());
  stepUntil(engine, *temp.store, first.value(), "TimerStarted");
  REQUIRE(engine.cancel(first.value()).ok());
  auto cancelled = engine.runToCompletion(first.value());
  REQUIRE(cancelled.ok());
  CHECK(cancelled.value().status == RunStatus::Cancelled);
  INFO(fmt::format("{} / {}", fmt::join(calls, ","),
                   fmt::join(eventTypes(*temp.store, first.value()), ",")));
  CHECK(calls == std::vector<std::string>{"charge", "refund"});

  calls.clear();
  auto second = engine.start(StartRequest{hash.value(), "", json(R"({"amount": 1})"), {}, {}, {}});
  REQUIRE(second.ok());
  stepUntil(engine, *temp.store, second.value(), "TimerStarted");
  REQUIRE(engine.terminate(second.value(), "operator said so").ok());
  auto terminated = engine.runToCompletion(second.value());
  REQUIRE(terminated.ok());
  CHECK(terminated.value().status == RunStatus::Terminated);
  CHECK(calls == std::vector<std::string>{"charge"});
}

TEST_CASE(
    "a child run's failure reaches the parent with its type and the child's id in the chain") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(R"({ workflows: [
    { id: "top", outputs: [{ name: "caught" }], output_mapping: { caught: $.vars.caught },
      strategy: { op: "try", body: { op: "subworkflow", workflow_ref: "middle" },
        catch: [{ errors: ["Deep"], do: { op: "set", vars: { caught: $.error } } }] } },
    { id: "middle", strategy: { op: "subworkflow", workflow_ref: "bottom" } },
    { id: "bottom", strategy: { op: "subworkflow", workflow_ref: "leaf" } },
    { id: "leaf", strategy: { op: "fail", error: "Deep", message: "three down" } } ] })"));
  REQUIRE(hash.ok());
  auto runId = engine.start(StartRequest{hash.value(), "", Value(Object()), {}, {}, {}});
  REQUIRE(runId.ok());
  auto outcome = engine.runToCompletion(runId.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) ==
        R"({"caught":{"type":"Deep","message":"three down","details":null,)"
        R"("chain":["leaf","bottom","middle"],"location":"engine.kotoba:7"}})");
}

TEST_CASE("continue_as_new is followed to the last run of the chain") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(R"({ workflow: { id: "count",
    inputs: [{ name: "n", type: "integer", required: true }], outputs: [{ name: "n" }],
    output_mapping: { n: $.inputs.n },
    strategy: { op: "decision", conditions: [{ condition: $.inputs.n < 3,
      branch: { op: "continue_as_new", input_mapping: { n: $.inputs.n + 1 } } }],
      default_branch: { op: "seq", strategies: [] } } } })"));
  REQUIRE(hash.ok());
  auto runId = engine.start(StartRequest{hash.value(), "", json(R"({"n": 0})"), {}, {}, {}});
  REQUIRE(runId.ok());
  auto outcome = engine.runToCompletion(runId.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"n":3})");
  CHECK(outcome.value().runId != runId.value());
}

TEST_CASE("a published event reaches a run waiting with a matching filter") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compile(R"({ workflow: { id: "w", inputs: [{ name: "doc" }],
    outputs: [{ name: "review" }], output_mapping: { review: $.events.reviewed },
    strategy: { op: "wait", event: "reviewed", filter: { doc: $.inputs.doc } } } })"));
  REQUIRE(hash.ok());
  auto runId = engine.start(StartRequest{hash.value(), "", json(R"({"doc": "d1"})"), {}, {}, {}});
  REQUIRE(runId.ok());
  REQUIRE(engine.emit("reviewed", json(R"({"doc": "d2", "ok": false})")).ok());
  REQUIRE(engine.emit("reviewed", json(R"({"doc": "d1", "ok": true})")).ok());
  auto outcome = engine.runToCompletion(runId.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"review":{"doc":"d1","ok":true}})");
}

TEST_CASE("a changed workflow blocks a live run instead of replaying differently") {
  TempStore temp;
  VirtualClock clock;
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction(
      "a", [](const Value &, ActivityContext &) { return Result<Value>(Value(1)); }));
  std::string runId;
  std::string hash;
  {
    Engine engine(*temp.store, registry, clock);
    auto added = engine.addModule(compile(R"({ workflow: { id: "w", strategy: { op: "seq",
      strategies: [{ op: "activity", activity_ref: "a" }, { op: "wait", signal: "go" }] } } })"));
    REQUIRE(added.ok());
    hash = added.value();
    auto started = engine.start(StartRequest{hash, "", Value(Object()), {}, {}, {}});
    REQUIRE(started.ok());
    runId = started.value();
    auto waiting = engine.runToCompletion(runId);
    REQUIRE(waiting.ok());
  }
  // Tamper: the store now holds a different module under the run's hash is not possible, so
  // replay the recorded history against a changed module by rewriting the run's module.
  ActivityRegistry changedRegistry;
  REQUIRE_FALSE(changedRegistry.bindFunction(
      "b", [](const Value &, ActivityContext &) { return Result<Value>(Value(2)); }));
  Engine engine(*temp.store, changedRegistry, clock);
  auto changed = engine.addModule(compile(R"({ workflow: { id: "w", strategy: { op: "seq",
    strategies: [{ op: "activity", activity_ref: "b" }, { op: "wait", signal: "go" }] } } })"));
  REQUIRE(changed.ok());
  RunUpdate update;
  update.timeMs = clock.nowMs();
  update.moduleHash = changed.value();
  REQUIRE(temp.store->write([&](Transaction &tx) { return tx.updateRun(runId, update); }).ok());
  clock.advanceBy(10 * 60 * 1000);
  size_t before = eventTypes(*temp.store, runId).size();
  REQUIRE(engine.signal(runId, "go", Value()).ok());
  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  INFO(fmt::format("{}", fmt::join(eventTypes(*temp.store, runId), ",")));
  CHECK(outcome.value().status == RunStatus::Blocked);
  REQUIRE(outcome.value().error.has_value());
  CHECK(outcome.value().error->type == "NonDeterminism");
  CHECK(outcome.value().error->message.find("'b'") != std::string::npos);
  CHECK(eventTypes(*temp.store, runId).size() == before);
}
