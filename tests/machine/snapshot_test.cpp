// Snapshots: a machine restored from a snapshot taken after any input is indistinguishable
// from the original (same snapshot, same commands, same outcome), also after the snapshot
// went through JSON as a checkpoint stores it; malformed snapshots are errors naming the
// field that is wrong, never crashes.
//
// Each scenario runs once in the harness, which records the inputs it fed the machine. The
// transcript is then replayed on fresh machines, cut after every input: the machine at the
// cut is snapshotted and restored, and the rest of the transcript is fed to both.
#include "harness.h"

#include <fmt/format.h>

#include <functional>

using namespace kotoba;
using namespace kotoba::testing;
using vm::RunStatus;

namespace {

constexpr int64_t kStartMs = 1'000'000;

vm::RunInfo runInfo() {
  return vm::RunInfo{"run-1", "1", 1, kStartMs, {}};
}

// Every field of a command, so two command lists compare exactly (1 and 1.0 differ here).
std::string commandText(const vm::Command &command) {
  std::string text = fmt::format(
      "{} id={} fiber={} step={} at={}:{}:{} name={} value={} descriptor={} fire={} "
      "timeout={} target={} detail={}",
      vm::commandKindName(command.kind), command.id, command.fiber, command.step,
      command.location.file.index, command.location.line, command.location.column, command.name,
      toJson(command.value), toJson(command.descriptor), command.fireAtMs.value_or(-1),
      command.timeoutAtMs.value_or(-1), command.target, command.detail);
  if (command.error) {
    text += fmt::format(" error={} retryable={}", toJson(command.error->toValue()),
                        command.error->retryable);
  }
  return text;
}

void append(std::vector<std::string> &texts, const std::vector<vm::Command> &commands) {
  for (const vm::Command &command : commands) {
    texts.push_back(commandText(command));
  }
}

// What can be observed of a machine from outside, besides the commands it returns.
std::string observable(const vm::Machine &machine) {
  std::vector<std::string> pending;
  append(pending, machine.pendingCommands());
  std::string text =
      fmt::format("status={} vars={} results={}", vm::runStatusName(machine.status()),
                  toJson(machine.vars()), toJson(machine.results()));
  for (const std::string &line : pending) {
    text += "\npending " + line;
  }
  for (const auto &[name, payload] : machine.bufferedSignals()) {
    text += fmt::format("\nbuffered {}={}", name, toJson(payload));
  }
  return text;
}

vm::Machine restoreThroughJson(const std::shared_ptr<const vm::Module> &module,
                               const Value &snapshot) {
  Result<Value> parsed = parseJson(toJson(snapshot));
  REQUIRE(parsed.ok());
  Result<vm::Machine> restored = vm::Machine::restore(module, parsed.value());
  REQUIRE_MESSAGE(restored.ok(), restored.error().message);
  return std::move(restored).value();
}

// Replays the harness's transcript cut after every input and checks the restored machine
// against the original at each cut.
void checkEveryCut(Harness &harness, const Value &inputs) {
  auto module = std::make_shared<const vm::Module>(harness.module());
  std::vector<std::string> reference;
  append(reference, harness.commands);
  const std::vector<vm::Input> &transcript = harness.inputs;

  for (size_t cut = 0; cut <= transcript.size(); ++cut) {
    CAPTURE(cut);
    vm::Machine original(module, 0, runInfo());
    std::vector<std::string> seen;
    append(seen, original.start(inputs));
    for (size_t i = 0; i < cut; ++i) {
      append(seen, original.apply(transcript[i]));
    }

    Value snapshot = original.snapshot();
    Result<vm::Machine> direct = vm::Machine::restore(module, snapshot);
    REQUIRE_MESSAGE(direct.ok(), direct.error().message);
    CHECK(toJson(direct.value().snapshot()) == toJson(snapshot));
    vm::Machine copy = restoreThroughJson(module, snapshot);
    CHECK(toJson(copy.snapshot()) == toJson(snapshot));
    CHECK(observable(copy) == observable(original));

    for (size_t i = cut; i < transcript.size(); ++i) {
      CAPTURE(i);
      std::vector<std::string> fromOriginal;
      std::vector<std::string> fromCopy;
      append(fromOriginal, original.apply(transcript[i]));
      append(fromCopy, copy.apply(transcript[i]));
      REQUIRE(fromCopy == fromOriginal);
      seen.insert(seen.end(), fromOriginal.begin(), fromOriginal.end());
    }
    CHECK(seen == reference);
    CHECK(observable(copy) == observable(original));
    CHECK(toJson(copy.snapshot()) == toJson(original.snapshot()));
  }
}

ActivityFunction failing(const std::string &type, bool retryable = false) {
  return [type, retryable](const Value &, int64_t) -> Result<Value> {
    WorkflowError error = makeError(type, type + " happened");
    error.retryable = retryable;
    return error;
  };
}

ActivityFunction returning(Value value) {
  return [value](const Value &, int64_t) -> Result<Value> { return value; };
}

vm::Input control(vm::InputKind kind) {
  vm::Input input;
  input.kind = kind;
  return input;
}

struct Scenario {
  std::string source;
  Value inputs = Value(Object());
  // Configures the harness's scripts before the run.
  std::function<void(Harness &)> setup = [](Harness &) {};
  // Drives the run on after run() returned: signals, cancels, time passing.
  std::function<void(Harness &)> then = [](Harness &) {};
  std::string entry = {};
};

// Runs the scenario, checks it reached `expected`, and checks every cut of its transcript.
void checkScenario(const Scenario &scenario, RunStatus expected) {
  Harness harness(scenario.source, scenario.entry);
  scenario.setup(harness);
  harness.run(scenario.inputs, kStartMs);
  scenario.then(harness);
  CHECK(harness.machine().status() == expected);
  checkEveryCut(harness, scenario.inputs);
}

const char *const kTrip = R"({
  workflow: { id: "trip",
    strategy: { op: "saga",
      compensation_policy: "POLICY", on_compensation_failure: "MODE",
      main_flow: { op: "seq", strategies: [
        { op: "activity", activity_ref: "flight", input_mapping: { n: 1 },
          compensate: { activity_ref: "cancel_flight", input_mapping: { id: $.result.n } } },
        { op: "activity", activity_ref: "hotel", input_mapping: { n: 2.5 },
          compensate: { activity_ref: "cancel_hotel", input_mapping: { id: $.result.n } } },
        { op: "wait", timer: "1m" },
        { op: "activity", activity_ref: "car", input_mapping: { n: 3 },
          compensate: { activity_ref: "cancel_car", input_mapping: { id: $.result.n } } },
      ] },
      compensation: { op: "activity", activity_ref: "notify",
                      input_mapping: { why: $.error.type } } } } })";

