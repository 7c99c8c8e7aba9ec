// Language semantics through the whole engine: each rule checked on a real SQLite store with
// the virtual clock, asserting the order of activity calls and the events recorded.
#include "engine_support.h"


using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

struct Fixture : EngineFixture {
  void bind(const std::string &name, std::function<Result<Value>(const Value &, int64_t)> body) {
    REQUIRE_FALSE(registry.bindFunction(
        name, [this, name, body](const Value &input, ActivityContext &context) {
          log.add(name);
          return body(input, context.attempt());
        }));
  }
  void echo(const std::string &name) {
    bind(name, [](const Value &input, int64_t) { return Result<Value>(input); });
  }
  RunOutcome run(const std::string &inputs = "{}",
                 std::vector<std::pair<std::string, Value>> signals = {}) {
    auto started = engine->start(StartRequest{hash, "", parse(inputs), std::move(signals), {}, {}});
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
    runId = started.value();
    auto outcome = engine->runToCompletion(runId);
    REQUIRE(outcome.ok());
    return outcome.value();
  }
  std::vector<EventRecord> events() { return history(*temp.store, runId); }
  std::string runId;
};

WorkflowError retryable(const std::string &type) {
  WorkflowError error = makeError(type, type + " happened");
  error.retryable = true;
  return error;
}

WorkflowError final(const std::string &type) {
  WorkflowError error = makeError(type, type + " happened");
  error.retryable = false;
  return error;
}

} // namespace

TEST_CASE("retry gaps follow the policy exactly and every failed attempt is recorded") {
  Fixture fixture;
  fixture.bind("flaky", [](const Value &, int64_t) -> Result<Value> { return retryable("Flaky"); });
  fixture.load(R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "flaky",
    retry_policy: { initial_interval: "200ms", backoff_coefficient: 2, maximum_attempts: 10,
                    maximum_interval: "1h" } } } })");
  RunOutcome outcome = fixture.run();
  CHECK(outcome.status == RunStatus::Failed);
  CHECK(fixture.log.snapshot().size() == 10);
  std::vector<int64_t> gaps;
  int64_t previous = 0;
  int failures = 0;
  for (const EventRecord &event : fixture.events()) {
    if (event.type != EventType::ActivityFailed) {
      continue;
    }
    ++failures;
    const Object &fields = event.payload.asObject();
    if (fields.find("will_retry")->asBool()) {
      int64_t retryAt = fields.find("retry_at_ms")->asInt();
      gaps.push_back(retryAt - event.timeMs);
      CHECK(retryAt > previous);
      previous = retryAt;
    }
  }
  CHECK(failures == 10);
  CHECK(gaps == std::vector<int64_t>{200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200});
}

TEST_CASE("a huge backoff coefficient caps at the maximum interval without overflow") {
  Fixture fixture;
  fixture.bind("flaky", [](const Value &, int64_t) -> Result<Value> { return retryable("Flaky"); });
  fixture.load(R"({ workflow: { id: "w", strategy: { op: "activity", activity_ref: "flaky",
    retry_policy: { initial_interval: "1s", backoff_coefficient: 1e300, maximum_attempts: 4,
                    maximum_interval: "PT10S" } } } })");
  CHECK(fixture.run().status == RunStatus::Failed);
  std::vector<int64_t> gaps;
  for (const EventRecord &event : fixture.events()) {
    const Object &fields = event.payload.asObject();
    if (event.type == EventType::ActivityFailed && fields.find("will_retry")->asBool()) {
      gaps.push_back(fields.find("retry_at_ms")->asInt() - event.timeMs);
    }
  }
  CHECK(gaps == std::vector<int64_t>{1000, 10000, 10000});
}

