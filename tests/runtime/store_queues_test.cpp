// The store's work queues and ownership: leases with expiry and takeover, durable timers and
// activity tasks found by time, published events matched by filter and consumed once per
// run, run inboxes, checkpoints with pruning, and purge of finished runs.
#include "runtime/store_testing.h"

#include <doctest/doctest.h>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::runtime::testing;

namespace {

// Runs one Transaction call and returns its result, for calls whose result the test reads.
template <typename Call> auto inTransaction(Store &store, Call call) {
  using ResultType = decltype(call(std::declval<Transaction &>()));
  std::optional<ResultType> result;
  ok(store.write([&](Transaction &tx) -> StoreStatus {
    result.emplace(call(tx));
    return {};
  }));
  return std::move(*result);
}

} // namespace

TEST_CASE("a lease is taken when free, refused while held, and taken over after expiry") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  auto acquire = [&](std::string owner, int64_t now, int64_t expiry) {
    return ok(inTransaction(
        *store, [&](Transaction &tx) { return tx.acquireLease("r-1", owner, now, expiry); }));
  };
  CHECK(acquire("engine-a", 1000, 2000));
  CHECK_FALSE(acquire("engine-b", 1500, 2500));
  CHECK(acquire("engine-a", 1500, 2500)); // the holder may take it again (extends it)
  auto holds = [&](int64_t now) {
    return ok(
        store->query([&](const StoreReader &r) { return r.holdsLease("r-1", "engine-a", now); }));
  };
  CHECK(holds(2499));
  CHECK_FALSE(holds(2500));

  // engine-a stalls past its expiry; engine-b takes the run over.
  CHECK(acquire("engine-b", 2500, 3500));
  auto lease = ok(store->query([](const StoreReader &r) { return r.lease("r-1"); }));
  REQUIRE(lease.has_value());
  CHECK(lease->owner == "engine-b");
  CHECK(lease->expiryMs == 3500);

  // engine-a wakes up: its renewal and its writes are refused.
  CHECK_FALSE(ok(inTransaction(
      *store, [](Transaction &tx) { return tx.renewLease("r-1", "engine-a", 9000); })));
  StoreStatus fenced = store->write([](Transaction &tx) -> StoreStatus {
    if (StoreStatus held = tx.requireLease("r-1", "engine-a", 2600); !held.ok()) {
      return held;
    }
    ok(tx.appendEvents("r-1", std::vector{event(EventType::TimerFired, 2600, "{}")}));
    return {};
  });
  StoreError error = failure(fenced, StoreErrorKind::Conflict);
  CHECK(error.message.find("held by engine-b, not engine-a") != std::string::npos);
  CHECK(history(*store, "r-1").empty());

  CHECK(ok(inTransaction(*store,
                         [](Transaction &tx) { return tx.renewLease("r-1", "engine-b", 5000); })));
  ok(store->write([](Transaction &tx) { return tx.requireLease("r-1", "engine-b", 4000); }));
  StoreError expired = failure(
      store->write([](Transaction &tx) { return tx.requireLease("r-1", "engine-b", 5000); }),
      StoreErrorKind::Conflict);
  CHECK(expired.message.find("expired at 5000 ms") != std::string::npos);

  CHECK_FALSE(ok(
      inTransaction(*store, [](Transaction &tx) { return tx.releaseLease("r-1", "engine-a"); })));
  CHECK(ok(
      inTransaction(*store, [](Transaction &tx) { return tx.releaseLease("r-1", "engine-b"); })));
  StoreError none = failure(
      store->write([](Transaction &tx) { return tx.requireLease("r-1", "engine-b", 4000); }),
      StoreErrorKind::Conflict);
  CHECK(none.message.find("holds no lease on the run; acquire it first") != std::string::npos);
  CHECK(acquire("engine-c", 4000, 4100));
}

