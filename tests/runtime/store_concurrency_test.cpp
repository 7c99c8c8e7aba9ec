// The store under concurrency: two Store objects on one file (two connections, as two
// processes would have) writing from several threads never surface a busy or locked error;
// two openers racing on a new file both succeed; and batch mode groups many callers'
// transactions into few commits, reporting to each caller only after its commit.
#include "runtime/store_testing.h"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::runtime::testing;

TEST_CASE("two connections writing one file from many threads never report busy") {
  TempDir dir;
  std::string path = dir.file("shared.db");
  StoreOptions patient;
  // With no SQLite busy timeout SQLite reports busy at once, so the store's own
  // retry loop has to carry the load.
  StoreOptions impatient;
  impatient.busyTimeout = std::chrono::milliseconds(0);
  auto first = openStore(path, patient);
  auto second = openStore(path, impatient);

  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 60;
  for (int thread = 0; thread < kThreads; ++thread) {
    createRun(*first, newRun("run-" + std::to_string(thread)));
  }

  std::mutex failuresMutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      Store &store = thread % 2 == 0 ? *first : *second;
      std::string runId = "run-" + std::to_string(thread);
      for (int index = 0; index < kWritesPerThread; ++index) {
        StoreStatus status = store.write([&](Transaction &tx) -> StoreStatus {
          NewEvent fired{EventType::TimerFired, index, "t", "", Value(int64_t{index})};
          auto appended = tx.appendEvents(runId, std::span<const NewEvent>(&fired, 1));
          if (!appended.ok()) {
            return std::move(appended).error();
          }
          // A row every writer touches, so the writers truly contend.
          auto published = tx.publishEvent("tick", Value(runId), index);
          if (!published.ok()) {
            return std::move(published).error();
          }
          return {};
        });
        // Reads from the same Store interleave with the writes of the other threads.
        auto read = store.query([&](const StoreReader &r) { return r.run(runId); });
        std::lock_guard<std::mutex> lock(failuresMutex);
        if (!status.ok()) {
          failures.push_back(status.error().message);
        }
        if (!read.ok()) {
          failures.push_back(read.error().message);
        }
      }
    });
  }
  for (std::thread &thread : threads) {
    thread.join();
  }
  CHECK(failures.empty());
  for (const std::string &message : failures) {
    INFO(message);
    CHECK(message.find("locked") == std::string::npos);
  }
  for (int thread = 0; thread < kThreads; ++thread) {
    std::string runId = "run-" + std::to_string(thread);
    std::vector<EventRecord> events = history(*second, runId);
    CHECK(events.size() == kWritesPerThread);
    CHECK(readRun(*first, runId).lastSeq == kWritesPerThread);
    CHECK_FALSE(ok(first->query([&](const StoreReader &r) {
                  return r.verifyRun(runId);
                })).firstBroken.has_value());
  }
  CHECK(first->stats().writes + second->stats().writes >= kThreads * kWritesPerThread);
  MESSAGE("busy retries: ", first->stats().busyRetries + second->stats().busyRetries);
}

TEST_CASE("two processes creating a new store file at the same moment both succeed") {
  TempDir dir;
  for (int round = 0; round < 5; ++round) {
    std::string path = dir.file("race-" + std::to_string(round) + ".db");
    auto open = [&] { return Store::open(path); };
    std::future<StoreResult<std::unique_ptr<Store>>> left = std::async(std::launch::async, open);
    std::future<StoreResult<std::unique_ptr<Store>>> right = std::async(std::launch::async, open);
    auto leftStore = ok(left.get());
    auto rightStore = ok(right.get());
    CHECK(ok(leftStore->schemaVersion()) == kStoreSchemaVersion);
    createRun(*leftStore, newRun("r"));
    CHECK(readRun(*rightStore, "r").id == "r");
  }
}

TEST_CASE("batch mode commits many runs' transactions together") {
  TempDir dir;
  StoreOptions options;
  options.durability = Durability::Batch;
  options.batchWindow = std::chrono::milliseconds(50);
  options.batchMaxTransactions = 64;
  std::string path = dir.file("batch.db");
  constexpr int kRuns = 200;
  {
    auto setup = openStore(path);
    for (int index = 0; index < kRuns; ++index) {
      createRun(*setup, newRun("run-" + std::to_string(index)));
    }
  }
  auto store = openStore(path, options);
  CHECK(store->durability() == Durability::Batch);
  StoreStats before = store->stats();

  std::vector<std::future<StoreStatus>> pending;
  for (int index = 0; index < kRuns; ++index) {
    std::string runId = "run-" + std::to_string(index);
    pending.push_back(store->submit([runId](Transaction &tx) -> StoreStatus {
      auto appended =
          tx.appendEvents(runId, std::vector{event(EventType::WorkflowStarted, 1, "{}")});
      if (!appended.ok()) {
        return std::move(appended).error();
      }
      return {};
    }));
  }
  for (std::future<StoreStatus> &done : pending) {
    ok(done.get());
  }
  StoreStats after = store->stats();
  uint64_t commits = after.commits - before.commits;
  CHECK(after.writes - before.writes == kRuns);
  // 200 transactions at up to 64 per batch: a handful of commits, not 200.
  CHECK(commits >= 4);
  CHECK(commits <= 20);
  MESSAGE("batch mode: ", kRuns, " transactions in ", commits, " commits");
  for (int index = 0; index < kRuns; index += 37) {
    CHECK(readRun(*store, "run-" + std::to_string(index)).lastSeq == 1);
  }
}

