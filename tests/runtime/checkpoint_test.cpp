// Checkpoints in the engine: written every N events and at every wait, in the transaction of
// the events they cover, pruned to the newest few; loading a run restores the latest one and
// reads only the events after it; a damaged checkpoint is reported by verify and passed
// over; any past state rebuilt from a checkpoint equals the one a full replay gives.
#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/checkpoint.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <sstream>

using namespace kotoba;
using namespace kotoba::runtime;

namespace {

vm::Module compile(const std::string &source) {
  compiler::Compilation compilation;
  bool ok = compiler::checkSource(compilation, "long.kotoba", source);
  std::ostringstream diagnostics;
  compilation.diagnostics.print(diagnostics);
  REQUIRE_MESSAGE(ok, diagnostics.str());
  return compiler::generateModule(compilation.program, compilation.sources);
}

Value json(const std::string &text) {
  Result<Value> parsed = parseJson(text);
  REQUIRE(parsed.ok());
  return parsed.value();
}

// A store file in a directory of its own, removed afterwards.
struct TempStore {
  std::filesystem::path directory;
  std::string path;
  std::unique_ptr<Store> store;
  TempStore() {
    static std::atomic<int> counter{0};
    directory = std::filesystem::temp_directory_path() /
                fmt::format("kotoba-checkpoint-{}-{}", ::getpid(), counter++);
    std::filesystem::create_directories(directory);
    path = (directory / "kotoba.db").string();
    auto opened = Store::open(path);
    REQUIRE(opened.ok());
    store = std::move(opened).value();
  }
  ~TempStore() {
    store.reset();
    std::filesystem::remove_all(directory);
  }
};

// Raw SQL on the store's file, as someone tampering with it (or a disk going bad) would.
void tamper(const std::string &path, const std::string &sql,
            const std::function<void(sqlite3_stmt *)> &bind = {}) {
  sqlite3 *db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt *statement = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK,
                  sqlite3_errmsg(db));
  if (bind) {
    bind(statement);
  }
  int step = sqlite3_step(statement);
  CHECK_MESSAGE(step == SQLITE_DONE, sqlite3_errmsg(db));
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

// A long loop of activities, then a wait for a signal: n iterations make 3n + 2 events.
const char *const kLong = R"({ workflow: { id: "long",
  inputs: [{ name: "n", type: "integer", required: true }],
  outputs: [{ name: "count" }, { name: "got" }, { name: "sum" }],
  output_mapping: { count: $.vars.i, got: $.signals.go, sum: $.vars.sum },
  strategy: { op: "seq", strategies: [
    { op: "loop", while: ($.vars.i ?? 0) < $.inputs.n, max_iterations: 100000,
      body: { op: "seq", strategies: [
        { op: "activity", activity_ref: "step", id: "step",
          input_mapping: { i: $.vars.i ?? 0 } },
        { op: "set", vars: { i: ($.vars.i ?? 0) + 1,
                             sum: ($.vars.sum ?? 0) + $.results.step.value } } ] } },
    { op: "wait", signal: "go", id: "go" } ] } } })";

// The activity: returns its input's i as {"value": i}.
void bindStep(ActivityRegistry &registry, std::atomic<int> &calls) {
  REQUIRE_FALSE(registry.bindFunction("step", [&calls](const Value &input, ActivityContext &) {
    ++calls;
    Object result;
    result.set("value", *input.asObject().find("i"));
    return Result<Value>(Value(std::move(result)));
  }));
}

std::vector<CheckpointRecord> checkpointsOf(Store &store, const std::string &runId) {
  std::vector<CheckpointRecord> found;
  int64_t below = std::numeric_limits<int64_t>::max();
  for (;;) {
    auto next = store.query(
        [&](const StoreReader &reader) { return reader.checkpointAtOrBefore(runId, below); });
    REQUIRE(next.ok());
    if (!next.value()) {
      return found;
    }
    below = next.value()->seq - 1;
    found.insert(found.begin(), *next.value());
  }
}

