// The built-in helper functions, the function table, and the `function` implementation
// factory.
#include "kotoba/runtime/function.h"

#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <chrono>

namespace kotoba::runtime {

namespace {

WorkflowError invalidInput(std::string message, const Value &input) {
  return makeError(kInvalidInput, std::move(message), input);
}

} // namespace

Result<Value> echoFunction(const Value &input, ActivityContext &context) { return input; }

Result<Value> failFunction(const Value &input, ActivityContext &context) {
  // workflowErrorFromValue reads {type, message, details, retryable}, and turns anything
  // else into an InvalidPayload error that says what is wrong with it.
  return workflowErrorFromValue(input);
}

Result<Value> sleepFunction(const Value &input, ActivityContext &context) {
  int64_t milliseconds = 0;
  const Value *ms = input.isObject() ? input.asObject().find("ms") : nullptr;
  const Value *duration = input.isObject() ? input.asObject().find("duration") : nullptr;
  if (ms != nullptr && duration == nullptr) {
    if (!ms->isInt() || ms->asInt() < 0) {
      return invalidInput(
          fmt::format("sleep: 'ms' must be a non-negative integer, found {}", describeValue(*ms)),
          input);
    }
    milliseconds = ms->asInt();
  } else if (duration != nullptr && ms == nullptr) {
    if (!duration->isString()) {
      return invalidInput(fmt::format("sleep: 'duration' must be a duration string such as "
                                      "\"PT2S\" or \"250ms\", found {}",
                                      describeValue(*duration)),
                          input);
    }
    Result<int64_t> parsed = parseDurationMs(duration->asString());
    if (!parsed.ok()) {
      return invalidInput(fmt::format("sleep: {}", parsed.error().message), input);
    }
    milliseconds = parsed.value();
  } else {
    return invalidInput(fmt::format("sleep needs {{\"ms\": N}} or {{\"duration\": \"PT2S\"}}, "
                                    "found {}",
                                    describeValue(input)),
                        input);
  }
  if (context.waitForCancellation(std::chrono::milliseconds(milliseconds))) {
    return stoppedError(context.identity(), context.stopReason());
  }
  Object result;
  result.set("slept_ms", milliseconds);
  return Value(std::move(result));
}

Result<Value> logFunction(const Value &input, ActivityContext &context) {
  if (input.isString()) {
    context.log(LogLevel::Info, input.asString());
    return Value(nullptr);
  }
  const Value *message = input.isObject() ? input.asObject().find("message") : nullptr;
  if (message == nullptr) {
    context.log(LogLevel::Info, toJson(input));
    return Value(nullptr);
  }
  LogLevel level = LogLevel::Info;
  if (const Value *levelName = input.asObject().find("level")) {
    bool known = false;
    for (LogLevel candidate :
         {LogLevel::Debug, LogLevel::Info, LogLevel::Warning, LogLevel::Error}) {
      if (levelName->isString() && levelName->asString() == logLevelName(candidate)) {
        level = candidate;
        known = true;
      }
    }
    if (!known) {
      return invalidInput(fmt::format("log: 'level' must be \"debug\", \"info\", \"warning\" or "
                                      "\"error\", found {}",
                                      describeValue(*levelName)),
                          input);
    }
  }
  context.log(level, message->isString() ? message->asString() : toJson(*message));
  return Value(nullptr);
}

std::vector<std::pair<std::string, ActivityFunction>> builtinFunctions() {
  return {
      {"echo", echoFunction},
      {"fail", failFunction},
      {"sleep", sleepFunction},
      {"log", logFunction},
  };
}

// ---- FunctionTable -----------------------------------------------------------------------

FunctionTable::FunctionTable() {
  for (auto &[name, function] : builtinFunctions()) {
    functions_.emplace(std::move(name), std::move(function));
  }
}

void FunctionTable::add(std::string name, ActivityFunction function) {
  functions_.insert_or_assign(std::move(name), std::move(function));
}

const ActivityFunction *FunctionTable::find(std::string_view name) const {
  auto found = functions_.find(name);
  return found == functions_.end() ? nullptr : &found->second;
}

std::vector<std::string> FunctionTable::names() const {
  std::vector<std::string> names;
  for (const auto &[name, function] : functions_) {
    names.push_back(name);
  }
  return names;
}

// ---- Factory -----------------------------------------------------------------------------

Result<std::shared_ptr<Activity>> makeFunctionActivity(const ImplementationRequest &request) {
  const Object &fields = request.implementation.asObject();
  for (const ObjectEntry &entry : fields) {
    if (entry.key != "type" && entry.key != "function_name") {
      return makeError(activity_errors::InvalidImplementation,
                       fmt::format("activity '{}': unknown field '{}' in a function "
                                   "implementation; it takes only 'function_name'",
                                   request.activityName, entry.key));
    }
  }
  const Value *name = fields.find("function_name");
  if (name == nullptr || !name->isString() || name->asString().empty()) {
    return makeError(activity_errors::InvalidImplementation,
                     fmt::format("activity '{}': a function implementation needs a string "
                                 "'function_name', as {{type: \"function\", function_name: "
                                 "\"score\"}}",
                                 request.activityName));
  }
  const ActivityFunction *function = request.functions.find(name->asString());
  if (function == nullptr) {
    std::vector<std::string> known = request.functions.names();
    std::string list;
    for (const std::string &knownName : known) {
      list += list.empty() ? knownName : ", " + knownName;
    }
    return makeError(activity_errors::InvalidImplementation,
                     fmt::format("activity '{}': no function named '{}' is registered (known: "
                                 "{}); register it with ActivityRegistry::registerFunction",
                                 request.activityName, name->asString(), list));
  }
  return std::shared_ptr<Activity>(std::make_shared<FunctionActivity>(name->asString(), *function));
}

} // namespace kotoba::runtime
