// The store's core: creating and reopening files, refusing files it must not touch,
// appending history with seq numbers, tx ids and the hash chain, atomic transactions, run
// rows, and payloads that survive byte for byte.
#include "raw_sqlite.h"
#include "runtime/store_testing.h"

#include <sqlite3.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::runtime::testing;

namespace {

using raw_sqlite::rawExec;

std::string fileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("a new store file gets the current schema version and keeps its data when reopened") {
  TempDir dir;
  std::string path = dir.file("kotoba.db");
  {
    auto store = openStore(path);
    CHECK(ok(store->schemaVersion()) == kStoreSchemaVersion);
    CHECK(store->path() == path);
    createRun(*store, newRun("r-1"));
    append(*store, "r-1", {event(EventType::WorkflowStarted, 1000, R"({"inputs":{}})")});
  }
  auto reopened = openStore(path);
  CHECK(ok(reopened->schemaVersion()) == kStoreSchemaVersion);
  RunRecord run = readRun(*reopened, "r-1");
  CHECK(run.workflowId == "order");
  CHECK(run.chainId == "r-1");
  CHECK(run.lastSeq == 1);
  CHECK(toJson(run.inputs) == R"({"order":"A-1"})");
  CHECK(history(*reopened, "r-1").size() == 1);
}

TEST_CASE("an in-memory store works and is private to its Store") {
  auto first = ok(Store::openInMemory());
  auto second = ok(Store::openInMemory());
  createRun(*first, newRun("r-1"));
  CHECK(readRun(*first, "r-1").id == "r-1");
  auto missing = ok(second->query([](const StoreReader &reader) { return reader.run("r-1"); }));
  CHECK_FALSE(missing.has_value());
}

TEST_CASE("a store written by a newer schema version is refused and left untouched") {
  TempDir dir;
  std::string path = dir.file("newer.db");
  { openStore(path); }
  rawExec(path, "PRAGMA user_version = 7");
  auto refused = Store::open(path);
  StoreError error = failure(refused, StoreErrorKind::Incompatible);
  CHECK(error.message.find(path) == 0);
  CHECK(error.message.find("schema version 7") != std::string::npos);
  CHECK(error.message.find("use a newer kotoba") != std::string::npos);

  sqlite3 *database = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &database) == SQLITE_OK);
  sqlite3_stmt *statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(database, "PRAGMA user_version", -1, &statement, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  CHECK(sqlite3_column_int(statement, 0) == 7);
  sqlite3_finalize(statement);
  sqlite3_close(database);
}

TEST_CASE("a SQLite file of another program is refused, not given Kotoba's tables") {
  TempDir dir;
  std::string path = dir.file("other.db");
  rawExec(path, "CREATE TABLE accounts (id INTEGER PRIMARY KEY)");
  StoreError error = failure(Store::open(path), StoreErrorKind::Incompatible);
  CHECK(error.message.find("not a Kotoba store") != std::string::npos);
}

TEST_CASE("a refused file keeps every byte and its journal mode") {
  // Switching a file to write-ahead logging rewrites its header for good, so the check that
  // refuses it comes before that switch.
  TempDir dir;
  std::string other = dir.file("other.db");
  rawExec(other, "CREATE TABLE accounts (id INTEGER PRIMARY KEY)");
  std::string newer = dir.file("newer.db");
  rawExec(newer, "PRAGMA application_id = 1263490114; PRAGMA user_version = 7; "
                 "CREATE TABLE runs (id TEXT)");
  for (const std::string &path : {other, newer}) {
    CAPTURE(path);
    std::string before = fileBytes(path);
    failure(Store::open(path), StoreErrorKind::Incompatible);
    CHECK(fileBytes(path) == before);
    CHECK_FALSE(std::filesystem::exists(path + "-wal"));
  }
}