std::string trip(const std::string &policy, const std::string &mode) {
  std::string text = kTrip;
  text.replace(text.find("POLICY"), 6, policy);
  text.replace(text.find("MODE"), 4, mode);
  return text;
}

std::string threeBranches(const std::string &mode) {
  return R"({ workflow: { id: "w", outputs: [{ name: "v" }],
    output_mapping: { v: $.results.fan },
    strategy: { op: "parallel", id: "fan", completion_condition: ")" +
         mode + R"(",)" + (mode == "at_least" ? " count: 2," : "") + R"(
      branches: [
        { op: "seq", strategies: [{ op: "wait", timer: "3s" },
                                  { op: "activity", activity_ref: "slow" }] },
        { op: "activity", activity_ref: "a" },
        { op: "seq", strategies: [{ op: "wait", timer: "1s" },
                                  { op: "activity", activity_ref: "b" }] },
      ] } } })";
}

} // namespace

TEST_CASE("a restored saga compensates exactly like the original, at every cut") {
  SUBCASE("reverse, continue, with a failing compensation") {
    Scenario scenario{trip("reverse", "continue")};
    scenario.setup = [](Harness &harness) {
      harness.activities["car"] = failing("NoCars");
      harness.activities["cancel_hotel"] = failing("HotelClosed");
    };
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("reverse, stop") {
    Scenario scenario{trip("reverse", "stop")};
    scenario.setup = [](Harness &harness) {
      harness.activities["car"] = failing("NoCars");
      harness.activities["cancel_hotel"] = failing("HotelClosed");
    };
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("parallel compensations, retried") {
    Scenario scenario{trip("parallel", "continue")};
    scenario.setup = [](Harness &harness) {
      harness.activities["car"] = failing("NoCars");
      harness.activities["cancel_flight"] = [](const Value &, int64_t attempt) -> Result<Value> {
        if (attempt < 3) {
          WorkflowError error = makeError("Flaky", "again");
          error.retryable = true;
          return error;
        }
        return Value(1.0);
      };
    };
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("nested sagas hand compensations outward") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
      op: "seq", strategies: [
        { op: "saga", main_flow: { op: "activity", activity_ref: "inner",
            compensate: { activity_ref: "undo_inner" } } },
        { op: "activity", activity_ref: "outer", compensate: { activity_ref: "undo_outer" } },
        { op: "fail", error: "Later", message: "after both" },
      ] } } } })"};
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("foreach iterations register compensations with their own data") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "items" }],
      strategy: { op: "saga", main_flow: { op: "seq", strategies: [
        { op: "foreach", items: $.inputs.items, body: { op: "activity",
            activity_ref: "reserve", input_mapping: { sku: $.item },
            compensate: { activity_ref: "release", input_mapping: { sku: $.result.sku } } } },
        { op: "fail", error: "Abort" } ] } } } })"};
    scenario.inputs = json(R"({"items": ["a", "b", "c"]})");
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("a cancel request while waiting compensates and ends Cancelled") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
      op: "seq", strategies: [
        { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
        { op: "wait", signal: "go" } ] } } } })"};
    scenario.then = [](Harness &harness) {
      harness.send(control(vm::InputKind::CancelRequested));
      harness.send(control(vm::InputKind::CancelRequested));
    };
    checkScenario(scenario, RunStatus::Cancelled);
  }
  SUBCASE("the workflow timeout compensates and ends TimedOut") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "saga", main_flow: {
      op: "seq", strategies: [
        { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
        { op: "wait", timer: "1h" } ] } } } })"};
    scenario.setup = [](Harness &harness) { harness.horizonMs = 60'000; };
    scenario.then = [](Harness &harness) { harness.send(control(vm::InputKind::TimeoutReached)); };
    checkScenario(scenario, RunStatus::TimedOut);
  }
}

