// The kotoba-vm commands about histories and their durability (runtime.md sections 4, 5, 9):
// `export` writes a run's history and module as one file, `replay` checks a run or such a file
// against its module or a changed one, `verify` recomputes a run's hash chain, `state` shows a
// run as of any event, and `resume --upgrade` moves a run to another module once its whole
// history replays on it. kotoba-vm.cpp registers them with addDurableCommands and hands the
// parsed command line to runDurableCommand; docs/durability.md describes them.
#pragma once

#include "cli_commands.h"
#include "cli_support.h"

#include <cstdint>
#include <optional>
#include <string>

namespace CLI {
class App;
} // namespace CLI

namespace kotoba::cli {

struct ExportOptions {
  std::string runId;
  std::string output; // empty: stdout
};

struct ReplayOptions {
  std::string target; // a run id, or the path of an export file
  std::string module; // empty: the run's own module
};

struct StateOptions {
  std::string runId;
  std::optional<int64_t> atSeq;
  std::optional<int64_t> atTx;
};

// What CLI11 fills in for these commands, and which of them was chosen.
struct DurableCommands {
  ExportOptions exportOptions;
  ReplayOptions replayOptions;
  StateOptions stateOptions;
  std::string verifyRunId;
  // `resume RUN --upgrade FILE`: the resume options are the resume command's own.
  std::string upgradeModule;
  const ResumeOptions *resume = nullptr;

  CLI::App *exportApp = nullptr;
  CLI::App *replayApp = nullptr;
  CLI::App *verifyApp = nullptr;
  CLI::App *stateApp = nullptr;
  CLI::App *resumeApp = nullptr;
};

// Adds export, replay, verify and state to `app`, and --upgrade to its resume command.
void addDurableCommands(CLI::App &app, CLI::App &resumeApp, const ResumeOptions &resume,
                        DurableCommands &commands);

// Runs the chosen command when it is one of these (resume only with --upgrade) and returns
// its exit code; nullopt when another command was chosen.
[[nodiscard]] std::optional<int> runDurableCommand(const GlobalOptions &global,
                                                   const DurableCommands &commands);

[[nodiscard]] int exportCommand(const GlobalOptions &global, const ExportOptions &options);
[[nodiscard]] int replayCommand(const GlobalOptions &global, const ReplayOptions &options);
[[nodiscard]] int verifyCommand(const GlobalOptions &global, const std::string &runId);
[[nodiscard]] int stateCommand(const GlobalOptions &global, const StateOptions &options);
[[nodiscard]] int upgradeCommand(const GlobalOptions &global, const ResumeOptions &resume,
                                 const std::string &modulePath);

} // namespace kotoba::cli