TEST_CASE("a file that is not a database at all is refused with its path") {
  TempDir dir;
  std::string path = dir.file("notes.txt");
  std::ofstream(path) << "these are not the pages of a SQLite database, just some text that "
                         "is long enough to fill a header and then some more\n";
  auto refused = Store::open(path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find(path + ": cannot open the store: ") == 0);
  CHECK(refused.error().message.find("not a SQLite database") != std::string::npos);
}

TEST_CASE("a store in a directory that does not exist cannot be opened") {
  TempDir dir;
  auto refused = Store::open(dir.file("missing/dir/kotoba.db"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("cannot open the store") != std::string::npos);
}

TEST_CASE("appended events are numbered from 1 and chained by hash") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  AppendedEvents first = append(*store, "r-1",
                                {event(EventType::WorkflowStarted, 1000, R"({"inputs":{}})"),
                                 event(EventType::ActivityScheduled, 1001, R"({"activity":"pay"})",
                                       "pay", "order.kotoba:12")});
  AppendedEvents second =
      append(*store, "r-1", {event(EventType::ActivityCompleted, 1500, R"({"result":1})", "pay")});
  CHECK(first.firstSeq == 1);
  CHECK(first.lastSeq == 2);
  CHECK(second.firstSeq == 3);
  CHECK(second.lastSeq == 3);
  CHECK(second.tx > first.tx);

  std::vector<EventRecord> events = history(*store, "r-1");
  REQUIRE(events.size() == 3);
  CHECK(events[0].prevHash == Hash{});
  for (size_t index = 0; index < events.size(); ++index) {
    CHECK(events[index].seq == static_cast<int64_t>(index) + 1);
    if (index > 0) {
      CHECK(events[index].prevHash == events[index - 1].hash);
    }
    CHECK(events[index].hash == eventHash(events[index].prevHash, "r-1", events[index].seq,
                                          eventTypeNumber(events[index].type), events[index].timeMs,
                                          events[index].tx, events[index].stepId,
                                          events[index].location, toJson(events[index].payload)));
  }
  CHECK(events[0].tx == first.tx);
  CHECK(events[1].tx == first.tx);
  CHECK(events[2].tx == second.tx);
  CHECK(events[1].type == EventType::ActivityScheduled);
  CHECK(events[1].stepId == "pay");
  CHECK(events[1].location == "order.kotoba:12");
  CHECK(second.lastHash == events[2].hash);
  CHECK(readRun(*store, "r-1").lastSeq == 3);
  CHECK(readRun(*store, "r-1").updatedMs == 1500);
}

TEST_CASE("event reads select by seq range and by transaction") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  AppendedEvents first =
      append(*store, "r-1",
             {event(EventType::WorkflowStarted, 1, "{}"), event(EventType::TimerStarted, 2, "{}")});
  append(*store, "r-1", {event(EventType::TimerFired, 3, "{}")});
  append(*store, "r-1", {event(EventType::WorkflowCompleted, 4, "{}")});

  CHECK(history(*store, "r-1", EventRange{3, {}, {}}).size() == 2);
  CHECK(history(*store, "r-1", EventRange{1, 2, {}}).size() == 2);
  CHECK(history(*store, "r-1", EventRange{2, 3, {}}).front().seq == 2);
  std::vector<EventRecord> atTx = history(*store, "r-1", EventRange{1, {}, first.tx});
  REQUIRE(atTx.size() == 2);
  CHECK(atTx.back().type == EventType::TimerStarted);
  CHECK(history(*store, "r-1", EventRange{1, {}, first.tx + 1}).size() == 3);
  CHECK(history(*store, "nobody").empty());
  // A range that starts later still knows the hash of the event before it.
  std::vector<EventRecord> all = history(*store, "r-1");
  std::vector<EventRecord> later = history(*store, "r-1", EventRange{3, {}, {}});
  CHECK(later.front().prevHash == all[1].hash);
  CHECK(later.back().prevHash == all[2].hash);
}