TEST_CASE("restored parallels and foreach loops resolve exactly like the originals") {
  SUBCASE("all") {
    Scenario scenario{threeBranches("all")};
    scenario.setup = [](Harness &harness) {
      harness.activities["a"] = returning(Value("A"));
      harness.activities["b"] = returning(Value(2.0));
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("all, with a failure cancelling the rest") {
    Scenario scenario{threeBranches("all")};
    scenario.setup = [](Harness &harness) { harness.activities["b"] = failing("Broken"); };
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("all, with a cancelled branch compensating its own saga before the failure") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "parallel", branches: [
      { op: "saga", main_flow: { op: "seq", strategies: [
          { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
          { op: "activity", activity_ref: "hold", compensate: { activity_ref: "unhold" } },
          { op: "wait", signal: "go" } ] } },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] } ] } } })"};
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("all, with a branch compensating when a failure cancels it, and a cancel request") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "parallel", branches: [
      { op: "seq", strategies: [
          { op: "try", body: { op: "saga", main_flow: { op: "seq", strategies: [
                { op: "activity", activity_ref: "book",
                  compensate: { activity_ref: "unbook",
                    retry_policy: { initial_interval: "2m", maximum_attempts: 3 } } },
                { op: "fail", error: "Nope" } ] },
              compensation: { op: "activity", activity_ref: "notify" } },
            catch: [{ errors: ["*"], do: { op: "activity", activity_ref: "recover" } }] },
          { op: "activity", activity_ref: "next" } ] },
      { op: "seq", strategies: [{ op: "wait", timer: "PT1M" },
                                { op: "fail", error: "Boom" }] },
      { op: "wait", signal: "go" } ] } } })"};
    scenario.setup = [](Harness &harness) {
      harness.horizonMs = 90'000;
      harness.activities["unbook"] = [](const Value &input, int64_t attempt) -> Result<Value> {
        if (attempt < 2) {
          WorkflowError error = makeError("Busy", "try later");
          error.retryable = true;
          return error;
        }
        return input;
      };
    };
    // At 1m30s the branch compensates, cancelled by the failure: a cancel request changes
    // nothing for it, and the run ends Cancelled once it has finished.
    scenario.then = [](Harness &harness) {
      harness.send(control(vm::InputKind::CancelRequested));
      harness.advance(60 * 60'000);
    };
    checkScenario(scenario, RunStatus::Cancelled);
  }
  SUBCASE("any") {
    Scenario scenario{threeBranches("any")};
    scenario.setup = [](Harness &harness) {
      harness.activities["a"] = failing("NoLuck");
      harness.activities["b"] = returning(Value("B"));
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("at_least") {
    Scenario scenario{threeBranches("at_least")};
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("all_settled") {
    Scenario scenario{threeBranches("all_settled")};
    scenario.setup = [](Harness &harness) { harness.activities["a"] = failing("Oops"); };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("foreach with private iteration scopes") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "items" }],
      outputs: [{ name: "values" }, { name: "leaked" }],
      output_mapping: { values: $.results.each, leaked: $.vars.inner ?? "none" },
      strategy: { op: "foreach", id: "each", items: $.inputs.items,
        body: { op: "seq", strategies: [
          { op: "set", vars: { inner: $.item } },
          { op: "wait", timer: "1s" },
          { op: "activity", activity_ref: "work",
            input_mapping: { item: $.vars.inner, at: $.index } },
        ] } } } })"};
    scenario.inputs = json(R"({"items": ["x", "y", "z"]})");
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("foreach with a concurrency limit") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "items" }],
      strategy: { op: "foreach", items: $.inputs.items, max_concurrency: 2,
        body: { op: "seq", strategies: [{ op: "wait", timer: "1s" },
                                         { op: "activity", activity_ref: "work" }] } } } })"};
    scenario.inputs = json(R"({"items": [1, 2, 3, 4, 5]})");
    checkScenario(scenario, RunStatus::Completed);
  }
}

