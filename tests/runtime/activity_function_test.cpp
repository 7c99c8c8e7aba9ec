// In-process activities: the built-in helpers, the attempt context (idempotency key,
// cancellation, logging, heartbeats) and the guards of runActivity (exceptions, payload
// limit, UTF-8, redaction).
#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/function.h"

#include "activity_test_support.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <stdexcept>
#include <thread>

namespace kotoba::runtime {
namespace {

using testing::CapturedLog;
using testing::Stopwatch;
using testing::testContext;

Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

Result<Value> call(ActivityFunction function, const Value &input,
                   std::shared_ptr<CancellationSignal> cancellation = nullptr) {
  FunctionActivity activity("f", std::move(function));
  auto context = testContext(std::move(cancellation));
  return runActivity(activity, input, *context);
}

} // namespace

TEST_CASE("echo returns its input unchanged") {
  Value input = json(R"({"a": [1, 2.5, "x"], "b": null})");
  Result<Value> result = call(echoFunction, input);
  REQUIRE(result.ok());
  CHECK(result.value() == input);
}

TEST_CASE("fail raises the error object it is given") {
  Result<Value> result = call(failFunction, json(R"({"type": "PaymentDeclined",
      "message": "card expired", "details": {"card": "visa"}, "retryable": false})"));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "PaymentDeclined");
  CHECK(result.error().message == "card expired");
  CHECK(result.error().details == json(R"({"card": "visa"})"));
  CHECK_FALSE(result.error().retryable);

  Result<Value> defaulted = call(failFunction, json(R"({"type": "Flaky"})"));
  REQUIRE_FALSE(defaulted.ok());
  CHECK(defaulted.error().retryable);

  Result<Value> malformed = call(failFunction, json(R"({"message": "no type"})"));
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().type == "InvalidPayload");
  CHECK_FALSE(malformed.error().retryable);
}

TEST_CASE("sleep waits the given milliseconds or duration") {
  Stopwatch watch;
  Result<Value> result = call(sleepFunction, json(R"({"ms": 60})"));
  REQUIRE(result.ok());
  CHECK(result.value() == json(R"({"slept_ms": 60})"));
  CHECK(watch.elapsedMs() >= 60);

  Result<Value> duration = call(sleepFunction, json(R"({"duration": "PT0.05S"})"));
  REQUIRE(duration.ok());
  CHECK(duration.value() == json(R"({"slept_ms": 50})"));
}

TEST_CASE("sleep returns as soon as the attempt is cancelled") {
  auto cancellation = std::make_shared<CancellationSignal>();
  std::thread canceller([cancellation] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancellation->request(StopReason::Cancelled);
  });
  Stopwatch watch;
  Result<Value> result = call(sleepFunction, json(R"({"duration": "1h"})"), cancellation);
  canceller.join();
  CHECK(watch.elapsedMs() < 5000);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ActivityCancelled");
  CHECK(result.error().message ==
        "attempt 1 of activity 'test_activity' (step 'step_a') was cancelled");
}

TEST_CASE("sleep refuses input without a usable duration") {
  for (std::string_view input :
       {R"({})", R"({"ms": -1})", R"({"ms": 1.5})", R"({"duration": "P1M"})", R"({"duration": 5})",
        R"({"ms": 1, "duration": "1s"})", R"("1s")"}) {
    Result<Value> result = call(sleepFunction, json(input));
    REQUIRE_FALSE(result.ok());
    CHECK_MESSAGE(result.error().type == "InvalidInput", input);
  }
  CHECK(call(sleepFunction, json(R"({"duration": "P1M"})")).error().message.find("use days") !=
        std::string::npos);
}

TEST_CASE("log writes the input to the engine log at the requested level") {
  CapturedLog log;
  FunctionActivity activity("log", logFunction);
  auto context = testContext(nullptr, kDefaultPayloadLimitBytes, log.sink());
  REQUIRE(runActivity(activity, Value("plain line"), *context).ok());
  REQUIRE(
      runActivity(activity, json(R"({"message": "careful", "level": "warning"})"), *context).ok());
  REQUIRE(runActivity(activity, json(R"({"count": 3})"), *context).ok());
  Result<Value> bad = runActivity(activity, json(R"({"message": "x", "level": "loud"})"), *context);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().type == "InvalidInput");
  REQUIRE(log.lines.size() == 3);
  CHECK(log.lines[0] == std::pair{LogLevel::Info, std::string("plain line")});
  CHECK(log.lines[1] == std::pair{LogLevel::Warning, std::string("careful")});
  CHECK(log.lines[2] == std::pair{LogLevel::Info, std::string(R"({"count":3})")});
}