TEST_CASE("events of runs created one after another stay apart") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("a"));
  createRun(*store, newRun("b"));
  append(*store, "a", {event(EventType::WorkflowStarted, 1, R"({"run":"a"})")});
  append(*store, "b", {event(EventType::WorkflowStarted, 2, R"({"run":"b"})")});
  append(*store, "a", {event(EventType::WorkflowCompleted, 3, R"({"run":"a"})")});
  std::vector<EventRecord> first = history(*store, "a");
  REQUIRE(first.size() == 2);
  CHECK(toJson(first[1].payload) == R"({"run":"a"})");
  std::vector<EventRecord> second = history(*store, "b");
  REQUIRE(second.size() == 1);
  CHECK(toJson(second[0].payload) == R"({"run":"b"})");
  CHECK(second[0].prevHash == Hash{});
}

TEST_CASE("payloads that start with a command_id read back byte for byte and verify") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  // The store keeps a leading integer command_id in a column of its own; whatever it cannot
  // give back exactly (a fraction, a command_id that is not first) it keeps whole.
  const std::vector<std::string> payloads = {
      R"({"command_id":7,"attempt":1})",
      R"({"command_id":7})",
      R"({"command_id":-3,"x":[1,2]})",
      R"({"command_id":9223372036854775807,"attempt":2})",
      R"({"command_id":1.5,"attempt":1})",
      R"({"command_id":"c1","attempt":1})",
      R"({"attempt":1,"command_id":7})",
      R"({"command_id":{"nested":1}})",
      R"({})",
  };
  std::vector<NewEvent> events;
  for (const std::string &payload : payloads) {
    events.push_back(event(EventType::ActivityStarted, 5, payload, "pay", "order.kotoba:3"));
  }
  append(*store, "r-1", events);
  std::vector<EventRecord> read = history(*store, "r-1");
  REQUIRE(read.size() == payloads.size());
  for (size_t index = 0; index < payloads.size(); ++index) {
    CHECK(toJson(read[index].payload) == payloads[index]);
  }
  ChainReport report = ok(store->query([](const StoreReader &r) { return r.verifyRun("r-1"); }));
  CHECK_FALSE(report.firstBroken.has_value());
  CHECK(report.eventsChecked == static_cast<int64_t>(payloads.size()));
}

TEST_CASE("events of one run never share a tx with another transaction's events") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("a"));
  createRun(*store, newRun("b"));
  int64_t txOfA = 0;
  int64_t txOfB = 0;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    // One transaction writing two runs: both get its single tx id.
    auto a = tx.appendEvents("a", std::vector{event(EventType::WorkflowStarted, 1, "{}")});
    auto b = tx.appendEvents("b", std::vector{event(EventType::WorkflowStarted, 1, "{}")});
    txOfA = ok(std::move(a)).tx;
    txOfB = ok(std::move(b)).tx;
    return {};
  }));
  CHECK(txOfA == txOfB);
  AppendedEvents later = append(*store, "a", {event(EventType::TimerStarted, 2, "{}")});
  CHECK(later.tx == txOfA + 1);
}

TEST_CASE("appending to a run that does not exist fails and names the run") {
  auto store = ok(Store::openInMemory());
  StoreStatus status = store->write([](Transaction &tx) -> StoreStatus {
    auto appended = tx.appendEvents("ghost", std::vector{event(EventType::TimerFired, 1, "{}")});
    if (!appended.ok()) {
      return std::move(appended).error();
    }
    return {};
  });
  StoreError error = failure(status, StoreErrorKind::NotFound);
  CHECK(error.message ==
        "in-memory store: cannot append events to run ghost: no run has the id ghost");
}

