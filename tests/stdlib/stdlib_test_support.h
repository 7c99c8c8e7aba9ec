// Helpers for the standard activity tests: building an activity from an implementation
// object the way a declaration is built (through a registry with the standard factories),
// running one attempt, and stopping an attempt from another thread after a delay.
#pragma once

#include "kotoba/runtime/activity_registry.h"
#include "kotoba/stdlib/standard_activities.h"
#include "kotoba/vm/json.h"

#include "runtime/activity_test_support.h"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace kotoba::stdlib::testing {

using runtime::testing::CapturedLog;
using runtime::testing::Stopwatch;
using runtime::testing::TempDir;
using runtime::testing::testContext;

inline Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

// The activity a declaration with `implementation` would get, or its error.
inline Result<std::shared_ptr<runtime::Activity>>
tryDeclare(const Value &implementation, const std::string &baseDirectory = "",
           std::map<std::string, std::string> environment = {}) {
  runtime::ActivityRegistry registry;
  registry.setEnvironment(runtime::fixedEnvironment(std::move(environment)));
  registerStandardActivities(registry);
  return registry.create("under_test", implementation, baseDirectory);
}

inline std::shared_ptr<runtime::Activity>
declare(const Value &implementation, const std::string &baseDirectory = "",
        std::map<std::string, std::string> environment = {}) {
  Result<std::shared_ptr<runtime::Activity>> activity =
      tryDeclare(implementation, baseDirectory, std::move(environment));
  REQUIRE_MESSAGE(activity.ok(), (activity.ok() ? "" : activity.error().message));
  return activity.value();
}

// One attempt through runActivity, as the executor runs it.
inline Result<Value> attempt(runtime::Activity &activity, const Value &input,
                             size_t payloadLimit = runtime::kDefaultPayloadLimitBytes) {
  auto context = testContext(nullptr, payloadLimit);
  return runtime::runActivity(activity, input, *context);
}

// Requests a stop of `cancellation` after `delay`, from its own thread; joins on
// destruction.
class DelayedStop {
public:
  DelayedStop(std::shared_ptr<runtime::CancellationSignal> cancellation,
              std::chrono::milliseconds delay,
              runtime::StopReason reason = runtime::StopReason::Cancelled)
      : thread_([cancellation = std::move(cancellation), delay, reason] {
          std::this_thread::sleep_for(delay);
          cancellation->request(reason);
        }) {}
  DelayedStop(const DelayedStop &) = delete;
  DelayedStop &operator=(const DelayedStop &) = delete;
  ~DelayedStop() { thread_.join(); }

private:
  std::thread thread_;
};

// The error of a result that must have failed.
inline WorkflowError failureOf(const Result<Value> &result) {
  REQUIRE_MESSAGE(!result.ok(), (result.ok() ? toJson(result.value()) : ""));
  return result.error();
}

} // namespace kotoba::stdlib::testing
