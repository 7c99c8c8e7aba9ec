// kotoba-vm: the Kotoba runtime's command line (runtime.md section 9). `run` starts a workflow
// and drives it to its end, `worker` drives every run in a store, `signal`, `emit`,
// `cancel` and `terminate` hand runs outside inputs, `list`, `show` and `history` look at
// the store, and `purge` deletes finished runs. This file only declares the command line
// and dispatches; each command lives in a cli_*.cpp file, and docs/cli.md is the reference.
#include "cli_commands.h"
#include "cli_durable.h"
#include "cli_support.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <limits>

namespace {

using kotoba::cli::ExitCode;

constexpr const char *kFooter =
    "exit codes: 0 completed, 1 the run failed, was cancelled or timed out,\n"
    "2 usage or input error, 3 compile error, 4 store error, 5 non-determinism\n"
    "docs/cli.md has the full reference";

// --bind and --clock, for the commands that run activities.
void addEngineOptions(CLI::App *command, kotoba::cli::EngineSetup &setup) {
  // One value per occurrence, so `--bind a=process:./a FILE` leaves FILE alone.
  command
      ->add_option("--bind", setup.bindings,
                   "bind an activity: NAME=process:PATH [ARGS...] or NAME=http:URL "
                   "(repeatable)")
      ->allow_extra_args(false);
  command
      ->add_option("--clock", setup.clock,
                   "real (default) or virtual: timers fire as soon as the engine is idle")
      ->check(CLI::IsMember({"real", "virtual"}));
  command
      ->add_option("--lease-ms", setup.leaseMs,
                   "how long a run stays this process's after its last renewal (default 30000)")
      ->check(CLI::Range(int64_t{100}, int64_t{24} * 3600 * 1000));
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"kotoba-vm: runs Kotoba workflows durably"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.failure_message(kotoba::cli::parseFailureMessage);
  // Global options may also come after the command (`history RUN --json`).
  app.fallthrough();

  kotoba::cli::GlobalOptions global;
  std::string durability = "normal";
  app.add_option("--db", global.dbPath, "the store file (default: kotoba.db here)");
  app.add_flag("--json", global.json, "machine-readable JSON on stdout");
  app.add_option("--durability", durability, "full, normal (default) or batch")
      ->check(CLI::IsMember({"full", "normal", "batch"}));

  kotoba::cli::RunOptions run;
  CLI::App *runApp =
      app.add_subcommand("run", "start a workflow and drive it to its end; print its outputs");
  runApp->add_option("file", run.file, "a .kotoba file (compiled in memory) or a .kbc")->required();
  runApp->add_option("--workflow", run.workflowId, "the workflow to run (default: entry)");
  runApp->add_option("--input", run.input, "the inputs: a JSON object, or @FILE.json");
  runApp
      ->add_option("--signal", run.signals,
                   "deliver a signal with the start: NAME=JSON (repeatable)")
      ->allow_extra_args(false);
  runApp->add_flag("--detach", run.detach, "print the run id and return at once");
  addEngineOptions(runApp, run.engine);

  kotoba::cli::WorkerOptions worker;
  CLI::App *workerApp =
      app.add_subcommand("worker", "drive every run, timer and task in the store");
  workerApp->add_flag("--until-idle", worker.untilIdle,
                      "exit once every run has ended or waits for a signal or event");
  workerApp->add_option("--base-dir", worker.baseDirectory,
                        "resolve relative activity paths here for runs that recorded no "
                        "directory (default: current dir)");
  addEngineOptions(workerApp, worker.engine);

  kotoba::cli::ResumeOptions resume;
  CLI::App *resumeApp = app.add_subcommand(
      "resume", "drive an unfinished run (or a BLOCKED one after a fix) to its end");
  resumeApp->add_option("run", resume.runId, "the run id")->required();
  resumeApp->add_option("--base-dir", resume.baseDirectory,
                        "resolve relative activity paths here for a run that recorded no "
                        "directory (default: current dir), or for the module of --upgrade "
                        "(default: its file's directory)");
  addEngineOptions(resumeApp, resume.engine);

  kotoba::cli::SignalOptions signal;
  CLI::App *signalApp = app.add_subcommand("signal", "send a signal to a run");
  signalApp->add_option("run", signal.runId, "the run id")->required();
  signalApp->add_option("name", signal.name, "the signal name")->required();
  signalApp->add_option("payload", signal.payload, "JSON (default null), or @FILE.json");

  kotoba::cli::EmitOptions emit;
  CLI::App *emitApp =
      app.add_subcommand("emit", "publish an event to every run that waits for its type");
  emitApp->add_option("type", emit.type, "the event type")->required();
  emitApp->add_option("payload", emit.payload, "JSON (default null), or @FILE.json");

  std::string cancelRun;
  CLI::App *cancelApp = app.add_subcommand("cancel", "ask a run to cancel; its sagas compensate");
  cancelApp->add_option("run", cancelRun, "the run id")->required();

  kotoba::cli::TerminateOptions terminate;
  terminate.reason = "terminated with kotoba-vm terminate";
  CLI::App *terminateApp =
      app.add_subcommand("terminate", "stop a run at once, without compensation");
  terminateApp->add_option("run", terminate.runId, "the run id")->required();
  terminateApp->add_option("--reason", terminate.reason, "recorded in the history");

  kotoba::cli::ListOptions list;
  CLI::App *listApp = app.add_subcommand("list", "list runs, newest first");
  listApp->add_option("--status", list.status, "only runs with this status");
  listApp->add_option("--workflow", list.workflowId, "only runs of this workflow");
  listApp->add_option("--limit", list.limit, "at most this many (default 1000)")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));

  std::string showRun;
  CLI::App *showApp = app.add_subcommand("show", "show a run: status, data, what it waits on");
  showApp->add_option("run", showRun, "the run id")->required();

  std::string historyRun;
  CLI::App *historyApp =
      app.add_subcommand("history", "print a run's events in order (--json: as an array)");
  historyApp->add_option("run", historyRun, "the run id")->required();

  kotoba::cli::PurgeOptions purge;
  CLI::App *purgeApp = app.add_subcommand(
      "purge", "delete finished runs older than a limit, and the modules no run refers to");
  purgeApp
      ->add_option("--status", purge.statuses,
                   "only runs that ended with this final status (repeatable)")
      ->required()
      ->allow_extra_args(false);
  purgeApp
      ->add_option("--older-than", purge.olderThan,
                   "only runs that finished longer ago than this: P30D, PT1H, ...")
      ->required();

  // export, replay, verify, state and resume --upgrade (cli_durable.cpp).
  kotoba::cli::DurableCommands durable;
  kotoba::cli::addDurableCommands(app, *resumeApp, resume, durable);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &error) {
    int code = app.exit(error);
    return code == 0 ? static_cast<int>(ExitCode::Completed) : static_cast<int>(ExitCode::Usage);
  }
  global.durability =
      kotoba::runtime::durabilityFromName(durability).value_or(kotoba::runtime::Durability::Normal);

  if (std::optional<int> code = kotoba::cli::runDurableCommand(global, durable)) {
    return *code;
  }
  if (*runApp) {
    return kotoba::cli::runCommand(global, run);
  }
  if (*workerApp) {
    return kotoba::cli::workerCommand(global, worker);
  }
  if (*resumeApp) {
    return kotoba::cli::resumeCommand(global, resume);
  }
  if (*signalApp) {
    return kotoba::cli::signalCommand(global, signal);
  }
  if (*emitApp) {
    return kotoba::cli::emitCommand(global, emit);
  }
  if (*cancelApp) {
    return kotoba::cli::cancelCommand(global, cancelRun);
  }
  if (*terminateApp) {
    return kotoba::cli::terminateCommand(global, terminate);
  }
  if (*listApp) {
    return kotoba::cli::listCommand(global, list);
  }
  if (*showApp) {
    return kotoba::cli::showCommand(global, showRun);
  }
  if (*historyApp) {
    return kotoba::cli::historyCommand(global, historyRun);
  }
  if (*purgeApp) {
    return kotoba::cli::purgeCommand(global, purge);
  }
  return static_cast<int>(ExitCode::Usage);
}
