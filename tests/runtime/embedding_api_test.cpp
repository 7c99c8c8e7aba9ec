// The embedding API (kotoba/kotoba.h) as a host program uses it: every call, through the
// public header only, with the errors each one documents. The workflows are written to
// files in a temporary folder, as a host's would be.
#include <kotoba/kotoba.h>

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace kotoba;
using namespace std::chrono_literals;

// A folder of its own per test, removed afterwards.
struct Folder {
  std::filesystem::path path;

  Folder() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("kotoba-embedding-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~Folder() { std::filesystem::remove_all(path); }

  [[nodiscard]] std::string file(const std::string &name, const std::string &text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
  [[nodiscard]] std::string operator/(const std::string &name) const {
    return (path / name).string();
  }
};

// The message of a failed result, for REQUIRE_MESSAGE (which may print it on success too).
template <typename T> std::string failureText(const Result<T> &result) {
  return result.ok() ? std::string() : result.error().message;
}

Value json(const std::string &text) {
  Result<Value> parsed = parseJson(text);
  REQUIRE_MESSAGE(parsed.ok(), text);
  return parsed.value();
}

// A greeting after a day's timer: a host activity, a host predicate, a durable timer.
constexpr const char *kGreeting = R"({
  workflow: { id: "greet", inputs: [{ name: "name", type: "string", required: true }],
    outputs: [{ name: "text", type: "string" }],
    output_mapping: { text: $.results.say.text },
    strategy: { op: "seq", strategies: [
      { op: "wait", timer: "P1D" },
      { op: "decision", conditions: [
          { condition: "formal", branch: { op: "set", vars: { hello: "Dear" } } } ],
        default_branch: { op: "set", vars: { hello: "Hi" } } },
      { op: "activity", activity_ref: "say", id: "say",
        input_mapping: { hello: $.vars.hello, name: $.inputs.name } } ] } } })";

// Two signals in a row, then done.
constexpr const char *kSignals = R"({
  workflow: { id: "signals", outputs: [{ name: "first" }, { name: "second" }],
    output_mapping: { first: $.results.one, second: $.results.two },
    strategy: { op: "seq", strategies: [
      { op: "wait", signal: "go", id: "one" }, { op: "wait", signal: "go", id: "two" } ] } } })";

// Waits for a published event about its document.
constexpr const char *kReview = R"({
  workflow: { id: "review", inputs: [{ name: "doc" }], outputs: [{ name: "review" }],
    output_mapping: { review: $.events.reviewed },
    strategy: { op: "wait", event: "reviewed", filter: { doc: $.inputs.doc } } } })";

Result<Value> say(const Value &input, ActivityContext &) {
  const Object &fields = input.asObject();
  Object result;
  result.set("text",
             Value(fields.find("hello")->asString() + " " + fields.find("name")->asString()));
  return Value(std::move(result));
}

// An in-memory host with a virtual clock, the greeting's activity and predicate, and the
// module of `source` added; `hash` is its module hash.
struct Fixture {
  Folder folder;
  std::unique_ptr<Host> host;
  std::string hash;

  explicit Fixture(const char *source = kGreeting, HostOptions options = {}) {
    if (options.storePath == ":memory:") {
      options.clock = ClockKind::Virtual;
    }
    Result<std::unique_ptr<Host>> opened = Host::open(options);
    REQUIRE_MESSAGE(opened.ok(), failureText(opened));
    host = std::move(opened).value();
    REQUIRE(host->registerActivity("say", say).ok());
    REQUIRE(host->registerPredicate("formal", [](const Value &) { return true; }).ok());
    Result<vm::Module> module = compileFile(folder.file("workflow.kotoba", source));
    REQUIRE_MESSAGE(module.ok(), failureText(module));
    Result<std::string> added = host->addModule(module.value());
    REQUIRE(added.ok());
    hash = added.value();
  }

  [[nodiscard]] std::string start(const std::string &inputs = R"({"name": "Ann"})") {
    Result<std::string> runId = host->start(hash, json(inputs));
    REQUIRE_MESSAGE(runId.ok(), failureText(runId));
    return runId.value();
  }
};

} // namespace