TEST_CASE("restored waits consume signals, timeouts and events exactly like the originals") {
  SUBCASE("a signal buffered before its wait") {
    Scenario scenario{R"({ workflow: { id: "w", outputs: [{ name: "got" }],
      output_mapping: { got: $.signals.approve },
      strategy: { op: "seq", strategies: [
        { op: "wait", timer: "1m" }, { op: "wait", signal: "approve" } ] } } })"};
    scenario.setup = [](Harness &harness) { harness.horizonMs = 1'000; };
    scenario.then = [](Harness &harness) {
      harness.signal("approve", json(R"({"by": "ann", "score": 0.5})"));
      harness.signal("other", Value(1));
      harness.advance(60'000);
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("buffered signals in arrival order") {
    Scenario scenario{R"({ workflow: { id: "w", outputs: [{ name: "first" }, { name: "second" }],
      strategy: { op: "seq", strategies: [
        { op: "wait", timer: "1m" },
        { op: "wait", signal: "step", id: "one" }, { op: "wait", signal: "step", id: "two" } ] },
      output_mapping: { first: $.results.one, second: $.results.two } } })"};
    scenario.setup = [](Harness &harness) { harness.horizonMs = 1'000; };
    scenario.then = [](Harness &harness) {
      harness.signal("step", Value(1));
      harness.signal("step", Value(2));
      harness.advance(60'000);
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("a wait that timed out, then a late signal") {
    Scenario scenario{R"({ workflow: { id: "w", outputs: [{ name: "late" }],
      output_mapping: { late: $.results.later },
      strategy: { op: "seq", strategies: [
        { op: "try", body: { op: "wait", signal: "approve", timeout: "PT1M" },
          catch: [{ errors: ["WaitTimeout"], do: { op: "set", vars: { timedOut: true } } }] },
        { op: "wait", signal: "approve", id: "later" } ] } } })"};
    scenario.setup = [](Harness &harness) { harness.horizonMs = 120'000; };
    scenario.then = [](Harness &harness) { harness.signal("approve", Value("yes")); };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("an event wait with a filter") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "doc" }],
      outputs: [{ name: "e" }], output_mapping: { e: $.events.reviewed },
      strategy: { op: "wait", event: "reviewed", filter: { doc: $.inputs.doc } } } })"};
    scenario.inputs = json(R"({"doc": "mine"})");
    scenario.setup = [](Harness &harness) {
      harness.published.emplace_back("reviewed", json(R"({"doc": "other", "n": 1})"));
      harness.published.emplace_back("reviewed", json(R"({"doc": "mine", "n": 2})"));
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("a decision asks a host predicate") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "amount" }],
      predicates: { big: $.inputs.amount > 1000 },
      strategy: { op: "decision", id: "route", conditions: [
        { condition: "big", branch: { op: "activity", activity_ref: "review" } },
        { condition: "is_vip", branch: { op: "activity", activity_ref: "fast" } },
        { condition: $.inputs.amount > 10, branch: { op: "activity", activity_ref: "normal" } } ],
        default_branch: { op: "activity", activity_ref: "tiny" } } } })"};
    scenario.inputs = json(R"({"amount": 50})");
    scenario.setup = [](Harness &harness) { harness.predicates["is_vip"] = true; };
    checkScenario(scenario, RunStatus::Completed);
  }
}

