// Benchmarks 3, 4, 5 and 9 of issue #8, the ones that run activity steps through the engine on
// a store file: one long sequential run per durability mode against a raw SQLite baseline
// that writes the same rows with the same commit pattern (measured from the engine's own run
// first), 1,000 concurrent runs in batch mode, one run fanning out to 1,000 branches, and the
// store's bytes per step.
#include "bench_support.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cmath>
#include <random>

namespace kotoba::bench {

namespace {

runtime::Durability durabilityOf(const Options &options) {
  auto durability = runtime::durabilityFromName(options.mode.empty() ? "normal" : options.mode);
  if (!durability) {
    fail(fmt::format("unknown durability mode '{}': use full, normal or batch", options.mode));
  }
  return *durability;
}

// What one activity step of the engine wrote, measured from a finished run.
struct StepShape {
  double commitsPerStep = 0;
  double eventsPerStep = 0;
  // The event rows of one step, by (step id, location, payload) length, in history order.
  std::vector<std::array<size_t, 3>> eventSizes;
  size_t taskInputBytes = 2;
  size_t runIdBytes = 0;
};

// One engine on a store file with `noop` bound, on a virtual clock.
struct Bench {
  std::unique_ptr<runtime::Store> store;
  runtime::ActivityRegistry activities;
  runtime::VirtualClock clock;
  std::unique_ptr<runtime::Engine> engine;

  Bench(const std::string &path, runtime::Durability durability,
        runtime::EngineOptions options = {}) {
    store = openStore(path, durability);
    bindNoop(activities);
    if (options.owner.empty()) {
      options.owner = "bench";
    }
    engine = std::make_unique<runtime::Engine>(*store, activities, clock, options);
  }
  ~Bench() {
    engine.reset();
    store.reset();
  }

  std::string add(const vm::Module &module) {
    auto hash = engine->addModule(module);
    if (!hash.ok()) {
      fail("cannot add the module: " + hash.error().message);
    }
    return hash.value();
  }

  void finish(const std::string &runId) {
    auto outcome = engine->runToCompletion(runId);
    if (!outcome.ok()) {
      fail("the run failed to run: " + outcome.error().message);
    }
    if (outcome.value().status != runtime::RunStatus::Completed) {
      const auto &error = outcome.value().error;
      fail(fmt::format("the run ended {}: {}", runtime::runStatusName(outcome.value().status),
                       error ? error->type + ": " + error->message : std::string("no error")));
    }
  }