TEST_CASE("compileFile compiles a source and reports what is wrong with a broken one") {
  Folder folder;
  Result<vm::Module> module = compileFile(folder.file("ok.kotoba", kGreeting));
  REQUIRE(module.ok());
  CHECK(module.value().workflows.front().id == "greet");

  std::ostringstream diagnostics;
  Result<vm::Module> broken =
      compileFile(folder.file("broken.kotoba", R"({ workflow: { id: "w" } })"), &diagnostics);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().type == host_errors::CompileError);
  CHECK(broken.error().message.find("broken.kotoba") != std::string::npos);
  CHECK(broken.error().details.asObject().find("errors")->asInt() >= 1);
  CHECK(diagnostics.str().find("error") != std::string::npos);

  Result<vm::Module> missing = compileFile(folder / "missing.kotoba");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().type == host_errors::UnreadableFile);
  CHECK(compileFile(folder.path.string()).error().type == host_errors::UnreadableFile);
}

TEST_CASE("a module saved as .kbc loads back with the same hash; a damaged one is refused") {
  Folder folder;
  Result<vm::Module> module = compileFile(folder.file("ok.kotoba", kGreeting));
  REQUIRE(module.ok());
  Result<std::string> saved = saveModuleFile(module.value(), folder / "greet.kbc");
  REQUIRE(saved.ok());

  Result<vm::Module> loaded = loadWorkflowFile(folder / "greet.kbc");
  REQUIRE(loaded.ok());
  Result<std::unique_ptr<Host>> host = Host::open();
  REQUIRE(host.ok());
  Result<std::string> added = host.value()->addModule(loaded.value());
  REQUIRE(added.ok());
  CHECK(added.value() == saved.value());

  std::string bytes;
  {
    std::ifstream in(folder / "greet.kbc", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
  std::ofstream(folder / "damaged.kbc", std::ios::binary) << bytes;
  Result<vm::Module> damaged = loadModuleFile(folder / "damaged.kbc");
  REQUIRE_FALSE(damaged.ok());
  CHECK(damaged.error().type == host_errors::InvalidModule);
  CHECK(damaged.error().details.isArray());
  CHECK(loadModuleFile(folder / "none.kbc").error().type == host_errors::UnreadableFile);
  CHECK(saveModuleFile(module.value(), folder / "no-such-folder/x.kbc").error().type ==
        host_errors::UnwritableFile);
}

TEST_CASE("Host::open creates a store file, reopens it, and refuses a file that is not one") {
  Folder folder;
  std::string runId;
  {
    HostOptions options;
    options.storePath = folder / "kotoba.db";
    options.clock = ClockKind::Virtual;
    Fixture fixture(kGreeting, options);
    runId = fixture.start();
    REQUIRE(fixture.host->wait(runId).ok());
  }
  CHECK(std::filesystem::exists(folder / "kotoba.db"));
  HostOptions reopen;
  reopen.storePath = folder / "kotoba.db";
  Result<std::unique_ptr<Host>> again = Host::open(reopen);
  REQUIRE(again.ok());
  Result<RunOutcome> outcome = again.value()->outcome(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);

  HostOptions notAStore;
  notAStore.storePath = folder.file("notes.txt", "these are not the tables you are looking for");
  Result<std::unique_ptr<Host>> refused = Host::open(notAStore);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().type == runtime::engine_errors::StoreFailure);
  HostOptions nowhere;
  nowhere.storePath = folder / "no-such-folder/kotoba.db";
  CHECK(Host::open(nowhere).error().type == runtime::engine_errors::StoreFailure);
}

TEST_CASE("each activity, function and predicate name is registered once") {
  Fixture fixture;
  Result<bool> again = fixture.host->registerActivity("say", say);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().type == host_errors::AlreadyRegistered);
  CHECK(again.error().message.find("'say'") != std::string::npos);
  CHECK(fixture.host->registerActivity("", say).error().type ==
        runtime::activity_errors::InvalidImplementation);

  auto yes = [](const Value &) { return true; };
  CHECK(fixture.host->registerPredicate("formal", yes).error().type ==
        host_errors::AlreadyRegistered);
  REQUIRE(fixture.host->registerFunction("score", say).ok());
  CHECK(fixture.host->registerFunction("score", say).error().type ==
        host_errors::AlreadyRegistered);
}