TEST_CASE("active runs without a live lease are offered for takeover") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("leased", 1));
  createRun(*store, newRun("expired", 2));
  createRun(*store, newRun("free", 3));
  createRun(*store, newRun("done", 4));
  ok(store->write([](Transaction &tx) -> StoreStatus {
    CHECK(ok(tx.acquireLease("leased", "a", 0, 10000)));
    CHECK(ok(tx.acquireLease("expired", "a", 0, 100)));
    return tx.updateRun("done", RunUpdate{5, RunStatus::Completed, json("{}"), {}, {}, {}, {}});
  }));
  auto unowned =
      ok(store->query([](const StoreReader &r) { return r.unownedActiveRuns(500, 10); }));
  CHECK(unowned == std::vector<std::string>{"expired", "free"});
  auto limited = ok(store->query([](const StoreReader &r) { return r.unownedActiveRuns(500, 1); }));
  CHECK(limited == std::vector<std::string>{"expired"});
}

TEST_CASE("timers are found when due, earliest first, and the next fire time is known") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("a"));
  createRun(*store, newRun("b"));
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.nextTimerMs(); })));
  ok(store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.addTimer(TimerRecord{"a", 3, TimerKind::Timer, 5000, 1}));
    ok(tx.addTimer(TimerRecord{"b", 0, TimerKind::WorkflowTimeout, 2000, 1}));
    ok(tx.addTimer(TimerRecord{"a", 4, TimerKind::WaitTimeout, 9000, 1}));
    // The same command may have a timer of another kind alongside.
    ok(tx.addTimer(TimerRecord{"a", 3, TimerKind::WorkflowRetry, 7000, 1}));
    return {};
  }));
  CHECK(ok(store->query([](const StoreReader &r) { return r.nextTimerMs(); })) == 2000);
  CHECK(ok(store->query([](const StoreReader &r) { return r.dueTimers(1999, 10); })).empty());

  std::vector<TimerRecord> due =
      ok(store->query([](const StoreReader &r) { return r.dueTimers(7000, 10); }));
  REQUIRE(due.size() == 3);
  CHECK(due[0].runId == "b");
  CHECK(due[0].kind == TimerKind::WorkflowTimeout);
  CHECK(due[1].fireMs == 5000);
  CHECK(due[2].kind == TimerKind::WorkflowRetry);
  CHECK(ok(store->query([](const StoreReader &r) { return r.dueTimers(7000, 1); })).size() == 1);

  // Re-arming replaces; removing reports whether the timer was there.
  ok(store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.addTimer(TimerRecord{"a", 3, TimerKind::Timer, 8000, 2}));
    CHECK(ok(tx.removeTimer("b", 0, TimerKind::WorkflowTimeout)));
    CHECK_FALSE(ok(tx.removeTimer("b", 0, TimerKind::WorkflowTimeout)));
    return {};
  }));
  CHECK(ok(store->query([](const StoreReader &r) { return r.nextTimerMs(); })) == 7000);
  CHECK(ok(store->query([](const StoreReader &r) { return r.timersOf("a"); })).size() == 3);
  CHECK(ok(inTransaction(*store, [](Transaction &tx) { return tx.removeTimersOf("a"); })) == 3);
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.nextTimerMs(); })));
}

TEST_CASE("a timer for a run that does not exist is refused") {
  auto store = ok(Store::openInMemory());
  failure(store->write([](Transaction &tx) {
    return tx.addTimer(TimerRecord{"ghost", 1, TimerKind::Timer, 5, 1});
  }),
          StoreErrorKind::NotFound);
}