  std::vector<runtime::EventRecord> events(const std::string &runId) {
    auto read =
        store->query([&](const runtime::StoreReader &reader) { return reader.events(runId); });
    if (!read.ok()) {
      fail("cannot read the history: " + read.error().message);
    }
    return read.value();
  }
};

// Runs the raw SQLite baseline: the rows of `steps` engine steps, written with the engine's
// commit pattern on a file of its own, with the mode's synchronous setting. Each step takes
// the task (one commit when the engine claims in a transaction of its own), then appends the
// step's events (stamped with a tx id from a counter row), advances the run row, and swaps
// the finished task for the next one, in one commit. Returns the seconds taken.
double runBaseline(const std::string &path, runtime::Durability durability, int64_t steps,
                   const StepShape &shape) {
  sqlite3 *db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    fail("cannot open the baseline file " + path);
  }
  auto exec = [&](const char *sql) {
    char *message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      fail(fmt::format("baseline sql failed: {}: {}", sql, message ? message : ""));
    }
  };
  exec("PRAGMA journal_mode = WAL");
  exec(durability == runtime::Durability::Normal ? "PRAGMA synchronous = NORMAL"
                                                 : "PRAGMA synchronous = FULL");
  // The engine's tables that a step writes, with the same columns, keys and indexes.
  exec(R"(CREATE TABLE runs (id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL,
            updated_ms INTEGER NOT NULL, last_seq INTEGER NOT NULL) WITHOUT ROWID;
          CREATE TABLE events (id INTEGER PRIMARY KEY, type INTEGER NOT NULL,
            time_ms INTEGER NOT NULL, tx INTEGER NOT NULL, site INTEGER NOT NULL,
            command_id INTEGER, payload TEXT NOT NULL, hash BLOB NOT NULL);
          CREATE TABLE tasks (run_id TEXT NOT NULL, command_id INTEGER NOT NULL,
            step_id TEXT NOT NULL, activity TEXT NOT NULL, input TEXT NOT NULL,
            attempt INTEGER NOT NULL, due_ms INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
            owner TEXT, lease_expiry_ms INTEGER, available_ms INTEGER NOT NULL,
            created_ms INTEGER NOT NULL, PRIMARY KEY (run_id, command_id)) WITHOUT ROWID;
          CREATE INDEX tasks_by_available ON tasks (available_ms);
          CREATE TABLE transaction_counter (only INTEGER PRIMARY KEY, last_tx INTEGER NOT NULL);
          INSERT INTO transaction_counter VALUES (1, 0);)");
  std::string runId(shape.runIdBytes, 'r');
  auto prepare = [&](const char *sql) {
    sqlite3_stmt *statement = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) !=
        SQLITE_OK) {
      fail(fmt::format("baseline prepare failed: {}: {}", sql, sqlite3_errmsg(db)));
    }
    return statement;
  };
  sqlite3_stmt *insertRun = prepare("INSERT INTO runs VALUES (?1, 'RUNNING', 0, 0)");
  sqlite3_stmt *claim = prepare("UPDATE tasks SET owner = 'bench', lease_expiry_ms = ?3, "
                                "available_ms = ?3 WHERE run_id = ?1 AND command_id = ?2");
  sqlite3_stmt *counter =
      prepare("UPDATE transaction_counter SET last_tx = last_tx + 1 RETURNING last_tx");
  sqlite3_stmt *insertEvent =
      prepare("INSERT INTO events VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7)");
  sqlite3_stmt *updateRun =
      prepare("UPDATE runs SET status = 'RUNNING', updated_ms = ?2, last_seq = ?3 WHERE id = ?1");
  sqlite3_stmt *deleteTask = prepare("DELETE FROM tasks WHERE run_id = ?1 AND command_id = ?2");
  sqlite3_stmt *insertTask = prepare(
      "INSERT INTO tasks VALUES (?1, ?2, 'step', 'noop', ?3, 1, ?4, ?5, NULL, NULL, ?4, ?4)");
  auto run = [&](sqlite3_stmt *statement) {
    int status = sqlite3_step(statement);
    if (status != SQLITE_DONE && status != SQLITE_ROW) {
      fail(fmt::format("baseline step failed: {}", sqlite3_errmsg(db)));
    }
    sqlite3_reset(statement);
  };
  auto bindText = [](sqlite3_stmt *statement, int index, const std::string &text) {
    sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
  };
  std::mt19937_64 random(42);
  std::array<uint8_t, 32> hash{};
  auto nextHash = [&] {
    for (auto &byte : hash) {
      byte = static_cast<uint8_t>(random());
    }
  };
  std::string taskInput(shape.taskInputBytes, 'x');
  std::string key(shape.runIdBytes + 12, 'k');
  bool separateClaim = shape.commitsPerStep >= 1.5;

  Stopwatch watch;
  exec("BEGIN IMMEDIATE");
  bindText(insertRun, 1, runId);
  run(insertRun);
  exec("COMMIT");
  int64_t seq = 0;
  // The store's events.id: the run's key (1 here) * 2^32 + seq.
  constexpr int64_t kRunKeyBase = int64_t{1} << 32;
  for (int64_t step = 1; step <= steps; ++step) {
    int64_t commandId = step;
    if (separateClaim) {
      exec("BEGIN IMMEDIATE");
      bindText(claim, 1, runId);
      sqlite3_bind_int64(claim, 2, commandId - 1);
      sqlite3_bind_int64(claim, 3, step * 10);
      run(claim);
      exec("COMMIT");
    }
    exec("BEGIN IMMEDIATE");
    if (!separateClaim) {
      bindText(claim, 1, runId);
      sqlite3_bind_int64(claim, 2, commandId - 1);
      sqlite3_bind_int64(claim, 3, step * 10);
      run(claim);
    }
    int64_t tx = 0;
    if (sqlite3_step(counter) == SQLITE_ROW) {
      tx = sqlite3_column_int64(counter, 0);
    }
    sqlite3_reset(counter);
    // The step id and location are one site, known after the first step. Payloads are
    // written at their whole length (the store leaves a leading command_id out of the text,
    // a few bytes less).
    for (const auto &sizes : shape.eventSizes) {
      ++seq;
      nextHash();
      sqlite3_bind_int64(insertEvent, 1, kRunKeyBase + seq);
      sqlite3_bind_int64(insertEvent, 2, 20 + seq % 3);
      sqlite3_bind_int64(insertEvent, 3, step * 10);
      sqlite3_bind_int64(insertEvent, 4, tx);
      sqlite3_bind_int64(insertEvent, 5, commandId);
      bindText(insertEvent, 6, std::string(sizes[2], 'p'));
      sqlite3_bind_blob(insertEvent, 7, hash.data(), 32, SQLITE_TRANSIENT);
      run(insertEvent);
    }
    bindText(updateRun, 1, runId);
    sqlite3_bind_int64(updateRun, 2, step * 10);
    sqlite3_bind_int64(updateRun, 3, seq);
    run(updateRun);
    bindText(deleteTask, 1, runId);
    sqlite3_bind_int64(deleteTask, 2, commandId - 1);
    run(deleteTask);
    bindText(insertTask, 1, runId);
    sqlite3_bind_int64(insertTask, 2, commandId);
    bindText(insertTask, 3, taskInput);
    sqlite3_bind_int64(insertTask, 4, step * 10);
    bindText(insertTask, 5, key);
    run(insertTask);
    exec("COMMIT");
  }
  double seconds = watch.seconds();
  for (sqlite3_stmt *statement :
       {insertRun, claim, counter, insertEvent, updateRun, deleteTask, insertTask}) {
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return seconds;
}