TEST_CASE("batch mode reports to a caller only after its transaction is committed") {
  TempDir dir;
  std::string path = dir.file("visible.db");
  StoreOptions options;
  options.durability = Durability::Batch;
  options.batchWindow = std::chrono::milliseconds(20);
  // Another connection, as another process: it sees only committed data.
  auto observer = openStore(path);
  constexpr int kRuns = 20;
  for (int index = 0; index < kRuns; ++index) {
    createRun(*observer, newRun("run-" + std::to_string(index)));
  }
  auto store = openStore(path, options);

  std::mutex mutex;
  std::vector<std::string> problems;
  std::vector<std::promise<void>> called(kRuns);
  for (int index = 0; index < kRuns; ++index) {
    std::string runId = "run-" + std::to_string(index);
    bool failing = index == 7;
    store->submit(
        [runId, failing](Transaction &tx) -> StoreStatus {
          auto appended =
              tx.appendEvents(runId, std::vector{event(EventType::WorkflowStarted, 1, "{}")});
          if (!appended.ok()) {
            return std::move(appended).error();
          }
          if (failing) {
            return StoreError{StoreErrorKind::Invalid, "this write gives up"};
          }
          return {};
        },
        [&, index, runId, failing](StoreStatus status) {
          auto seen = observer->query([&](const StoreReader &r) { return r.run(runId); });
          std::lock_guard<std::mutex> lock(mutex);
          if (status.ok() == failing) {
            problems.push_back(runId + ": unexpected outcome");
          } else if (!seen.ok() || !seen.value()) {
            problems.push_back(runId + ": could not read the run");
          } else if (seen.value()->lastSeq != (failing ? 0 : 1)) {
            problems.push_back(runId + ": callback ran before its commit was visible");
          }
          called[static_cast<size_t>(index)].set_value();
        });
  }
  for (std::promise<void> &promise : called) {
    promise.get_future().wait();
  }
  CHECK(problems.empty());
  for (const std::string &problem : problems) {
    INFO(problem);
  }
  // The failed write undid only itself; the batch around it committed.
  CHECK(readRun(*observer, "run-7").lastSeq == 0);
  CHECK(readRun(*observer, "run-8").lastSeq == 1);
}

TEST_CASE("closing a batch-mode store commits what is still queued") {
  TempDir dir;
  std::string path = dir.file("flush.db");
  StoreOptions options;
  options.durability = Durability::Batch;
  options.batchWindow = std::chrono::seconds(10);
  std::vector<std::future<StoreStatus>> pending;
  {
    createRun(*openStore(path), newRun("r"));
    auto store = openStore(path, options);
    for (int index = 0; index < 5; ++index) {
      pending.push_back(store->submit([](Transaction &tx) -> StoreStatus {
        auto appended = tx.appendEvents("r", std::vector{event(EventType::TimerFired, 1, "{}")});
        if (!appended.ok()) {
          return std::move(appended).error();
        }
        return {};
      }));
    }
  }
  for (std::future<StoreStatus> &done : pending) {
    ok(done.get());
  }
  auto reopened = openStore(path);
  CHECK(readRun(*reopened, "r").lastSeq == 5);
}

TEST_CASE("full durability writes and reads like the default") {
  TempDir dir;
  StoreOptions options;
  options.durability = Durability::Full;
  auto store = openStore(dir.file("full.db"), options);
  createRun(*store, newRun("r"));
  std::future<StoreStatus> done = store->submit([](Transaction &tx) -> StoreStatus {
    auto appended = tx.appendEvents("r", std::vector{event(EventType::TimerFired, 1, "{}")});
    if (!appended.ok()) {
      return std::move(appended).error();
    }
    return {};
  });
  // Outside batch mode the write has already happened when submit returns.
  CHECK(done.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  ok(done.get());
  CHECK(readRun(*store, "r").lastSeq == 1);
}