TEST_CASE("tasks become available when due, are claimed once, and return when a lease lapses") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  ok(store->write([](Transaction &tx) -> StoreStatus {
    ok(tx.addTask(
        NewTask{"r-1", 1, "pay", "charge", json(R"({"amount":5})"), 1, 100, "r-1/pay/1", 50}));
    ok(tx.addTask(NewTask{"r-1", 2, "ship", "ship", json("{}"), 1, 300, "r-1/ship/1", 50}));
    return {};
  }));
  CHECK(ok(store->query([](const StoreReader &r) { return r.nextTaskAvailableMs(); })) == 100);
  CHECK(ok(store->query([](const StoreReader &r) { return r.availableTasks(99, 10); })).empty());

  std::vector<TaskRecord> claimed = ok(inTransaction(
      *store, [](Transaction &tx) { return tx.claimAvailableTasks("worker-1", 200, 1200, 10); }));
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].commandId == 1);
  CHECK(claimed[0].owner == "worker-1");
  CHECK(claimed[0].idempotencyKey == "r-1/pay/1");
  CHECK(toJson(claimed[0].input) == R"({"amount":5})");

  // Claimed, the task is not available to another worker until its lease lapses.
  CHECK_FALSE(ok(inTransaction(
      *store, [](Transaction &tx) { return tx.claimTask("r-1", 1, "worker-2", 1000, 2000); })));
  CHECK(ok(store->query([](const StoreReader &r) { return r.nextTaskAvailableMs(); })) == 300);
  CHECK(ok(inTransaction(
      *store, [](Transaction &tx) { return tx.renewTask("r-1", 1, "worker-1", 1500); })));
  CHECK_FALSE(ok(inTransaction(
      *store, [](Transaction &tx) { return tx.renewTask("r-1", 1, "worker-2", 9999); })));

  // worker-1 dies: at 1500 the task is available again and worker-2 takes it.
  std::vector<TaskRecord> available =
      ok(store->query([](const StoreReader &r) { return r.availableTasks(1500, 10); }));
  REQUIRE(available.size() == 2);
  CHECK(available[0].commandId == 2);
  CHECK(available[1].commandId == 1);
  CHECK(available[1].owner == "worker-1");
  CHECK(ok(inTransaction(
      *store, [](Transaction &tx) { return tx.claimTask("r-1", 1, "worker-2", 1500, 2500); })));
  auto task = ok(store->query([](const StoreReader &r) { return r.task("r-1", 1); }));
  REQUIRE(task.has_value());
  CHECK(task->owner == "worker-2");
  CHECK(task->leaseExpiryMs == 2500);

  // The next attempt replaces the task, ready again.
  ok(store->write([](Transaction &tx) {
    return tx.addTask(NewTask{"r-1", 1, "pay", "charge", json("{}"), 2, 4000, "r-1/pay/2", 1600});
  }));
  task = ok(store->query([](const StoreReader &r) { return r.task("r-1", 1); }));
  CHECK(task->attempt == 2);
  CHECK_FALSE(task->owner.has_value());
  CHECK(task->availableMs == 4000);
  CHECK(ok(store->query([](const StoreReader &r) { return r.tasksOf("r-1"); })).size() == 2);
  CHECK(ok(inTransaction(*store, [](Transaction &tx) { return tx.removeTask("r-1", 1); })));
  CHECK_FALSE(ok(inTransaction(*store, [](Transaction &tx) { return tx.removeTask("r-1", 1); })));
}