TEST_CASE("a transaction that fails in the middle leaves nothing behind") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  AppendedEvents before = append(*store, "r-1", {event(EventType::WorkflowStarted, 1, "{}")});

  StoreStatus failed = store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.appendEvents("r-1", std::vector{event(EventType::TimerStarted, 2, "{}"),
                                          event(EventType::TimerFired, 3, "{}")}));
    ok(tx.addTimer(TimerRecord{"r-1", 1, TimerKind::Timer, 5000, 2}));
    ok(tx.publishEvent("review", json("{}"), 2));
    ok(tx.updateRun("r-1", RunUpdate{3, RunStatus::Completed, json("{}"), {}, {}, {}, {}}));
    // The second run with the same id fails inside the store: everything above goes too.
    return tx.createRun(newRun("r-1"));
  });
  StoreError error = failure(failed, StoreErrorKind::Conflict);
  CHECK(error.message.find("a run with this id already exists") != std::string::npos);

  RunRecord run = readRun(*store, "r-1");
  CHECK(run.status == RunStatus::Running);
  CHECK(run.lastSeq == 1);
  CHECK_FALSE(run.finishedMs.has_value());
  CHECK(history(*store, "r-1").size() == 1);
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.nextTimerMs(); })));
  CHECK_FALSE(ok(store->query(
      [](const StoreReader &r) { return r.findPublishedEvent("r-1", "review", 0, Object()); })));
  // The failed transaction's tx id was rolled back with it.
  AppendedEvents after = append(*store, "r-1", {event(EventType::TimerStarted, 4, "{}")});
  CHECK(after.tx == before.tx + 1);
  CHECK(after.firstSeq == 2);
}

TEST_CASE("an exception thrown by a write function rolls back and becomes an error") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  StoreStatus failed = store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.appendEvents("r-1", std::vector{event(EventType::WorkflowStarted, 1, "{}")}));
    throw std::runtime_error("engine bug");
  });
  StoreError error = failure(failed, StoreErrorKind::Invalid);
  CHECK(error.message.find("the write function threw: engine bug") != std::string::npos);
  CHECK(history(*store, "r-1").empty());
}

TEST_CASE("creating a run needs its module and a free id") {
  auto store = ok(Store::openInMemory());
  NewRun run = newRun("r-1");
  run.moduleHash = "ffff";
  StoreError missing = failure(store->write([&](Transaction &tx) { return tx.createRun(run); }),
                               StoreErrorKind::NotFound);
  CHECK(missing.message.find("module ffff is not stored") != std::string::npos);

  createRun(*store, newRun("r-1"));
  failure(store->write([&](Transaction &tx) { return tx.createRun(newRun("r-1")); }),
          StoreErrorKind::Conflict);
}

TEST_CASE("a module is stored once by hash and read back byte for byte") {
  auto store = ok(Store::openInMemory());
  std::vector<uint8_t> kbc = {0, 1, 2, 0xff, 0, 'K'};
  bool firstTime = false;
  bool secondTime = true;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    firstTime = ok(tx.putModule("abc", kbc, 1));
    secondTime = ok(tx.putModule("abc", std::vector<uint8_t>{9}, 2));
    return {};
  }));
  CHECK(firstTime);
  CHECK_FALSE(secondTime);
  auto stored = ok(store->query([](const StoreReader &r) { return r.module("abc"); }));
  REQUIRE(stored.has_value());
  CHECK(*stored == kbc);
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.module("abd"); })));
}