std::vector<EventRecord> eventsOf(Store &store, const std::string &runId) {
  auto events = store.query([&](const StoreReader &reader) { return reader.events(runId); });
  REQUIRE(events.ok());
  return events.value();
}

// Starts the long run and drives it until it waits for its signal.
std::string parkLongRun(Engine &engine, int iterations) {
  auto hash = engine.addModule(compile(kLong));
  REQUIRE(hash.ok());
  auto runId = engine.start(
      StartRequest{hash.value(), "", json(fmt::format(R"({{"n": {}}})", iterations)), {}, {}, {}});
  REQUIRE(runId.ok());
  auto parked = engine.runToCompletion(runId.value());
  REQUIRE(parked.ok());
  REQUIRE(parked.value().status == RunStatus::Running);
  return runId.value();
}

// A second engine (the first one's lease has expired) signals the run and finishes it.
RunOutcome finishWithFreshEngine(Store &store, VirtualClock &clock, const std::string &runId,
                                 std::atomic<int> &calls) {
  clock.advanceBy(60 * 60 * 1000);
  ActivityRegistry registry;
  bindStep(registry, calls);
  EngineOptions options;
  options.owner = "second";
  Engine engine(store, registry, clock, options);
  REQUIRE(engine.signal(runId, "go", Value("yes")).ok());
  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  return outcome.value();
}

} // namespace

TEST_CASE("a run of over 1,000 events resumes from its checkpoint reading only later events") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  std::string runId;
  {
    ActivityRegistry registry;
    bindStep(registry, calls);
    EngineOptions options;
    options.owner = "first";
    options.leaseMs = 1000;
    Engine engine(*temp.store, registry, clock, options);
    runId = parkLongRun(engine, 400);
  }
  std::vector<EventRecord> events = eventsOf(*temp.store, runId);
  REQUIRE(events.size() == 3 * 400 + 2);
  CHECK(calls == 400);

  // Every 100 events and at the final wait; only the newest three are kept.
  std::vector<CheckpointRecord> checkpoints = checkpointsOf(*temp.store, runId);
  REQUIRE(checkpoints.size() == 3);
  CHECK(checkpoints.back().seq == events.back().seq);
  CHECK(checkpoints[1].seq >= checkpoints[0].seq + 100);
  CHECK(checkpoints[2].seq > checkpoints[1].seq);

  // Remove every event before the latest checkpoint: a load that read any of them, or that
  // replayed the history from its start, would now find a history that does not replay.
  int64_t covered = checkpoints.back().seq;
  tamper(temp.path,
         "DELETE FROM events WHERE run_key = (SELECT run_key FROM runs WHERE id = ?1) "
         "AND seq < ?2",
         [&](sqlite3_stmt *s) {
           sqlite3_bind_text(s, 1, runId.c_str(), -1, SQLITE_TRANSIENT);
           sqlite3_bind_int64(s, 2, covered);
         });
  RunOutcome outcome = finishWithFreshEngine(*temp.store, clock, runId, calls);
  INFO((outcome.error ? outcome.error->message : std::string()));
  CHECK(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) == R"({"count":400,"got":"yes","sum":79800})");
  CHECK(calls == 400); // no step ran again
}