// The shape of one step, from the middle of a finished run's history: the events between two
// ActivityScheduled events (the completion commit writes started, completed and the next
// scheduled).
StepShape measureShape(const std::vector<runtime::EventRecord> &history, int64_t steps,
                       const runtime::StoreStats &before, const runtime::StoreStats &after,
                       const std::string &runId) {
  StepShape shape;
  shape.commitsPerStep =
      static_cast<double>(after.commits - before.commits) / static_cast<double>(steps);
  shape.eventsPerStep = static_cast<double>(history.size()) / static_cast<double>(steps);
  shape.runIdBytes = runId.size();
  size_t middle = history.size() / 2;
  while (middle < history.size() &&
         history[middle].type != runtime::EventType::ActivityStarted) {
    ++middle;
  }
  for (size_t index = middle; index < history.size(); ++index) {
    const runtime::EventRecord &event = history[index];
    if (index > middle && event.type == runtime::EventType::ActivityStarted) {
      break;
    }
    shape.eventSizes.push_back(
        {event.stepId.size(), event.location.size(), toJson(event.payload).size()});
  }
  return shape;
}

} // namespace

void benchDurable(const Options &options, Report &report) {
  runtime::Durability durability = durabilityOf(options);
  int64_t steps = options.size > 0 ? options.size : (options.smoke ? 30 : 10'000);
  std::shared_ptr<const vm::Module> module = compileText("steps.kotoba", loopWorkflow(false));
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    ScratchDirectory directory("durable");
    StepShape shape;
    {
      Bench bench(directory.file("kotoba.db"), durability);
      std::string hash = bench.add(*module);
      runtime::StoreStats before = bench.store->stats();
      Stopwatch watch;
      std::string runId = startRun(*bench.engine, hash, fmt::format(R"({{"n": {}}})", steps));
      bench.finish(runId);
      double seconds = watch.seconds();
      runtime::StoreStats after = bench.store->stats();
      report.sample("engine_steps_per_second", static_cast<double>(steps) / seconds);
      report.sample("engine_ms_per_step", seconds * 1000.0 / static_cast<double>(steps));
      shape = measureShape(bench.events(runId), steps, before, after, runId);
    }
    double baseline = runBaseline(directory.file("baseline.db"), durability, steps, shape);
    report.sample("baseline_steps_per_second", static_cast<double>(steps) / baseline);
    report.sample("baseline_ms_per_step", baseline * 1000.0 / static_cast<double>(steps));
    if (repetition == 0) {
      report.fact("commits_per_step", shape.commitsPerStep);
      report.fact("events_per_step", shape.eventsPerStep);
      nlohmann::json sizes = nlohmann::json::array();
      for (const auto &[stepBytes, locationBytes, payloadBytes] : shape.eventSizes) {
        sizes.push_back({{"step_id", stepBytes}, {"location", locationBytes},
                         {"payload", payloadBytes}});
      }
      report.fact("event_row_sizes", sizes);
    }
  }
  report.fact("steps", steps);
  report.fact("mode", std::string(runtime::durabilityName(durability)));
}

