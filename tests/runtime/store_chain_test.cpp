// The hash chains `kotoba-vm verify` relies on: an intact history verifies, and every kind of
// damage done to the file behind the store's back (a changed byte, a rewritten hash, a
// swapped pair, a missing event, a wrong last_seq, a tampered checkpoint) is reported at its
// first link.
#include "raw_sqlite.h"
#include "runtime/store_testing.h"

#include <sqlite3.h>

#include <doctest/doctest.h>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::runtime::testing;

namespace {

using raw_sqlite::rawExec;

// A file store holding run r-1 with five events and checkpoints at 2 and 4.
struct ChainFixture {
  TempDir dir;
  std::string path = dir.file("chain.db");

  ChainFixture() {
    auto store = openStore(path);
    createRun(*store, newRun("r-1"));
    append(*store, "r-1",
           {event(EventType::WorkflowStarted, 1, R"({"inputs":{"order":"A-1"}})"),
            event(EventType::ActivityScheduled, 2, R"({"activity":"pay","input":{"n":1}})", "pay",
                  "order.kotoba:7")});
    append(*store, "r-1", {event(EventType::ActivityCompleted, 3, R"({"result":"ok"})", "pay")});
    append(*store, "r-1",
           {event(EventType::TimerStarted, 4, R"({"fire_ms":10})", "nap"),
            event(EventType::TimerFired, 10, "{}", "nap")});
    ok(store->write([](Transaction &tx) -> StoreStatus {
      ok(tx.saveCheckpoint("r-1", 2, "machine state at 2", 2));
      ok(tx.saveCheckpoint("r-1", 4, "machine state at 4", 4));
      return {};
    }));
  }

  ChainReport verify() {
    auto store = openStore(path);
    return ok(store->query([](const StoreReader &r) { return r.verifyRun("r-1"); }));
  }
};

// The WHERE condition that picks event `seq` of run r-1 in raw SQL.
std::string eventOfR1(int seq) {
  return "run_key = (SELECT run_key FROM runs WHERE id = 'r-1') AND seq = " + std::to_string(seq);
}

} // namespace

// Pinned against the encoding runtime/schema/store.sql documents (computed from it with
// Python's hashlib): a different SHA-256 implementation must give the same bytes, or stores
// written before it stop verifying. The second payload spans several SHA-256 blocks.
TEST_CASE("event and checkpoint hashes are the documented SHA-256 encoding, byte for byte") {
  Hash first = eventHash(Hash{}, "r-1", 2, 20, 2, 1, "pay", "order.kotoba:7", R"({"x":1})");
  CHECK(hashHex(first) == "1f7dc6609fe4add3861bf8a3e152776859fc250c4bec22566dc355a5974bca5d");
  std::string longPayload = R"({"big":")" + std::string(200, 'y') + R"("})";
  Hash second = eventHash(first, "r-1", 3, 21, -5, 7, "", "", longPayload);
  CHECK(hashHex(second) == "70162afe6013789155bb045085c3018248aced4d0b5564b136ff95ceef63345c");
  CHECK(hashHex(checkpointHash(Hash{}, "r-1", 3, second, "machine state")) ==
        "70ac2d16954a76bdd6b6b23c9d68b256b7f219058eae4b422126c44009604a67");
}

TEST_CASE("an untouched history and its checkpoints verify") {
  ChainFixture fixture;
  ChainReport report = fixture.verify();
  CHECK(report.eventsChecked == 5);
  CHECK(report.checkpointsChecked == 2);
  CHECK_FALSE(report.firstBroken.has_value());
}

TEST_CASE("verifying a run that does not exist is an error, not a clean report") {
  auto store = ok(Store::openInMemory());
  failure(store->query([](const StoreReader &r) { return r.verifyRun("ghost"); }),
          StoreErrorKind::NotFound);
}

TEST_CASE("one changed byte of an event payload breaks the chain at that event") {
  ChainFixture fixture;
  // "pay" becomes "pby": still valid JSON, so only the hash can tell.
  rawExec(fixture.path, "UPDATE events SET payload = replace(payload, '\"pay\"', '\"pby\"') "
                        "WHERE " +
                            eventOfR1(2));
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->where == BrokenLink::Where::Event);
  CHECK(report.firstBroken->seq == 2);
  CHECK(report.firstBroken->reason.find("content does not match its hash") != std::string::npos);
}