TEST_CASE("a wait finds the oldest matching published event it has not consumed") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  createRun(*store, newRun("r-2"));
  int64_t early = 0;
  int64_t other = 0;
  int64_t matching = 0;
  int64_t later = 0;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    early = ok(tx.publishEvent("review", json(R"({"doc":1,"ok":true})"), 500));
    other = ok(tx.publishEvent("review", json(R"({"doc":2,"ok":true})"), 1000));
    ok(tx.publishEvent("payment", json(R"({"doc":1})"), 1000));
    ok(tx.publishEvent("review", json("[1]"), 1001));
    matching = ok(tx.publishEvent("review", json(R"({"ok":true,"doc":1.0,"by":"ann"})"), 1002));
    later = ok(tx.publishEvent("review", json(R"({"doc":1})"), 1003));
    return {};
  }));
  auto find = [&](std::string run, int64_t since, std::string filter) {
    return ok(store->query([&](const StoreReader &r) {
      return r.findPublishedEvent(run, "review", since, json(filter).asObject());
    }));
  };
  // Published before the run started: not seen. 1 equals 1.0; key order does not matter.
  auto found = find("r-1", 1000, R"({"doc":1,"ok":true})");
  REQUIRE(found.has_value());
  CHECK(found->id == matching);
  CHECK(found->publishedMs == 1002);
  CHECK(found->type == "review");
  CHECK(found->payload.asObject().find("by")->asString() == "ann");
  CHECK(find("r-1", 0, R"({"doc":1})")->id == early);
  CHECK(find("r-1", 1000, "{}")->id == other);
  CHECK_FALSE(find("r-1", 1000, R"({"doc":"1"})").has_value());
  CHECK_FALSE(find("r-1", 1000, R"({"missing":null})").has_value());

  CHECK(ok(inTransaction(
      *store, [&](Transaction &tx) { return tx.consumePublishedEvent("r-1", matching, 1100); })));
  CHECK_FALSE(ok(inTransaction(
      *store, [&](Transaction &tx) { return tx.consumePublishedEvent("r-1", matching, 1100); })));
  CHECK(find("r-1", 1000, R"({"doc":1})")->id == later);
  // Another run still sees it: consumption is per run.
  CHECK(find("r-2", 1000, R"({"doc":1})")->id == matching);
  failure(store->write([](Transaction &tx) -> StoreStatus {
    auto consumed = tx.consumePublishedEvent("r-1", 999999, 1);
    if (!consumed.ok()) {
      return std::move(consumed).error();
    }
    return {};
  }),
          StoreErrorKind::NotFound);
}

TEST_CASE("a filter match past many non-matching candidates is still found") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  int64_t wanted = 0;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    // More candidates than one page of the search, all in the same millisecond.
    for (int index = 0; index < 300; ++index) {
      Object payload;
      payload.set("n", Value(index));
      int64_t id = ok(tx.publishEvent("tick", Value(std::move(payload)), 7));
      if (index == 250) {
        wanted = id;
      }
    }
    return {};
  }));
  auto found = ok(store->query([](const StoreReader &r) {
    return r.findPublishedEvent("r-1", "tick", 7, json(R"({"n":250})").asObject());
  }));
  REQUIRE(found.has_value());
  CHECK(found->id == wanted);
  CHECK_FALSE(ok(store->query([](const StoreReader &r) {
    return r.findPublishedEvent("r-1", "tick", 7, json(R"({"n":300})").asObject());
  })));
  CHECK(ok(inTransaction(*store, [](Transaction &tx) { return tx.purgePublishedEvents(8); })) ==
        300);
}

TEST_CASE("a run's inbox keeps messages in arrival order until they are taken") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("a"));
  createRun(*store, newRun("b"));
  int64_t first = 0;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    first = ok(tx.addInboxMessage("b", InboxKind::Signal, "approve", json(R"({"by":"ann"})"), 1));
    ok(tx.addInboxMessage("a", InboxKind::Cancel, "", json("null"), 2));
    ok(tx.addInboxMessage("b", InboxKind::Signal, "approve", json(R"({"by":"bob"})"), 3));
    return {};
  }));
  std::vector<InboxMessage> inbox =
      ok(store->query([](const StoreReader &r) { return r.inbox("b"); }));
  REQUIRE(inbox.size() == 2);
  CHECK(inbox[0].id == first);
  CHECK(inbox[0].name == "approve");
  CHECK(toJson(inbox[0].payload) == R"({"by":"ann"})");
  CHECK(toJson(inbox[1].payload) == R"({"by":"bob"})");
  CHECK(ok(store->query([](const StoreReader &r) { return r.runsWithInbox(10); })) ==
        std::vector<std::string>{"b", "a"});
  CHECK(ok(inTransaction(*store, [&](Transaction &tx) { return tx.removeInboxMessage(first); })));
  CHECK(ok(store->query([](const StoreReader &r) { return r.inbox("b"); })).size() == 1);
  failure(store->write([](Transaction &tx) -> StoreStatus {
    auto added = tx.addInboxMessage("ghost", InboxKind::Signal, "x", json("1"), 1);
    if (!added.ok()) {
      return std::move(added).error();
    }
    return {};
  }),
          StoreErrorKind::NotFound);
}

