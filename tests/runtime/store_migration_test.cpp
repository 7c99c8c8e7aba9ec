// Stores written by earlier kotoba versions: a version 1 or 2 file, with a finished run, one
// parked on a timer and one waiting for a signal, opens under this kotoba, is upgraded to
// version 3 in one transaction, keeps every event and hash, and its runs verify, replay,
// resume and finish; an upgrade that fails leaves the file as it was. The old files are
// made here by turning a current file back into the old layout with SQL, as the old kotoba
// wrote it.
#include "engine_support.h"
#include "raw_sqlite.h"

#include "kotoba/runtime/replay.h"
#include "kotoba/runtime/store.h"

#include <fmt/format.h>

#include <map>

using namespace kotoba;
using namespace kotoba::runtime;

namespace {

using raw_sqlite::rawExec;
using raw_sqlite::rawInteger;
using testing::eventTypes;
using testing::stepUntil;

const char *const kParkingWorkflow = R"({ workflow: { id: "parking",
  outputs: [{ name: "got" }], output_mapping: { got: $.results.go },
  strategy: { op: "seq", strategies: [
    { op: "activity", activity_ref: "work", id: "first" },
    { op: "wait", timer: "PT10M" },
    { op: "wait", signal: "go", id: "go" },
    { op: "activity", activity_ref: "work", id: "second" } ] } } })";

void bindWork(ActivityRegistry &registry) {
  REQUIRE_FALSE(registry.bindFunction(
      "work", [](const Value &, ActivityContext &) { return Result<Value>(Value("done")); }));
}

// Replays the run's whole history from its first event against the workflow's module.
void requireReplays(Store &store, const std::string &runId, bool ended) {
  auto module = std::make_shared<const vm::Module>(testing::compileWorkflow(kParkingWorkflow));
  auto run = store.query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(run.ok());
  REQUIRE(run.value());
  Replay replay(module, 0, runInfoOf(*run.value(), module->workflows[0]), run.value()->inputs);
  bool replayed =
      replay.applyAll(testing::history(store, runId)) && (!ended || replay.expectEnded());
  INFO("run ", runId);
  CHECK_MESSAGE(replayed, (replay.mismatch() ? replay.mismatch()->message : std::string()));
}

void requireVerified(Store &store, const std::string &runId) {
  auto report = store.query([&](const StoreReader &reader) { return reader.verifyRun(runId); });
  REQUIRE(report.ok());
  INFO("run ", runId);
  CHECK_FALSE(report.value().firstBroken.has_value());
  CHECK(report.value().eventsChecked > 0);
}

// One run of each kind, written by this kotoba: finished, parked on its timer, waiting for
// its signal. The engine that wrote them is gone when this returns.
struct ThreeRuns {
  std::string finished;
  std::string onTimer;
  std::string onSignal;
};

ThreeRuns writeThreeRuns(Store &store, VirtualClock &clock) {
  ActivityRegistry registry;
  bindWork(registry);
  EngineOptions options;
  options.owner = "old";
  options.leaseMs = 1000;
  Engine engine(store, registry, clock, options);
  auto hash = engine.addModule(testing::compileWorkflow(kParkingWorkflow));
  REQUIRE(hash.ok());
  ThreeRuns runs;
  auto finished = engine.start(
      StartRequest{hash.value(), "", Value(Object()), {{"go", Value("early")}}, {}, {}});
  REQUIRE(finished.ok());
  runs.finished = finished.value();
  auto outcome = engine.runToCompletion(runs.finished);
  REQUIRE(outcome.ok());
  REQUIRE(outcome.value().status == RunStatus::Completed);

  auto onSignal = engine.start(StartRequest{hash.value(), "", Value(Object()), {}, {}, {}});
  REQUIRE(onSignal.ok());
  runs.onSignal = onSignal.value();
  auto waiting = engine.runToCompletion(runs.onSignal);
  REQUIRE(waiting.ok());
  REQUIRE(waiting.value().status == RunStatus::Running);
  REQUIRE(eventTypes(store, runs.onSignal).back() == "WaitStarted");

  auto onTimer = engine.start(StartRequest{hash.value(), "", Value(Object()), {}, {}, {}});
  REQUIRE(onTimer.ok());
  runs.onTimer = onTimer.value();
  stepUntil(engine, store, runs.onTimer, "TimerStarted");
  return runs;
}

} // namespace

