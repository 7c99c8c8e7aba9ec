// A run keeps how its activities resolve (runs.host): the bindings it started with and the
// directory its declarations' relative paths resolve against. Another engine, with other
// options and no bindings, drives it alike; its own host bindings still win; children and
// continuations inherit it; a version 1 store gains the column when opened.
#include "engine_support.h"
#include "raw_sqlite.h"

#include "kotoba/runtime/activity_binding.h"

#include <sqlite3.h>

#include <fstream>
#include <sys/stat.h>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

// Registers `stamp` as a function any implementation object may name, without binding it
// to an activity name: only a binding (the run's or the host's) makes it callable.
void registerStamp(ActivityRegistry &registry, std::string answer) {
  registry.registerFunction("stamp", [answer](const Value &, ActivityContext &) {
    Object result;
    result.set("by", Value(answer));
    return Result<Value>(Value(std::move(result)));
  });
}

Value functionImplementation(const std::string &function) {
  return parse(R"({"type": "function", "function_name": ")" + function + R"("})");
}

const char *const kStampWorkflow = R"({ workflow: { id: "w", outputs: [{ name: "by" }],
  output_mapping: { by: $.results.stamp.by },
  strategy: { op: "activity", activity_ref: "stamp" } } })";

// Starts a run of `source` with `host` on an engine over `store` whose registry has no
// binding for anything, and lets the engine go (it gives its lease back).
std::string startWith(Store &store, const std::string &source, const RunHost &host) {
  ActivityRegistry registry;
  registerStamp(registry, "starter");
  VirtualClock clock{1'700'000'000'000};
  Engine engine(store, registry, clock);
  auto hash = engine.addModule(compileWorkflow(source));
  REQUIRE(hash.ok());
  StartRequest request;
  request.moduleHash = hash.value();
  request.inputs = Value(Object());
  request.host = host;
  auto started = engine.start(request);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  return started.value();
}

RunOutcome driveElsewhere(Store &store, const std::string &runId,
                          const std::function<void(ActivityRegistry &)> &setUp) {
  ActivityRegistry registry;
  setUp(registry);
  VirtualClock clock{1'700'000'000'000};
  EngineOptions options;
  options.baseDirectory = "/nonexistent/elsewhere";
  Engine engine(store, registry, clock, options);
  auto outcome = engine.runToCompletion(runId);
  REQUIRE_MESSAGE(outcome.ok(), (outcome.ok() ? "" : outcome.error().message));
  if (outcome.value().error) {
    MESSAGE("the run ended with ", toJson(outcome.value().error->toValue()));
  }
  return outcome.value();
}

RunRecord storedRun(Store &store, const std::string &runId) {
  auto run = store.query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(run.ok());
  REQUIRE(run.value().has_value());
  return *run.value();
}

} // namespace

TEST_CASE("a run's host survives the store as JSON and reads back the same") {
  RunHost host{"/srv/flows", {RunBinding{"stamp", functionImplementation("stamp"), "/home/ci"}}};
  Value stored = runHostToValue(host);
  CHECK(toJson(stored) == R"({"base_directory":"/srv/flows","bindings":[{"name":"stamp",)"
                          R"("implementation":{"type":"function","function_name":"stamp"},)"
                          R"("base_directory":"/home/ci"}]})");
  Result<RunHost> back = runHostFromValue(stored);
  REQUIRE(back.ok());
  CHECK(back.value().baseDirectory == "/srv/flows");
  REQUIRE(back.value().bindings.size() == 1);
  CHECK(back.value().bindings[0].name == "stamp");
  CHECK(back.value().bindings[0].baseDirectory == "/home/ci");

  Result<RunHost> broken = runHostFromValue(parse(R"({"bindings": [{"name": 3}]})"));
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().message.find("malformed") != std::string::npos);
}

TEST_CASE("an engine without the run's bindings drives it with the bindings it started with") {
  TemporaryStore temp;
  RunHost host{"", {RunBinding{"stamp", functionImplementation("stamp"), ""}}};
  std::string runId = startWith(*temp.store, kStampWorkflow, host);
  CHECK(toJson(storedRun(*temp.store, runId).host) == toJson(runHostToValue(host)));

  RunOutcome outcome = driveElsewhere(*temp.store, runId, [](ActivityRegistry &registry) {
    registerStamp(registry, "stored binding");
  });
  CHECK(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) == R"({"by":"stored binding"})");
}

TEST_CASE("a host binding of the driving engine overrides the binding stored with the run") {
  TemporaryStore temp;
  RunHost host{"", {RunBinding{"stamp", functionImplementation("stamp"), ""}}};
  std::string runId = startWith(*temp.store, kStampWorkflow, host);
  RunOutcome outcome = driveElsewhere(*temp.store, runId, [](ActivityRegistry &registry) {
    registerStamp(registry, "stored binding");
    REQUIRE_FALSE(registry.bindFunction("stamp", [](const Value &, ActivityContext &) {
      return Result<Value>(parse(R"({"by": "host override"})"));
    }));
  });
  CHECK(toJson(outcome.outputs) == R"({"by":"host override"})");
}