TEST_CASE("a function registered by name serves a declaration that names it") {
  Fixture fixture(R"({
    activities: [{ name: "greet_fn", implementation: { type: "function", function_name: "g" } }],
    workflow: { id: "w", outputs: [{ name: "text" }], output_mapping: { text: $.results.a.text },
      strategy: { op: "activity", activity_ref: "greet_fn", id: "a",
                  input_mapping: { hello: "Yo", name: "Cy" } } } })");
  REQUIRE(fixture.host->registerFunction("g", say).ok());
  std::string runId = fixture.start("{}");
  Result<RunOutcome> outcome = fixture.host->wait(runId);
  REQUIRE(outcome.ok());
  CHECK(toJson(outcome.value().outputs) == R"({"text":"Yo Cy"})");
}

TEST_CASE("start refuses what cannot run, and writes nothing when it does") {
  Fixture fixture;
  Result<std::string> unknownModule = fixture.host->start("00ff", json(R"({"name": "A"})"));
  CHECK(unknownModule.error().type == "ModuleMissing");

  StartOptions otherWorkflow;
  otherWorkflow.workflowId = "nope";
  CHECK(fixture.host->start(fixture.hash, json(R"({"name": "A"})"), otherWorkflow).error().type ==
        runtime::engine_errors::UnknownWorkflow);

  Result<std::string> badInputs = fixture.host->start(fixture.hash, json(R"({"name": 5, "x": 1})"));
  REQUIRE_FALSE(badInputs.ok());
  CHECK(badInputs.error().type == error_types::InputValidationError);
  CHECK(badInputs.error().details.asArray().size() == 2);

  Fixture unbound(R"({ workflow: { id: "w",
    strategy: { op: "seq", strategies: [{ op: "activity", activity_ref: "charge" },
      { op: "decision", conditions: [{ condition: "rich", branch: { op: "set", vars: {} } }] }
    ] } } })");
  Result<std::string> refused = unbound.host->start(unbound.hash, json("{}"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().type == runtime::engine_errors::UnboundActivities);
  CHECK(toJson(refused.error().details) == R"(["charge","predicate rich"])");

  StartOptions named;
  named.runId = "order-1";
  REQUIRE(fixture.host->start(fixture.hash, json(R"({"name": "A"})"), named).ok());
  CHECK(fixture.host->start(fixture.hash, json(R"({"name": "B"})"), named).error().type ==
        runtime::engine_errors::StoreFailure);

  Result<std::vector<RunRecord>> runs = fixture.host->runs();
  REQUIRE(runs.ok());
  CHECK(runs.value().size() == 1); // only order-1: the refused starts wrote nothing
}

TEST_CASE("wait drives the engine on the caller's thread, through timers of a virtual clock") {
  Fixture fixture;
  std::string runId = fixture.start();
  Result<RunOutcome> outcome = fixture.host->wait(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"text":"Dear Ann"})");
  CHECK(fixture.host->wait("nobody").error().type == runtime::engine_errors::RunNotFound);
}

TEST_CASE("several threads waiting without a driving loop take turns driving") {
  Fixture fixture;
  constexpr int kWaiters = 4;
  std::vector<std::string> runIds;
  for (int waiter = 0; waiter < kWaiters; ++waiter) {
    runIds.push_back(fixture.start(R"({"name": "N)" + std::to_string(waiter) + "\"}"));
  }
  std::vector<std::string> outputs(kWaiters);
  std::vector<std::thread> threads;
  for (int waiter = 0; waiter < kWaiters; ++waiter) {
    threads.emplace_back([&, waiter] {
      Result<RunOutcome> outcome = fixture.host->wait(runIds[waiter], 20s);
      outputs[waiter] = outcome.ok() ? toJson(outcome.value().outputs) : outcome.error().message;
    });
  }
  for (std::thread &thread : threads) {
    thread.join();
  }
  for (int waiter = 0; waiter < kWaiters; ++waiter) {
    CHECK(outputs[waiter] == R"({"text":"Dear N)" + std::to_string(waiter) + "\"}");
  }
}

