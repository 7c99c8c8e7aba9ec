// Benchmarks 6, 7 and 8 of issue #8, the ones about long histories and many idle runs:
// replaying a 100,000-event history, resuming runs parked after 1k, 10k and 100k events
// (issue #5: the engine restores the latest checkpoint and replays only the events after
// it; the same runs without checkpoints show what a full replay would cost), and the
// resident memory of 10,000 runs parked on timers and signals.
#include "bench_support.h"

#include "kotoba/runtime/checkpoint.h"
#include "kotoba/runtime/replay.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

namespace kotoba::bench {

namespace {

// Loop iterations that make a history of at least `events` events (3 per iteration, plus
// the start and the end).
int64_t iterationsFor(int64_t events) {
  return std::max<int64_t>(1, (events - 2 + 2) / 3);
}

std::string sizeLabel(int64_t events) {
  return events >= 1000 && events % 1000 == 0 ? fmt::format("{}k", events / 1000)
                                              : std::to_string(events);
}

runtime::RunRecord runRecord(runtime::Store &store, const std::string &runId) {
  auto record = store.query([&](const runtime::StoreReader &reader) { return reader.run(runId); });
  if (!record.ok() || !record.value()) {
    fail("the run " + runId + " is not in the store");
  }
  return *record.value();
}

// Copies a closed store; the copy is flushed to disk before it returns, so that writing
// back a large copy does not run in the background of the measurement that follows.
void copyStore(const std::string &from, const std::string &to) {
  for (const char *suffix : {"", "-wal"}) {
    std::filesystem::remove(to + suffix);
    if (std::filesystem::exists(from + suffix)) {
      std::filesystem::copy_file(from + suffix, to + suffix);
      int descriptor = ::open((to + suffix).c_str(), O_RDONLY);
      if (descriptor >= 0) {
        (void)::fsync(descriptor);
        ::close(descriptor);
      }
    }
  }
}

runtime::EngineOptions ownedBy(const std::string &owner) {
  runtime::EngineOptions options;
  options.owner = owner;
  return options;
}

void dropCheckpoints(const std::string &path) {
  sqlite3 *db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "DELETE FROM checkpoints", nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail("cannot drop the checkpoints of " + path);
  }
  sqlite3_close(db);
}

// Signals the parked run and drives it to its end. A function of its own so that a profiler
// can collect this part alone (callgrind --toggle-collect='*resumeParked*').
[[gnu::noinline]] void resumeParked(runtime::Engine &engine, const std::string &runId) {
  auto signalled = engine.signal(runId, "go", Value(true));
  auto outcome = engine.runToCompletion(runId);
  if (!signalled.ok() || !outcome.ok() ||
      outcome.value().status != runtime::RunStatus::Completed) {
    fail("the parked run did not resume to its end");
  }
}

} // namespace

void benchReplay(const Options &options, Report &report) {
  int64_t wanted = options.size > 0 ? options.size : (options.smoke ? 300 : 100'000);
  std::shared_ptr<const vm::Module> module = compileText("steps.kotoba", loopWorkflow(false));
  auto store = runtime::Store::openInMemory();
  if (!store.ok()) {
    fail("cannot open an in-memory store");
  }
  runtime::ActivityRegistry activities;
  bindNoop(activities);
  runtime::VirtualClock clock;
  runtime::EngineOptions engineOptions;
  engineOptions.owner = "bench";
  engineOptions.checkpointEvery = 0; // only the history matters here
  std::string runId;
  Stopwatch generating;
  {
    runtime::Engine engine(*store.value(), activities, clock, engineOptions);
    auto hash = engine.addModule(*module);
    if (!hash.ok()) {
      fail("cannot add the module");
    }
    runId = startRun(engine, hash.value(),
                     fmt::format(R"({{"n": {}}})", iterationsFor(wanted)));
    auto outcome = engine.runToCompletion(runId);
    if (!outcome.ok() || outcome.value().status != runtime::RunStatus::Completed) {
      fail("the history run did not complete");
    }
  }
  report.fact("generate_seconds", generating.seconds());
  runtime::RunRecord record = runRecord(*store.value(), runId);
  const vm::Workflow &workflow = module->workflows.front();
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    Stopwatch loading;
    auto events = store.value()->query(
        [&](const runtime::StoreReader &reader) { return reader.events(runId); });
    if (!events.ok()) {
      fail("cannot read the history");
    }
    double loadSeconds = loading.seconds();
    Stopwatch watch;
    runtime::Replay replay(module, 0, runtime::runInfoOf(record, workflow), record.inputs);
    bool matched = replay.applyAll(events.value());
    double seconds = watch.seconds();
    if (!matched || replay.lastSeq() != static_cast<int64_t>(events.value().size()) ||
        replay.machine().status() != vm::RunStatus::Completed) {
      fail("the history does not replay");
    }
    double count = static_cast<double>(events.value().size());
    report.sample("events_per_second", count / seconds);
    report.sample("replay_seconds", seconds);
    report.sample("read_seconds", loadSeconds);
    report.sample("events_per_second_with_read", count / (seconds + loadSeconds));
    report.fact("events", events.value().size());
  }
}

