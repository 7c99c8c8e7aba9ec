// The executor: concurrent attempts, timeouts for functions that stop and that do not,
// cancellation of queued and running attempts, exactly one report per attempt, timing from
// the runtime clock, and the retry decisions the engine asks for after a failure.
#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/executor.h"
#include "kotoba/runtime/function.h"
#include "kotoba/runtime/process.h"

#include "activity_test_support.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <thread>

namespace kotoba::runtime {
namespace {

using testing::CapturedLog;
using testing::Stopwatch;
using testing::TempDir;

Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

// Collects outcomes from executor threads.
class Outcomes {
public:
  CompletionCallback callback() {
    return [this](AttemptOutcome outcome) {
      std::lock_guard lock(mutex_);
      outcomes_.push_back(std::move(outcome));
      changed_.notify_all();
    };
  }
  // Waits until `count` outcomes arrived (or 20 s passed) and returns them all.
  std::vector<AttemptOutcome> waitFor(size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(20), [&] { return outcomes_.size() >= count; });
    return outcomes_;
  }
  size_t size() {
    std::lock_guard lock(mutex_);
    return outcomes_.size();
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<AttemptOutcome> outcomes_;
};

AttemptRequest request(uint64_t command, std::shared_ptr<Activity> activity, Value input,
                       int64_t timeoutMs = 60'000, std::string runId = "run-1") {
  AttemptRequest attempt;
  attempt.identity.runId = std::move(runId);
  attempt.identity.commandId = command;
  attempt.identity.stepId = "step_" + std::to_string(command);
  attempt.identity.activityName = "act";
  attempt.identity.attempt = 1;
  attempt.activity = std::move(activity);
  attempt.input = std::move(input);
  attempt.timeoutMs = timeoutMs;
  return attempt;
}

std::shared_ptr<Activity> function(ActivityFunction body) {
  return std::make_shared<FunctionActivity>("f", std::move(body));
}

ExecutorOptions quietOptions(size_t threads = 4) {
  ExecutorOptions options;
  options.threads = threads;
  options.logSink = [](const ActivityLogRecord &) {};
  return options;
}

// Submits attempt `command` of a function that sleeps for an hour unless stopped.
void submitHourLongSleep(Executor &executor, Outcomes &outcomes, uint64_t command,
                         int64_t timeoutMs) {
  REQUIRE(executor.submit(
      request(command, function(sleepFunction), json(R"({"duration": "1h"})"), timeoutMs),
      outcomes.callback()));
}

} // namespace

TEST_CASE("a completed attempt is reported with its result and clock times") {
  VirtualClock clock(5'000);
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  REQUIRE(executor.submit(request(1, function(echoFunction), json(R"({"x": 1})")),
                          outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  REQUIRE(done.size() == 1);
  const AttemptOutcome &outcome = done[0];
  CHECK(outcome.status == AttemptStatus::Completed);
  CHECK(outcome.result == json(R"({"x": 1})"));
  CHECK_FALSE(outcome.error);
  CHECK(outcome.identity.commandId == 1);
  CHECK(outcome.scheduledAtMs == 5'000);
  CHECK(outcome.startedAtMs == 5'000);
  CHECK(outcome.finishedAtMs == 5'000);
  CHECK(executor.inFlight() == 0);
}

TEST_CASE("a failed attempt is reported with the activity's error") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  REQUIRE(executor.submit(
      request(1, function(failFunction), json(R"({"type": "OutOfStock", "retryable": false})")),
      outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::Failed);
  REQUIRE(done[0].error);
  CHECK(done[0].error->type == "OutOfStock");
  CHECK(done[0].startedAtMs.has_value());
  CHECK(done[0].finishedAtMs >= *done[0].startedAtMs);
}

TEST_CASE("slow attempts run concurrently: eight 300 ms sleeps take about 300 ms") {
  RealClock clock;
  Executor executor(clock, quietOptions(8));
  Outcomes outcomes;
  Stopwatch watch;
  for (uint64_t command = 1; command <= 8; ++command) {
    REQUIRE(executor.submit(request(command, function(sleepFunction), json(R"({"ms": 300})")),
                            outcomes.callback()));
  }
  std::vector<AttemptOutcome> done = outcomes.waitFor(8);
  int64_t elapsed = watch.elapsedMs();
  REQUIRE(done.size() == 8);
  for (const AttemptOutcome &outcome : done) {
    CHECK(outcome.status == AttemptStatus::Completed);
    CHECK(outcome.runMs >= 300);
  }
  CHECK(elapsed >= 300);
  CHECK(elapsed < 1200); // serially it would be 2400 ms
}

TEST_CASE("slow processes run concurrently too") {
  TempDir dir;
  dir.writeScript("slow.sh", "#!/bin/sh\nsleep 0.3\necho 1\n");
  ActivityRegistry registry;
  Result<std::shared_ptr<Activity>> activity = registry.create(
      "slow", json(R"({"type": "process", "command": "./slow.sh"})"), dir.path().string());
  REQUIRE(activity.ok());
  RealClock clock;
  Executor executor(clock, quietOptions(6));
  Outcomes outcomes;
  Stopwatch watch;
  for (uint64_t command = 1; command <= 6; ++command) {
    REQUIRE(
        executor.submit(request(command, activity.value(), Value(nullptr)), outcomes.callback()));
  }
  std::vector<AttemptOutcome> done = outcomes.waitFor(6);
  REQUIRE(done.size() == 6);
  for (const AttemptOutcome &outcome : done) {
    CHECK(outcome.status == AttemptStatus::Completed);
  }
  CHECK(watch.elapsedMs() < 1500); // serially it would be 1800 ms
}

TEST_CASE("an attempt past its timeout is asked to stop and reported TimedOut") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  Stopwatch watch;
  submitHourLongSleep(executor, outcomes, 1, 100);
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  int64_t elapsed = watch.elapsedMs();
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::TimedOut);
  REQUIRE(done[0].error);
  CHECK(done[0].error->type == "ActivityTimeout");
  CHECK(done[0].error->retryable);
  CHECK(done[0].error->message ==
        "attempt 1 of activity 'act' (step 'step_1') did not finish within its timeout of "
        "100ms");
  CHECK(elapsed >= 100);
  CHECK(elapsed < 3000);
}

// The watchdog is woken only for a deadline before the one it waits for: a short timeout
// started while it waits on a long one must still be noticed at its own time.
TEST_CASE("a short timeout started while a long one runs times out at its own deadline") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  submitHourLongSleep(executor, outcomes, 1, 30'000);
  // Let the first attempt start, so the watchdog waits on its 30 s deadline.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Stopwatch watch;
  submitHourLongSleep(executor, outcomes, 2, 100);
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  int64_t elapsed = watch.elapsedMs();
  REQUIRE(done.size() == 1);
  CHECK(done[0].identity.commandId == 2);
  CHECK(done[0].status == AttemptStatus::TimedOut);
  CHECK(elapsed >= 100);
  CHECK(elapsed < 3000);
  CHECK(executor.cancel("run-1", 1));
  CHECK(outcomes.waitFor(2).size() == 2);
}

TEST_CASE("a function that ignores its stop request is reported after the stop wait") {
  RealClock clock;
  CapturedLog log;
  ExecutorOptions options = quietOptions();
  options.stopWaitMs = 200;
  options.logSink = log.sink();
  Executor executor(clock, options);
  Outcomes outcomes;
  std::atomic<bool> release = false;
  std::atomic<bool> returned = false;
  auto stubborn = function([&](const Value &, ActivityContext &) -> Result<Value> {
    while (!release.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    returned = true;
    return Value("late");
  });
  Stopwatch watch;
  REQUIRE(executor.submit(request(1, stubborn, Value(nullptr), 100), outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  int64_t elapsed = watch.elapsedMs();
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::TimedOut);
  CHECK(elapsed >= 300);
  CHECK(elapsed < 3000);
  CHECK_FALSE(returned.load());
  release = true;
  // The late result is ignored: still exactly one report.
  for (int i = 0; i < 200 && !returned.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(outcomes.size() == 1);
  std::lock_guard lock(log.mutex);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].first == LogLevel::Warning);
  CHECK(log.lines[0].second.find("did not stop within 200 ms") != std::string::npos);
}

TEST_CASE("a process attempt past its timeout is killed and reported TimedOut") {
  TempDir dir;
  dir.writeScript("stubborn.sh", "#!/bin/sh\ntrap '' TERM\nwhile true; do sleep 1; done\n");
  ActivityRegistry registry;
  registry.registerFactory("process", processActivityFactory(ProcessOptions{.killGraceMs = 200}));
  Result<std::shared_ptr<Activity>> activity = registry.create(
      "stubborn", json(R"({"type": "process", "command": "./stubborn.sh"})"), dir.path().string());
  REQUIRE(activity.ok());
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  Stopwatch watch;
  REQUIRE(executor.submit(request(1, activity.value(), Value(nullptr), 200), outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  int64_t elapsed = watch.elapsedMs();
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::TimedOut);
  // Reported when the process was dead: timeout + SIGKILL grace, not the stop wait.
  CHECK(elapsed >= 400);
  CHECK(elapsed < 3000);
}

TEST_CASE("cancel stops a running attempt and reports it Cancelled") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  std::atomic<bool> started = false;
  auto waiting = function([&](const Value &, ActivityContext &context) -> Result<Value> {
    started = true;
    context.waitForCancellation(std::chrono::hours(1));
    return Value("stopped");
  });
  REQUIRE(executor.submit(request(3, waiting, Value(nullptr)), outcomes.callback()));
  while (!started.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CHECK(executor.cancel("run-1", 3));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::Cancelled);
  REQUIRE(done[0].error);
  CHECK(done[0].error->type == "ActivityCancelled");
  CHECK_FALSE(done[0].error->retryable);
  CHECK(done[0].result.isNull()); // the "stopped" it returned after the request is ignored
  CHECK_FALSE(executor.cancel("run-1", 3));
  CHECK_FALSE(executor.cancel("run-1", 99));
}

TEST_CASE("a queued attempt cancelled before it starts is reported without running") {
  RealClock clock;
  Executor executor(clock, quietOptions(1));
  Outcomes outcomes;
  std::atomic<int> runs = 0;
  auto counted = function([&](const Value &input, ActivityContext &context) -> Result<Value> {
    ++runs;
    return sleepFunction(input, context);
  });
  REQUIRE(executor.submit(request(1, counted, json(R"({"ms": 200})")), outcomes.callback()));
  REQUIRE(executor.submit(request(2, counted, json(R"({"ms": 200})")), outcomes.callback()));
  CHECK(executor.cancel("run-1", 2));
  std::vector<AttemptOutcome> done = outcomes.waitFor(2);
  REQUIRE(done.size() == 2);
  CHECK(done[0].identity.commandId == 2);
  CHECK(done[0].status == AttemptStatus::Cancelled);
  CHECK_FALSE(done[0].startedAtMs);
  CHECK(done[1].identity.commandId == 1);
  CHECK(done[1].status == AttemptStatus::Completed);
  CHECK(runs.load() == 1);
}

TEST_CASE("cancelRun cancels every attempt of one run and no other") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  Value longSleep = json(R"({"duration": "1h"})");
  REQUIRE(executor.submit(request(1, function(sleepFunction), longSleep, 60'000, "a"),
                          outcomes.callback()));
  REQUIRE(executor.submit(request(2, function(sleepFunction), longSleep, 60'000, "a"),
                          outcomes.callback()));
  REQUIRE(executor.submit(request(1, function(sleepFunction), json(R"({"ms": 100})"), 60'000, "b"),
                          outcomes.callback()));
  CHECK(executor.cancelRun("a") == 2);
  std::vector<AttemptOutcome> done = outcomes.waitFor(3);
  REQUIRE(done.size() == 3);
  for (const AttemptOutcome &outcome : done) {
    CHECK(outcome.status ==
          (outcome.identity.runId == "a" ? AttemptStatus::Cancelled : AttemptStatus::Completed));
  }
}

TEST_CASE("a second attempt of a command still in flight is refused") {
  RealClock clock;
  Executor executor(clock, quietOptions());
  Outcomes outcomes;
  REQUIRE(executor.submit(request(1, function(sleepFunction), json(R"({"ms": 100})")),
                          outcomes.callback()));
  CHECK_FALSE(executor.submit(request(1, function(echoFunction), Value(1)), outcomes.callback()));
  CHECK(executor.submit(request(1, function(echoFunction), Value(1), 1000, "other-run"),
                        outcomes.callback()));
  CHECK(outcomes.waitFor(2).size() == 2);
  CHECK(outcomes.size() == 2);
  // Once reported, the command may run its next attempt.
  CHECK(executor.submit(request(1, function(echoFunction), Value(1)), outcomes.callback()));
  CHECK(outcomes.waitFor(3).size() == 3);
}

TEST_CASE("heartbeats are passed on and the last one comes back with the outcome") {
  RealClock clock;
  ExecutorOptions options = quietOptions();
  std::atomic<int> beats = 0;
  options.heartbeatSink = [&beats](const HeartbeatRecord &) { ++beats; };
  Executor executor(clock, options);
  Outcomes outcomes;
  auto beating = function([](const Value &, ActivityContext &context) -> Result<Value> {
    context.heartbeat(Value(1));
    context.heartbeat(json(R"({"page": 2})"));
    return Value(nullptr);
  });
  REQUIRE(executor.submit(request(1, beating, Value(nullptr)), outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].lastHeartbeat == json(R"({"page": 2})"));
  CHECK(beats.load() == 2);
}

TEST_CASE("the payload limit applies to results run by the executor") {
  RealClock clock;
  ExecutorOptions options = quietOptions();
  options.payloadLimitBytes = 10;
  Executor executor(clock, options);
  Outcomes outcomes;
  REQUIRE(executor.submit(request(1, function(echoFunction), Value("0123456789")),
                          outcomes.callback()));
  std::vector<AttemptOutcome> done = outcomes.waitFor(1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].status == AttemptStatus::Failed);
  CHECK(done[0].error->type == "PayloadTooLarge");
}

TEST_CASE("shutdown drops queued attempts without reporting them") {
  RealClock clock;
  Outcomes outcomes;
  {
    Executor executor(clock, quietOptions(1));
    REQUIRE(executor.submit(request(1, function(sleepFunction), json(R"({"duration": "1h"})")),
                            outcomes.callback()));
    REQUIRE(executor.submit(request(2, function(echoFunction), Value(1)), outcomes.callback()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Stopwatch watch;
    executor.shutdown();
    CHECK(watch.elapsedMs() < 3000);
    CHECK_FALSE(executor.submit(request(3, function(echoFunction), Value(1)), outcomes.callback()));
  }
  CHECK(outcomes.size() == 0);
}

TEST_CASE("the default pool has a few threads per core") {
  RealClock clock;
  ExecutorOptions options = quietOptions(0);
  Executor executor(clock, options);
  CHECK(executor.threadCount() >= 4);
  CHECK(executor.threadCount() == std::max<size_t>(4, std::thread::hardware_concurrency() *
                                                          Executor::kDefaultThreadsPerCore));
}

// ---- Retry decisions ---------------------------------------------------------------------

TEST_CASE("a retryable failure is retried after the policy's backoff") {
  RetryPolicy policy; // 1 s, x2, 3 attempts
  WorkflowError error = makeError("Flaky", "try again");
  error.retryable = true;
  RetryDecision first = decideRetry(policy, 1, error, 10'000, std::nullopt, "r", "s");
  CHECK(first.verdict == RetryVerdict::RetryAt);
  CHECK(first.nextAttempt == 2);
  CHECK(first.delayMs == 1000);
  CHECK(first.retryAtMs == 11'000);
  RetryDecision second = decideRetry(policy, 2, error, 20'000, std::nullopt, "r", "s");
  CHECK(second.retryAtMs == 22'000);
  RetryDecision third = decideRetry(policy, 3, error, 30'000, std::nullopt, "r", "s");
  CHECK(third.verdict == RetryVerdict::AttemptsExhausted);
  CHECK_FALSE(third.retry());
}

TEST_CASE("errors that are not retryable, listed, or cancellations are final") {
  RetryPolicy policy;
  policy.nonRetryableErrors = {"CardInvalid"};
  WorkflowError notRetryable = makeError("Anything", "");
  CHECK(decideRetry(policy, 1, notRetryable, 0, std::nullopt, "r", "s").verdict ==
        RetryVerdict::NotRetryable);
  WorkflowError listed = makeError("CardInvalid", "");
  listed.retryable = true;
  CHECK(decideRetry(policy, 1, listed, 0, std::nullopt, "r", "s").verdict ==
        RetryVerdict::NonRetryableType);
  WorkflowError cancelled = makeError("ActivityCancelled", "");
  cancelled.retryable = true;
  CHECK(decideRetry(policy, 1, cancelled, 0, std::nullopt, "r", "s").verdict ==
        RetryVerdict::NotRetryable);
  WorkflowError timeout = stoppedError(testing::testIdentity(), StopReason::TimedOut, 100);
  CHECK(decideRetry(policy, 1, timeout, 0, std::nullopt, "r", "s").retry());
}

TEST_CASE("a retry that would start at or after the schedule-to-close deadline is final") {
  RetryPolicy policy;
  WorkflowError error = makeError("Flaky", "");
  error.retryable = true;
  CHECK(decideRetry(policy, 1, error, 1000, 2001, "r", "s").retry());
  CHECK(decideRetry(policy, 1, error, 1000, 2000, "r", "s").verdict ==
        RetryVerdict::ScheduleToCloseDeadline);
}

TEST_CASE("jittered retry times are the same on every evaluation and never later") {
  RetryPolicy policy;
  policy.jitter = 0.5;
  policy.maximumAttempts = std::nullopt;
  WorkflowError error = makeError("Flaky", "");
  error.retryable = true;
  for (int64_t attempt = 1; attempt <= 10; ++attempt) {
    RetryDecision once = decideRetry(policy, attempt, error, 0, std::nullopt, "run", "step");
    RetryDecision again = decideRetry(policy, attempt, error, 0, std::nullopt, "run", "step");
    CHECK(once.retryAtMs == again.retryAtMs);
    CHECK(once.delayMs <= delayBeforeAttempt(policy, attempt + 1));
    CHECK(once.delayMs >= delayBeforeAttempt(policy, attempt + 1) / 2);
  }
}

TEST_CASE("retry decisions and attempt timeouts read the activity call descriptor") {
  RetryPolicy policy;
  policy.initialIntervalMs = 500;
  policy.maximumAttempts = 5;
  vm::ActivityCallDescriptor descriptor;
  descriptor.activity = "charge";
  descriptor.step = "pay";
  descriptor.timeoutMs = 30'000;
  descriptor.scheduleToCloseMs = 60'000;
  descriptor.retry = retryPolicyToValue(policy);
  WorkflowError error = makeError("Flaky", "");
  error.retryable = true;

  RetryDecision decision = decideRetry(descriptor, 1, error, 10'000, 0, "run");
  CHECK(decision.retry());
  CHECK(decision.retryAtMs == 10'500);
  CHECK(decideRetry(descriptor, 1, error, 59'600, 0, "run").verdict ==
        RetryVerdict::ScheduleToCloseDeadline);

  CHECK(attemptTimeoutMs(descriptor, 0, 0) == 30'000);
  CHECK(attemptTimeoutMs(descriptor, 0, 50'000) == 10'000);
  CHECK(attemptTimeoutMs(descriptor, 0, 60'000) == std::nullopt);
  descriptor.scheduleToCloseMs = std::nullopt;
  CHECK(attemptTimeoutMs(descriptor, 0, 10'000'000) == 30'000);
}

} // namespace kotoba::runtime