TEST_CASE("a host loop steps the engine itself until the run is done") {
  Fixture fixture(kSignals);
  StartOptions options;
  options.signals = {{"go", Value(1)}, {"go", Value(2)}};
  Result<std::string> runId = fixture.host->start(fixture.hash, json("{}"), options);
  REQUIRE(runId.ok());
  RunStatus status = RunStatus::Running;
  for (int turn = 0; turn < 1000 && status == RunStatus::Running; ++turn) {
    Result<bool> stepped = fixture.host->step();
    REQUIRE(stepped.ok());
    status = fixture.host->outcome(runId.value()).value().status;
  }
  CHECK(status == RunStatus::Completed);
  CHECK(toJson(fixture.host->outcome(runId.value()).value().outputs) ==
        R"({"first":1,"second":2})");
  CHECK_FALSE(fixture.host->step().value()); // nothing left to do
}

TEST_CASE("signals reach a waiting run; a finished or unknown run refuses them") {
  Fixture fixture(kSignals);
  std::string runId = fixture.start("{}");
  Result<RunOutcome> waiting = fixture.host->wait(runId);
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == RunStatus::Running); // virtual clock: only a signal can help
  REQUIRE(fixture.host->signal(runId, "go", Value("a")).ok());
  REQUIRE(fixture.host->signal(runId, "go", Value("b")).ok());
  Result<RunOutcome> done = fixture.host->wait(runId);
  REQUIRE(done.ok());
  CHECK(toJson(done.value().outputs) == R"({"first":"a","second":"b"})");

  CHECK(fixture.host->signal(runId, "go", Value()).error().type ==
        runtime::engine_errors::RunFinished);
  CHECK(fixture.host->signal("nobody", "go", Value()).error().type ==
        runtime::engine_errors::RunNotFound);
}

TEST_CASE("names no workflow can wait for are refused at the edge, and nothing is written") {
  Fixture fixture(kSignals);
  std::string runId = fixture.start("{}");
  for (const std::string &name : {std::string(), std::string("go\xff"), std::string("go\n")}) {
    CAPTURE(name);
    CHECK(fixture.host->signal(runId, name, Value("x")).error().type ==
          error_types::InvalidPayload);
    CHECK(fixture.host->emit(name, Value("x")).error().type == error_types::InvalidPayload);
  }
  CHECK(fixture.host->terminate(runId, "bad \xff reason").error().type ==
        error_types::InvalidPayload);
  StartOptions withBadSignal;
  withBadSignal.signals.emplace_back("\xc3", Value("x"));
  CHECK(fixture.host->start(fixture.hash, json("{}"), withBadSignal).error().type ==
        error_types::InvalidPayload);
  CHECK(fixture.host->runs().value().size() == 1);

  // None of the refused signals was buffered: the run takes the next two good ones.
  REQUIRE(fixture.host->signal(runId, "go", Value("a")).ok());
  REQUIRE(fixture.host->signal(runId, "go", Value("b")).ok());
  Result<RunOutcome> done = fixture.host->wait(runId);
  REQUIRE(done.ok());
  CHECK(toJson(done.value().outputs) == R"({"first":"a","second":"b"})");
}

TEST_CASE("an emitted event reaches the run whose filter it matches") {
  Fixture fixture(kReview);
  std::string first = fixture.start(R"({"doc": "d1"})");
  std::string second = fixture.start(R"({"doc": "d2"})");
  Result<int64_t> published = fixture.host->emit("reviewed", json(R"({"doc": "d2", "ok": 1})"));
  REQUIRE(published.ok());
  Result<RunOutcome> outcome = fixture.host->wait(second);
  REQUIRE(outcome.ok());
  CHECK(toJson(outcome.value().outputs) == R"({"review":{"doc":"d2","ok":1}})");
  CHECK(fixture.host->outcome(first).value().status == RunStatus::Running);
  std::string huge(3 * 1024 * 1024, 'x');
  CHECK(fixture.host->emit("reviewed", Value(huge)).error().type == error_types::PayloadTooLarge);
}