TEST_CASE("log lines and errors of an attempt never show the environment values it read") {
  CapturedLog log;
  auto context = testContext(nullptr, kDefaultPayloadLimitBytes, log.sink());
  context->redactor().addSecret("API_KEY", "k-abcdef");
  context->log(LogLevel::Info, "calling with k-abcdef");
  FunctionActivity failing("f", [](const Value &, ActivityContext &) -> Result<Value> {
    return makeError("Denied", "key k-abcdef refused", Value("k-abcdef"));
  });
  Result<Value> result = runActivity(failing, Value(nullptr), *context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message == "key [redacted $.env.API_KEY] refused");
  CHECK(result.error().details == Value("[redacted $.env.API_KEY]"));
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].second == "calling with [redacted $.env.API_KEY]");
}

TEST_CASE("an exception from a host function becomes a retryable ActivityException") {
  Result<Value> result = call(
      [](const Value &, ActivityContext &) -> Result<Value> { throw std::runtime_error("boom"); },
      Value(nullptr));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ActivityException");
  CHECK(result.error().message == "function activity 'test_activity' threw an exception: boom");
  CHECK(result.error().retryable);
}

TEST_CASE("a result over the payload limit is PayloadTooLarge and not retryable") {
  FunctionActivity big("big", [](const Value &, ActivityContext &) -> Result<Value> {
    return Value(std::string(100, 'x'));
  });
  auto context = testContext(nullptr, 64);
  Result<Value> result = runActivity(big, Value(nullptr), *context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "PayloadTooLarge");
  CHECK_FALSE(result.error().retryable);
  CHECK(result.error().details == json(R"({"size_bytes": 102, "limit_bytes": 64})"));

  auto roomy = testContext(nullptr, 102);
  CHECK(runActivity(big, Value(nullptr), *roomy).ok());
}

TEST_CASE("a result that is not valid UTF-8 is InvalidPayload") {
  Result<Value> result = call(
      [](const Value &, ActivityContext &) -> Result<Value> {
        Object object;
        object.set("text", Value(std::string("ok \xc3\x28")));
        return Value(std::move(object));
      },
      Value(nullptr));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "InvalidPayload");
  CHECK(result.error().message ==
        "the result is not valid UTF-8: $[\"text\"] has a bad byte at offset 3");
}

TEST_CASE("the idempotency key joins run, step, command and attempt") {
  AttemptIdentity identity = testing::testIdentity("charge", 3);
  CHECK(idempotencyKey(identity) == "run-1/step_a/c7/3");
  identity.commandId = 0;
  CHECK(idempotencyKey(identity) == "run-1/step_a/3");
  ActivityContext context(testing::testIdentity("charge", 2), nullptr);
  CHECK(context.idempotencyKey() == "run-1/step_a/c7/2");
  CHECK(context.attempt() == 2);
  CHECK_FALSE(context.cancelled());
}

TEST_CASE("heartbeats reach the sink with the attempt and redacted details") {
  std::vector<Value> beats;
  ActivityContext context(testing::testIdentity(), nullptr, nullptr,
                          [&beats](const HeartbeatRecord &record) {
                            CHECK(record.attempt.stepId == "step_a");
                            beats.push_back(record.details);
                          });
  context.redactor().addSecret("T", "secret-token");
  context.heartbeat(json(R"({"done": 3, "note": "secret-token"})"));
  REQUIRE(beats.size() == 1);
  CHECK(beats[0] == json(R"({"done": 3, "note": "[redacted $.env.T]"})"));
}

TEST_CASE("the first stop request wins and later callbacks run at once") {
  CancellationSignal signal;
  int calls = 0;
  CancellationSignal::CallbackId id = signal.onStop([&calls] { ++calls; });
  CHECK(signal.request(StopReason::TimedOut));
  CHECK_FALSE(signal.request(StopReason::Cancelled));
  CHECK(signal.reason() == StopReason::TimedOut);
  CHECK(calls == 1);
  signal.removeCallback(id);
  (void)signal.onStop([&calls] { ++calls; });
  CHECK(calls == 2);
  CHECK(signal.waitFor(std::chrono::milliseconds(0)));
}

TEST_CASE("a removed stop callback never runs") {
  CancellationSignal signal;
  bool ran = false;
  CancellationSignal::CallbackId id = signal.onStop([&ran] { ran = true; });
  signal.removeCallback(id);
  signal.request(StopReason::Cancelled);
  CHECK_FALSE(ran);
  CHECK_FALSE(CancellationSignal().waitFor(std::chrono::milliseconds(10)));
}

} // namespace kotoba::runtime