void benchResume(const Options &options, Report &report) {
  std::vector<int64_t> sizes = options.size > 0 ? std::vector<int64_t>{options.size}
                               : options.smoke  ? std::vector<int64_t>{100, 1'000}
                                                : std::vector<int64_t>{1'000, 10'000, 100'000};
  std::shared_ptr<const vm::Module> module = compileText("steps.kotoba", loopWorkflow(true));
  ScratchDirectory directory("resume");
  for (int64_t size : sizes) {
    std::string parked = directory.file(fmt::format("parked-{}.db", size));
    std::string runId;
    int64_t parkedAtMs = 0;
    {
      auto store = openStore(parked, runtime::Durability::Normal);
      runtime::ActivityRegistry activities;
      bindNoop(activities);
      runtime::VirtualClock clock;
      runtime::Engine engine(*store, activities, clock, ownedBy("maker"));
      auto hash = engine.addModule(*module);
      if (!hash.ok()) {
        fail("cannot add the module");
      }
      runId = startRun(engine, hash.value(), fmt::format(R"({{"n": {}}})", iterationsFor(size)));
      auto outcome = engine.runToCompletion(runId);
      if (!outcome.ok() || outcome.value().status != runtime::RunStatus::Running) {
        fail("the run did not park on its signal");
      }
      parkedAtMs = clock.nowMs();
    }
    std::string label = sizeLabel(size);
    // Without checkpoints a load replays the whole history: slow for long ones, so fewer.
    for (bool checkpoints : {true, false}) {
      int repetitions = checkpoints || size < 100'000 ? options.repetitions
                                                      : std::min(options.repetitions, 2);
      for (int repetition = 0; repetition < repetitions; ++repetition) {
        std::string copy = directory.file("resume.db");
        copyStore(parked, copy);
        if (!checkpoints) {
          dropCheckpoints(copy);
        }
        auto store = openStore(copy, runtime::Durability::Normal);
        runtime::RunRecord record = runRecord(*store, runId);
        // Rebuilding alone, as the engine's load does it (no writes).
        Stopwatch rebuilding;
        std::optional<Result<runtime::RebuiltRun>> rebuilt;
        runtime::StoreStatus read =
            store->read([&](const runtime::StoreReader &reader) -> runtime::StoreStatus {
          rebuilt.emplace(runtime::rebuildRun(reader, record, module));
          return {};
        });
        double rebuildSeconds = rebuilding.seconds();
        if (!read.ok() || !rebuilt->ok() || rebuilt->value().replay.mismatch()) {
          fail("the parked run does not rebuild");
        }
        if (repetition == 0) {
          report.fact(fmt::format("events_replayed_{}{}", label, checkpoints ? "" : "_full"),
                      rebuilt->value().eventsReplayed);
          report.fact(fmt::format("history_{}", label), record.lastSeq);
        }
        // A fresh engine, after the first one's lease has lapsed: signal the run and drive
        // it to its end (load, replay, deliver, record, complete).
        runtime::ActivityRegistry activities;
        bindNoop(activities);
        runtime::VirtualClock clock(parkedAtMs + 3'600'000);
        runtime::Engine engine(*store, activities, clock, ownedBy("resumer"));
        Stopwatch resuming;
        resumeParked(engine, runId);
        double resumeSeconds = resuming.seconds();
        std::string suffix = checkpoints ? "" : "_no_checkpoints";
        report.sample(fmt::format("resume_ms_{}{}", label, suffix), resumeSeconds * 1000.0);
        report.sample(fmt::format("rebuild_ms_{}{}", label, suffix), rebuildSeconds * 1000.0);
      }
    }
  }
}

void benchMemory(const Options &options, Report &report) {
  int64_t runs = options.size > 0 ? options.size : (options.smoke ? 200 : 10'000);
  std::shared_ptr<const vm::Module> module = compileText("parked.kotoba", R"({ workflow: {
    id: "parked", strategy: { op: "parallel", branches: [
      { op: "wait", timer: "P1D", id: "nap" },
      { op: "wait", signal: "go", id: "go" } ] } } })");
  ScratchDirectory directory("memory");
  auto store = openStore(directory.file("kotoba.db"), runtime::Durability::Normal);
  runtime::ActivityRegistry activities;
  runtime::RealClock clock;
  runtime::Engine engine(*store, activities, clock, ownedBy("bench"));
  auto hash = engine.addModule(*module);
  if (!hash.ok()) {
    fail("cannot add the module");
  }
  int64_t before = currentRssKb();
  Stopwatch watch;
  std::string last;
  for (int64_t run = 0; run < runs; ++run) {
    last = startRun(engine, hash.value(), "{}");
  }
  // Step until nothing is ready: every run loaded, its timer armed and its wait recorded.
  for (int idle = 0; idle < 2;) {
    auto stepped = engine.step();
    if (!stepped.ok()) {
      fail("step failed: " + stepped.error().message);
    }
    idle = stepped.value() ? 0 : idle + 1;
  }
  double seconds = watch.seconds();
  auto timers =
      store->query([&](const runtime::StoreReader &reader) { return reader.timersOf(last); });
  if (!timers.ok() || timers.value().size() != 1) {
    fail("the last run is not parked on its timer");
  }
  int64_t peak = peakRssKb();
  int64_t now = currentRssKb();
  report.sample("peak_rss_mb", static_cast<double>(peak) / 1024.0);
  report.sample("rss_mb", static_cast<double>(now) / 1024.0);
  report.sample("kb_per_run", static_cast<double>(now - before) / static_cast<double>(runs));
  report.sample("park_seconds", seconds);
  report.fact("runs", runs);
  report.fact("rss_before_runs_mb", static_cast<double>(before) / 1024.0);
}

} // namespace kotoba::bench