TEST_CASE("cancel and terminate end runs; both refuse a run that has ended") {
  Fixture fixture(kSignals);
  std::string cancelled = fixture.start("{}");
  std::string terminated = fixture.start("{}");
  REQUIRE(fixture.host->runUntilIdle().ok());
  REQUIRE(fixture.host->cancel(cancelled).ok());
  REQUIRE(fixture.host->terminate(terminated, "operator said so").ok());
  CHECK(fixture.host->wait(cancelled).value().status == RunStatus::Cancelled);
  CHECK(fixture.host->wait(terminated).value().status == RunStatus::Terminated);
  CHECK(fixture.host->cancel(cancelled).error().type == runtime::engine_errors::RunFinished);
  CHECK(fixture.host->terminate(terminated, "again").error().type ==
        runtime::engine_errors::RunFinished);
  CHECK(fixture.host->cancel("nobody").error().type == runtime::engine_errors::RunNotFound);
  CHECK(fixture.host->terminate("nobody", "x").error().type == runtime::engine_errors::RunNotFound);
}

TEST_CASE("the Host's thread drives runs that other threads start, signal and wait for") {
  Fixture fixture(kSignals);
  REQUIRE(fixture.host->startThread().ok());
  CHECK(fixture.host->driving());
  CHECK(fixture.host->startThread().error().type == host_errors::AlreadyDriving);
  CHECK(fixture.host->runForever().error().type == host_errors::AlreadyDriving);
  CHECK(fixture.host->runUntilIdle().error().type == host_errors::AlreadyDriving);
  CHECK(fixture.host->step().ok()); // redundant next to the loop, but harmless

  constexpr int kThreads = 4;
  constexpr int kRunsEach = 3;
  std::vector<std::string> outputs(kThreads * kRunsEach);
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      for (int run = 0; run < kRunsEach; ++run) {
        Result<std::string> runId = fixture.host->start(fixture.hash, Value(Object()));
        if (!runId.ok()) {
          continue;
        }
        (void)fixture.host->signal(runId.value(), "go", Value(thread));
        (void)fixture.host->signal(runId.value(), "go", Value(run));
        Result<RunOutcome> outcome = fixture.host->wait(runId.value(), 20s);
        if (outcome.ok()) {
          outputs[thread * kRunsEach + run] = toJson(outcome.value().outputs);
        }
      }
    });
  }
  for (std::thread &thread : threads) {
    thread.join();
  }
  for (int thread = 0; thread < kThreads; ++thread) {
    for (int run = 0; run < kRunsEach; ++run) {
      CHECK(outputs[thread * kRunsEach + run] ==
            "{\"first\":" + std::to_string(thread) + ",\"second\":" + std::to_string(run) + "}");
    }
  }
  fixture.host->stop();
  CHECK_FALSE(fixture.host->driving());
  CHECK_FALSE(fixture.host->threadError());

  // Stopped is not finished: the thread can be started again.
  std::string later = fixture.start("{}");
  REQUIRE(fixture.host->startThread().ok());
  REQUIRE(fixture.host->signal(later, "go", Value(1)).ok());
  REQUIRE(fixture.host->signal(later, "go", Value(2)).ok());
  CHECK(fixture.host->wait(later, 20s).value().status == RunStatus::Completed);
}

TEST_CASE("runForever drives on the host's own thread until stop() comes from another") {
  Fixture fixture;
  std::string runId = fixture.start();
  std::atomic<bool> returned{false};
  Result<bool> result = false;
  std::thread engineThread([&] {
    result = fixture.host->runForever();
    returned = true;
  });
  Result<RunOutcome> outcome = fixture.host->wait(runId, 20s);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK_FALSE(returned.load()); // it keeps serving after the run is done
  fixture.host->stop();
  engineThread.join();
  REQUIRE(result.ok());
  CHECK(result.value());
}

TEST_CASE("a stop() that comes before runForever starts ends it at once, and only once") {
  Fixture fixture;
  fixture.host->stop();
  Result<bool> stopped = fixture.host->runForever();
  REQUIRE(stopped.ok());
  CHECK(stopped.value());
  CHECK_FALSE(fixture.host->driving());

  // The stop was used up: the Host's thread runs until the next one.
  fixture.host->stop();
  REQUIRE(fixture.host->startThread().ok());
  std::string runId = fixture.start();
  CHECK(fixture.host->wait(runId, 20s).value().status == RunStatus::Completed);
  CHECK(fixture.host->driving());
  fixture.host->stop();
  CHECK_FALSE(fixture.host->driving());
}