TEST_CASE("restored try frames, children, loops and counters behave like the originals") {
  SUBCASE("try catches by type and runs finally") {
    Scenario scenario{R"({ workflow: { id: "w", outputs: [{ name: "v" }],
      output_mapping: { v: $.results.guarded },
      strategy: { op: "try", id: "guarded",
        body: { op: "seq", strategies: [{ op: "activity", activity_ref: "prepare" },
                                        { op: "activity", activity_ref: "risky" }] },
        catch: [{ errors: ["Other"], do: { op: "activity", activity_ref: "wrong" } },
                { errors: ["Declined"], do: { op: "activity", activity_ref: "handle",
                                              input_mapping: { type: $.error.type } } }],
        finally: { op: "activity", activity_ref: "cleanup" } } } })"};
    scenario.setup = [](Harness &harness) { harness.activities["risky"] = failing("Declined"); };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("an uncaught error runs finally and fails") {
    Scenario scenario{R"({ workflow: { id: "w", strategy: { op: "try",
        body: { op: "seq", strategies: [{ op: "activity", activity_ref: "first" },
                                        { op: "fail", error: "Boom", message: "no" }] },
        catch: [{ errors: ["Other"], do: { op: "seq", strategies: [] } }],
        finally: { op: "activity", activity_ref: "cleanup" } } } })"};
    checkScenario(scenario, RunStatus::Failed);
  }
  SUBCASE("a child's error is caught by type") {
    Scenario scenario{R"({ workflows: [
      { id: "parent", outputs: [{ name: "caught" }], output_mapping: { caught: $.vars.caught },
        strategy: { op: "try", body: { op: "subworkflow", workflow_ref: "child" },
          catch: [{ errors: ["DeepProblem"], do: { op: "set", vars: { caught: $.error } } }] } },
      { id: "child", strategy: { op: "fail", error: "DeepProblem" } } ] })"};
    scenario.setup = [](Harness &harness) {
      harness.children["child"] = [](const Value &, int64_t) -> Result<Value> {
        WorkflowError error = makeError("DeepProblem", "three levels down");
        error.chain = {"grandchild", "child"};
        return error;
      };
    };
    checkScenario(scenario, RunStatus::Completed);
  }
  SUBCASE("a loop with activities, then continue_as_new") {
    Scenario scenario{R"({ workflow: { id: "w", inputs: [{ name: "n" }],
      strategy: { op: "seq", strategies: [
        { op: "loop", while: ($.vars.i ?? 0) < 3, body: { op: "seq", strategies: [
            { op: "activity", activity_ref: "tick", input_mapping: { i: $.vars.i ?? 0 } },
            { op: "set", vars: { i: ($.vars.i ?? 0) + 1 } } ] } },
        { op: "continue_as_new", input_mapping: { n: $.inputs.n + 1 } } ] } } })"};
    scenario.inputs = json(R"({"n": 1})");
    checkScenario(scenario, RunStatus::ContinuedAsNew);
  }
  SUBCASE("uuid() continues its sequence after a restore") {
    Scenario scenario{R"({ workflow: { id: "w", outputs: [{ name: "ids" }, { name: "t" }],
      strategy: { op: "seq", strategies: [
        { op: "set", vars: { first: uuid() } },
        { op: "wait", timer: "5s" },
        { op: "set", vars: { ids: [$.vars.first, uuid()], t: now() } } ] } } })"};
    checkScenario(scenario, RunStatus::Completed);
  }
}