TEST_CASE("a version 1 or 2 store is upgraded in place and its runs verify, resume and finish") {
  for (int oldVersion : {1, 2}) {
    CAPTURE(oldVersion);
    testing::TemporaryStore temp;
    VirtualClock clock(1'700'000'000'000);
    ThreeRuns runs = writeThreeRuns(*temp.store, clock);
    std::map<std::string, std::vector<EventRecord>> before;
    for (const std::string &runId : {runs.finished, runs.onTimer, runs.onSignal}) {
      before[runId] = testing::history(*temp.store, runId);
    }
    temp.store.reset();
    std::string path = (temp.directory / "kotoba.db").string();
    rawExec(path, raw_sqlite::kBackToVersion2Sql);
    if (oldVersion == 1) {
      rawExec(path, raw_sqlite::kBackToVersion1Sql);
    }
    REQUIRE(rawInteger(path, "PRAGMA user_version") == oldVersion);

    auto reopened = Store::open(path);
    REQUIRE_MESSAGE(reopened.ok(), (reopened.ok() ? "" : reopened.error().message));
    temp.store = std::move(reopened).value();
    CHECK(temp.store->schemaVersion().value() == kStoreSchemaVersion);
    // The upgraded file has the tables, columns and indexes a new one gets.
    std::string fresh = (temp.directory / "fresh.db").string();
    { REQUIRE(Store::open(fresh).ok()); }
    CHECK(raw_sqlite::rawSchemaShape(path) == raw_sqlite::rawSchemaShape(fresh));
    // Every event came over with its content and hash; the chains hold.
    for (const auto &[runId, events] : before) {
      std::vector<EventRecord> after = testing::history(*temp.store, runId);
      REQUIRE(after.size() == events.size());
      for (size_t index = 0; index < after.size(); ++index) {
        CHECK(after[index].hash == events[index].hash);
        CHECK(after[index].prevHash == events[index].prevHash);
        CHECK(toJson(after[index].payload) == toJson(events[index].payload));
        CHECK(after[index].stepId == events[index].stepId);
        CHECK(after[index].location == events[index].location);
      }
      requireVerified(*temp.store, runId);
      requireReplays(*temp.store, runId, runId == runs.finished);
    }

    // A new engine takes the parked runs over, once the old one's leases have lapsed.
    clock.advanceBy(60 * 60 * 1000);
    ActivityRegistry registry;
    bindWork(registry);
    EngineOptions options;
    options.owner = "new";
    Engine engine(*temp.store, registry, clock, options);
    for (const std::string &runId : {runs.onTimer, runs.onSignal}) {
      REQUIRE(engine.signal(runId, "go", Value("late")).ok());
      auto outcome = engine.runToCompletion(runId);
      REQUIRE(outcome.ok());
      CHECK(outcome.value().status == RunStatus::Completed);
      CHECK(toJson(outcome.value().outputs) == R"({"got":"late"})");
      requireVerified(*temp.store, runId);
      requireReplays(*temp.store, runId, true);
    }
    requireVerified(*temp.store, runs.finished);
    // New runs are numbered after the old ones.
    auto started = engine.start(
        StartRequest{engine.addModule(testing::compileWorkflow(kParkingWorkflow)).value(),
                     "",
                     Value(Object()),
                     {{"go", Value("new")}},
                     {},
                     {}});
    REQUIRE(started.ok());
    auto outcome = engine.runToCompletion(started.value());
    REQUIRE(outcome.ok());
    CHECK(outcome.value().status == RunStatus::Completed);
    requireVerified(*temp.store, started.value());
    CHECK(rawInteger(path, "SELECT count(DISTINCT run_key) FROM runs") == 4);
  }
}