TEST_CASE("a store failure ends the Host's thread and threadError() says why") {
  Folder folder;
  HostOptions options;
  options.storePath = folder / "kotoba.db";
  options.clock = ClockKind::Virtual;
  options.checkpointEvery = 0; // so that loading the run reads its whole history
  {
    Fixture fixture(kSignals, options);
    (void)fixture.start("{}");
    REQUIRE(fixture.host->runUntilIdle().ok());
  }
  // Damage the history behind the store's back, as a failing disk might.
  sqlite3 *database = nullptr;
  REQUIRE(sqlite3_open(options.storePath.c_str(), &database) == SQLITE_OK);
  CHECK(sqlite3_exec(database, "UPDATE events SET payload = '{not json'", nullptr, nullptr,
                     nullptr) == SQLITE_OK);
  sqlite3_close(database);

  Result<std::unique_ptr<Host>> reopened = Host::open(options);
  REQUIRE(reopened.ok());
  Host &host = *reopened.value();
  REQUIRE(host.startThread().ok());
  for (int poll = 0; poll < 500 && host.driving(); ++poll) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_FALSE(host.driving());
  std::optional<WorkflowError> error = host.threadError();
  REQUIRE(error);
  CHECK(error->type == runtime::engine_errors::StoreFailure);
  CHECK(error->message.find("kotoba.db") != std::string::npos);
}

TEST_CASE("wait gives up after its timeout with a real clock, and the run goes on") {
  Folder folder;
  HostOptions options;
  options.storePath = folder / "kotoba.db";
  options.clock = ClockKind::Real;
  Fixture fixture(kSignals, options);
  std::string runId = fixture.start("{}");
  auto before = std::chrono::steady_clock::now();
  Result<RunOutcome> waited = fixture.host->wait(runId, 200ms);
  auto took = std::chrono::steady_clock::now() - before;
  REQUIRE_FALSE(waited.ok());
  CHECK(waited.error().type == host_errors::WaitTimedOut);
  CHECK(toJson(waited.error().details) == "{\"run_id\":\"" + runId + "\",\"status\":\"RUNNING\"}");
  CHECK(took >= 200ms);
  CHECK(took < 5s);
  REQUIRE(fixture.host->signal(runId, "go", Value(1)).ok());
  REQUIRE(fixture.host->signal(runId, "go", Value(2)).ok());
  CHECK(fixture.host->wait(runId, 20s).value().status == RunStatus::Completed);
}

TEST_CASE("history, past state, replay and verification of a finished run") {
  Fixture fixture;
  std::string runId = fixture.start();
  REQUIRE(fixture.host->wait(runId).ok());

  Result<RunRecord> record = fixture.host->run(runId);
  REQUIRE(record.ok());
  CHECK(record.value().workflowId == "greet");
  CHECK(record.value().moduleHash == fixture.hash);
  CHECK(record.value().status == RunStatus::Completed);
  CHECK(fixture.host->run("nobody").error().type == runtime::engine_errors::RunNotFound);
  CHECK(fixture.host->runs(RunStatus::Completed).value().size() == 1);
  CHECK(fixture.host->runs(RunStatus::Failed).value().empty());

  Result<std::vector<EventRecord>> events = fixture.host->events(runId);
  REQUIRE(events.ok());
  REQUIRE(events.value().size() == static_cast<size_t>(record.value().lastSeq));
  CHECK(events.value().front().type == EventType::WorkflowStarted);
  CHECK(events.value().back().type == EventType::WorkflowCompleted);
  CHECK(fixture.host->events(runId, 3).value().front().seq == 3);
  CHECK(fixture.host->events("nobody").error().type == runtime::engine_errors::RunNotFound);

  int64_t fired = 0;
  for (const EventRecord &event : events.value()) {
    if (event.type == EventType::TimerFired) {
      fired = event.seq;
    }
  }
  REQUIRE(fired > 1);
  Result<RunState> waiting = fixture.host->stateAt(runId, fired - 1);
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == "RUNNING");
  REQUIRE(waiting.value().pending.size() == 1);
  CHECK(waiting.value().pending.front().kind == vm::CommandKind::StartTimer);
  Result<RunState> last = fixture.host->stateAt(runId);
  REQUIRE(last.ok());
  CHECK(last.value().seq == record.value().lastSeq);
  CHECK(last.value().status == "COMPLETED");
  CHECK(toJson(last.value().vars) == R"({"hello":"Dear"})");
  CHECK(fixture.host->stateAt(runId, 0).error().type == host_errors::EventNotFound);
  CHECK(fixture.host->stateAt(runId, record.value().lastSeq + 1).error().type ==
        host_errors::EventNotFound);
  CHECK(fixture.host->stateAt("nobody").error().type == runtime::engine_errors::RunNotFound);

  Result<ReplayReport> replayed = fixture.host->replay(runId);
  REQUIRE(replayed.ok());
  CHECK(replayed.value().ok());
  CHECK(replayed.value().events == events.value().size());
  CHECK(replayed.value().moduleHash == fixture.hash);

  Result<runtime::ChainReport> chain = fixture.host->verify(runId);
  REQUIRE(chain.ok());
  CHECK(chain.value().eventsChecked == record.value().lastSeq);
  CHECK_FALSE(chain.value().firstBroken);
  CHECK(fixture.host->verify("nobody").error().type == runtime::engine_errors::RunNotFound);
  CHECK(fixture.host->replay("nobody").error().type == runtime::engine_errors::RunNotFound);
}