TEST_CASE("a snapshot before start restores a machine that has not started") {
  Harness harness(R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "a" } } })");
  auto module = std::make_shared<const vm::Module>(harness.module());
  vm::Machine fresh(module, 0, runInfo());
  vm::Machine copy = restoreThroughJson(module, fresh.snapshot());
  std::vector<std::string> original;
  std::vector<std::string> restored;
  append(original, fresh.start(Value(Object())));
  append(restored, copy.start(Value(Object())));
  CHECK(restored == original);
  CHECK(restored.size() == 1);
}

// ---- malformed snapshots -------------------------------------------------------------------

namespace {

// A snapshot taken while a saga waits in a parallel: fibers, frames, a join, pending
// commands and scopes are all there to break.
struct Waiting {
  std::shared_ptr<const vm::Module> module;
  Value snapshot;
};

Waiting waitingSnapshot() {
  Harness harness(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    strategy: { op: "saga", main_flow: { op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "try", body: { op: "parallel", branches: [
          { op: "wait", signal: "go", timeout: "1h" },
          { op: "foreach", items: $.inputs.items, body: { op: "wait", timer: "1m" } } ] },
        catch: [{ errors: ["*"], do: { op: "set", vars: { caught: true } } }] } ] } } } })");
  harness.horizonMs = 1'000;
  harness.run(json(R"({"items": [1, 2]})"), kStartMs);
  REQUIRE(harness.machine().status() == RunStatus::Running);
  return Waiting{std::make_shared<const vm::Module>(harness.module()),
                 harness.machine().snapshot()};
}

// The snapshot with the value at `path` (object keys and array indexes) replaced.
Value replaced(const Value &value, const std::vector<std::string> &path, size_t depth,
               const Value &with) {
  if (depth == path.size()) {
    return with;
  }
  const std::string &step = path[depth];
  if (value.isArray()) {
    Array copy = value.asArray();
    size_t index = std::stoul(step);
    copy[index] = replaced(copy[index], path, depth + 1, with);
    return Value(std::move(copy));
  }
  Object copy = value.asObject();
  copy.set(step, replaced(*value.asObject().find(step), path, depth + 1, with));
  return Value(std::move(copy));
}

std::vector<std::string> splitPath(const std::string &dotted) {
  std::vector<std::string> path;
  size_t start = 0;
  for (size_t dot = dotted.find('.');; dot = dotted.find('.', start)) {
    path.push_back(
        dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) {
      return path;
    }
    start = dot + 1;
  }
}