void benchThroughput(const Options &options, Report &report) {
  runtime::Durability durability =
      options.mode.empty() ? runtime::Durability::Batch : durabilityOf(options);
  int64_t runs = options.size > 0 ? options.size : (options.smoke ? 20 : 1'000);
  constexpr int64_t kStepsPerRun = 10;
  std::shared_ptr<const vm::Module> module = compileText("steps.kotoba", loopWorkflow(false));
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    ScratchDirectory directory("throughput");
    Bench bench(directory.file("kotoba.db"), durability);
    std::string hash = bench.add(*module);
    Stopwatch starting;
    for (int64_t run = 0; run < runs; ++run) {
      (void)startRun(*bench.engine, hash, fmt::format(R"({{"n": {}}})", kStepsPerRun));
    }
    double startSeconds = starting.seconds();
    runtime::StoreStats before = bench.store->stats();
    Stopwatch watch;
    auto idle = bench.engine->runUntilIdle();
    double seconds = watch.seconds();
    if (!idle.ok()) {
      fail("runUntilIdle failed: " + idle.error().message);
    }
    runtime::StoreStats after = bench.store->stats();
    auto completed = bench.store->query([&](const runtime::StoreReader &reader) {
      runtime::RunQuery query;
      query.status = runtime::RunStatus::Completed;
      return reader.runs(query);
    });
    if (!completed.ok() || static_cast<int64_t>(completed.value().size()) != runs) {
      fail("not every run completed");
    }
    double steps = static_cast<double>(runs * kStepsPerRun);
    report.sample("steps_per_second", steps / seconds);
    report.sample("starts_per_second", static_cast<double>(runs) / startSeconds);
    report.sample("seconds", seconds);
    report.sample("writes_per_commit", static_cast<double>(after.writes - before.writes) /
                                           static_cast<double>(after.commits - before.commits));
  }
  report.fact("runs", runs);
  report.fact("steps_per_run", kStepsPerRun);
  report.fact("mode", std::string(runtime::durabilityName(durability)));
}

