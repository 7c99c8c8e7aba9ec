// The engine's lease fence and the replay of ended runs. An engine checks, in the same
// transaction as its writes for a run, that it still owns the run, so an engine whose run
// was taken over while it stalled appends nothing; and `replay` of a run that has ended
// refuses a module that issues commands its history does not end with.
#include "engine_support.h"

#include "kotoba/runtime/checkpoint.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kLeaseMs = 1'000;

// Prepares, then waits for an approval signal.
const char *const kApproval = R"({ workflow: { id: "approval", outputs: [{ name: "by" }],
  output_mapping: { by: $.signals.approve.by },
  strategy: { op: "seq", strategies: [
    { op: "activity", id: "prepare", activity_ref: "prepare" },
    { op: "wait", id: "approval", signal: "approve" } ] } } })";

// The same, with an audit that runs alongside the wait.
const char *const kApprovalAudited = R"({ workflow: { id: "approval", outputs: [{ name: "by" }],
  output_mapping: { by: $.signals.approve.by },
  strategy: { op: "seq", strategies: [
    { op: "activity", id: "prepare", activity_ref: "prepare" },
    { op: "parallel", id: "both", branches: [
      { op: "wait", id: "approval", signal: "approve" },
      { op: "activity", id: "audit", activity_ref: "audit" } ] } ] } } })";

// An activity that holds every call until the test opens it.
struct HeldActivity {
  std::mutex mutex;
  std::condition_variable changed;
  std::atomic<int> calls{0}; // changed under `mutex`, read without it by stepping loops
  bool released = false;

  HeldActivity(ActivityRegistry &registry, const std::string &name) {
    REQUIRE_FALSE(registry.bindFunction(name, [this](const Value &input, ActivityContext &) {
      std::unique_lock lock(mutex);
      ++calls;
      changed.notify_all();
      changed.wait(lock, [&] { return released; });
      return Result<Value>(input);
    }));
  }
  void open() {
    std::lock_guard lock(mutex);
    released = true;
    changed.notify_all();
  }
  // Waits (up to 10 s) until the activity has been called `count` times.
  [[nodiscard]] bool waitForCalls(int count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return calls == count; });
  }
};

StartRequest startRequest(const std::string &moduleHash) {
  StartRequest request;
  request.moduleHash = moduleHash;
  request.inputs = Value(Object());
  return request;
}

EngineOptions ownedBy(const std::string &owner) {
  return kotoba::testing::ownedBy(owner, kLeaseMs);
}

// Engine A has started the approval run and its `prepare` attempt is held, running.
struct PrepareHeld {
  TemporaryStore temp;
  VirtualClock clock{kStartMs};
  ActivityRegistry registry;
  HeldActivity prepare{registry, "prepare"};
  Engine engine{*temp.store, registry, clock, ownedBy("engine-a")};
  std::string runId;

  PrepareHeld() {
    auto hash = engine.addModule(compileWorkflow(kApproval));
    REQUIRE(hash.ok());
    auto started = engine.start(startRequest(hash.value()));
    REQUIRE(started.ok());
    runId = started.value();
    for (int i = 0; i < 100 && prepare.calls == 0; ++i) {
      REQUIRE(engine.step().ok());
    }
    REQUIRE(prepare.waitForCalls(1));
  }
  // Lets the attempt finish however the test ends, before the engine's shutdown waits on it.
  ~PrepareHeld() { prepare.open(); }
};

void bindEcho(ActivityRegistry &registry, const std::string &name) {
  REQUIRE_FALSE(registry.bindFunction(
      name, [](const Value &input, ActivityContext &) { return Result<Value>(input); }));
}

// Takes the run's lease for `owner` the way a second process does once the first one's
// lease has expired.
void takeOver(Store &store, const std::string &runId, const std::string &owner, int64_t atMs) {
  bool taken = false;
  StoreStatus status = store.write([&](Transaction &tx) -> StoreStatus {
    auto acquired = tx.acquireLease(runId, owner, atMs, atMs + kLeaseMs);
    if (!acquired.ok()) {
      return std::move(acquired).error();
    }
    taken = acquired.value();
    return {};
  });
  REQUIRE(status.ok());
  REQUIRE_MESSAGE(taken, "the lease had not expired");
}

size_t inboxSize(Store &store, const std::string &runId) {
  auto inbox = store.query([&](const StoreReader &reader) { return reader.inbox(runId); });
  REQUIRE(inbox.ok());
  return inbox.value().size();
}

// Engine A's run of kApproval, parked at its signal wait; `recorded` is its history's length.
struct ParkedApproval {
  TemporaryStore temp;
  VirtualClock clock{kStartMs};
  ActivityRegistry registry;
  std::unique_ptr<Engine> engine;
  std::string runId;
  size_t recorded = 0;

