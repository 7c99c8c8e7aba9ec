// The executor's replacement threads: an in-process function that ignores its stop request
// keeps its pool thread after it is reported, so the executor starts a replacement for it
// (bounded), and the thread retires once the function finally returns.
#include "kotoba/runtime/executor.h"
#include "kotoba/runtime/function.h"

#include "activity_test_support.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <thread>

namespace kotoba::runtime {
namespace {

using testing::CapturedLog;

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
  // Waits until `count` outcomes arrived or `limitMs` passed; returns how many there are.
  size_t waitFor(size_t count, int64_t limitMs = 10'000) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(limitMs),
                      [&] { return outcomes_.size() >= count; });
    return outcomes_.size();
  }
  std::vector<AttemptOutcome> all() {
    std::lock_guard lock(mutex_);
    return outcomes_;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<AttemptOutcome> outcomes_;
};

AttemptRequest request(uint64_t command, std::shared_ptr<Activity> activity,
                       int64_t timeoutMs = 60'000) {
  AttemptRequest attempt;
  attempt.identity.runId = "run-1";
  attempt.identity.commandId = command;
  attempt.identity.stepId = "step_" + std::to_string(command);
  attempt.identity.activityName = "act";
  attempt.identity.attempt = 1;
  attempt.activity = std::move(activity);
  attempt.input = Value(nullptr);
  attempt.timeoutMs = timeoutMs;
  return attempt;
}

// A host function that never looks at its cancellation: it returns only when the test
// releases it (so that the executor, which joins its threads, can be destroyed).
class Stubborn {
public:
  std::shared_ptr<Activity> activity() {
    return std::make_shared<FunctionActivity>(
        "stubborn", [this](const Value &, ActivityContext &) -> Result<Value> {
          while (!released_.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
          return Value("late");
        });
  }
  void release() { released_ = true; }

private:
  std::atomic<bool> released_ = false;
};

// Declared after the executor, so that a failed REQUIRE releases the stuck functions
// before the executor's destructor joins their threads.
struct ReleaseOnExit {
  Stubborn &stubborn;
  ~ReleaseOnExit() { stubborn.release(); }
};

std::shared_ptr<Activity> quick() {
  return std::make_shared<FunctionActivity>(
      "quick", [](const Value &, ActivityContext &) -> Result<Value> { return Value("done"); });
}

ExecutorOptions options(size_t threads, CapturedLog &log) {
  ExecutorOptions options;
  options.threads = threads;
  options.stopWaitMs = 100;
  options.logSink = log.sink();
  return options;
}

// Polls `predicate` for up to five seconds.
template <typename Predicate> bool eventually(Predicate predicate) {
  for (int i = 0; i < 1000; ++i) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

} // namespace

TEST_CASE("functions that ignore their stop do not starve the pool: replacements run the rest") {
  RealClock clock;
  CapturedLog log;
  Stubborn stubborn;
  Outcomes outcomes;
  {
    Executor executor(clock, options(2, log));
    ReleaseOnExit releaseOnExit{stubborn};
    // Both pool threads get stuck: each function times out after 50 ms, ignores the stop
    // and is reported 100 ms later, still running.
    REQUIRE(executor.submit(request(1, stubborn.activity(), 50), outcomes.callback()));
    REQUIRE(executor.submit(request(2, stubborn.activity(), 50), outcomes.callback()));
    REQUIRE(outcomes.waitFor(2) == 2);
    for (const AttemptOutcome &outcome : outcomes.all()) {
      CHECK(outcome.status == AttemptStatus::TimedOut);
    }
    CHECK(executor.stuckThreadCount() == 2);
    CHECK(executor.threadCount() == 4);

    // Further attempts still run, on the replacement threads, while the stuck ones hang on.
    for (uint64_t command = 3; command <= 8; ++command) {
      REQUIRE(executor.submit(request(command, quick()), outcomes.callback()));
    }
    REQUIRE(outcomes.waitFor(8) == 8);
    std::vector<AttemptOutcome> done = outcomes.all();
    for (size_t i = 2; i < done.size(); ++i) {
      CHECK(done[i].status == AttemptStatus::Completed);
      CHECK(done[i].result == Value("done"));
    }

    // Once the functions return, their late results are dropped and their threads retire:
    // the pool is back to its size and still works.
    stubborn.release();
    CHECK(eventually([&] { return executor.stuckThreadCount() == 0; }));
    CHECK(eventually([&] { return executor.threadCount() == 2; }));
    REQUIRE(executor.submit(request(9, quick()), outcomes.callback()));
    REQUIRE(outcomes.waitFor(9) == 9);
    CHECK(outcomes.all().size() == 9);
  }
  std::lock_guard lock(log.mutex);
  REQUIRE(log.lines.size() == 2);
  CHECK(log.lines[0].second.find("did not stop within 100 ms") != std::string::npos);
  CHECK(log.lines[0].second.find("no replacement") == std::string::npos);
}

TEST_CASE("replacement threads are bounded; past the bound attempts wait for a stuck thread") {
  RealClock clock;
  CapturedLog log;
  Stubborn stubborn;
  Outcomes outcomes;
  ExecutorOptions bounded = options(1, log);
  bounded.maxReplacementThreads = 1;
  Executor executor(clock, bounded);
  ReleaseOnExit releaseOnExit{stubborn};
  REQUIRE(executor.submit(request(1, stubborn.activity(), 50), outcomes.callback()));
  REQUIRE(outcomes.waitFor(1) == 1);
  // The replacement takes the second stubborn attempt and gets stuck as well: no third
  // thread is started.
  REQUIRE(executor.submit(request(2, stubborn.activity(), 50), outcomes.callback()));
  REQUIRE(outcomes.waitFor(2) == 2);
  CHECK(executor.threadCount() == 2);
  CHECK(executor.stuckThreadCount() == 2);
  REQUIRE(executor.submit(request(3, quick()), outcomes.callback()));
  CHECK(outcomes.waitFor(3, 300) == 2);
  {
    std::lock_guard lock(log.mutex);
    REQUIRE(log.lines.size() == 2);
    CHECK(log.lines[1].second.find("2 pool thread(s) are held by attempts that ignored a stop") !=
          std::string::npos);
  }
  // A stuck thread that comes back serves the queue again.
  stubborn.release();
  REQUIRE(outcomes.waitFor(3) == 3);
  CHECK(outcomes.all()[2].status == AttemptStatus::Completed);
  CHECK(eventually([&] { return executor.threadCount() == 1; }));
}

TEST_CASE("no replacement is started when the bound is zero") {
  RealClock clock;
  CapturedLog log;
  Stubborn stubborn;
  Outcomes outcomes;
  ExecutorOptions none = options(1, log);
  none.maxReplacementThreads = 0;
  Executor executor(clock, none);
  ReleaseOnExit releaseOnExit{stubborn};
  REQUIRE(executor.submit(request(1, stubborn.activity(), 50), outcomes.callback()));
  REQUIRE(outcomes.waitFor(1) == 1);
  CHECK(executor.threadCount() == 1);
  REQUIRE(executor.submit(request(2, quick()), outcomes.callback()));
  CHECK(outcomes.waitFor(2, 300) == 1);
  stubborn.release();
  REQUIRE(outcomes.waitFor(2) == 2);
}

} // namespace kotoba::runtime
