// The commands that drive runs: `run` starts one and drives it to its end (or detaches),
// `resume` drives an existing one (after a crash, a detach, or a fix of a BLOCKED run), and
// `worker` drives everything in the store. All three print a run's end the same way.
#include "cli_commands.h"
#include "cli_engine.h"
#include "cli_interrupt.h"
#include "cli_module.h"
#include "cli_support.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <cassert>
#include <cstdlib>
#include <iostream>

namespace kotoba::cli {

namespace {

using runtime::RunOutcome;
using runtime::RunStatus;

// `--signal NAME=JSON`
CliResult<std::pair<std::string, Value>> parseSignalOption(const std::string &option) {
  size_t equals = option.find('=');
  if (equals == std::string::npos || equals == 0) {
    return usageFailure("--signal " + option + ": expected NAME=JSON, such as approve=true");
  }
  std::string name = option.substr(0, equals);
  CliResult<Value> payload = parseJsonArgument(option.substr(equals + 1), "--signal " + name);
  if (!payload.ok()) {
    return payload.failure();
  }
  return std::pair<std::string, Value>(std::move(name), std::move(payload).value());
}

CliResult<Value> parseInputs(const std::optional<std::string> &input) {
  if (!input) {
    return Value(Object());
  }
  CliResult<Value> inputs = parseJsonArgument(*input, "--input");
  if (!inputs.ok()) {
    return inputs.failure();
  }
  if (!inputs.value().isObject()) {
    return usageFailure("--input: the inputs must be a JSON object, found " +
                        describeValue(inputs.value()));
  }
  return inputs;
}

// Ctrl-C while a run is driven: the first asks the engine to stop (the run stays durable
// and another process can carry on), the second gives up waiting for it.
void stopOnInterrupt(InterruptWatcher &watcher, runtime::Engine &engine) {
  watcher.onInterrupt([&engine](int count) {
    if (count == 1) {
      note("interrupted; stopping after the current step (Ctrl-C again to exit at once)");
      engine.stop();
      return;
    }
    std::_Exit(static_cast<int>(ExitCode::Interrupted));
  });
}

// Prints how a run ended and returns the exit code for it.
int reportOutcome(const GlobalOptions &global, const RunOutcome &outcome, bool interrupted) {
  std::string status(runtime::runStatusName(outcome.status));
  Object json;
  json.set("run_id", outcome.runId);
  json.set("status", status);
  switch (outcome.status) {
  case RunStatus::Completed:
    if (global.json) {
      json.set("outputs", outcome.outputs);
      printJson(Value(std::move(json)));
    } else {
      printJson(outcome.outputs);
    }
    return static_cast<int>(ExitCode::Completed);
  case RunStatus::Failed:
  case RunStatus::Cancelled:
  case RunStatus::TimedOut:
  case RunStatus::Terminated: {
    std::cerr << "kotoba-vm: run " << outcome.runId << " " << status << "\n";
    if (outcome.error) {
      for (const std::string &line : describeError(*outcome.error)) {
        std::cerr << "  " << line << "\n";
      }
    }
    if (global.json) {
      json.set("error", outcome.error ? outcome.error->toValue() : Value(nullptr));
      printJson(Value(std::move(json)));
    }
    return static_cast<int>(ExitCode::RunFailed);
  }
  case RunStatus::Blocked: {
    WorkflowError error = outcome.error.value_or(makeError("Blocked", "the engine gave no reason"));
    Failure failure = engineFailure(error, ExitCode::StoreError);
    bool namesRun = failure.message.find(outcome.runId) != std::string::npos;
    failure.message =
        (namesRun ? "BLOCKED: " : "run " + outcome.runId + " is BLOCKED: ") + failure.message;
    failure.notes.push_back("fix the cause, then `kotoba-vm resume " + outcome.runId + "`");
    if (global.json) {
      json.set("error", error.toValue());
      printJson(Value(std::move(json)));
    }
    return report(failure);
  }
  case RunStatus::Running:
  case RunStatus::Compensating:
  case RunStatus::ContinuedAsNew:
    if (global.json) {
      printJson(Value(std::move(json)));
    }
    if (interrupted) {
      note("run " + outcome.runId + " is still " + status + "; continue it with " +
           "`kotoba-vm resume " + outcome.runId + "` or a worker");
      return static_cast<int>(ExitCode::Interrupted);
    }
    // Under a virtual clock the engine returns instead of waiting forever when only a
    // signal or an event could move the run on. The run is durable and waits, as after
    // --detach.
    note("run " + outcome.runId + " is waiting for a signal or an event; send it with " +
         "`kotoba-vm signal " + outcome.runId + " NAME [JSON]` or `kotoba-vm emit`, then " +
         "`kotoba-vm resume " + outcome.runId + "`");
    return static_cast<int>(ExitCode::Completed);
  }
  // Every status is handled above; only a value outside the enum gets here.
  assert(false && "reportOutcome: a run status outside RunStatus");
  return static_cast<int>(ExitCode::StoreError);
}

int driveToEnd(const GlobalOptions &global, runtime::Engine &engine, const std::string &runId,
               const InterruptWatcher &watcher) {
  Result<RunOutcome> outcome = engine.runToCompletion(runId);
  if (!outcome.ok()) {
    return report(engineFailure(outcome.error(), ExitCode::StoreError));
  }
  return reportOutcome(global, outcome.value(), watcher.interrupted());
}

} // namespace

int runCommand(const GlobalOptions &global, const RunOptions &options) {
  // Everything that can be refused without the store is checked first, so that a mistake
  // on the command line leaves no trace in it.
  CliResult<Value> inputs = parseInputs(options.input);
  if (!inputs.ok()) {
    return report(inputs.failure());
  }
  std::vector<std::pair<std::string, Value>> signals;
  for (const std::string &option : options.signals) {
    CliResult<std::pair<std::string, Value>> signal = parseSignalOption(option);
    if (!signal.ok()) {
      return report(signal.failure());
    }
    signals.push_back(std::move(signal).value());
  }
  CliResult<std::unique_ptr<runtime::ActivityRegistry>> activities = makeActivities(options.engine);
  if (!activities.ok()) {
    return report(activities.failure());
  }
  CliResult<LoadedWorkflowModule> loaded = loadWorkflowModule(options.file);
  if (!loaded.ok()) {
    return report(loaded.failure());
  }
  CliResult<const vm::Workflow *> workflow =
      findWorkflow(loaded.value().module, options.workflowId);
  if (!workflow.ok()) {
    return report(workflow.failure());
  }

  InterruptWatcher watcher;
  CliResult<std::unique_ptr<runtime::Store>> store = openStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  EngineSession session = startEngine(std::move(store).value(), std::move(activities).value(),
                                      options.engine, loaded.value().baseDirectory);
  runtime::Engine &engine = *session.engine;
  stopOnInterrupt(watcher, engine);

  Result<std::string> moduleHash = engine.addModule(loaded.value().module);
  if (!moduleHash.ok()) {
    return report(engineFailure(moduleHash.error(), ExitCode::StoreError));
  }
  runtime::StartRequest request;
  request.moduleHash = moduleHash.value();
  request.workflowId = workflow.value()->id;
  request.inputs = std::move(inputs).value();
  request.signals = std::move(signals);
  // Kept with the run, so that a worker or a resume anywhere finds the same files and the
  // same bindings as this command.
  request.host = runtime::RunHost{loaded.value().baseDirectory, runBindings(options.engine)};
  Result<std::string> runId = engine.start(request);
  if (!runId.ok()) {
    Failure failure = engineFailure(runId.error(), ExitCode::Usage);
    std::string workflowName = "workflow '" + request.workflowId + "'";
    if (failure.message.find(workflowName) == std::string::npos) {
      failure.message = "cannot start " + workflowName + ": " + failure.message;
    }
    return report(failure);
  }

  if (options.detach) {
    if (global.json) {
      Object json;
      json.set("run_id", runId.value());
      json.set("status", std::string(runtime::runStatusName(RunStatus::Running)));
      printJson(Value(std::move(json)));
    } else {
      std::cout << runId.value() << "\n";
    }
    return static_cast<int>(ExitCode::Completed);
  }
  return driveToEnd(global, engine, runId.value(), watcher);
}

int resumeCommand(const GlobalOptions &global, const ResumeOptions &options) {
  CliResult<std::unique_ptr<runtime::ActivityRegistry>> activities = makeActivities(options.engine);
  if (!activities.ok()) {
    return report(activities.failure());
  }
  InterruptWatcher watcher;
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  if (!store.value()) {
    return report(usageFailure("no run has id '" + options.runId + "': there is no store at '" +
                               global.dbPath + "'"));
  }

  // Only a BLOCKED run needs its status changed before it is driven again: the check and
  // the change are one transaction, so a run another process finished meanwhile stays as
  // it is.
  std::optional<RunStatus> statusBefore;
  runtime::StoreStatus reopened = store.value()->write([&](runtime::Transaction &tx) {
    runtime::StoreResult<std::optional<runtime::RunRecord>> run = tx.run(options.runId);
    if (!run.ok()) {
      return runtime::StoreStatus(run.error());
    }
    statusBefore.reset();
    if (!run.value()) {
      return runtime::StoreStatus();
    }
    statusBefore = run.value()->status;
    if (*statusBefore != RunStatus::Blocked) {
      return runtime::StoreStatus();
    }
    runtime::RunUpdate update;
    update.timeMs = wallClockMs();
    update.status = RunStatus::Running;
    update.error = Value(nullptr);
    return tx.updateRun(options.runId, update);
  });
  if (!reopened.ok()) {
    return report(storeFailure(reopened.error()));
  }
  if (!statusBefore) {
    return report(usageFailure("no run has id '" + options.runId + "'"));
  }
  if (runtime::isFinalStatus(*statusBefore)) {
    return report(usageFailure("run " + options.runId + " has already finished (" +
                               std::string(runtime::runStatusName(*statusBefore)) +
                               "); only a running or BLOCKED run can be resumed"));
  }

  std::string baseDirectory =
      options.baseDirectory.empty() ? currentDirectory() : absoluteDirectory(options.baseDirectory);
  EngineSession session = startEngine(std::move(store).value(), std::move(activities).value(),
                                      options.engine, baseDirectory);
  stopOnInterrupt(watcher, *session.engine);
  return driveToEnd(global, *session.engine, options.runId, watcher);
}

int workerCommand(const GlobalOptions &global, const WorkerOptions &options) {
  CliResult<std::unique_ptr<runtime::ActivityRegistry>> activities = makeActivities(options.engine);
  if (!activities.ok()) {
    return report(activities.failure());
  }
  InterruptWatcher watcher;
  // A worker that only drains the store has nothing to do without one: usually it was started
  // in another directory than the runs. A worker that keeps running creates the store and
  // waits for runs to be started in it.
  CliResult<std::unique_ptr<runtime::Store>> store =
      options.untilIdle ? openExistingStore(global) : openStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  if (!store.value()) {
    return report(usageFailure(fmt::format(
        "there is no store at '{}': run the worker where the runs were started, or name their "
        "store with --db PATH",
        global.dbPath)));
  }
  std::string baseDirectory =
      options.baseDirectory.empty() ? currentDirectory() : absoluteDirectory(options.baseDirectory);
  EngineSession session = startEngine(std::move(store).value(), std::move(activities).value(),
                                      options.engine, baseDirectory);
  runtime::Engine &engine = *session.engine;
  watcher.onInterrupt([&engine](int count) {
    if (count == 1) {
      note("stopping the worker (Ctrl-C again to exit at once)");
      engine.stop();
      return;
    }
    std::_Exit(static_cast<int>(ExitCode::Interrupted));
  });

  Result<bool> stopped = options.untilIdle ? engine.runUntilIdle() : engine.runForever();
  if (!stopped.ok()) {
    return report(engineFailure(stopped.error(), ExitCode::StoreError));
  }

  // Say what is left, so that a worker that went idle is not mistaken for one that finished
  // everything.
  runtime::RunQuery query;
  query.status = RunStatus::Running;
  runtime::StoreResult<std::vector<runtime::RunRecord>> waiting =
      session.store->query([&](const runtime::StoreReader &reader) { return reader.runs(query); });
  query.status = RunStatus::Blocked;
  runtime::StoreResult<std::vector<runtime::RunRecord>> blocked =
      session.store->query([&](const runtime::StoreReader &reader) { return reader.runs(query); });
  if (!waiting.ok() || !blocked.ok()) {
    return report(storeFailure(!waiting.ok() ? waiting.error() : blocked.error()));
  }
  if (!waiting.value().empty()) {
    note(std::to_string(waiting.value().size()) + " run(s) still running" +
         (watcher.interrupted() ? "" : ", waiting for a signal or an event"));
  }
  if (!blocked.value().empty()) {
    note(std::to_string(blocked.value().size()) +
         " run(s) BLOCKED; `kotoba-vm list --status BLOCKED` shows them");
  }
  if (global.json) {
    Object json;
    json.set("stopped", watcher.interrupted() ? "interrupted" : "idle");
    json.set("running", static_cast<int64_t>(waiting.value().size()));
    json.set("blocked", static_cast<int64_t>(blocked.value().size()));
    printJson(Value(std::move(json)));
  }
  return static_cast<int>(ExitCode::Completed);
}

} // namespace kotoba::cli
