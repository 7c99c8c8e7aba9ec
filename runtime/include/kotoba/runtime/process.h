// The `process` activity: runs a program for each attempt.
//
//   { type: "process", command: "./activities/reserve.sh",
//     args: ["--order", "${$.input.order_id}"], env: { LOG: "1" }, cwd: "work",
//     inherit_env: true }
//
// The protocol (docs/activities.md has the long form):
//   - `command` and `args` become the program's argv as they are: no shell ever sees them,
//     so `$(rm -rf /)` or `'; DROP TABLE x; --` in an input is just text. A command
//     without '/' is looked up in PATH; a relative one with '/' (and a relative `cwd`) is
//     resolved from the base directory (the workflow file's directory, else the engine's).
//   - The environment is the engine's (unless inherit_env is false) plus `env` (a null value
//     removes a variable) plus KOTOBA_RUN_ID, KOTOBA_STEP_ID, KOTOBA_ACTIVITY,
//     KOTOBA_ATTEMPT and KOTOBA_IDEMPOTENCY_KEY.
//   - The input is written to stdin as compact JSON, then stdin is closed.
//   - Exit status 0: stdout is the result, parsed as JSON; text that is not JSON becomes a
//     string (trailing line breaks removed); empty output is null.
//   - Any other exit: if stderr is a JSON error object {type, message, details, retryable},
//     or its last non-empty line is one, that is the error; otherwise ProcessFailed
//     (retryable) with the exit code or signal and the last lines of stderr in details.
//   - stdout over the payload limit stops the process: PayloadTooLarge, not retryable.
//   - On timeout or cancel the process group gets SIGTERM, then SIGKILL after a grace
//     period. When the program exits, whatever it left running in its process group
//     gets a short time to close stdout and stderr, then SIGKILL. The program is always
//     reaped, and no descriptor of the engine leaks into it (close-on-exec everywhere, and
//     every descriptor above 2 closed in the child).
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/activity_template.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::runtime {

struct ProcessOptions {
  // Between SIGTERM and SIGKILL when an attempt is stopped.
  int64_t killGraceMs = 2000;
  // After the program exits, how long whatever it started may keep stdout or stderr open
  // before the process group is killed.
  int64_t orphanDrainMs = 200;
  // How much of the end of stderr is kept, to find an error object and report the tail.
  size_t stderrTailBytes = 64 * 1024;
  // How many lines of stderr go into a ProcessFailed error's details.
  size_t stderrDetailLines = 20;
};

// One program to run, with everything resolved (templates evaluated, paths made absolute).
struct ProcessSpec {
  // An absolute path, or a bare name looked up in PATH.
  std::string command;
  std::vector<std::string> args;
  // Variables to set; nullopt removes the variable.
  std::map<std::string, std::optional<std::string>> env;
  bool inheritEnvironment = true;
  // Empty: the engine's working directory.
  std::string cwd;
};

// Runs `spec` with `stdinText` on stdin until it exits, the attempt is asked to stop, or
// stdout passes context.payloadLimitBytes(), and turns the outcome into a result or error
// as described above.
[[nodiscard]] Result<Value> runProcess(const ProcessSpec &spec, std::string_view stdinText,
                                       ActivityContext &context,
                                       const ProcessOptions &options = {});

class ProcessActivity final : public Activity {
public:
  // `implementation` is the compiled implementation object, already checked by the factory.
  ProcessActivity(std::string activityName, TemplateValue implementation, std::string baseDirectory,
                  EnvironmentLookup environment, ProcessOptions options);

  [[nodiscard]] Result<Value> run(const Value &input, ActivityContext &context) override;
  [[nodiscard]] std::string_view type() const override { return "process"; }

  // The spec one attempt would run with this input (templates evaluated), for run() and
  // for tests.
  [[nodiscard]] Result<ProcessSpec> resolve(const Value &input, ActivityContext &context) const;

private:
  std::string activityName_;
  TemplateValue implementation_;
  std::string baseDirectory_;
  EnvironmentLookup environment_;
  ProcessOptions options_;
};

// The factory of `{type: "process", ...}`: checks the fields (command a string, args an
// array, env an object, cwd a string, inherit_env a boolean, nothing else) and compiles the
// templates.
[[nodiscard]] ActivityFactory processActivityFactory(ProcessOptions options = {});

} // namespace kotoba::runtime