  ParkedApproval() {
    bindEcho(registry, "prepare");
    engine = std::make_unique<Engine>(*temp.store, registry, clock, ownedBy("engine-a"));
    auto hash = engine->addModule(compileWorkflow(kApproval));
    REQUIRE(hash.ok());
    auto started = engine->start(startRequest(hash.value()));
    REQUIRE(started.ok());
    runId = started.value();
    auto waiting = engine->runToCompletion(runId);
    REQUIRE(waiting.ok());
    REQUIRE(waiting.value().status == RunStatus::Running); // parked at the signal wait
    recorded = history(*temp.store, runId).size();
  }
};

} // namespace

TEST_CASE_FIXTURE(ParkedApproval,
                  "an engine whose run was taken over records nothing more for it") {
  Engine &stalled = *engine;

  // Engine A stalls past its lease; B takes the run over and a signal arrives. A still has
  // the run's machine loaded and, on its next step, would answer the signal.
  clock.advanceBy(kLeaseMs * 5);
  takeOver(*temp.store, runId, "engine-b", clock.nowMs());
  REQUIRE(stalled.signal(runId, "approve", parse(R"({"by": "lin"})")).ok());
  auto stepped = stalled.step();
  REQUIRE_MESSAGE(stepped.ok(), (stepped.ok() ? "" : stepped.error().message));

  CHECK(history(*temp.store, runId).size() == recorded);
  CHECK(inboxSize(*temp.store, runId) == 1); // the signal waits for the new owner
  auto lease = temp.store->query([&](const StoreReader &reader) { return reader.lease(runId); });
  REQUIRE(lease.ok());
  REQUIRE(lease.value());
  CHECK(lease.value()->owner == "engine-b");

  // A keeps stepping without touching the run; B, the owner, finishes it.
  for (int i = 0; i < 5; ++i) {
    REQUIRE(stalled.step().ok());
  }
  CHECK(history(*temp.store, runId).size() == recorded);
  Engine owner(*temp.store, registry, clock, ownedBy("engine-b"));
  auto done = owner.runToCompletion(runId);
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
  CHECK(toJson(done.value().outputs) == R"({"by":"lin"})");
  size_t received = 0;
  for (const EventRecord &event : history(*temp.store, runId)) {
    received += event.type == EventType::SignalReceived ? 1 : 0;
  }
  CHECK(received == 1);
}

TEST_CASE_FIXTURE(PrepareHeld,
                  "an activity that finishes after its run was taken over is not recorded by its "
                  "engine") {
  Engine &stalled = engine;
  const size_t recorded = history(*temp.store, runId).size();

  clock.advanceBy(kLeaseMs * 5);
  takeOver(*temp.store, runId, "engine-b", clock.nowMs());
  prepare.open();
  // The outcome reaches engine A's queue; draining it must not append the completion.
  for (int i = 0; i < 200 && history(*temp.store, runId).size() == recorded; ++i) {
    REQUIRE(stalled.step().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (const EventRecord &event : history(*temp.store, runId)) {
    CHECK(event.type != EventType::ActivityCompleted);
  }
  CHECK(history(*temp.store, runId).size() == recorded);
}

TEST_CASE_FIXTURE(PrepareHeld,
                  "an attempt that outlives its task claim is not started a second time") {
  // Ten claims' worth of time passes while the attempt runs; the engine keeps stepping.
  for (int i = 0; i < 40; ++i) {
    clock.advanceBy(kLeaseMs / 4);
    REQUIRE(engine.step().ok());
  }
  auto task = temp.store->query(
      [&](const StoreReader &reader) { return reader.availableTasks(clock.nowMs(), 10); });
  REQUIRE(task.ok());
  CHECK(task.value().empty()); // the claim is alive, so no other engine starts it either
  prepare.open();
  auto waiting = engine.runToCompletion(runId);
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == RunStatus::Running); // at the signal wait
  CHECK(prepare.calls == 1);
}

TEST_CASE_FIXTURE(ParkedApproval,
                  "an engine whose lease was handed over before half its life records nothing") {
  // The row changes hands while engine A still counts on most of its lease: its next commit
  // only checks the row (it extends leases past half their life), and must see the change.
  StoreStatus handed = temp.store->write([&](Transaction &tx) -> StoreStatus {
    auto released = tx.releaseLease(runId, "engine-a");
    if (!released.ok()) {
      return std::move(released).error();
    }
    auto acquired = tx.acquireLease(runId, "engine-b", clock.nowMs(), clock.nowMs() + kLeaseMs);
    return acquired.ok() ? StoreStatus() : StoreStatus(std::move(acquired).error());
  });
  REQUIRE(handed.ok());
  REQUIRE(engine->signal(runId, "approve", parse(R"({"by": "lin"})")).ok());
  REQUIRE(engine->step().ok());
  CHECK(history(*temp.store, runId).size() == recorded);
  CHECK(inboxSize(*temp.store, runId) == 1);
}

TEST_CASE("a run's lease is extended once past half its life, not by every commit") {
  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  Engine engine(*temp.store, registry, clock, ownedBy("engine-a"));
  auto hash = engine.addModule(compileWorkflow(R"({ workflow: { id: "waits",
    strategy: { op: "seq", strategies: [
      { op: "wait", id: "one", signal: "one" },
      { op: "wait", id: "two", signal: "two" },
      { op: "wait", id: "three", signal: "three" } ] } } })"));
  REQUIRE(hash.ok());
  auto started = engine.start(startRequest(hash.value()));
  REQUIRE(started.ok());
  const std::string runId = started.value();
  auto expiry = [&] {
    auto lease = temp.store->query([&](const StoreReader &reader) { return reader.lease(runId); });
    REQUIRE(lease.ok());
    REQUIRE(lease.value());
    return lease.value()->expiryMs;
  };
  auto deliver = [&](const char *signal) {
    REQUIRE(engine.signal(runId, signal, Value(Object())).ok());
    auto parked = engine.runToCompletion(runId);
    REQUIRE(parked.ok());
    REQUIRE(parked.value().status == RunStatus::Running);
  };
  REQUIRE(engine.runToCompletion(runId).ok());
  CHECK(expiry() == kStartMs + kLeaseMs);
  const size_t before = history(*temp.store, runId).size();
  clock.advanceBy(kLeaseMs / 4);
  deliver("one"); // three quarters of the lease left: the commit only checks the row
  CHECK(history(*temp.store, runId).size() > before);
  CHECK(expiry() == kStartMs + kLeaseMs);
  clock.advanceBy(kLeaseMs / 2);
  deliver("two"); // a quarter left: extended from now
  CHECK(expiry() == clock.nowMs() + kLeaseMs);
}