TEST_CASE("compensations run newest first, skipping a step that never completed") {
  Fixture fixture;
  for (const char *name :
       {"book_flight", "book_hotel", "cancel_flight", "cancel_hotel", "cancel_car"}) {
    fixture.echo(name);
  }
  fixture.bind("book_car", [](const Value &, int64_t) -> Result<Value> { return final("NoCars"); });
  fixture.load(R"({ workflow: { id: "trip", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "activity", activity_ref: "book_flight",
        compensate: { activity_ref: "cancel_flight" } },
      { op: "activity", activity_ref: "book_hotel", compensate: { activity_ref: "cancel_hotel" } },
      { op: "activity", activity_ref: "book_car", compensate: { activity_ref: "cancel_car" } },
    ] } } } })");
  RunOutcome outcome = fixture.run();
  CHECK(outcome.status == RunStatus::Failed);
  CHECK(outcome.error->type == "NoCars");
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book_flight", "book_hotel", "book_car",
                                                           "cancel_hotel", "cancel_flight"});
  std::vector<std::string> compensation;
  for (const EventRecord &event : fixture.events()) {
    if (event.type == EventType::CompensationStarted) {
      compensation.push_back("started " + event.stepId);
    } else if (event.type == EventType::CompensationCompleted) {
      compensation.push_back("completed " + event.stepId);
    }
  }
  CHECK(compensation == std::vector<std::string>{"started cancel_hotel", "completed cancel_hotel",
                                                 "started cancel_flight",
                                                 "completed cancel_flight"});
}

TEST_CASE("any and all_settled parallels complete as the language says") {
  Fixture fixture;
  fixture.bind("fails", [](const Value &, int64_t) -> Result<Value> { return final("Nope"); });
  fixture.bind("works", [](const Value &, int64_t) -> Result<Value> { return Value("ok"); });
  fixture.load(R"({ workflow: { id: "w", outputs: [{ name: "any" }, { name: "settled" }],
    output_mapping: { any: $.results.first, settled: $.results.all },
    strategy: { op: "seq", strategies: [
      { op: "parallel", id: "first", completion_condition: "any", branches: [
        { op: "activity", activity_ref: "fails" }, { op: "activity", activity_ref: "works" } ] },
      { op: "parallel", id: "all", completion_condition: "all_settled", branches: [
        { op: "activity", activity_ref: "fails" }, { op: "activity", activity_ref: "works" } ] },
    ] } } })");
  RunOutcome outcome = fixture.run();
  REQUIRE(outcome.status == RunStatus::Completed);
  std::string text = toJson(outcome.outputs);
  CHECK(text.find(R"("any":"ok")") != std::string::npos);
  CHECK(text.find(R"({"status":"completed","value":"ok"})") != std::string::npos);
  CHECK(text.find(R"({"status":"failed","error":{"type":"Nope")") != std::string::npos);
}

TEST_CASE("a wait that timed out consumes no later signal, which goes to the next wait") {
  Fixture fixture;
  fixture.load(R"({ workflow: { id: "w", outputs: [{ name: "late" }],
    output_mapping: { late: $.results.later },
    strategy: { op: "seq", strategies: [
      { op: "try", body: { op: "wait", signal: "approve", timeout: "PT1M" },
        catch: [{ errors: ["WaitTimeout"], do: { op: "set", vars: { timed_out: true } } }] },
      { op: "wait", signal: "approve", id: "later" } ] } } })");
  auto started = fixture.engine->start(StartRequest{fixture.hash, "", Value(Object()), {}, {}, {}});
  REQUIRE(started.ok());
  fixture.runId = started.value();
  auto waiting = fixture.engine->runToCompletion(fixture.runId);
  REQUIRE(waiting.ok());
  CHECK(waiting.value().status == RunStatus::Running);
  REQUIRE(fixture.engine->signal(fixture.runId, "approve", Value("yes")).ok());
  auto done = fixture.engine->runToCompletion(fixture.runId);
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
  CHECK(toJson(done.value().outputs) == R"({"late":"yes"})");
  bool timedOut = false;
  for (const EventRecord &event : fixture.events()) {
    timedOut = timedOut || event.type == EventType::WaitTimedOut;
  }
  CHECK(timedOut);
}

TEST_CASE("unicode payloads survive the store and activities byte for byte") {
  Fixture fixture;
  fixture.echo("echo");
  fixture.load(R"({ workflow: { id: "w", inputs: [{ name: "text" }], outputs: [{ name: "back" }],
    output_mapping: { back: $.results.echo.text },
    strategy: { op: "activity", activity_ref: "echo",
                input_mapping: { text: $.inputs.text } } } })");
  std::string text = "emoji \xF0\x9F\x98\x80 combining e\xCC\x81 nonchar \xEF\xBF\xBE";
  Object inputs;
  inputs.set("text", Value(text));
  RunOutcome outcome = fixture.run(toJson(Value(std::move(inputs))));
  REQUIRE(outcome.status == RunStatus::Completed);
  CHECK(outcome.outputs.asObject().find("back")->asString() == text);
}

