// The engine's public calls (see engine.h): modules, starting runs with validated inputs,
// outside inputs (signals, cancel, terminate, published events) and the driving loops.
#include "engine_internal.h"

#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/owner_identity.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <set>

namespace kotoba::runtime {

RunStatus storeStatus(vm::RunStatus status) {
  switch (status) {
  case vm::RunStatus::Running:
    return RunStatus::Running;
  case vm::RunStatus::Compensating:
    return RunStatus::Compensating;
  case vm::RunStatus::Completed:
    return RunStatus::Completed;
  case vm::RunStatus::Failed:
    return RunStatus::Failed;
  case vm::RunStatus::Cancelled:
    return RunStatus::Cancelled;
  case vm::RunStatus::TimedOut:
    return RunStatus::TimedOut;
  case vm::RunStatus::ContinuedAsNew:
    return RunStatus::ContinuedAsNew;
  }
  return RunStatus::Failed;
}

WorkflowError storeError(const StoreError &error) {
  return makeError(engine_errors::StoreFailure, error.message);
}

Object payload(std::initializer_list<std::pair<const char *, Value>> fields) {
  Object object;
  for (const auto &[key, value] : fields) {
    object.set(key, value);
  }
  return object;
}

std::string locationText(const vm::Module &module, const vm::SourceLocation &at) {
  if (at.line == 0 || at.file.index >= module.sourceFiles.size()) {
    return {};
  }
  return fmt::format("{}:{}", module.sourceFiles[at.file.index], at.line);
}

std::string newRunId() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{:016x}", generator());
}