TEST_CASE("replay against a changed module finds where the history stops matching") {
  Fixture fixture;
  std::string runId = fixture.start();
  REQUIRE(fixture.host->wait(runId).ok());

  std::string changed = kGreeting;
  changed.replace(changed.find("P1D"), 3, "P2D");
  changed.replace(changed.find("activity_ref: \"say\""), 19, "activity_ref: \"shout\"");
  Result<vm::Module> module = compileFile(fixture.folder.file("changed.kotoba", changed));
  REQUIRE(module.ok());
  Result<ReplayReport> report = fixture.host->replay(runId, &module.value());
  REQUIRE(report.ok());
  REQUIRE_FALSE(report.value().ok());
  CHECK(report.value().mismatch->message.find("shout") != std::string::npos);
  CHECK(report.value().moduleHash != fixture.hash);

  Result<vm::Module> other = compileFile(fixture.folder.file("other.kotoba", kSignals));
  REQUIRE(other.ok());
  CHECK(fixture.host->replay(runId, &other.value()).error().type ==
        runtime::engine_errors::UnknownWorkflow);
}

TEST_CASE("the standard activities run only once the host installs them") {
  Folder folder;
  std::string source = R"({
    activities: [{ name: "count", implementation: { type: "sql", database: "shop.db",
      create: true, statement: "SELECT 41 + 1 AS n" } }],
    workflow: { id: "w", outputs: [{ name: "n" }], output_mapping: { n: $.results.q.rows },
      strategy: { op: "activity", activity_ref: "count", id: "q",
                  retry_policy: { maximum_attempts: 1 } } } })";
  auto run = [&](bool standard) {
    HostOptions options;
    options.clock = ClockKind::Virtual;
    options.baseDirectory = folder.path.string();
    Result<std::unique_ptr<Host>> host = Host::open(options);
    REQUIRE(host.ok());
    if (standard) {
      host.value()->registerStandardActivities();
    }
    Result<vm::Module> module = compileFile(folder.file("sql.kotoba", source));
    REQUIRE_MESSAGE(module.ok(), failureText(module));
    Result<std::string> hash = host.value()->addModule(module.value());
    REQUIRE(hash.ok());
    Result<std::string> runId = host.value()->start(hash.value(), Value(Object()));
    REQUIRE_MESSAGE(runId.ok(), failureText(runId));
    Result<RunOutcome> outcome = host.value()->wait(runId.value(), 20s);
    REQUIRE(outcome.ok());
    return outcome.value();
  };
  RunOutcome without = run(false);
  CHECK(without.status == RunStatus::Failed);
  REQUIRE(without.error);
  CHECK(without.error->type == runtime::activity_errors::ActivityUnavailable);
  RunOutcome with = run(true);
  CHECK(with.status == RunStatus::Completed);
  CHECK(toJson(with.outputs) == R"({"n":[{"n":42}]})");
}