TEST_CASE("a version 2 history with the longer payloads of old loads and verifies") {
  testing::TemporaryStore temp;
  std::string path = (temp.directory / "kotoba.db").string();
  temp.store.reset();
  { REQUIRE(Store::open(path).ok()); }
  rawExec(path, raw_sqlite::kBackToVersion2Sql);
  // Events as version 2 wrote them, the ActivityStarted one with its idempotency key.
  struct OldEvent {
    EventType type;
    const char *stepId;
    const char *location;
    const char *payload;
  };
  const OldEvent old[] = {
      {EventType::WorkflowStarted, "", "", R"({"inputs":{}})"},
      {EventType::ActivityScheduled, "pay", "old.kotoba:3",
       R"({"command_id":1,"name":"pay","input":null,"attempt":1})"},
      {EventType::ActivityStarted, "pay", "old.kotoba:3",
       R"({"command_id":1,"attempt":1,"idempotency_key":"r-old/pay/c1/1"})"},
      {EventType::ActivityCompleted, "pay", "old.kotoba:3",
       R"({"command_id":1,"attempt":1,"result":{"ok":true}})"},
  };
  std::string sql =
      "INSERT INTO modules VALUES ('aa', x'00', 1);"
      "INSERT INTO runs (id, chain_id, workflow_id, module_hash, status, inputs, created_ms, "
      "updated_ms, last_seq) VALUES ('r-old', 'r-old', 'w', 'aa', 'RUNNING', '{}', 1, 1, 4);";
  Hash previous{};
  int64_t seq = 0;
  for (const OldEvent &event : old) {
    ++seq;
    Hash hash = eventHash(previous, "r-old", seq, eventTypeNumber(event.type), 10 + seq, seq,
                          event.stepId, event.location, event.payload);
    sql += fmt::format("INSERT INTO events VALUES ('r-old', {}, {}, {}, {}, '{}', '{}', '{}', "
                       "x'{}', x'{}');",
                       seq, eventTypeNumber(event.type), 10 + seq, seq, event.stepId,
                       event.location, event.payload, hashHex(hash), hashHex(previous));
    previous = hash;
  }
  rawExec(path, sql);

  auto reopened = Store::open(path);
  REQUIRE(reopened.ok());
  temp.store = std::move(reopened).value();
  requireVerified(*temp.store, "r-old");
  std::vector<EventRecord> events = testing::history(*temp.store, "r-old");
  REQUIRE(events.size() == 4);
  for (size_t index = 0; index < events.size(); ++index) {
    CHECK(toJson(events[index].payload) == old[index].payload);
  }
  CHECK(events[3].hash == previous);
}

TEST_CASE("an upgrade that fails leaves the version 2 file as it was") {
  testing::TemporaryStore temp;
  std::string path = (temp.directory / "kotoba.db").string();
  temp.store.reset();
  { REQUIRE(Store::open(path).ok()); }
  rawExec(path, raw_sqlite::kBackToVersion2Sql);
  rawExec(path, "INSERT INTO modules VALUES ('aa', x'00', 1);"
                "INSERT INTO runs (id, chain_id, workflow_id, module_hash, status, inputs, "
                "created_ms, updated_ms) VALUES ('r-1', 'r-1', 'w', 'aa', 'RUNNING', '{}', 1, 1);"
                // A table in the way of the upgrade's own.
                "CREATE TABLE sites (other TEXT);");
  auto refused = Store::open(path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("sites") != std::string::npos);
  CHECK(rawInteger(path, "PRAGMA user_version") == 2);
  CHECK(rawInteger(path, "SELECT count(*) FROM pragma_table_info('runs') "
                         "WHERE name = 'run_key'") == 0);
  CHECK(rawInteger(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'events_by_tx'") == 1);
}