TEST_CASE("checkpoints chain, are found at or before a seq, and the oldest are pruned") {
  auto store = ok(Store::openInMemory());
  createRun(*store, newRun("r-1"));
  std::vector<NewEvent> events;
  for (int index = 1; index <= 10; ++index) {
    events.push_back(event(EventType::TimerFired, index, "{}"));
  }
  append(*store, "r-1", events);

  std::vector<Hash> hashes;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    for (int64_t seq : {2, 4, 6, 8}) {
      hashes.push_back(ok(tx.saveCheckpoint("r-1", seq, "state@" + std::to_string(seq), seq)));
    }
    // Saving again at the same seq keeps the first; an earlier seq is a conflict.
    CHECK(ok(tx.saveCheckpoint("r-1", 8, "other", 9)) == hashes.back());
    failure(tx.saveCheckpoint("r-1", 7, "older", 9), StoreErrorKind::Conflict);
    failure(tx.saveCheckpoint("r-1", 11, "future", 9), StoreErrorKind::NotFound);
    return {};
  }));
  auto latest = ok(store->query([](const StoreReader &r) { return r.latestCheckpoint("r-1"); }));
  REQUIRE(latest.has_value());
  CHECK(latest->seq == 8);
  CHECK(latest->state == "state@8");
  CHECK(latest->prevHash == hashes[2]);
  auto atFive =
      ok(store->query([](const StoreReader &r) { return r.checkpointAtOrBefore("r-1", 5); }));
  REQUIRE(atFive.has_value());
  CHECK(atFive->seq == 4);
  CHECK_FALSE(
      ok(store->query([](const StoreReader &r) { return r.checkpointAtOrBefore("r-1", 1); })));

  CHECK(ok(inTransaction(*store, [](Transaction &tx) { return tx.pruneCheckpoints("r-1", 2); })) ==
        2);
  CHECK_FALSE(
      ok(store->query([](const StoreReader &r) { return r.checkpointAtOrBefore("r-1", 5); })));
  CHECK(ok(store->query([](const StoreReader &r) {
          return r.checkpointAtOrBefore("r-1", 7);
        }))->seq == 6);
  // Pruning keeps the chain verifiable: the oldest kept names a pruned predecessor.
  ChainReport report = ok(store->query([](const StoreReader &r) { return r.verifyRun("r-1"); }));
  CHECK(report.checkpointsChecked == 2);
  CHECK_FALSE(report.firstBroken.has_value());
}

TEST_CASE("pruning every run's checkpoints keeps the newest of each") {
  auto store = ok(Store::openInMemory());
  for (std::string run : {"a", "b"}) {
    createRun(*store, newRun(run));
    append(*store, run,
           {event(EventType::TimerFired, 1, "{}"), event(EventType::TimerFired, 2, "{}"),
            event(EventType::TimerFired, 3, "{}")});
    ok(store->write([&](Transaction &tx) -> StoreStatus {
      for (int64_t seq = 1; seq <= 3; ++seq) {
        ok(tx.saveCheckpoint(run, seq, "s", seq));
      }
      return {};
    }));
  }
  CHECK(ok(inTransaction(*store, [](Transaction &tx) { return tx.pruneAllCheckpoints(1); })) == 4);
  for (std::string run : {"a", "b"}) {
    CHECK(ok(store->query([&](const StoreReader &r) { return r.latestCheckpoint(run); }))->seq ==
          3);
    CHECK_FALSE(
        ok(store->query([&](const StoreReader &r) { return r.checkpointAtOrBefore(run, 2); })));
  }
}

