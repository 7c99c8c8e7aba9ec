// In-process activities: host functions (C++ callables registered by name) and the built-in
// helpers every engine has:
//   echo   returns its input
//   fail   fails with the error object it is given: {type, message, details, retryable}
//          (retryable defaults to true, as for every activity error)
//   sleep  waits {ms: N} or {duration: "PT2S"} milliseconds, or until cancelled, and returns
//          {slept_ms: N}
//   log    writes its input to the engine log: a string, or {message, level} with level
//          debug, info (the default), warning or error; returns null
// An in-process function cannot be killed: on a timeout or cancel it is asked to stop
// through its context (runtime.md section 7), and the executor ignores a late result.
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/activity_registry.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotoba::runtime {

class FunctionActivity final : public Activity {
public:
  FunctionActivity(std::string functionName, ActivityFunction function)
      : functionName_(std::move(functionName)), function_(std::move(function)) {}

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override {
    return function_(input, context);
  }
  [[nodiscard]] std::string_view type() const override { return "function"; }
  [[nodiscard]] const std::string &functionName() const { return functionName_; }

private:
  std::string functionName_;
  ActivityFunction function_;
};

// The error type of a built-in given input it cannot use (sleep without a duration, a log
// level that does not exist). Not retryable.
inline constexpr std::string_view kInvalidInput = "InvalidInput";

[[nodiscard]] Result<Value> echoFunction(const Value &input, ActivityContext &context);
[[nodiscard]] Result<Value> failFunction(const Value &input, ActivityContext &context);
[[nodiscard]] Result<Value> sleepFunction(const Value &input, ActivityContext &context);
[[nodiscard]] Result<Value> logFunction(const Value &input, ActivityContext &context);

// The built-ins by name, in the order listed above.
[[nodiscard]] std::vector<std::pair<std::string, ActivityFunction>> builtinFunctions();

// The factory of `{type: "function", function_name: "fraud_score"}`: looks the function up
// when the activity is created, so a missing function refuses the run before it starts.
[[nodiscard]] Result<std::shared_ptr<Activity>>
makeFunctionActivity(const ImplementationRequest &request);

} // namespace kotoba::runtime
