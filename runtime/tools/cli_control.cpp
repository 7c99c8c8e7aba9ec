// The commands that hand the engine an outside input: `signal`, `emit`, `cancel` and
// `terminate`. Each one is recorded durably (a run's inbox, or the published events) and
// the command returns; whichever process drives the run (`run`, `resume`, a worker) acts on
// it. They are silent on success, and print what they recorded with --json.
#include "cli_commands.h"
#include "cli_engine.h"
#include "cli_support.h"

#include <functional>

namespace kotoba::cli {

namespace {

// Opens the store for a command about one run. A store that does not exist holds no run,
// and is not created just to say so.
CliResult<EngineSession> controlSession(const GlobalOptions &global, const std::string &runId) {
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return store.failure();
  }
  if (!store.value()) {
    return usageFailure("no run has id '" + runId + "': there is no store at '" + global.dbPath +
                        "'");
  }
  return startControlEngine(std::move(store).value());
}

// Runs one engine call about `runId` and prints `json` when it succeeds.
int controlRun(const GlobalOptions &global, const std::string &runId, std::string_view what,
               const std::function<Result<bool>(runtime::Engine &)> &call, Object json) {
  CliResult<EngineSession> session = controlSession(global, runId);
  if (!session.ok()) {
    return report(session.failure());
  }
  Result<bool> done = call(*session.value().engine);
  if (!done.ok()) {
    Failure failure = engineFailure(done.error(), ExitCode::Usage);
    failure.message = "cannot " + std::string(what) + " run " + runId + ": " + failure.message;
    return report(failure);
  }
  if (global.json) {
    json.set("run_id", runId);
    printJson(Value(std::move(json)));
  }
  return static_cast<int>(ExitCode::Completed);
}

CliResult<Value> optionalPayload(const std::optional<std::string> &text, std::string_view what) {
  if (!text) {
    return Value(nullptr);
  }
  return parseJsonArgument(*text, what);
}

} // namespace

int signalCommand(const GlobalOptions &global, const SignalOptions &options) {
  CliResult<Value> payload = optionalPayload(options.payload, "the signal payload");
  if (!payload.ok()) {
    return report(payload.failure());
  }
  Object json;
  json.set("signal", options.name);
  json.set("payload", payload.value());
  return controlRun(
      global, options.runId, "signal",
      [&](runtime::Engine &engine) {
        return engine.signal(options.runId, options.name, payload.value());
      },
      std::move(json));
}

int cancelCommand(const GlobalOptions &global, const std::string &runId) {
  Object json;
  json.set("requested", "cancel");
  return controlRun(
      global, runId, "cancel", [&](runtime::Engine &engine) { return engine.cancel(runId); },
      std::move(json));
}

int terminateCommand(const GlobalOptions &global, const TerminateOptions &options) {
  Object json;
  json.set("requested", "terminate");
  json.set("reason", options.reason);
  return controlRun(
      global, options.runId, "terminate",
      [&](runtime::Engine &engine) { return engine.terminate(options.runId, options.reason); },
      std::move(json));
}

int emitCommand(const GlobalOptions &global, const EmitOptions &options) {
  if (options.type.empty()) {
    return report(usageFailure("the event type is empty; name it, as in `emit order_paid`"));
  }
  CliResult<Value> payload = optionalPayload(options.payload, "the event payload");
  if (!payload.ok()) {
    return report(payload.failure());
  }
  // An event is published to the whole store, including runs started later, so emitting
  // into a store that does not exist yet creates it.
  CliResult<std::unique_ptr<runtime::Store>> store = openStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  EngineSession session = startControlEngine(std::move(store).value());
  Result<int64_t> eventId = session.engine->emit(options.type, payload.value());
  if (!eventId.ok()) {
    Failure failure = engineFailure(eventId.error(), ExitCode::Usage);
    failure.message = "cannot emit '" + options.type + "': " + failure.message;
    return report(failure);
  }
  if (global.json) {
    Object json;
    json.set("event_id", eventId.value());
    json.set("type", options.type);
    json.set("payload", payload.value());
    printJson(Value(std::move(json)));
  }
  return static_cast<int>(ExitCode::Completed);
}

} // namespace kotoba::cli
