// The standard activities driven by the engine on a real store, as kotoba-vm drives them:
// a workflow that writes and reads a SQLite database next to its file, a failing HTTP
// call whose `$.env` token reaches the server but neither the recorded history, the run's
// error nor the store file, and a server's Retry-After that delays the engine's retries (on
// the virtual clock) and is recorded in the ActivityFailed events.
#include "loopback_http_server.h"
#include "stdlib_test_support.h"

#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/engine.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kotoba::stdlib {
namespace {

using namespace testing;
using runtime::Engine;
using runtime::RunStatus;

vm::Module compile(const std::string &source) {
  compiler::Compilation compilation;
  bool ok = compiler::checkSource(compilation, "stdlib.kotoba", source);
  std::ostringstream diagnostics;
  compilation.diagnostics.print(diagnostics);
  REQUIRE_MESSAGE(ok, diagnostics.str());
  return compiler::generateModule(compilation.program, compilation.sources);
}

std::unique_ptr<runtime::Store> openStore(const TempDir &dir) {
  auto store = runtime::Store::open(dir.file("kotoba.db"));
  REQUIRE(store.ok());
  return std::move(store).value();
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("a workflow records and reads orders through sql next to its file") {
  TempDir dir;
  sqlite3 *db = nullptr;
  REQUIRE(sqlite3_open(dir.file("shop.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE orders(id TEXT PRIMARY KEY, amount REAL)", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = openStore(dir);
  runtime::ActivityRegistry registry;
  registerStandardActivities(registry);
  runtime::VirtualClock clock;
  runtime::EngineOptions options;
  options.baseDirectory = dir.path().string();
  Engine engine(*store, registry, clock, options);
  auto hash = engine.addModule(compile(R"kotoba({
    activities: [
      { name: "record", implementation: { type: "sql", database: "shop.db",
          statement: "INSERT INTO orders(id, amount) VALUES (:id, :amount)" } },
      { name: "total", implementation: { type: "sql", database: "shop.db",
          statement: "SELECT count(*) AS n, sum(amount) AS sum FROM orders" } } ],
    workflow: { id: "shop", inputs: [{ name: "id", type: "string", required: true }],
      outputs: [{ name: "orders" }, { name: "sum" }],
      output_mapping: { orders: $.results.total.rows[0].n, sum: $.results.total.rows[0].sum },
      strategy: { op: "seq", strategies: [
        { op: "activity", activity_ref: "record",
          input_mapping: { id: $.inputs.id, amount: 12.5 } },
        { op: "activity", activity_ref: "total" } ] } } })kotoba"));
  REQUIRE(hash.ok());

  auto started = engine.start(runtime::StartRequest{
      hash.value(), "", json(R"({"id": "'; DROP TABLE orders; --"})"), {}, {}, {}});
  REQUIRE(started.ok());
  auto outcome = engine.runToCompletion(started.value());

  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"orders":1,"sum":12.5})");
}

TEST_CASE("an $.env token stays out of the history, the run's error and the store file") {
  const std::string token = "tok-engine-7c1d93";
  LoopbackHttpServer server([](const ReceivedRequest &request) {
    CannedResponse response;
    response.status = 400;
    response.reason = "Bad Request";
    response.headers = {{"Content-Type", "application/json"}};
    response.body = fmt::format(R"({{"echo": "{}", "target": "{}"}})",
                                request.header("authorization").value_or(""), request.target);
    return response;
  });
  TempDir dir;
  auto store = openStore(dir);
  runtime::ActivityRegistry registry;
  registry.setEnvironment(runtime::fixedEnvironment({{"API_TOKEN", token}}));
  registerStandardActivities(registry);
  runtime::VirtualClock clock;
  Engine engine(*store, registry, clock);
  auto hash = engine.addModule(compile(fmt::format(R"({{
    activities: [ {{ name: "call", implementation: {{ type: "http", method: "POST",
        url: "{}", query: {{ key: "${{$.env.API_TOKEN}}" }},
        headers: {{ Authorization: "Bearer ${{$.env.API_TOKEN}}" }} }} }} ],
    workflow: {{ id: "w", strategy: {{ op: "activity", activity_ref: "call" }} }} }})",
                                                   server.url("/api"))));
  REQUIRE(hash.ok());

  auto started = engine.start(runtime::StartRequest{hash.value(), "", json("{}"), {}, {}, {}});
  REQUIRE(started.ok());
  auto outcome = engine.runToCompletion(started.value());

  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Failed);
  REQUIRE(outcome.value().error.has_value());
  CHECK(outcome.value().error->type == stdlib_errors::HttpError);
  REQUIRE(server.received().size() == 1);
  CHECK(server.received()[0].header("authorization") == "Bearer " + token);
  std::string error = toJson(outcome.value().error->toValue());
  CHECK(error.find(token) == std::string::npos);
  CHECK(error.find("[redacted $.env.API_TOKEN]") != std::string::npos);
  auto events = store->query(
      [&](const runtime::StoreReader &reader) { return reader.events(started.value()); });
  REQUIRE(events.ok());
  CHECK(events.value().size() > 2);
  for (const runtime::EventRecord &event : events.value()) {
    CHECK(toJson(event.payload).find(token) == std::string::npos);
  }
  store.reset();
  std::string bytes = readFile(dir.file("kotoba.db")) + readFile(dir.file("kotoba.db-wal"));
  CHECK(bytes.find(token) == std::string::npos);
  CHECK(bytes.find("[redacted $.env.API_TOKEN]") != std::string::npos);
}

TEST_CASE("Retry-After delays the next attempt, up to the policy's maximum interval") {
  std::atomic<int> calls = 0;
  LoopbackHttpServer server([&](const ReceivedRequest &) {
    CannedResponse response;
    int call = ++calls;
    if (call == 1) {
      response.status = 503;
      response.reason = "Service Unavailable";
      response.headers = {{"Retry-After", "30"}};
    } else if (call == 2) {
      response.status = 429;
      response.reason = "Too Many Requests";
      response.headers = {{"Retry-After", "600"}}; // past maximum_interval: capped at 1 min
    } else {
      response.headers = {{"Content-Type", "application/json"}};
      response.body = R"({"ok": true})";
    }
    return response;
  });
  TempDir dir;
  auto store = openStore(dir);
  runtime::ActivityRegistry registry;
  registerStandardActivities(registry);
  runtime::VirtualClock clock;
  Engine engine(*store, registry, clock);
  auto hash = engine.addModule(compile(fmt::format(R"({{
    activities: [ {{ name: "call",
        retry_policy: {{ initial_interval: "PT1S", maximum_interval: "PT1M",
                         maximum_attempts: 3 }},
        implementation: {{ type: "http", url: "{}" }} }} ],
    workflow: {{ id: "w", outputs: [{{ name: "ok" }}],
      output_mapping: {{ ok: $.results.call.body.ok }},
      strategy: {{ op: "activity", activity_ref: "call" }} }} }})",
                                                   server.url("/busy"))));
  REQUIRE(hash.ok());
  int64_t startedAt = clock.nowMs();

  auto started = engine.start(runtime::StartRequest{hash.value(), "", json("{}"), {}, {}, {}});
  REQUIRE(started.ok());
  auto outcome = engine.runToCompletion(started.value());

  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"ok":true})");
  CHECK(calls == 3);
  auto events = store->query(
      [&](const runtime::StoreReader &reader) { return reader.events(started.value()); });
  REQUIRE(events.ok());
  std::vector<int64_t> waits;
  std::vector<int64_t> startTimes;
  for (const runtime::EventRecord &event : events.value()) {
    if (event.type == runtime::EventType::ActivityFailed) {
      const Object &fields = event.payload.asObject();
      CHECK(fields.find("will_retry")->asBool());
      waits.push_back(fields.find("retry_at_ms")->asInt() - event.timeMs);
    }
    if (event.type == runtime::EventType::ActivityStarted) {
      startTimes.push_back(event.timeMs);
    }
  }
  CHECK(waits == std::vector<int64_t>{30000, 60000});
  // The engine really waited (virtual) time: at least 30 s, then at least 60 s more.
  REQUIRE(startTimes.size() == 3);
  CHECK(startTimes[1] - startTimes[0] >= 30000);
  CHECK(startTimes[2] - startTimes[1] >= 60000);
  CHECK(clock.nowMs() - startedAt >= 90000);
}

} // namespace
} // namespace kotoba::stdlib