TEST_CASE("relative paths of declarations resolve against the run's directory, not the engine's") {
  TemporaryStore temp;
  std::filesystem::path project = temp.directory / "project";
  std::filesystem::create_directories(project);
  {
    std::ofstream script(project / "where.sh");
    script << "#!/bin/sh\ncat >/dev/null\necho '{\"from\": \"project\"}'\n";
  }
  ::chmod((project / "where.sh").c_str(), 0755);
  std::string source = R"({
    activities: [{ name: "where", implementation: { type: "process", command: "./where.sh" } }],
    workflow: { id: "w", outputs: [{ name: "from" }],
                output_mapping: { from: $.results.where.from },
                strategy: { op: "activity", activity_ref: "where" } } })";
  std::string runId = startWith(*temp.store, source, RunHost{project.string(), {}});
  // The driving engine's own base directory does not have where.sh.
  RunOutcome outcome = driveElsewhere(*temp.store, runId, [](ActivityRegistry &) {});
  CHECK(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) == R"({"from":"project"})");
}

TEST_CASE("children and continue-as-new runs inherit the run's host") {
  TemporaryStore temp;
  ActivityRegistry registry;
  registerStamp(registry, "stored binding"); // callable only through the run's binding
  VirtualClock clock{1'700'000'000'000};
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compileWorkflow(R"({ workflows: [
    { id: "parent", inputs: [{ name: "round", type: "integer", default: 0 }],
      strategy: { op: "seq", strategies: [
        { op: "subworkflow", workflow_ref: "child" },
        { op: "decision", conditions: [{ condition: $.inputs.round < 1,
            branch: { op: "continue_as_new", input_mapping: { round: 1 } } }],
          default_branch: { op: "seq", strategies: [] } } ] } },
    { id: "child", strategy: { op: "activity", activity_ref: "stamp" } } ] })"));
  REQUIRE(hash.ok());
  RunHost host{"/srv/flows", {RunBinding{"stamp", functionImplementation("stamp"), ""}}};
  StartRequest request;
  request.moduleHash = hash.value();
  request.inputs = Value(Object());
  request.host = host;
  auto runId = engine.start(request);
  REQUIRE(runId.ok());
  auto outcome = engine.runToCompletion(runId.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  auto runs = temp.store->query([](const StoreReader &reader) { return reader.runs({}); });
  REQUIRE(runs.ok());
  // The parent, its continuation and a child of each, all completed with the stored binding.
  CHECK(runs.value().size() == 4);
  for (const RunRecord &run : runs.value()) {
    INFO("run ", run.id);
    CHECK(toJson(run.host) == toJson(runHostToValue(host)));
    CHECK(run.status != RunStatus::Failed);
  }
}

TEST_CASE("a version 1 store gains runs.host when opened, and its old runs have none") {
  TemporaryStore temp;
  std::string path = (temp.directory / "old.db").string();
  {
    auto created = Store::open(path);
    REQUIRE(created.ok());
  }
  {
    // Make it a version 1 file with one run, as the previous kotoba wrote it.
    raw_sqlite::rawExec(
        path,
        std::string(raw_sqlite::kBackToVersion2Sql) + raw_sqlite::kBackToVersion1Sql +
            "INSERT INTO modules VALUES ('aa', x'00', 1);"
            "INSERT INTO runs (id, chain_id, workflow_id, module_hash, status, inputs, "
            "created_ms, updated_ms) VALUES ('old', 'old', 'w', 'aa', 'RUNNING', '{}', 1, 1);");
  }
  auto reopened = Store::open(path);
  REQUIRE(reopened.ok());
  auto version = reopened.value()->schemaVersion();
  REQUIRE(version.ok());
  CHECK(version.value() == kStoreSchemaVersion);
  CHECK(storedRun(*reopened.value(), "old").host.isNull());
  auto updated = reopened.value()->write([](Transaction &tx) {
    RunUpdate update;
    update.timeMs = 2;
    update.host = parse(R"({"base_directory": "/srv"})");
    return tx.updateRun("old", update);
  });
  REQUIRE(updated.ok());
  CHECK(toJson(storedRun(*reopened.value(), "old").host) == R"({"base_directory":"/srv"})");
}

TEST_CASE("a run whose stored host is malformed fails its activities saying why") {
  TemporaryStore temp;
  RunHost host{"", {RunBinding{"stamp", functionImplementation("stamp"), ""}}};
  std::string runId = startWith(*temp.store, kStampWorkflow, host);
  // Another tool wrote the column.
  auto damaged = temp.store->write([&](Transaction &tx) {
    RunUpdate update;
    update.timeMs = 1'700'000'000'001;
    update.host = parse(R"({"bindings": 3})");
    return tx.updateRun(runId, update);
  });
  REQUIRE(damaged.ok());
  RunOutcome outcome = driveElsewhere(
      *temp.store, runId, [](ActivityRegistry &registry) { registerStamp(registry, "unused"); });
  CHECK(outcome.status == RunStatus::Failed);
  REQUIRE(outcome.error);
  CHECK(outcome.error->type == "ActivityUnavailable");
  CHECK(outcome.error->message ==
        "activity 'stamp' cannot run: the run's stored activity host is malformed: 'bindings' "
        "must be an array");
}
