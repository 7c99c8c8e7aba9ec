// The kotoba-vm commands, one function each, with the options CLI11 fills in for them.
// Every function prints its result, reports its failure, and returns the process's exit
// code; kotoba-vm.cpp only parses the command line and dispatches.
#pragma once

#include "cli_support.h"

#include <optional>
#include <string>
#include <vector>

namespace kotoba::cli {

// What the commands that drive an engine share.
struct EngineSetup {
  // --bind NAME=SPEC, as typed.
  std::vector<std::string> bindings;
  // "real" or "virtual".
  std::string clock = "real";
  // --lease-ms: how long a run's lease lasts before another process may take the run over.
  int64_t leaseMs = 30'000;
};

struct RunOptions {
  std::string file;
  std::string workflowId;
  std::optional<std::string> input; // JSON or @file.json
  std::vector<std::string> signals; // NAME=JSON
  bool detach = false;
  EngineSetup engine;
};

struct WorkerOptions {
  bool untilIdle = false;
  // Where relative paths of activity implementations resolve from (default: the current
  // directory); the workflow files of the runs in the store are not known here.
  std::string baseDirectory;
  EngineSetup engine;
};

struct ResumeOptions {
  std::string runId;
  std::string baseDirectory;
  EngineSetup engine;
};

struct SignalOptions {
  std::string runId;
  std::string name;
  std::optional<std::string> payload;
};

struct EmitOptions {
  std::string type;
  std::optional<std::string> payload;
};

struct TerminateOptions {
  std::string runId;
  std::string reason;
};

struct ListOptions {
  std::optional<std::string> status;
  std::optional<std::string> workflowId;
  size_t limit = 1000;
};

// `purge --status S... --older-than DURATION`.
struct PurgeOptions {
  std::vector<std::string> statuses; // as typed; each must name a final status
  std::string olderThan;             // an ISO 8601 duration (or the short form)
};

[[nodiscard]] int runCommand(const GlobalOptions &global, const RunOptions &options);
[[nodiscard]] int workerCommand(const GlobalOptions &global, const WorkerOptions &options);
[[nodiscard]] int resumeCommand(const GlobalOptions &global, const ResumeOptions &options);

[[nodiscard]] int signalCommand(const GlobalOptions &global, const SignalOptions &options);
[[nodiscard]] int emitCommand(const GlobalOptions &global, const EmitOptions &options);
[[nodiscard]] int cancelCommand(const GlobalOptions &global, const std::string &runId);
[[nodiscard]] int terminateCommand(const GlobalOptions &global, const TerminateOptions &options);

[[nodiscard]] int listCommand(const GlobalOptions &global, const ListOptions &options);
[[nodiscard]] int showCommand(const GlobalOptions &global, const std::string &runId);
[[nodiscard]] int historyCommand(const GlobalOptions &global, const std::string &runId);

[[nodiscard]] int purgeCommand(const GlobalOptions &global, const PurgeOptions &options);

} // namespace kotoba::cli
