// The activity registry: host bindings, implementation factories, and resolving the
// activities of one module with the precedence activity_registry.h describes.
#include "kotoba/runtime/activity_registry.h"

#include "kotoba/runtime/function.h"
#include "kotoba/runtime/process.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <filesystem>

namespace kotoba::runtime {

namespace {

// The directory a declaration's relative paths resolve against (docs/cli.md): that of the
// file it was declared in, taken relative to the entry file's (source file 0), under the
// run's base directory. Modules that record no file for it (format version 1), and files
// the entry's directory cannot be related to, resolve against the base directory itself.
std::string declarationDirectory(const vm::Module &module, const vm::ActivityDecl &declaration,
                                 std::string_view baseDirectory) {
  if (!declaration.declaredIn || declaration.declaredIn->index == 0 ||
      declaration.declaredIn->index >= module.sourceFiles.size()) {
    return std::string(baseDirectory);
  }
  namespace fs = std::filesystem;
  fs::path entry = fs::path(module.sourceFiles.front()).parent_path();
  fs::path declared = fs::path(module.sourceFiles[declaration.declaredIn->index]).parent_path();
  fs::path relative = declared.lexically_relative(entry);
  if (relative.empty() || relative == ".") {
    return std::string(baseDirectory);
  }
  if (baseDirectory.empty()) {
    return relative.string(); // resolved against the current directory, as the base is
  }
  return (fs::path(baseDirectory) / relative).lexically_normal().string();
}

// Types the language names whose factories come from the standard activities library
// (stdlib-activities), which registers them over these placeholders.
constexpr std::array<std::string_view, 4> kPlannedTypes = {"http", "sql", "email", "webhook"};

// Stands in for an implementation type whose factory was not registered: resolving succeeds
// (the module is valid), running fails with a message that says what to do instead.
class UnavailableActivity final : public Activity {
public:
  explicit UnavailableActivity(std::string implementationType)
      : implementationType_(std::move(implementationType)) {}

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override {
    Object details;
    details.set("implementation_type", implementationType_);
    return makeError(activity_errors::ActivityUnavailable,
                     fmt::format("activity '{}' has a '{}' implementation, which this build of "
                                 "kotoba cannot run yet; bind it to a process "
                                 "(--bind {}=process:PATH) or a host function instead",
                                 context.activityName(), implementationType_,
                                 context.activityName()),
                     Value(std::move(details)));
  }
  [[nodiscard]] std::string_view type() const override { return implementationType_; }

private:
  std::string implementationType_;
};

WorkflowError invalidImplementation(std::string message) {
  return makeError(activity_errors::InvalidImplementation, std::move(message));
}

} // namespace

std::shared_ptr<Activity> ModuleActivities::find(std::string_view name) const {
  auto found = activities.find(name);
  return found == activities.end() ? nullptr : found->second;
}

ActivityRegistry::ActivityRegistry() : environment_(processEnvironment()) {
  factories_.emplace("function", makeFunctionActivity);
  factories_.emplace("process", processActivityFactory());
  for (std::string_view type : kPlannedTypes) {
    factories_.emplace(std::string(type), [type](const ImplementationRequest &) {
      return Result<std::shared_ptr<Activity>>(
          std::make_shared<UnavailableActivity>(std::string(type)));
    });
  }
}

void ActivityRegistry::registerFactory(std::string type, ActivityFactory factory) {
  std::lock_guard lock(mutex_);
  factories_.insert_or_assign(std::move(type), std::move(factory));
}

void ActivityRegistry::registerFunction(std::string name, ActivityFunction function) {
  std::lock_guard lock(mutex_);
  functions_.add(std::move(name), std::move(function));
}

void ActivityRegistry::setEnvironment(EnvironmentLookup environment) {
  std::lock_guard lock(mutex_);
  environment_ = std::move(environment);
}

std::optional<WorkflowError> ActivityRegistry::bind(std::string name,
                                                    std::shared_ptr<Activity> activity) {
  assert(activity && "bind() needs an activity; to unbind, build a new registry");
  if (name.empty()) {
    return invalidImplementation("an activity cannot be bound to an empty name");
  }
  std::lock_guard lock(mutex_);
  if (hostBindings_.contains(name)) {
    return invalidImplementation(
        fmt::format("activity '{}' is bound twice; give each activity one binding", name));
  }
  hostBindings_.emplace(std::move(name), std::move(activity));
  return std::nullopt;
}

std::optional<WorkflowError> ActivityRegistry::bindFunction(std::string name,
                                                            ActivityFunction function) {
  std::string functionName = name;
  return bind(std::move(name),
              std::make_shared<FunctionActivity>(std::move(functionName), std::move(function)));
}

std::optional<WorkflowError> ActivityRegistry::bindImplementation(std::string name,
                                                                  const Value &implementation,
                                                                  std::string baseDirectory) {
  Result<std::shared_ptr<Activity>> activity = create(name, implementation, baseDirectory);
  if (!activity.ok()) {
    return std::move(activity).error();
  }
  return bind(std::move(name), std::move(activity).value());
}

void ActivityRegistry::bindBuiltins() {
  std::lock_guard lock(mutex_);
  for (auto &[name, function] : builtinFunctions()) {
    builtinBindings_.insert_or_assign(name, std::make_shared<FunctionActivity>(name, function));
  }
}

Result<std::shared_ptr<Activity>> ActivityRegistry::create(std::string_view activityName,
                                                           const Value &implementation,
                                                           std::string_view baseDirectory) const {
  std::lock_guard lock(mutex_);
  return createLocked(activityName, implementation, baseDirectory);
}

Result<std::shared_ptr<Activity>>
ActivityRegistry::createLocked(std::string_view activityName, const Value &implementation,
                               std::string_view baseDirectory) const {
  const Value *type = implementation.isObject() ? implementation.asObject().find("type") : nullptr;
  if (type == nullptr || !type->isString()) {
    return invalidImplementation(
        fmt::format("activity '{}': an implementation must be an object with a string "
                    "'type', found {}",
                    activityName, describeValue(implementation)));
  }
  auto factory = factories_.find(type->asString());
  if (factory == factories_.end()) {
    std::string known;
    for (const auto &[name, unused] : factories_) {
      known += known.empty() ? name : ", " + name;
    }
    return invalidImplementation(fmt::format("activity '{}': unknown implementation type "
                                             "'{}'; the known types are {}",
                                             activityName, type->asString(), known));
  }
  ImplementationRequest request{std::string(activityName), implementation,
                                std::string(baseDirectory), functions_, environment_};
  return factory->second(request);
}

std::shared_ptr<Activity> ActivityRegistry::findBound(std::string_view name) const {
  std::lock_guard lock(mutex_);
  return findBoundLocked(name);
}

std::shared_ptr<Activity> ActivityRegistry::findBoundLocked(std::string_view name) const {
  if (auto host = hostBindings_.find(name); host != hostBindings_.end()) {
    return host->second;
  }
  if (auto builtin = builtinBindings_.find(name); builtin != builtinBindings_.end()) {
    return builtin->second;
  }
  return nullptr;
}

ModuleActivities ActivityRegistry::resolve(const vm::Module &module,
                                           std::string_view baseDirectory,
                                           const std::vector<RunBinding> &runBindings) const {
  std::lock_guard lock(mutex_);
  ModuleActivities resolved;
  // The run's own bindings, for the names this process has no host binding of.
  auto bindFromRun = [&](const std::string &name) {
    if (hostBindings_.contains(name)) {
      return false;
    }
    for (const RunBinding &binding : runBindings) {
      if (binding.name != name) {
        continue;
      }
      Result<std::shared_ptr<Activity>> activity =
          createLocked(binding.name, binding.implementation, binding.baseDirectory);
      if (!activity.ok()) {
        resolved.problems.push_back(std::move(activity).error());
      } else {
        resolved.activities.insert_or_assign(name, std::move(activity).value());
      }
      return true;
    }
    return false;
  };
  for (const vm::ActivityDecl &declaration : module.activities) {
    if (auto host = hostBindings_.find(declaration.name); host != hostBindings_.end()) {
      resolved.activities.insert_or_assign(declaration.name, host->second);
      continue;
    }
    if (bindFromRun(declaration.name)) {
      continue;
    }
    if (declaration.implementation.isNull()) {
      continue; // listed in hostActivities too
    }
    Result<std::shared_ptr<Activity>> activity = createLocked(
        declaration.name, declaration.implementation,
        declarationDirectory(module, declaration, baseDirectory));
    if (!activity.ok()) {
      resolved.problems.push_back(std::move(activity).error());
      continue;
    }
    resolved.activities.insert_or_assign(declaration.name, std::move(activity).value());
  }
  for (const std::string &name : module.hostActivities) {
    if (resolved.activities.contains(name)) {
      continue;
    }
    if (auto host = hostBindings_.find(name); host != hostBindings_.end()) {
      resolved.activities.emplace(name, host->second);
    } else if (bindFromRun(name)) {
      continue;
    } else if (std::shared_ptr<Activity> bound = findBoundLocked(name)) {
      resolved.activities.emplace(name, std::move(bound));
    } else {
      resolved.unbound.push_back(name);
    }
  }
  std::sort(resolved.unbound.begin(), resolved.unbound.end());
  return resolved;
}

} // namespace kotoba::runtime