namespace {

// With the process token, so that another process can take this one's runs over at once
// should it die (docs/durability.md, Leases).
std::string defaultOwner() {
  return ownerWithProcessToken(
      fmt::format("engine-{}-{}", static_cast<long>(::getpid()), newRunId().substr(0, 8)));
}

// A name that enters from outside (a signal's name, an event type, a termination reason)
// refused at the edge: not UTF-8, or, for a name that must match a wait's, empty or holding
// a control character, which no workflow can name. runtime.md section 7.
std::optional<WorkflowError> invalidText(std::string_view what, std::string_view text,
                                         bool isName) {
  if (std::optional<size_t> offset = findInvalidUtf8(text)) {
    return makeError(error_types::InvalidPayload,
                     fmt::format("the {} is not valid UTF-8: a bad byte at offset {}", what,
                                 *offset));
  }
  if (!isName) {
    return std::nullopt;
  }
  if (text.empty()) {
    return makeError(error_types::InvalidPayload, fmt::format("the {} is empty", what));
  }
  auto control = std::find_if(text.begin(), text.end(),
                              [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (control != text.end()) {
    return makeError(error_types::InvalidPayload,
                     fmt::format("the {} holds a control character at offset {}", what,
                                 control - text.begin()));
  }
  return std::nullopt;
}

// Every problem with a run's inputs at once, and the inputs with defaults applied.
Result<Value> validateInputs(const vm::Workflow &workflow, const Value &given) {
  if (!given.isObject()) {
    return makeError(
        error_types::InputValidationError,
        fmt::format("the inputs must be a JSON object, found {}", describeValue(given)));
  }
  Array problems;
  Object inputs;
  for (const vm::Param &param : workflow.inputs) {
    const Value *value = given.asObject().find(param.name);
    if (value == nullptr || value->isNull()) {
      if (value == nullptr && param.defaultValue) {
        inputs.set(param.name, *param.defaultValue);
      } else if (param.required) {
        problems.push_back(Value(fmt::format("input '{}' is required", param.name)));
      } else {
        inputs.set(param.name, Value());
      }
      continue;
    }
    Result<ParamType> type = parseParamType(param.type);
    if (type.ok()) {
      if (std::optional<std::string> mismatch = checkParamType(*value, type.value())) {
        problems.push_back(
            Value(fmt::format("input '{}' ({}): {}", param.name, param.type, *mismatch)));
        continue;
      }
    }
    inputs.set(param.name, *value);
  }
  for (const ObjectEntry &entry : given.asObject()) {
    bool declared = false;
    for (const vm::Param &param : workflow.inputs) {
      declared = declared || param.name == entry.key;
    }
    if (!declared) {
      problems.push_back(Value(fmt::format("unknown input '{}'", entry.key)));
    }
  }
  if (!problems.empty()) {
    std::string message = fmt::format("the inputs of workflow '{}' are invalid:", workflow.id);
    for (const Value &problem : problems) {
      message += " " + problem.asString() + ";";
    }
    message.pop_back();
    return makeError(error_types::InputValidationError, std::move(message),
                     Value(std::move(problems)));
  }
  return Value(std::move(inputs));
}

// The engine's executor: the engine's thread count and payload limit, defaults otherwise.
ExecutorOptions executorOptions(const EngineOptions &options) {
  ExecutorOptions executor;
  executor.threads = options.executorThreads;
  executor.payloadLimitBytes = options.payloadLimitBytes;
  return executor;
}

} // namespace

Engine::Impl::Impl(Store &store, ActivityRegistry &activities, Clock &clock, EngineOptions options)
    : store(store), activities(activities), clock(clock), options(std::move(options)),
      executor(clock, executorOptions(this->options)) {
  if (this->options.owner.empty()) {
    this->options.owner = defaultOwner();
  }
}

Engine::Engine(Store &store, ActivityRegistry &activities, Clock &clock, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, activities, clock, std::move(options))) {}

Engine::~Engine() {
  impl_->executor.shutdown();
  // Hand the runs back at once rather than making another process wait out the leases:
  // those loaded, and those created here (a child, a continuation) that no step loaded yet,
  // since creating a run leases it to its creator. A release only removes this engine's own
  // lease, so a dirty run another engine holds keeps its lease.
  std::set<std::string> held(impl_->dirty.begin(), impl_->dirty.end());
  for (const auto &[runId, run] : impl_->runs) {
    held.insert(runId);
  }
  if (!held.empty()) {
    (void)impl_->store.write([&](Transaction &tx) -> StoreStatus {
      for (const std::string &runId : held) {
        auto released = tx.releaseLease(runId, impl_->options.owner);
        if (!released.ok()) {
          return std::move(released).error();
        }
      }
      return {};
    });
  }
}

Result<std::string> Engine::addModule(const vm::Module &module) {
  std::vector<uint8_t> bytes = vm::writeModule(module);
  std::string hash = vm::hashToHex(vm::computeContentHash(bytes));
  int64_t at = impl_->now();
  StoreStatus status = impl_->store.write([&](Transaction &tx) -> StoreStatus {
    auto put = tx.putModule(hash, bytes, at);
    return put.ok() ? StoreStatus() : StoreStatus(std::move(put).error());
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  impl_->modules[hash] = std::make_shared<const vm::Module>(module);
  return hash;
}

void Engine::registerPredicate(std::string name, PredicateFunction predicate) {
  impl_->predicates[std::move(name)] = std::move(predicate);
}

ModuleActivities Engine::Impl::resolveActivities(const vm::Module &module,
                                                 const Value &host) const {
  if (host.isNull()) {
    return activities.resolve(module, options.baseDirectory);
  }
  Result<RunHost> stored = runHostFromValue(host);
  if (!stored.ok()) {
    ModuleActivities broken; // every task of the run fails with the reason
    broken.problems.push_back(stored.error());
    return broken;
  }
  const RunHost &runHost = stored.value();
  return activities.resolve(module,
                            runHost.baseDirectory.empty() ? std::string_view(options.baseDirectory)
                                                          : std::string_view(runHost.baseDirectory),
                            runHost.bindings);
}

std::string Engine::Impl::activitiesKey(const std::string &moduleHash, const Value &host) {
  return host.isNull() ? moduleHash : moduleHash + " " + toJson(host);
}

ModuleActivities &Engine::Impl::activitiesFor(const std::string &moduleHash,
                                              const vm::Module &module, const Value &host) {
  std::string key = activitiesKey(moduleHash, host);
  auto found = moduleActivities.find(key);
  if (found == moduleActivities.end()) {
    found = moduleActivities.emplace(key, resolveActivities(module, host)).first;
  }
  return found->second;
}

Result<std::string> Engine::start(const StartRequest &request) {
  Impl &impl = *impl_;
  auto module = impl.moduleByHash(request.moduleHash);
  if (!module.ok()) {
    return module.error();
  }
  const vm::Module &code = *module.value();
  const vm::Workflow *workflow =
      request.workflowId.empty() ? &code.workflows.front() : code.findWorkflow(request.workflowId);
  if (workflow == nullptr) {
    return makeError(engine_errors::UnknownWorkflow,
                     fmt::format("the module has no workflow '{}'", request.workflowId));
  }
  Result<Value> inputs = validateInputs(*workflow, request.inputs);
  if (!inputs.ok()) {
    return inputs.error();
  }
  if (toJson(inputs.value()).size() > impl.options.payloadLimitBytes) {
    return makeError(
        error_types::PayloadTooLarge,
        fmt::format("the inputs are over the {} byte limit", impl.options.payloadLimitBytes));
  }
  for (const auto &[name, signal] : request.signals) {
    if (std::optional<WorkflowError> invalid = invalidText("signal name", name, true)) {
      return *invalid;
    }
  }
  // Everything the module may call must be there before the run exists.
  Value host = request.host ? runHostToValue(*request.host) : Value();
  ModuleActivities resolved = impl.resolveActivities(code, host);
  std::vector<std::string> missing = resolved.unbound;
  for (const vm::Workflow &each : code.workflows) {
    for (const std::string &predicate : each.hostPredicates) {
      if (!impl.predicates.contains(predicate)) {
        missing.push_back("predicate " + predicate);
      }
    }
  }
  if (!missing.empty() || !resolved.problems.empty()) {
    std::string list;
    for (const std::string &name : missing) {
      list += (list.empty() ? "" : ", ") + name;
    }
    for (const WorkflowError &problem : resolved.problems) {
      list += (list.empty() ? "" : "; ") + problem.message;
    }
    Array names;
    for (const std::string &name : missing) {
      names.push_back(Value(name));
    }
    return makeError(engine_errors::UnboundActivities,
                     fmt::format("the run needs activities the host has not bound: {}; bind "
                                 "them with --bind NAME=SPEC or register them",
                                 list),
                     Value(std::move(names)));
  }
  impl.moduleActivities.insert_or_assign(Impl::activitiesKey(request.moduleHash, host),
                                         std::move(resolved));

  std::string runId = request.runId.value_or(newRunId());
  uint32_t index = static_cast<uint32_t>(workflow - code.workflows.data());
  int64_t at = impl.now();
  std::optional<WorkflowError> failure;
  StoreStatus status = impl.store.write([&](Transaction &tx) -> StoreStatus {
    auto created = impl.createRun(tx, runId, "", request.moduleHash, code, index, inputs.value(),
                                  {}, {}, host, at);
    if (!created.ok()) {
      failure = created.error();
      return StoreError{StoreErrorKind::Invalid, created.error().message};
    }
    for (const auto &[name, signal] : request.signals) {
      auto added = tx.addInboxMessage(runId, InboxKind::Signal, name, signal, at);
      if (!added.ok()) {
        return std::move(added).error();
      }
    }
    return {};
  });
  if (!status.ok()) {
    return failure ? *failure : storeError(status.error());
  }
  std::optional<WorkflowError> error;
  if (impl.load(runId, error) == nullptr && error) {
    return *error;
  }
  return runId;
}

namespace {

// The run a message for `runId` should go to: itself while it runs, else refused.
Result<RunRecord> liveRun(Store &store, const std::string &runId) {
  auto record = store.query([&](const StoreReader &reader) { return reader.run(runId); });
  if (!record.ok()) {
    return storeError(record.error());
  }
  if (!record.value()) {
    return makeError(engine_errors::RunNotFound, fmt::format("no run '{}' in the store", runId));
  }
  RunRecord run = std::move(*record.value());
  if (isFinalStatus(run.status)) {
    return makeError(engine_errors::RunFinished, fmt::format("run '{}' has already finished ({})",
                                                             runId, runStatusName(run.status)));
  }
  return run;
}

} // namespace

Result<bool> Engine::signal(const std::string &runId, const std::string &name,
                            const Value &payloadValue) {
  if (std::optional<WorkflowError> invalid = invalidText("signal name", name, true)) {
    return *invalid;
  }
  Result<RunRecord> run = liveRun(impl_->store, runId);
  if (!run.ok()) {
    return run.error();
  }
  if (toJson(payloadValue).size() > impl_->options.payloadLimitBytes) {
    return makeError(error_types::PayloadTooLarge, "the signal payload is over the limit");
  }
  int64_t at = impl_->now();
  StoreStatus status = impl_->store.write([&](Transaction &tx) -> StoreStatus {
    auto added = tx.addInboxMessage(runId, InboxKind::Signal, name, payloadValue, at);
    return added.ok() ? StoreStatus() : StoreStatus(std::move(added).error());
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  impl_->clock.wake();
  return true;
}

Result<bool> Engine::cancel(const std::string &runId) {
  Result<RunRecord> run = liveRun(impl_->store, runId);
  if (!run.ok()) {
    return run.error();
  }
  int64_t at = impl_->now();
  StoreStatus status = impl_->store.write([&](Transaction &tx) -> StoreStatus {
    auto added = tx.addInboxMessage(runId, InboxKind::Cancel, "", Value(), at);
    return added.ok() ? StoreStatus() : StoreStatus(std::move(added).error());
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  impl_->clock.wake();
  return true;
}

Result<bool> Engine::terminate(const std::string &runId, const std::string &reason) {
  if (std::optional<WorkflowError> invalid = invalidText("reason", reason, false)) {
    return *invalid;
  }
  Result<RunRecord> run = liveRun(impl_->store, runId);
  if (!run.ok()) {
    return run.error();
  }
  int64_t at = impl_->now();
  StoreStatus status = impl_->store.write([&](Transaction &tx) -> StoreStatus {
    auto added = tx.addInboxMessage(runId, InboxKind::Terminate, reason, Value(reason), at);
    return added.ok() ? StoreStatus() : StoreStatus(std::move(added).error());
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  impl_->clock.wake();
  return true;
}

Result<int64_t> Engine::emit(const std::string &type, const Value &payloadValue) {
  if (std::optional<WorkflowError> invalid = invalidText("event type", type, true)) {
    return *invalid;
  }
  if (toJson(payloadValue).size() > impl_->options.payloadLimitBytes) {
    return makeError(error_types::PayloadTooLarge, "the event payload is over the limit");
  }
  int64_t id = 0;
  int64_t at = impl_->now();
  StoreStatus status = impl_->store.write([&](Transaction &tx) -> StoreStatus {
    auto published = tx.publishEvent(type, payloadValue, at);
    if (!published.ok()) {
      return std::move(published).error();
    }
    id = published.value();
    return {};
  });
  if (!status.ok()) {
    return storeError(status.error());
  }
  impl_->lastPublishedCheck = -1;
  impl_->clock.wake();
  return id;
}

Result<bool> Engine::step() {
  return impl_->step();
}

Result<RunOutcome> Engine::outcome(const std::string &runId) {
  std::string current = runId;
  for (int hops = 0; hops < 100000; ++hops) {
    auto record =
        impl_->store.query([&](const StoreReader &reader) { return reader.run(current); });
    if (!record.ok()) {
      return storeError(record.error());
    }
    if (!record.value()) {
      return makeError(engine_errors::RunNotFound,
                       fmt::format("no run '{}' in the store", current));
    }
    const RunRecord &run = *record.value();
    if (run.status == RunStatus::ContinuedAsNew) {
      // The run's last event names the run it continued as.
      auto events = impl_->store.query([&](const StoreReader &reader) {
        return reader.events(current, EventRange{std::max<int64_t>(1, run.lastSeq), {}, {}});
      });
      if (!events.ok()) {
        return storeError(events.error());
      }
      const Value *next = nullptr;
      for (const EventRecord &event : events.value()) {
        if (event.type == EventType::WorkflowContinuedAsNew && event.payload.isObject()) {
          next = event.payload.asObject().find("next_run_id");
        }
      }
      if (next != nullptr && next->isString()) {
        current = next->asString();
        continue;
      }
    }
    if (run.status == RunStatus::Failed) {
      // A workflow retry_policy may start another attempt: follow it, or wait for it.
      auto events = impl_->store.query([&](const StoreReader &reader) {
        return reader.events(current, EventRange{std::max<int64_t>(1, run.lastSeq), {}, {}});
      });
      if (!events.ok()) {
        return storeError(events.error());
      }
      const Value *retry = nullptr;
      for (const EventRecord &event : events.value()) {
        if (event.type == EventType::WorkflowFailed && event.payload.isObject()) {
          retry = event.payload.asObject().find("will_retry");
        }
      }
      if (retry != nullptr && retry->isBool() && retry->asBool()) {
        auto chain = impl_->store.query(
            [&](const StoreReader &reader) { return reader.chain(run.chainId); });
        if (!chain.ok()) {
          return storeError(chain.error());
        }
        std::optional<std::string> next;
        for (const RunRecord &candidate : chain.value()) {
          if (candidate.attempt == run.attempt + 1) {
            next = candidate.id;
          }
        }
        if (next) {
          current = *next;
          continue;
        }
        RunOutcome pending;
        pending.status = RunStatus::Running; // the next attempt has not started yet
        pending.runId = current;
        return pending;
      }
    }
    RunOutcome outcome;
    outcome.status = run.status;
    outcome.outputs = run.outputs.value_or(Value());
    if (run.error) {
      outcome.error = workflowErrorFromValue(*run.error);
    }
    outcome.runId = current;
    return outcome;
  }
  return makeError(engine_errors::RunNotFound, "the continue-as-new chain does not end");
}

Result<RunOutcome> Engine::runToCompletion(const std::string &runId) {
  while (!impl_->stopping) {
    // A run loaded here has not ended: the commit that ends it evicts it. Only a run that is
    // not loaded needs its row read (6% of a step when read every turn, bench/findings.md).
    if (!impl_->runs.contains(runId)) {
      Result<RunOutcome> current = outcome(runId);
      if (!current.ok()) {
        return current;
      }
      RunStatus status = current.value().status;
      if (isFinalStatus(status) || status == RunStatus::Blocked) {
        return current;
      }
    }
    Result<bool> progressed = impl_->step();
    if (!progressed.ok()) {
      return progressed.error();
    }
    if (!progressed.value() && !impl_->waitForWork(/*stopWhenOnlyExternal=*/false)) {
      return outcome(runId); // nothing more can happen without a signal or an event
    }
  }
  return outcome(runId);
}

Result<bool> Engine::runUntilIdle() {
  while (!impl_->stopping) {
    Result<bool> progressed = impl_->step();
    if (!progressed.ok()) {
      return progressed;
    }
    if (!progressed.value() && !impl_->waitForWork(/*stopWhenOnlyExternal=*/true)) {
      return true;
    }
  }
  return true;
}

Result<bool> Engine::runForever() {
  while (!impl_->stopping) {
    Result<bool> progressed = impl_->step();
    if (!progressed.ok()) {
      return progressed;
    }
    if (!progressed.value()) {
      (void)impl_->waitForWork(/*stopWhenOnlyExternal=*/false);
    }
  }
  return true;
}

void Engine::stop() {
  impl_->stopping = true;
  impl_->clock.wake();
}

} // namespace kotoba::runtime