TEST_CASE("a run's status, outputs and error change until it finishes, then stay") {
  auto store = ok(Store::openInMemory());
  NewRun child = newRun("child", 10);
  child.parentRunId = "parent";
  child.parentCommandId = 4;
  child.chainId = "chain-1";
  child.timeoutMs = 99;
  createRun(*store, child);
  RunRecord created = readRun(*store, "child");
  CHECK(created.parentRunId == "parent");
  CHECK(created.parentCommandId == 4);
  CHECK(created.chainId == "chain-1");
  CHECK(created.timeoutMs == 99);
  CHECK_FALSE(created.outputs.has_value());

  ok(store->write([](Transaction &tx) {
    return tx.updateRun(
        "child",
        RunUpdate{20, RunStatus::Blocked, {}, json(R"({"type":"NonDeterminism"})"), {}, {}, {}});
  }));
  RunRecord blocked = readRun(*store, "child");
  CHECK(blocked.status == RunStatus::Blocked);
  CHECK_FALSE(blocked.finishedMs.has_value());
  REQUIRE(blocked.error.has_value());

  // `--upgrade` moves a resumed run to another stored module.
  ok(store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.putModule("beef", std::vector<uint8_t>{1}, 30));
    return tx.updateRun("child", RunUpdate{30, RunStatus::Running, {}, Value(), {}, "beef", {}});
  }));
  RunRecord resumed = readRun(*store, "child");
  CHECK_FALSE(resumed.error.has_value());
  CHECK(resumed.moduleHash == "beef");

  ok(store->write([](Transaction &tx) {
    return tx.updateRun(
        "child", RunUpdate{40, RunStatus::Completed, json(R"({"ok":true})"), {}, {}, {}, {}});
  }));
  RunRecord done = readRun(*store, "child");
  CHECK(done.status == RunStatus::Completed);
  CHECK(done.finishedMs == 40);
  CHECK(done.updatedMs == 40);
  CHECK(toJson(*done.outputs) == R"({"ok":true})");

  StoreError error = failure(store->write([](Transaction &tx) {
    return tx.updateRun("child", RunUpdate{50, RunStatus::Failed, {}, {}, {}, {}, {}});
  }),
                             StoreErrorKind::Conflict);
  CHECK(error.message.find("already COMPLETED") != std::string::npos);
  failure(store->write([](Transaction &tx) { return tx.updateRun("nobody", RunUpdate{}); }),
          StoreErrorKind::NotFound);
}

TEST_CASE("runs are listed by status and workflow, newest first, and by chain and parent") {
  auto store = ok(Store::openInMemory());
  for (int index = 0; index < 5; ++index) {
    NewRun run = newRun("r-" + std::to_string(index), 100 + index);
    run.workflowId = index % 2 == 0 ? "order" : "refund";
    run.chainId = "chain";
    if (index == 4) {
      run.parentRunId = "r-0";
    }
    createRun(*store, run);
  }
  ok(store->write([](Transaction &tx) {
    return tx.updateRun("r-2", RunUpdate{200, RunStatus::Completed, json("{}"), {}, {}, {}, {}});
  }));

  auto ids = [](const std::vector<RunRecord> &runs) {
    std::vector<std::string> result;
    for (const RunRecord &run : runs) {
      result.push_back(run.id);
    }
    return result;
  };
  auto list = [&](RunQuery query) {
    return ids(ok(store->query([&](const StoreReader &r) { return r.runs(query); })));
  };
  CHECK(list(RunQuery{}) == std::vector<std::string>{"r-4", "r-3", "r-2", "r-1", "r-0"});
  CHECK(list(RunQuery{RunStatus::Running, {}, 1000}) ==
        std::vector<std::string>{"r-4", "r-3", "r-1", "r-0"});
  CHECK(list(RunQuery{{}, "order", 1000}) == std::vector<std::string>{"r-4", "r-2", "r-0"});
  CHECK(list(RunQuery{RunStatus::Running, "order", 1000}) ==
        std::vector<std::string>{"r-4", "r-0"});
  CHECK(list(RunQuery{{}, {}, 2}) == std::vector<std::string>{"r-4", "r-3"});
  CHECK(ids(ok(store->query([](const StoreReader &r) { return r.chain("chain"); }))).front() ==
        "r-0");
  CHECK(ids(ok(store->query([](const StoreReader &r) { return r.children("r-0"); }))) ==
        std::vector<std::string>{"r-4"});
}