TEST_CASE("every single-byte change of a payload changes the event's hash") {
  const std::string payload = R"({"activity":"pay","input":{"n":1},"note":"日本"})";
  Hash original = eventHash(Hash{}, "r-1", 2, 20, 2, 1, "pay", "order.kotoba:7", payload);
  for (size_t index = 0; index < payload.size(); ++index) {
    std::string damaged = payload;
    damaged[index] = static_cast<char>(damaged[index] ^ 0x01);
    CHECK(eventHash(Hash{}, "r-1", 2, 20, 2, 1, "pay", "order.kotoba:7", damaged) != original);
  }
  // Each other field is covered too, and field boundaries are unambiguous.
  CHECK(eventHash(Hash{}, "r-2", 2, 20, 2, 1, "pay", "order.kotoba:7", payload) != original);
  CHECK(eventHash(Hash{}, "r-1", 3, 20, 2, 1, "pay", "order.kotoba:7", payload) != original);
  CHECK(eventHash(Hash{}, "r-1", 2, 21, 2, 1, "pay", "order.kotoba:7", payload) != original);
  CHECK(eventHash(Hash{}, "r-1", 2, 20, 3, 1, "pay", "order.kotoba:7", payload) != original);
  CHECK(eventHash(Hash{}, "r-1", 2, 20, 2, 2, "pay", "order.kotoba:7", payload) != original);
  CHECK(eventHash(Hash{}, "r-1", 2, 20, 2, 1, "payo", "rder.kotoba:7", payload) != original);
  Hash previous{};
  previous[31] = 1;
  CHECK(eventHash(previous, "r-1", 2, 20, 2, 1, "pay", "order.kotoba:7", payload) != original);
}

TEST_CASE("an event rewritten with a recomputed hash breaks the link to the next event") {
  ChainFixture fixture;
  Hash forged = eventHash(Hash{}, "r-1", 1, 1, 1, 1, "", "", R"({"inputs":{"order":"B-2"}})");
  rawExec(fixture.path, "UPDATE events SET payload = '{\"inputs\":{\"order\":\"B-2\"}}', "
                        "hash = x'" +
                            hashHex(forged) + "' WHERE " + eventOfR1(1));
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  // Event 2's hash was computed over the old hash of event 1.
  CHECK(report.firstBroken->seq == 2);
  CHECK(report.firstBroken->reason.find("content does not match its hash") != std::string::npos);
}

TEST_CASE("two events swapped with each other break the chain at the first of them") {
  ChainFixture fixture;
  rawExec(fixture.path,
          "CREATE TEMP TABLE swapped AS SELECT * FROM events WHERE " + eventOfR1(3) + " OR " +
              eventOfR1(4) +
              "; UPDATE events SET (type, time_ms, tx, site, command_id, payload, hash) = "
              "(SELECT type, time_ms, tx, site, command_id, payload, hash FROM swapped "
              "WHERE swapped.seq = 7 - events.seq) WHERE " +
              eventOfR1(3) + " OR " + eventOfR1(4));
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->where == BrokenLink::Where::Event);
  CHECK(report.firstBroken->seq == 3);
  CHECK(report.firstBroken->reason.find("content does not match its hash") != std::string::npos);
}

TEST_CASE("a missing event is reported where the numbering jumps") {
  ChainFixture fixture;
  rawExec(fixture.path, "DELETE FROM events WHERE " + eventOfR1(3));
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->seq == 4);
  CHECK(report.firstBroken->reason.find("event 4 follows event 2") != std::string::npos);
}

TEST_CASE("a truncated history is reported against the run's last_seq") {
  ChainFixture fixture;
  rawExec(fixture.path, "DELETE FROM events WHERE " + eventOfR1(5));
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->where == BrokenLink::Where::Run);
  CHECK(report.firstBroken->reason == "the run's last_seq is 5 but its history ends at event 4");
}