TEST_CASE("rebuilding a run replays only the events after the checkpoint it starts from") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  ActivityRegistry registry;
  bindStep(registry, calls);
  EngineOptions options;
  options.checkpointEvery = 50;
  options.checkpointsKept = 1000;
  Engine engine(*temp.store, registry, clock, options);
  std::string runId = parkLongRun(engine, 60);
  auto record = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(record.ok());
  auto module = std::make_shared<const vm::Module>(compile(kLong));
  std::vector<EventRecord> events = eventsOf(*temp.store, runId);
  std::vector<CheckpointRecord> checkpoints = checkpointsOf(*temp.store, runId);
  REQUIRE(checkpoints.size() >= 3);

  for (size_t i = 0; i < checkpoints.size(); ++i) {
    const CheckpointRecord &checkpoint = checkpoints[i];
    CAPTURE(checkpoint.seq);
    // Never more than N events (plus the rest of the commit that crossed N) apart.
    int64_t previous = i == 0 ? 0 : checkpoints[i - 1].seq;
    CHECK(checkpoint.seq - previous <= 50 + 3);
    // Written by the transaction that wrote the last event it covers.
    if (checkpoint.seq < events.back().seq) {
      CHECK(events[checkpoint.seq].tx != events[checkpoint.seq - 1].tx);
    }
  }
  CHECK(checkpoints.back().seq == events.back().seq); // the wait

  int64_t middle = checkpoints[1].seq + 7;
  auto rebuilt = temp.store->query([&](const StoreReader &reader) {
    Result<RebuiltRun> run = rebuildRun(reader, *record.value(), module, middle);
    REQUIRE_MESSAGE(run.ok(), run.error().message);
    return StoreResult<int64_t>(static_cast<int64_t>(run.value().eventsReplayed) * 1000 +
                                run.value().checkpointSeq.value_or(-1));
  });
  REQUIRE(rebuilt.ok());
  CHECK(rebuilt.value() == 7 * 1000 + checkpoints[1].seq);
}

TEST_CASE("the state at any event rebuilt from a checkpoint equals a replay from the start") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  ActivityRegistry registry;
  bindStep(registry, calls);
  EngineOptions options;
  options.checkpointEvery = 10;
  options.checkpointsKept = 1000;
  Engine engine(*temp.store, registry, clock, options);
  std::string runId = parkLongRun(engine, 30);
  auto record = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(record.ok());
  auto module = std::make_shared<const vm::Module>(compile(kLong));
  std::vector<EventRecord> events = eventsOf(*temp.store, runId);
  REQUIRE(checkpointsOf(*temp.store, runId).size() >= 8);

  for (int64_t seq = 1; seq <= static_cast<int64_t>(events.size()); ++seq) {
    CAPTURE(seq);
    Replay fromStart(module, 0, runInfoOf(*record.value(), module->workflows[0]),
                     record.value()->inputs);
    REQUIRE(fromStart.applyAll(std::span(events).first(static_cast<size_t>(seq))));
    std::string expected = toJson(fromStart.machine().snapshot());
    auto rebuilt = temp.store->query([&](const StoreReader &reader) -> StoreResult<std::string> {
      Result<RebuiltRun> run = rebuildRun(reader, *record.value(), module, seq);
      REQUIRE_MESSAGE(run.ok(), run.error().message);
      REQUIRE_FALSE(run.value().replay.mismatch().has_value());
      CHECK(run.value().replay.lastSeq() == seq);
      return toJson(run.value().replay.machine().snapshot());
    });
    REQUIRE(rebuilt.ok());
    CHECK(rebuilt.value() == expected);
  }
}