TEST_CASE("unicode payloads survive byte for byte") {
  TempDir dir;
  std::string path = dir.file("unicode.db");
  // An emoji (4-byte UTF-8), a ZWJ sequence, combining marks, U+FFFE and U+FFFF
  // (noncharacters, still valid UTF-8), CJK, a NUL escape and a right-to-left mark.
  const std::string text = "\xF0\x9F\x8E\x89 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB "
                           "e\xCC\x81\xCC\xA7 \xEF\xBF\xBE\xEF\xBF\xBF \xE8\xA8\x80\xE8\x91\x89 "
                           "\xE2\x80\x8F";
  Object payloadObject;
  payloadObject.set("text", Value(text));
  payloadObject.set("\xF0\x9F\x94\x91", Value(std::string("key is an emoji")));
  payloadObject.set("nul", Value(std::string("a\0b", 3)));
  Value payload(std::move(payloadObject));
  const std::string payloadJson = toJson(payload);
  {
    auto store = openStore(path);
    NewRun run = newRun("\xE2\x9C\x93-run");
    run.inputs = payload;
    createRun(*store, run);
    ok(store->write([&](Transaction &tx) -> StoreStatus {
      ok(tx.appendEvents(run.id, std::vector{NewEvent{EventType::SignalReceived, 5, "st\xC3\xA9p",
                                                      "f\xC3\xBC.kotoba:1", payload}}));
      ok(tx.publishEvent("\xE3\x82\xA4\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x88", payload, 5));
      return {};
    }));
  }
  auto store = openStore(path);
  std::vector<EventRecord> events = history(*store, "\xE2\x9C\x93-run");
  REQUIRE(events.size() == 1);
  CHECK(toJson(events[0].payload) == payloadJson);
  REQUIRE(events[0].payload.asObject().find("text") != nullptr);
  CHECK(events[0].payload.asObject().find("text")->asString() == text);
  CHECK(events[0].payload.asObject().find("nul")->asString() == std::string("a\0b", 3));
  CHECK(events[0].stepId == "st\xC3\xA9p");
  CHECK(events[0].location == "f\xC3\xBC.kotoba:1");
  CHECK(toJson(readRun(*store, "\xE2\x9C\x93-run").inputs) == payloadJson);
  auto published = ok(store->query([&](const StoreReader &r) {
    return r.findPublishedEvent("\xE2\x9C\x93-run",
                                "\xE3\x82\xA4\xE3\x83\x99\xE3\x83\xB3\xE3\x83\x88", 0, Object());
  }));
  REQUIRE(published.has_value());
  CHECK(toJson(published->payload) == payloadJson);
  CHECK(ok(store->query([&](const StoreReader &r) {
          return r.verifyRun("\xE2\x9C\x93-run");
        })).firstBroken == std::nullopt);
}

TEST_CASE("durability names convert both ways") {
  for (Durability durability : {Durability::Full, Durability::Normal, Durability::Batch}) {
    CHECK(durabilityFromName(durabilityName(durability)) == durability);
  }
  CHECK(durabilityName(Durability::Normal) == "normal");
  CHECK_FALSE(durabilityFromName("fast").has_value());
  CHECK(StoreOptions{}.durability == Durability::Normal);
}

TEST_CASE("run status names are the spec's and only some statuses are final") {
  CHECK(runStatusName(RunStatus::TimedOut) == "TIMED_OUT");
  CHECK(runStatusName(RunStatus::ContinuedAsNew) == "CONTINUED_AS_NEW");
  CHECK(runStatusFromName("BLOCKED") == RunStatus::Blocked);
  CHECK_FALSE(runStatusFromName("running").has_value());
  CHECK_FALSE(isFinalStatus(RunStatus::Running));
  CHECK_FALSE(isFinalStatus(RunStatus::Compensating));
  CHECK_FALSE(isFinalStatus(RunStatus::Blocked));
  CHECK(isFinalStatus(RunStatus::Terminated));
  CHECK(isFinalStatus(RunStatus::ContinuedAsNew));
}