Value replacedAt(const Value &snapshot, const std::string &dotted, const Value &with) {
  return replaced(snapshot, splitPath(dotted), 0, with);
}

Value valueAt(const Value &snapshot, const std::string &dotted) {
  Value at = snapshot;
  for (const std::string &step : splitPath(dotted)) {
    at = at.isArray() ? at.asArray()[std::stoul(step)] : *at.asObject().find(step);
  }
  return at;
}

// Every path in the value, for the mutation sweep.
void collectPaths(const Value &value, std::vector<std::string> &prefix,
                  std::vector<std::vector<std::string>> &paths) {
  paths.push_back(prefix);
  if (value.isArray()) {
    for (size_t i = 0; i < value.asArray().size(); ++i) {
      prefix.push_back(std::to_string(i));
      collectPaths(value.asArray()[i], prefix, paths);
      prefix.pop_back();
    }
  } else if (value.isObject()) {
    for (const ObjectEntry &entry : value.asObject()) {
      prefix.push_back(entry.key);
      collectPaths(entry.value, prefix, paths);
      prefix.pop_back();
    }
  }
}

std::string restoreError(const Waiting &waiting, const Value &snapshot) {
  Result<vm::Machine> restored = vm::Machine::restore(waiting.module, snapshot);
  return restored.ok() ? std::string("restored") : restored.error().message;
}

} // namespace

TEST_CASE("restore names the first malformed field of a snapshot") {
  Waiting waiting = waitingSnapshot();
  REQUIRE(restoreError(waiting, waiting.snapshot) == "restored");

  CHECK(restoreError(waiting, Value(Array())) ==
        "invalid machine snapshot: expected an object, found an empty array");
  CHECK(restoreError(waiting, replacedAt(waiting.snapshot, "format", Value(99))) ==
        "invalid machine snapshot: format 99 is not the format 1 this version reads");
  CHECK(restoreError(waiting, replacedAt(waiting.snapshot, "fibers.0.pc", Value("x"))) ==
        "invalid machine snapshot: snapshot.fibers[0].pc: expected an integer, found string "
        "\"x\"");
  CHECK(restoreError(waiting, replacedAt(waiting.snapshot, "fibers.1.state", Value("asleep"))) ==
        "invalid machine snapshot: snapshot.fibers[1].state: 'asleep' is not a known name here");
  CHECK(restoreError(waiting, replacedAt(waiting.snapshot, "now", Value(1.5))) ==
        "invalid machine snapshot: snapshot.now: expected an integer, found double 1.5");

  Object withoutScopes = waiting.snapshot.asObject();
  withoutScopes.erase("scopes");
  CHECK(restoreError(waiting, Value(withoutScopes)) ==
        "invalid machine snapshot: snapshot: the field 'scopes' is missing");
}