TEST_CASE("purge deletes old finished runs with everything they own, and orphaned modules") {
  auto store = ok(Store::openInMemory());
  auto finish = [&](std::string run, RunStatus status, int64_t at) {
    ok(store->write([&](Transaction &tx) {
      return tx.updateRun(run, RunUpdate{at, status, {}, {}, {}, {}, {}});
    }));
  };
  NewRun old = newRun("old", 10);
  createRun(*store, old);
  append(*store, "old",
         {event(EventType::WorkflowStarted, 10, "{}"), event(EventType::WorkflowFailed, 20, "{}")});
  int64_t published = 0;
  ok(store->write([&](Transaction &tx) -> StoreStatus {
    ok(tx.saveCheckpoint("old", 2, "state", 20));
    ok(tx.addTimer(TimerRecord{"old", 1, TimerKind::Timer, 99, 10}));
    ok(tx.addTask(NewTask{"old", 2, "s", "a", json("{}"), 1, 10, "k", 10}));
    ok(tx.addInboxMessage("old", InboxKind::Signal, "x", json("1"), 10));
    published = ok(tx.publishEvent("e", json("{}"), 10));
    CHECK(ok(tx.consumePublishedEvent("old", published, 11)));
    CHECK(ok(tx.acquireLease("old", "me", 0, 5)));
    // A second module used only by the old run.
    ok(tx.putModule("only-old", std::vector<uint8_t>{7}, 10));
    return tx.updateRun("old", RunUpdate{15, {}, {}, {}, {}, "only-old", {}});
  }));
  finish("old", RunStatus::Failed, 20);

  createRun(*store, newRun("recent", 10));
  finish("recent", RunStatus::Completed, 5000);
  createRun(*store, newRun("cancelled", 10));
  finish("cancelled", RunStatus::Cancelled, 20);
  createRun(*store, newRun("running", 10));
  createRun(*store, newRun("blocked", 10));
  finish("blocked", RunStatus::Blocked, 20);

  StoreError invalid =
      failure(inTransaction(*store,
                            [](Transaction &tx) {
                              return tx.purge(PurgeOptions{{RunStatus::Running}, 1000});
                            }),
              StoreErrorKind::Invalid);
  CHECK(invalid.message.find("RUNNING runs are not finished") != std::string::npos);

  PurgeCounts onlyFailed = ok(inTransaction(*store, [](Transaction &tx) {
    return tx.purge(PurgeOptions{{RunStatus::Failed}, 1000});
  }));
  CHECK(onlyFailed.runs == 1);
  CHECK(onlyFailed.events == 2);
  CHECK(onlyFailed.checkpoints == 1);
  CHECK(onlyFailed.modules == 1);
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.run("old"); })));
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.module("only-old"); })));
  CHECK(ok(store->query([](const StoreReader &r) { return r.module(kModuleHash); })));
  CHECK(history(*store, "old").empty());
  CHECK(ok(store->query([](const StoreReader &r) { return r.timersOf("old"); })).empty());
  CHECK(ok(store->query([](const StoreReader &r) { return r.tasksOf("old"); })).empty());
  CHECK(ok(store->query([](const StoreReader &r) { return r.inbox("old"); })).empty());
  CHECK_FALSE(ok(store->query([](const StoreReader &r) { return r.lease("old"); })));

  PurgeCounts everyFinal = ok(inTransaction(*store, [](Transaction &tx) {
    return tx.purge(PurgeOptions{{}, 1000});
  }));
  CHECK(everyFinal.runs == 1); // cancelled; recent finished later, running and blocked never
  for (std::string kept : {"recent", "running", "blocked"}) {
    CHECK(ok(store->query([&](const StoreReader &r) { return r.run(kept); })).has_value());
  }
  CHECK(everyFinal.modules == 0);
}
