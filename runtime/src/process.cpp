// The process activity: checking and compiling an implementation object, evaluating its
// templates for each attempt into a ProcessSpec, and handing that to runProcess
// (process_run.cpp).
#include "kotoba/runtime/process.h"

#include "kotoba/vm/json.h"
#include "kotoba/vm/operations.h"

#include <fmt/format.h>

#include <unistd.h>

#include <array>
#include <string>
#include <utility>

namespace kotoba::runtime {

namespace {

WorkflowError invalidProcess(std::string_view activityName, std::string message) {
  return makeError(activity_errors::InvalidImplementation,
                   fmt::format("activity '{}': {}", activityName, message));
}

std::string resolvePath(const std::string &path, const std::string &baseDirectory) {
  if (path.empty() || path.front() == '/') {
    return path;
  }
  std::string base = baseDirectory;
  if (base.empty()) {
    std::array<char, 4096> buffer;
    if (::getcwd(buffer.data(), buffer.size()) != nullptr) {
      base = buffer.data();
    }
  }
  if (base.empty()) {
    return path;
  }
  return base.back() == '/' ? base + path : base + "/" + path;
}

// Text for argv or the environment: strings, numbers and booleans as template text. NUL
// cannot travel through exec.
std::optional<std::string> argumentText(const Value &value) {
  if (!value.isString() && !value.isNumber() && !value.isBool()) {
    return std::nullopt;
  }
  std::string text = templateText(value);
  if (text.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return text;
}

} // namespace

ProcessActivity::ProcessActivity(std::string activityName, TemplateValue implementation,
                                 std::string baseDirectory, EnvironmentLookup environment,
                                 ProcessOptions options)
    : activityName_(std::move(activityName)), implementation_(std::move(implementation)),
      baseDirectory_(std::move(baseDirectory)), environment_(std::move(environment)),
      options_(options) {}

Result<ProcessSpec> ProcessActivity::resolve(const Value &input, ActivityContext &context) const {
  Result<Value> evaluated =
      implementation_.evaluate(TemplateScope{input, environment_, context.redactor()});
  if (!evaluated.ok()) {
    return std::move(evaluated).error();
  }
  const Object &fields = evaluated->asObject();
  ProcessSpec spec;
  const Value *command = fields.find("command");
  if (command == nullptr || !command->isString() || command->asString().empty() ||
      command->asString().find('\0') != std::string::npos) {
    return invalidProcess(activityName_, "'command' evaluated to an empty or invalid string");
  }
  spec.command = command->asString().find('/') == std::string::npos
                     ? command->asString()
                     : resolvePath(command->asString(), baseDirectory_);
  if (const Value *args = fields.find("args")) {
    const Array &elements = args->asArray();
    for (size_t i = 0; i < elements.size(); ++i) {
      std::optional<std::string> text = argumentText(elements[i]);
      if (!text) {
        return invalidProcess(activityName_,
                              fmt::format("args[{}] must be a string, number or boolean without "
                                          "NUL characters, found {}",
                                          i, describeValue(elements[i])));
      }
      spec.args.push_back(std::move(*text));
    }
  }
  if (const Value *env = fields.find("env")) {
    for (const ObjectEntry &entry : env->asObject()) {
      if (entry.value.isNull()) {
        spec.env.insert_or_assign(entry.key, std::nullopt);
        continue;
      }
      std::optional<std::string> text = argumentText(entry.value);
      if (!text) {
        return invalidProcess(activityName_,
                              fmt::format("env.{} must be a string, number, boolean or null, "
                                          "found {}",
                                          entry.key, describeValue(entry.value)));
      }
      spec.env.insert_or_assign(entry.key, std::move(*text));
    }
  }
  if (const Value *cwd = fields.find("cwd")) {
    spec.cwd = resolvePath(cwd->asString(), baseDirectory_);
  }
  if (const Value *inherit = fields.find("inherit_env")) {
    spec.inheritEnvironment = inherit->asBool();
  }
  return spec;
}

Result<Value> ProcessActivity::run(const Value &input, ActivityContext &context) {
  Result<ProcessSpec> spec = resolve(input, context);
  if (!spec.ok()) {
    return std::move(spec).error();
  }
  return runProcess(spec.value(), toJson(input), context, options_);
}

ActivityFactory processActivityFactory(ProcessOptions options) {
  return [options](const ImplementationRequest &request) -> Result<std::shared_ptr<Activity>> {
    const std::string &name = request.activityName;
    const Object &fields = request.implementation.asObject();
    for (const ObjectEntry &entry : fields) {
      const std::string &key = entry.key;
      const Value &value = entry.value;
      if (key == "type") {
        continue;
      }
      if (key == "command") {
        if (!value.isString() || value.asString().empty()) {
          return invalidProcess(name, fmt::format("'command' must be a non-empty string, "
                                                  "found {}",
                                                  describeValue(value)));
        }
      } else if (key == "args") {
        if (!value.isArray()) {
          return invalidProcess(
              name, fmt::format("'args' must be an array of strings, found {}; the command "
                                "is never run through a shell, so give each argument "
                                "separately",
                                describeValue(value)));
        }
        const Array &elements = value.asArray();
        for (size_t i = 0; i < elements.size(); ++i) {
          if (!elements[i].isString() && !elements[i].isNumber() && !elements[i].isBool()) {
            return invalidProcess(
                name, fmt::format("args[{}] must be a string, number or boolean, found {}", i,
                                  describeValue(elements[i])));
          }
        }
      } else if (key == "env") {
        if (!value.isObject()) {
          return invalidProcess(name, fmt::format("'env' must be an object of variables, "
                                                  "found {}",
                                                  describeValue(value)));
        }
        for (const ObjectEntry &variable : value.asObject()) {
          if (variable.key.empty() || variable.key.find('=') != std::string::npos ||
              variable.key.find('\0') != std::string::npos) {
            return invalidProcess(
                name, fmt::format("'env' has an invalid variable name '{}'", variable.key));
          }
        }
      } else if (key == "cwd") {
        if (!value.isString()) {
          return invalidProcess(
              name, fmt::format("'cwd' must be a string, found {}", describeValue(value)));
        }
      } else if (key == "inherit_env") {
        if (!value.isBool()) {
          return invalidProcess(
              name, fmt::format("'inherit_env' must be a boolean, found {}", describeValue(value)));
        }
      } else {
        return invalidProcess(name, fmt::format("unknown field '{}' in a process "
                                                "implementation; it takes command, args, env, "
                                                "cwd and inherit_env",
                                                key));
      }
    }
    if (fields.find("command") == nullptr) {
      return invalidProcess(name, "a process implementation needs 'command', as {type: "
                                  "\"process\", command: \"./script.sh\"}");
    }
    Result<TemplateValue> compiled = TemplateValue::compile(
        request.implementation, fmt::format("activity '{}' implementation", name));
    if (!compiled.ok()) {
      return std::move(compiled).error();
    }
    return std::shared_ptr<Activity>(std::make_shared<ProcessActivity>(
        name, std::move(compiled).value(), request.baseDirectory, request.environment, options));
  };
}

} // namespace kotoba::runtime