TEST_CASE("restore refuses snapshots whose parts do not fit the module or each other") {
  Waiting waiting = waitingSnapshot();
  auto refused = [&](const std::string &path, const Value &with, const std::string &problem) {
    CAPTURE(path);
    std::string error = restoreError(waiting, replacedAt(waiting.snapshot, path, with));
    CHECK(error.find(problem) != std::string::npos);
    CHECK(error.rfind("invalid machine snapshot: ", 0) == 0);
  };
  refused("workflow", Value(7), "the module has no workflow 'w' at index 7");
  refused("workflow_id", Value("other"), "the module has no workflow 'other' at index 0");
  refused("fibers.0.block", Value(999), "fiber 0: block 999 does not exist");
  refused("fibers.0.pc", Value(100000), "fiber 0: pc 100000 is past its block's");
  refused("fibers.0.registers", Value(Array{Value(1)}), "fiber 0: it has 1 registers");
  refused("fibers.0.scope", Value(42), "fiber 0: scope 42 does not exist");
  // Fiber 0 has the saga's frame, then the try's: a saga frame with a try's descriptor.
  refused("fibers.0.frames.0.descriptor", valueAt(waiting.snapshot, "fibers.0.frames.1.descriptor"),
          "is not a saga descriptor");
  refused("fibers.0.frames.0.handler", Value(100000), "a handler at 100000 is past");
  refused("fibers.0.join", Value(77), "fiber 0: it waits on join 77, which it does not own");
  refused("ready", Value(Array{Value(0)}), "fiber 0 is in the ready set but is not a ready fiber");
  refused("ready", Value(Array{Value(1), Value(1)}), "snapshot.ready[1]: repeats an id");
  refused("next_fiber", Value(1), "its id is not below next_fiber 1");
  refused("joins.0.owner", Value(55), "fiber 0: it waits on join 0, which it does not own");
  refused("joins.1.items", Value(Array{Value(1)}), "its items are not an array of its 2 slots");
  refused("scopes.0.parent", Value(0), "scope 0 has parent 0, which is not an older scope");
  refused("pending.0.fiber", Value(0), "fiber 1: it waits on command 2, which is not pending");
  refused("pending.0.command.id", Value(12345), "fiber 1: it waits on command 2, which is not");
  refused("next_command", Value(1), "pending command 2: its id is not below next_command 1");
  refused("fibers.1.spawner", Value(5), "fiber 1: spawner 5 is not an older fiber");
}

TEST_CASE("restore reads the saga-handler fields of a fiber only when they are written") {
  // The waiting snapshot runs no saga handler, so its fibers carry neither field, as every
  // snapshot written before the fields existed; those restore with them unset.
  Waiting waiting = waitingSnapshot();
  REQUIRE(restoreError(waiting, waiting.snapshot) == "restored");
  auto withField = [&](const std::string &key, const Value &value) {
    Object fiber = valueAt(waiting.snapshot, "fibers.0").asObject();
    fiber.set(key, value);
    return replacedAt(waiting.snapshot, "fibers.0", Value(std::move(fiber)));
  };
  CHECK(restoreError(waiting, withField("handler_depth", Value(0))) == "restored");
  CHECK(restoreError(waiting, withField("handler_depth", Value())) ==
        "invalid machine snapshot: snapshot.fibers[0].handler_depth: expected an integer, "
        "found null");
  CHECK(restoreError(waiting, withField("handler_depth", Value(9)))
            .find("fiber 0: handler depth 9 is past its 2 frames") != std::string::npos);
  CHECK(restoreError(waiting, withField("cancel_after_handler", Value(false))) ==
        "invalid machine snapshot: snapshot.fibers[0].cancel_after_handler: expected true "
        "(the field is left out when false)");
  CHECK(restoreError(waiting, withField("cancel_after_handler", Value(true)))
            .find("fiber 0: it is cancelled after a saga handler it does not run") !=
        std::string::npos);
}

TEST_CASE("no mutation of a snapshot crashes restore") {
  Waiting waiting = waitingSnapshot();
  std::vector<std::vector<std::string>> paths;
  std::vector<std::string> prefix;
  collectPaths(waiting.snapshot, prefix, paths);
  REQUIRE(paths.size() > 100);
  const std::vector<Value> replacements = {
      Value(),        Value(-1),       Value(int64_t{4294967296}),
      Value(0),       Value(3),        Value("ready"),
      Value(Array()), Value(Object()), Value(true)};
  size_t refused = 0;
  size_t accepted = 0;
  for (const std::vector<std::string> &path : paths) {
    for (const Value &with : replacements) {
      Value mutated = replaced(waiting.snapshot, path, 0, with);
      Result<vm::Machine> restored = vm::Machine::restore(waiting.module, mutated);
      if (!restored.ok()) {
        ++refused;
        continue;
      }
      ++accepted;
      // Whatever restore accepts is a state it writes back as it read it.
      CHECK(toJson(restored.value().snapshot()) == toJson(mutated));
    }
  }
  MESSAGE(fmt::format("{} mutations refused, {} accepted", refused, accepted));
  CHECK(refused > accepted / 4);
}
