// Which implementation runs when a workflow calls an activity by name. Three sources, in
// order of precedence:
//   1. host bindings: bind()/bindFunction() from a C++ host, bindImplementation() for
//      `kotoba-vm --bind NAME=SPEC` (activity_binding.h); a host binding replaces a
//      module's declaration of the same name, which is how tests swap a real process for a
//      stub;
//   2. the module's declarations that carry an `implementation` object, turned into
//      activities by the factory registered for the object's `type`;
//   3. the built-in helpers echo, fail, sleep and log, as bare activity names, only after
//      bindBuiltins() (a forgotten binding named `log` should refuse the run, not log).
// Declarations are per module (two modules may declare `charge` differently), so the
// registry keeps only host bindings, factories and functions, and resolve() gives each
// module its own ModuleActivities table; the engine resolves once per module hash and
// RunHost. A run may carry bindings of its own (RunHost, stored with the run): they rank
// between this process's host bindings and the declarations.
//
// Factories exist for `function` and `process`. The factories of `http`, `sql`, `email` and
// `webhook` live in the standard activities library, which the runtime does not link;
// kotoba::stdlib::registerStandardActivities installs them. Without it those types are
// accepted and fail at run time with ActivityUnavailable. Any other type is an
// InvalidImplementation error when the module is resolved.
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/activity_template.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/module.h"
#include "kotoba/vm/value.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::runtime {

// A host function: an activity written as a C++ callable.
using ActivityFunction = std::function<Result<Value>(const Value &input, ActivityContext &)>;

// Functions `{type: "function", function_name: ...}` can name: the host's and the
// built-ins (function.h). A host function may replace a built-in of the same name.
class FunctionTable {
public:
  // With the built-ins echo, fail, sleep and log.
  FunctionTable();

  void add(std::string name, ActivityFunction function);
  [[nodiscard]] const ActivityFunction *find(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> names() const;

private:
  std::map<std::string, ActivityFunction, std::less<>> functions_;
};

// What a factory gets to build an activity from an implementation object.
struct ImplementationRequest {
  // The activity's name, for messages.
  std::string activityName;
  // The object as written, with a string `type`; templates unevaluated.
  Value implementation;
  // Where relative paths (a process `command` with a '/', a `cwd`) are resolved from; empty
  // means the engine's working directory. The engine passes the workflow file's directory.
  std::string baseDirectory;
  const FunctionTable &functions;
  EnvironmentLookup environment;
};

using ActivityFactory =
    std::function<Result<std::shared_ptr<Activity>>(const ImplementationRequest &)>;

// An activity bound when a run started (`kotoba-vm run --bind`), kept with the run so that
// every process that drives it binds the activity alike.
struct RunBinding {
  std::string name;
  Value implementation;
  // Where the binding's relative paths resolve from: the directory it was typed in.
  std::string baseDirectory;
};

// How a run's activities resolve, fixed when the run starts and stored with it (runs.host):
// the directory relative paths in the module's declarations resolve against (empty: the
// engine's EngineOptions::baseDirectory), and the run's own bindings.
struct RunHost {
  std::string baseDirectory;
  std::vector<RunBinding> bindings;
};

// The activities one module calls, resolved.
struct ModuleActivities {
  std::map<std::string, std::shared_ptr<Activity>, std::less<>> activities;
  // Names the module calls that nothing implements, sorted: the run is refused with this
  // list (runtime.md: "a run whose module needs an unbound activity is refused before it
  // starts, with the list of unbound names").
  std::vector<std::string> unbound;
  // Declarations whose implementation is invalid (InvalidImplementation errors naming the
  // activity); such a module cannot run either.
  std::vector<WorkflowError> problems;

  [[nodiscard]] std::shared_ptr<Activity> find(std::string_view name) const;
  [[nodiscard]] bool ready() const { return unbound.empty() && problems.empty(); }
};

// Thread-safe: binding and resolving take a lock, and resolved activities are immutable.
class ActivityRegistry {
public:
  // With the function and process factories, the placeholders for the planned types, the
  // process environment, and the built-in functions.
  ActivityRegistry();

  // Replaces the factory of `type` (the HTTP activity registers "http" here).
  void registerFactory(std::string type, ActivityFactory factory);
  // Makes `name` available to `{type: "function", function_name: name}`.
  void registerFunction(std::string name, ActivityFunction function);
  // The environment `$.env` reads (default: the process's).
  void setEnvironment(EnvironmentLookup environment);

  // Host bindings. Binding a name twice is an error (two `--bind charge=...` are a typo,
  // not an override); the first binding stays.
  [[nodiscard]] std::optional<WorkflowError> bind(std::string name,
                                                  std::shared_ptr<Activity> activity);
  [[nodiscard]] std::optional<WorkflowError> bindFunction(std::string name,
                                                          ActivityFunction function);
  // Binds `name` to an implementation object, as a declaration would (`--bind` uses this).
  [[nodiscard]] std::optional<WorkflowError>
  bindImplementation(std::string name, const Value &implementation, std::string baseDirectory = "");
  // Binds echo, fail, sleep and log as activity names, below declarations and host
  // bindings.
  void bindBuiltins();

  // Builds an activity from an implementation object (for bindings and declarations).
  [[nodiscard]] Result<std::shared_ptr<Activity>> create(std::string_view activityName,
                                                         const Value &implementation,
                                                         std::string_view baseDirectory = "") const;

  // The host binding (or built-in) of `name`, or null.
  [[nodiscard]] std::shared_ptr<Activity> findBound(std::string_view name) const;

  // Resolves every activity the module declares or calls. A name with a host binding gets
  // it; otherwise one of `runBindings`, then the declaration, then a built-in.
  [[nodiscard]] ModuleActivities resolve(const vm::Module &module,
                                         std::string_view baseDirectory = "",
                                         const std::vector<RunBinding> &runBindings = {}) const;

private:
  [[nodiscard]] Result<std::shared_ptr<Activity>>
  createLocked(std::string_view activityName, const Value &implementation,
               std::string_view baseDirectory) const;
  [[nodiscard]] std::shared_ptr<Activity> findBoundLocked(std::string_view name) const;

  mutable std::mutex mutex_;
  std::map<std::string, ActivityFactory, std::less<>> factories_;
  FunctionTable functions_;
  EnvironmentLookup environment_;
  std::map<std::string, std::shared_ptr<Activity>, std::less<>> hostBindings_;
  std::map<std::string, std::shared_ptr<Activity>, std::less<>> builtinBindings_;
};

} // namespace kotoba::runtime