TEST_CASE("a foreach keeps iteration writes private through the store") {
  Fixture fixture;
  fixture.echo("work");
  fixture.load(R"({ workflow: { id: "w", inputs: [{ name: "items" }],
    outputs: [{ name: "values" }, { name: "leaked" }],
    output_mapping: { values: $.results.each, leaked: $.vars.inner ?? "none" },
    strategy: { op: "foreach", id: "each", items: $.inputs.items, max_concurrency: 2,
      body: { op: "seq", strategies: [
        { op: "set", vars: { inner: $.item } },
        { op: "activity", activity_ref: "work",
          input_mapping: { item: $.vars.inner } } ] } } } })");
  RunOutcome outcome = fixture.run(R"({"items": ["a", "b", "c"]})");
  REQUIRE(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) ==
        R"({"values":[{"item":"a"},{"item":"b"},{"item":"c"}],"leaked":"none"})");
}

TEST_CASE("the workflow timeout compensates and ends the run TimedOut") {
  Fixture fixture;
  fixture.echo("book");
  fixture.echo("unbook");
  fixture.load(R"({ workflow: { id: "w", timeout: "PT1H", strategy: { op: "saga", main_flow: {
    op: "seq", strategies: [
      { op: "activity", activity_ref: "book", compensate: { activity_ref: "unbook" } },
      { op: "wait", signal: "never" } ] } } } })");
  RunOutcome outcome = fixture.run();
  CHECK(outcome.status == RunStatus::TimedOut);
  CHECK(fixture.log.snapshot() == std::vector<std::string>{"book", "unbook"});
}

TEST_CASE("an activity input over the payload limit fails the step without storing it") {
  Fixture fixture;
  fixture.echo("big");
  EngineOptions options;
  options.payloadLimitBytes = 1000;
  fixture.engine =
      std::make_unique<Engine>(*fixture.temp.store, fixture.registry, fixture.clock, options);
  Object inputs;
  inputs.set("blob", Value(std::string(600, 'x')));
  auto hash = fixture.engine->addModule(compileWorkflow(R"({ workflow: { id: "w",
    inputs: [{ name: "blob" }], strategy: { op: "seq", strategies: [
      { op: "set", vars: { twice: $.inputs.blob + $.inputs.blob } },
      { op: "activity", activity_ref: "big", input_mapping: { blob: $.vars.twice } } ] } } })"));
  REQUIRE(hash.ok());
  StartRequest request{hash.value(), "", Value(std::move(inputs)), {}, {}, {}};
  auto started = fixture.engine->start(request);
  REQUIRE(started.ok());
  auto outcome = fixture.engine->runToCompletion(started.value());
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Failed);
  CHECK(outcome.value().error->type == "PayloadTooLarge");
  CHECK(fixture.log.snapshot().empty());
  for (const EventRecord &event : history(*fixture.temp.store, started.value())) {
    CHECK(toJson(event.payload).size() < 1000);
  }
}

TEST_CASE("a workflow retry_policy runs the whole workflow again as a new attempt") {
  Fixture fixture;
  fixture.bind("charge", [](const Value &input, int64_t) -> Result<Value> {
    if (input.asObject().find("attempt")->asInt() < 3) {
      return final("Declined");
    }
    return Value("charged");
  });
  fixture.load(R"({ workflow: { id: "w", outputs: [{ name: "result" }, { name: "attempt" }],
    output_mapping: { result: $.results.charge, attempt: $.run.attempt },
    retry_policy: { initial_interval: "1m", maximum_attempts: 3 },
    strategy: { op: "activity", activity_ref: "charge",
                input_mapping: { attempt: $.run.attempt } } } })");
  RunOutcome outcome = fixture.run();
  CHECK(outcome.status == RunStatus::Completed);
  CHECK(toJson(outcome.outputs) == R"({"result":"charged","attempt":3})");
  CHECK(outcome.runId != fixture.runId);
  CHECK(fixture.log.snapshot().size() == 3);
  // The first attempt failed for good and says when the next one starts.
  std::vector<EventRecord> first = fixture.events();
  REQUIRE(first.back().type == EventType::WorkflowFailed);
  CHECK(first.back().payload.asObject().find("will_retry")->asBool());
  CHECK(first.back().payload.asObject().find("retry_at_ms")->asInt() - first.back().timeMs ==
        60'000);
}