TEST_CASE("replay of an ended run refuses a module that issues commands past its end") {
  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  bindEcho(registry, "prepare");
  bindEcho(registry, "audit");
  Engine engine(*temp.store, registry, clock);
  auto hash = engine.addModule(compileWorkflow(kApproval));
  REQUIRE(hash.ok());
  auto started = engine.start(startRequest(hash.value()));
  REQUIRE(started.ok());
  const std::string runId = started.value();
  REQUIRE(engine.runToCompletion(runId).ok());
  REQUIRE(engine.terminate(runId, "no longer needed").ok());
  auto ended = engine.runToCompletion(runId);
  REQUIRE(ended.ok());
  REQUIRE(ended.value().status == RunStatus::Terminated);
  std::vector<EventRecord> events = history(*temp.store, runId);
  REQUIRE(events.back().type == EventType::WorkflowTerminated);
  auto record = temp.store->query([&](const StoreReader &reader) { return reader.run(runId); });
  REQUIRE(record.ok());
  REQUIRE(record.value());

  auto replayOn = [&](const char *source) {
    auto module = std::make_shared<const vm::Module>(compileWorkflow(source));
    Replay replay(module, 0, runInfoOf(*record.value(), module->workflows[0]),
                  record.value()->inputs);
    REQUIRE(replay.applyAll(events));
    return replay;
  };

  // Its own module: every command it issued is recorded.
  Replay same = replayOn(kApproval);
  CHECK(same.expectEnded());
  CHECK_FALSE(same.mismatch());

  // The changed module starts an audit the terminated run never issued. While a run lives
  // that tail is what it records next; for an ended run it is a mismatch at the last event.
  Replay changed = replayOn(kApprovalAudited);
  CHECK(changed.unrecorded().size() == 1);
  CHECK_FALSE(changed.expectEnded());
  REQUIRE(changed.mismatch());
  CHECK(changed.mismatch()->seq == events.back().seq);
  CHECK(changed.mismatch()->step == "audit");
  CHECK(changed.mismatch()->message.find("the run ended at event") != std::string::npos);
  CHECK(changed.mismatch()->message.find("ScheduleActivity for step 'audit'") != std::string::npos);
  CHECK_FALSE(changed.expectEnded()); // a replay that failed stays failed

  // An outcome that reaches the history after the termination (a child that finished before
  // it saw the terminate request reports to its parent) moves nothing: replay skips it.
  EventRecord late = events.back();
  late.seq += 1;
  late.type = EventType::SignalReceived;
  late.payload = parse(R"({"name": "approve", "payload": {"by": "late"}})");
  events.push_back(late);
  Replay withLateInput = replayOn(kApproval);
  CHECK(withLateInput.unrecorded().empty());
  CHECK(withLateInput.expectEnded());
}