TEST_CASE("a damaged checkpoint is reported by verify and passed over when the run loads") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  std::string runId;
  {
    ActivityRegistry registry;
    bindStep(registry, calls);
    EngineOptions options;
    options.owner = "first";
    options.leaseMs = 1000;
    Engine engine(*temp.store, registry, clock, options);
    runId = parkLongRun(engine, 40);
  }
  std::vector<CheckpointRecord> checkpoints = checkpointsOf(*temp.store, runId);
  REQUIRE_FALSE(checkpoints.empty());
  const CheckpointRecord &latest = checkpoints.back();
  auto clean =
      temp.store->query([&](const StoreReader &reader) { return reader.verifyRun(runId); });
  REQUIRE(clean.ok());
  CHECK_FALSE(clean.value().firstBroken.has_value());
  CHECK(clean.value().checkpointsChecked == static_cast<int64_t>(checkpoints.size()));

  // One byte of the state changes: "i":40 becomes "i":41 in the machine's vars.
  std::string damaged = latest.state;
  size_t at = damaged.find(R"("i":40)");
  REQUIRE(at != std::string::npos);
  damaged[at + 5] = '1';
  tamper(temp.path, "UPDATE checkpoints SET state = ?1 WHERE run_id = ?2 AND seq = ?3",
         [&](sqlite3_stmt *s) {
           sqlite3_bind_blob(s, 1, damaged.data(), static_cast<int>(damaged.size()),
                             SQLITE_TRANSIENT);
           sqlite3_bind_text(s, 2, runId.c_str(), -1, SQLITE_TRANSIENT);
           sqlite3_bind_int64(s, 3, latest.seq);
         });

  auto report =
      temp.store->query([&](const StoreReader &reader) { return reader.verifyRun(runId); });
  REQUIRE(report.ok());
  REQUIRE(report.value().firstBroken.has_value());
  CHECK(report.value().firstBroken->where == BrokenLink::Where::Checkpoint);
  CHECK(report.value().firstBroken->seq == latest.seq);

  auto record = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(record.ok());
  auto module = std::make_shared<const vm::Module>(compile(kLong));
  auto skipped = temp.store->query([&](const StoreReader &reader) -> StoreResult<std::string> {
    Result<RebuiltRun> run = rebuildRun(reader, *record.value(), module);
    REQUIRE(run.ok());
    CHECK_FALSE(run.value().checkpointSeq.has_value());
    return run.value().checkpointSkipped.value_or("");
  });
  REQUIRE(skipped.ok());
  CHECK(skipped.value().find("its hash does not match its bytes") != std::string::npos);

  // The history still holds: the run finishes with the count it really reached.
  RunOutcome outcome = finishWithFreshEngine(*temp.store, clock, runId, calls);
  CHECK(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) == R"({"count":40,"got":"yes","sum":780})");
}

TEST_CASE("a checkpoint taken with another module is passed over") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  ActivityRegistry registry;
  bindStep(registry, calls);
  Engine engine(*temp.store, registry, clock);
  std::string runId = parkLongRun(engine, 3);
  auto record = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(record.ok());
  RunRecord moved = *record.value();
  moved.moduleHash = std::string(64, 'a');
  auto module = std::make_shared<const vm::Module>(compile(kLong));
  auto skipped = temp.store->query([&](const StoreReader &reader) -> StoreResult<std::string> {
    Result<RebuiltRun> run = rebuildRun(reader, moved, module);
    REQUIRE(run.ok());
    CHECK_FALSE(run.value().replay.mismatch().has_value());
    CHECK(run.value().eventsReplayed == 3 * 3 + 2);
    return run.value().checkpointSkipped.value_or("");
  });
  REQUIRE(skipped.ok());
  CHECK(skipped.value().find("it was taken with module " + record.value()->moduleHash) !=
        std::string::npos);
}

TEST_CASE("checkpoints can be turned off") {
  TempStore temp;
  VirtualClock clock(1'700'000'000'000);
  std::atomic<int> calls{0};
  ActivityRegistry registry;
  bindStep(registry, calls);
  EngineOptions options;
  options.checkpointEvery = 0;
  Engine engine(*temp.store, registry, clock, options);
  std::string runId = parkLongRun(engine, 50);
  CHECK(checkpointsOf(*temp.store, runId).empty());
}

TEST_CASE("a checkpoint holds the live state only, so its size does not grow with the history") {
  auto latestStateSize = [](int iterations) {
    TempStore temp;
    VirtualClock clock(1'700'000'000'000);
    std::atomic<int> calls{0};
    ActivityRegistry registry;
    bindStep(registry, calls);
    Engine engine(*temp.store, registry, clock);
    std::string runId = parkLongRun(engine, iterations);
    std::vector<CheckpointRecord> checkpoints = checkpointsOf(*temp.store, runId);
    REQUIRE_FALSE(checkpoints.empty());
    return checkpoints.back().state.size();
  };
  size_t shortRun = latestStateSize(20);
  size_t longRun = latestStateSize(400);
  CAPTURE(shortRun);
  CAPTURE(longRun);
  // Only the digits of the counters differ.
  CHECK(longRun < shortRun + 16);
}