void benchFanOut(const Options &options, Report &report) {
  runtime::Durability durability = durabilityOf(options);
  int64_t branches = options.size > 0 ? options.size : (options.smoke ? 20 : 1'000);
  std::string text = R"({ workflow: { id: "fan", strategy: { op: "parallel", branches: [)";
  for (int64_t branch = 0; branch < branches; ++branch) {
    text += fmt::format(R"({}{{ op: "activity", activity_ref: "noop", id: "b{}" }})",
                        branch == 0 ? "" : ",\n", branch);
  }
  text += "] } } }";
  std::shared_ptr<const vm::Module> module = compileText("fan.kotoba", text);
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    ScratchDirectory directory("fanout");
    Bench bench(directory.file("kotoba.db"), durability);
    std::string hash = bench.add(*module);
    Stopwatch watch;
    std::string runId = startRun(*bench.engine, hash, "{}");
    bench.finish(runId);
    double seconds = watch.seconds();
    report.sample("seconds", seconds);
    report.sample("steps_per_second", static_cast<double>(branches) / seconds);
    if (repetition == 0) {
      report.fact("events", bench.events(runId).size());
    }
  }
  report.fact("branches", branches);
  report.fact("mode", std::string(runtime::durabilityName(durability)));
}

namespace {

// The file's size once its WAL is checkpointed into it, with the pages in use and free.
struct FileSize {
  int64_t bytes = 0;
  int64_t usedBytes = 0;
  std::map<std::string, int64_t> tableBytes;
};

FileSize settledSize(const std::string &path) {
  sqlite3 *db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    fail("cannot open " + path);
  }
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  FileSize size;
  auto integer = [&](const char *sql) {
    sqlite3_stmt *statement = nullptr;
    int64_t value = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      value = sqlite3_column_int64(statement, 0);
    }
    sqlite3_finalize(statement);
    return value;
  };
  int64_t pageSize = integer("PRAGMA page_size");
  size.usedBytes = (integer("PRAGMA page_count") - integer("PRAGMA freelist_count")) * pageSize;
  // Bytes per table and index, when this SQLite has the dbstat table.
  sqlite3_stmt *statement = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name", -1,
                         &statement, nullptr) == SQLITE_OK) {
    while (sqlite3_step(statement) == SQLITE_ROW) {
      size.tableBytes[reinterpret_cast<const char *>(sqlite3_column_text(statement, 0))] =
          sqlite3_column_int64(statement, 1);
    }
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  size.bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  return size;
}

} // namespace

void benchStorage(const Options &options, Report &report) {
  int64_t steps = options.size > 0 ? options.size : (options.smoke ? 30 : 10'000);
  std::shared_ptr<const vm::Module> module = compileText("steps.kotoba", loopWorkflow(false));
  ScratchDirectory directory("storage");
  std::map<int64_t, FileSize> sizes;
  for (int64_t count : {int64_t{0}, steps}) {
    std::string path = directory.file(fmt::format("kotoba-{}.db", count));
    {
      Bench bench(path, runtime::Durability::Normal);
      std::string hash = bench.add(*module);
      bench.finish(startRun(*bench.engine, hash, fmt::format(R"({{"n": {}}})", count)));
    }
    sizes[count] = settledSize(path);
  }
  double perStep = static_cast<double>(sizes[steps].bytes - sizes[0].bytes) /
                   static_cast<double>(steps);
  double usedPerStep = static_cast<double>(sizes[steps].usedBytes - sizes[0].usedBytes) /
                       static_cast<double>(steps);
  report.sample("file_bytes_per_step", perStep);
  report.sample("used_bytes_per_step", usedPerStep);
  nlohmann::json tables = nlohmann::json::object();
  for (const auto &[name, bytes] : sizes[steps].tableBytes) {
    int64_t empty = sizes[0].tableBytes.contains(name) ? sizes[0].tableBytes[name] : 0;
    tables[name] = static_cast<double>(bytes - empty) / static_cast<double>(steps);
  }
  report.fact("bytes_per_step_by_table", tables);
  report.fact("steps", steps);
  report.fact("file_bytes", sizes[steps].bytes);
}

} // namespace kotoba::bench