TEST_CASE("a tampered checkpoint state is reported at that checkpoint") {
  ChainFixture fixture;
  rawExec(fixture.path, "UPDATE checkpoints SET state = x'00' WHERE run_id = 'r-1' AND seq = 4");
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->where == BrokenLink::Where::Checkpoint);
  CHECK(report.firstBroken->seq == 4);
  CHECK(report.firstBroken->reason ==
        "its state or the event it covers no longer matches its hash");
  CHECK(report.eventsChecked == 5);
}

TEST_CASE("a checkpoint over a changed event no longer verifies") {
  ChainFixture fixture;
  // Rewrite event 2 and every later hash consistently: the event chain then holds, but the
  // checkpoint at 2 was computed over the old event 2.
  auto store = openStore(fixture.path);
  std::vector<EventRecord> events = history(*store, "r-1");
  Hash previous{};
  std::string sql;
  for (EventRecord &record : events) {
    std::string payload = toJson(record.payload);
    if (record.seq == 2) {
      payload = R"({"activity":"refund"})";
    }
    Hash hash = eventHash(previous, "r-1", record.seq, eventTypeNumber(record.type), record.timeMs,
                          record.tx, record.stepId, record.location, payload);
    sql += "UPDATE events SET payload = '" + payload + "', hash = x'" + hashHex(hash) + "' WHERE " +
           eventOfR1(static_cast<int>(record.seq)) + ";";
    previous = hash;
  }
  store.reset();
  rawExec(fixture.path, sql);
  ChainReport report = fixture.verify();
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->where == BrokenLink::Where::Checkpoint);
  CHECK(report.firstBroken->seq == 2);
}

TEST_CASE("a payload that is no longer JSON is reported as corrupt when read") {
  ChainFixture fixture;
  rawExec(fixture.path, "UPDATE events SET payload = '{\"result\":' WHERE " + eventOfR1(3));
  auto store = openStore(fixture.path);
  StoreError error =
      failure(store->query([](const StoreReader &r) { return r.events("r-1", EventRange{}); }),
              StoreErrorKind::Corrupt);
  CHECK(error.message.find("the payload of event 3 is not valid JSON") != std::string::npos);
  CHECK(error.message.find("kotoba-vm verify") != std::string::npos);
  ChainReport report = ok(store->query([](const StoreReader &r) { return r.verifyRun("r-1"); }));
  REQUIRE(report.firstBroken.has_value());
  CHECK(report.firstBroken->seq == 3);
}

TEST_CASE("an event type number this binary does not know is reported when read") {
  ChainFixture fixture;
  rawExec(fixture.path, "UPDATE events SET type = 999 WHERE " + eventOfR1(5));
  auto store = openStore(fixture.path);
  StoreError error =
      failure(store->query([](const StoreReader &r) { return r.events("r-1", EventRange{}); }),
              StoreErrorKind::Corrupt);
  CHECK(error.message.find("type number 999") != std::string::npos);
}

namespace {

// Appends one more event to r-1 in a write of its own; the write's status.
StoreStatus appendAnotherEvent(Store &store) {
  std::vector<NewEvent> next = {event(EventType::TimerStarted, 11, R"({"fire_ms":20})", "nap")};
  return store.write([&](Transaction &tx) -> StoreStatus {
    StoreResult<AppendedEvents> appended = tx.appendEvents("r-1", next);
    if (!appended.ok()) {
      return std::move(appended).error();
    }
    return {};
  });
}

} // namespace

TEST_CASE("appending after a history whose last event is gone fails as corrupt, naming verify") {
  ChainFixture fixture;
  rawExec(fixture.path, "DELETE FROM events WHERE " + eventOfR1(5));
  auto store = openStore(fixture.path);
  StoreError error = failure(appendAnotherEvent(*store), StoreErrorKind::Corrupt);
  CHECK(error.message.find("last event 5 is missing or has a damaged hash") != std::string::npos);
  CHECK(error.message.find("kotoba-vm verify r-1") != std::string::npos);
}

TEST_CASE("appending after a last event with a damaged hash fails as corrupt") {
  ChainFixture fixture;
  rawExec(fixture.path, "UPDATE events SET hash = x'00' WHERE " + eventOfR1(5));
  auto store = openStore(fixture.path);
  failure(appendAnotherEvent(*store), StoreErrorKind::Corrupt);
}
