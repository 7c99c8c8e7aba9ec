// export, replay, verify, state and resume --upgrade (cli_durable.h). Replaying goes through
// runtime::Replay and past states through runtime::rebuildRun, the same code the engine loads
// runs with, so these commands judge a history exactly as a live engine would.
#include "cli_durable.h"

#include "cli_export.h"
#include "cli_module.h"

#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/checkpoint.h"
#include "kotoba/runtime/owner_identity.h"
#include "kotoba/runtime/replay.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/module_format.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

namespace kotoba::cli {

namespace {

using runtime::EventRecord;
using runtime::RunRecord;
using runtime::RunStatus;

CliResult<std::unique_ptr<runtime::Store>> existingStoreFor(const GlobalOptions &global,
                                                            const std::string &runId) {
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return store.failure();
  }
  if (!store.value()) {
    return usageFailure("no run has id '" + runId + "': there is no store at '" + global.dbPath +
                        "'");
  }
  return store;
}

// The run `target` names in the store, as `export` would write it.
CliResult<ExportedRun> readStoredRun(const GlobalOptions &global, const std::string &target) {
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return store.failure();
  }
  if (!store.value()) {
    return usageFailure("'" + target + "' is neither a file nor a run: there is no store at '" +
                        global.dbPath + "'");
  }
  return readRunForExport(*store.value(), target);
}

// A module given on the command line (.kbc or .kotoba), with the hash it is stored under.
struct GivenModule {
  std::shared_ptr<const vm::Module> module;
  std::string hash;
  std::string baseDirectory;
};

CliResult<GivenModule> loadGivenModule(const std::string &path) {
  CliResult<LoadedWorkflowModule> loaded = loadWorkflowModule(path);
  if (!loaded.ok()) {
    return loaded.failure();
  }
  std::string hash = moduleHashOf(loaded.value().module);
  return GivenModule{std::make_shared<const vm::Module>(std::move(loaded.value().module)),
                     std::move(hash), loaded.value().baseDirectory};
}

// The index of the run's workflow in `module`, or the failure a replay reports when the
// module does not have it.
CliResult<uint32_t> workflowIndexFor(const vm::Module &module, const std::string &moduleHash,
                                     const RunRecord &run) {
  const vm::Workflow *workflow = module.findWorkflow(run.workflowId);
  if (workflow == nullptr) {
    return Failure{ExitCode::NonDeterminism,
                   fmt::format("run {} does not replay on module {}: the module has no workflow "
                               "'{}'",
                               run.id, moduleHash, run.workflowId),
                   {"replay against a module that still defines the run's workflow"}};
  }
  return static_cast<uint32_t>(workflow - module.workflows.data());
}

// The whole history replayed from its start, as `replay` and `resume --upgrade` need it.
runtime::Replay replayWhole(const std::shared_ptr<const vm::Module> &module, uint32_t workflowIndex,
                            const RunRecord &run, const std::vector<EventRecord> &events) {
  runtime::Replay replay(module, workflowIndex,
                         runtime::runInfoOf(run, module->workflows[workflowIndex]), run.inputs);
  if (replay.applyAll(events) && runtime::isFinalStatus(run.status)) {
    (void)replay.expectEnded(); // an ended run records nothing more
  }
  return replay;
}

Failure mismatchFailure(const std::string &runId, const runtime::ReplayMismatch &mismatch,
                        std::string note) {
  return Failure{ExitCode::NonDeterminism,
                 runtime::nonDeterminismError(runId, mismatch).message,
                 {std::move(note)}};
}

Value mismatchJson(const runtime::ReplayMismatch &mismatch) {
  Object json;
  json.set("seq", mismatch.seq);
  json.set("step", mismatch.step);
  json.set("message", mismatch.message);
  return Value(std::move(json));
}

// How a pending command reads in `state`: what it waits for and since when it may end.
Value pendingJson(const vm::Command &command) {
  Object json;
  json.set("kind", std::string(vm::commandKindName(command.kind)));
  json.set("command_id", static_cast<int64_t>(command.id));
  json.set("step_id", command.step);
  json.set("name", command.name);
  json.set("fires", timeValue(command.fireAtMs));
  json.set("timeout", timeValue(command.timeoutAtMs));
  return Value(std::move(json));
}

std::string pendingText(const vm::Command &command) {
  std::string what;
  switch (command.kind) {
  case vm::CommandKind::ScheduleActivity:
    what = "activity " + command.name;
    break;
  case vm::CommandKind::StartTimer:
    what = "timer";
    break;
  case vm::CommandKind::WaitSignal:
    what = "signal " + command.name;
    break;
  case vm::CommandKind::WaitEvent:
    what = "event " + command.name;
    break;
  case vm::CommandKind::StartChild:
    what = "child workflow " + command.name;
    break;
  case vm::CommandKind::AskPredicate:
    what = "predicate " + command.name;
    break;
  case vm::CommandKind::Cancel:
  case vm::CommandKind::RecordDecision:
  case vm::CommandKind::RecordCompensation:
  case vm::CommandKind::Complete:
  case vm::CommandKind::Fail:
  case vm::CommandKind::ContinueAsNew:
  case vm::CommandKind::Cancelled:
  case vm::CommandKind::TimedOut:
    what = vm::commandKindName(command.kind); // never pending; named all the same
    break;
  }
  if (!command.step.empty()) {
    what += " (step " + command.step + ")";
  }
  if (command.fireAtMs) {
    what += " fires " + formatTime(*command.fireAtMs);
  }
  if (command.timeoutAtMs) {
    what += ", times out " + formatTime(*command.timeoutAtMs);
  }
  return what;
}

void printRows(const std::vector<std::pair<std::string, std::string>> &rows) {
  size_t width = 0;
  for (const auto &[label, text] : rows) {
    width = std::max(width, label.size());
  }
  for (const auto &[label, text] : rows) {
    std::cout << label << std::string(width - label.size() + 2, ' ') << text << "\n";
  }
  std::cout.flush();
}

// The seq of the run's last event written by transaction `tx` or earlier; tx ids grow with
// the seqs of one run, so a binary search reads a handful of events, not the history.
runtime::StoreResult<int64_t> lastSeqAtTx(const runtime::StoreReader &reader,
                                          const std::string &runId, int64_t lastSeq, int64_t tx) {
  int64_t low = 0;            // seq `low` is at or before tx (0: no event is)
  int64_t high = lastSeq + 1; // seq `high` is after tx
  while (high - low > 1) {
    int64_t middle = low + (high - low) / 2;
    auto events = reader.events(runId, runtime::EventRange{middle, middle, {}});
    if (!events.ok()) {
      return events.error();
    }
    if (!events.value().empty() && events.value().front().tx <= tx) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return low;
}

// Everything `state` prints, read in one snapshot.
struct PastState {
  RunRecord run;
  EventRecord at;
  std::optional<runtime::RebuiltRun> rebuilt;
};

CliResult<PastState> readPastState(runtime::Store &store, const StateOptions &options) {
  std::optional<Failure> failure;
  std::optional<PastState> found;
  runtime::StoreStatus status =
      store.read([&](const runtime::StoreReader &reader) -> runtime::StoreStatus {
        auto run = reader.run(options.runId);
        if (!run.ok()) {
          return run.error();
        }
        if (!run.value()) {
          failure = usageFailure("no run has id '" + options.runId +
                                 "'; `kotoba-vm list` shows the runs");
          return {};
        }
        const RunRecord &record = *run.value();
        int64_t seq = options.atSeq.value_or(record.lastSeq);
        if (options.atTx) {
          auto atTx = lastSeqAtTx(reader, record.id, record.lastSeq, *options.atTx);
          if (!atTx.ok()) {
            return atTx.error();
          }
          if (atTx.value() == 0) {
            failure = usageFailure(fmt::format("run {} has no event written by transaction {} "
                                               "or earlier; `kotoba-vm history {} --json` shows "
                                               "each event's tx",
                                               record.id, *options.atTx, record.id));
            return {};
          }
          seq = atTx.value();
        }
        if (seq < 1 || seq > record.lastSeq) {
          failure = usageFailure(fmt::format("run {} has events 1 to {}; there is no event {}",
                                             record.id, record.lastSeq, seq));
          return {};
        }
        auto bytes = reader.module(record.moduleHash);
        if (!bytes.ok()) {
          return bytes.error();
        }
        if (!bytes.value()) {
          failure = Failure{ExitCode::StoreError,
                            fmt::format("{}: the store has no module {} for run {}", store.path(),
                                        record.moduleHash, record.id),
                            {}};
          return {};
        }
        CliResult<std::shared_ptr<const vm::Module>> module =
            loadStoredModule(*bytes.value(), record.moduleHash, store.path());
        if (!module.ok()) {
          failure = module.failure();
          return {};
        }
        auto event = reader.events(record.id, runtime::EventRange{seq, seq, {}});
        if (!event.ok()) {
          return event.error();
        }
        Result<runtime::RebuiltRun> rebuilt =
            runtime::rebuildRun(reader, record, module.value(), seq);
        if (!rebuilt.ok()) {
          failure = engineFailure(rebuilt.error(), ExitCode::StoreError);
          return {};
        }
        PastState state{record, event.value().front(), std::move(rebuilt).value()};
        found = std::move(state);
        return {};
      });
  if (!status.ok()) {
    return storeFailure(status.error());
  }
  if (failure) {
    return *failure;
  }
  return std::move(*found);
}

} // namespace

void addDurableCommands(CLI::App &app, CLI::App &resumeApp, const ResumeOptions &resume,
                        DurableCommands &commands) {
  commands.exportApp =
      app.add_subcommand("export", "write a run's history and module as one JSON file");
  commands.exportApp->add_option("run", commands.exportOptions.runId, "the run id")->required();
  commands.exportApp->add_option("-o,--output", commands.exportOptions.output,
                                 "the file to write (default: stdout)");

  commands.replayApp = app.add_subcommand(
      "replay", "replay a run or an exported file against its module or a changed one");
  commands.replayApp
      ->add_option("target", commands.replayOptions.target,
                   "a run id, or a file written by `kotoba-vm export`")
      ->required();
  commands.replayApp->add_option("--module", commands.replayOptions.module,
                                 "a .kbc or .kotoba to replay against (default: the run's own)");

  commands.verifyApp =
      app.add_subcommand("verify", "recompute a run's hash chain; report the first broken link");
  commands.verifyApp->add_option("run", commands.verifyRunId, "the run id")->required();

  commands.stateApp = app.add_subcommand(
      "state", "a run's status, vars, results and pending steps as of one of its events");
  commands.stateApp->add_option("run", commands.stateOptions.runId, "the run id")->required();
  CLI::Option *at = commands.stateApp->add_option("--at", commands.stateOptions.atSeq,
                                                  "as of event SEQ (default: the last)");
  commands.stateApp
      ->add_option("--at-tx", commands.stateOptions.atTx,
                   "as of the last event written by store transaction TX or earlier")
      ->excludes(at);

  commands.resumeApp = &resumeApp;
  commands.resume = &resume;
  resumeApp.add_option("--upgrade", commands.upgradeModule,
                       "move the run to this .kbc or .kotoba first; only done when its whole "
                       "history replays on it");
}

std::optional<int> runDurableCommand(const GlobalOptions &global, const DurableCommands &commands) {
  if (*commands.exportApp) {
    return exportCommand(global, commands.exportOptions);
  }
  if (*commands.replayApp) {
    return replayCommand(global, commands.replayOptions);
  }
  if (*commands.verifyApp) {
    return verifyCommand(global, commands.verifyRunId);
  }
  if (*commands.stateApp) {
    return stateCommand(global, commands.stateOptions);
  }
  if (*commands.resumeApp && !commands.upgradeModule.empty()) {
    return upgradeCommand(global, *commands.resume, commands.upgradeModule);
  }
  return std::nullopt;
}

int exportCommand(const GlobalOptions &global, const ExportOptions &options) {
  CliResult<std::unique_ptr<runtime::Store>> store = existingStoreFor(global, options.runId);
  if (!store.ok()) {
    return report(store.failure());
  }
  CliResult<ExportedRun> exported = readRunForExport(*store.value(), options.runId);
  if (!exported.ok()) {
    return report(exported.failure());
  }
  Value json = exportValue(exported.value());
  if (options.output.empty()) {
    printJson(json);
    return static_cast<int>(ExitCode::Completed);
  }
  {
    std::ofstream out(options.output, std::ios::binary | std::ios::trunc);
    out << toPrettyJson(json) << "\n";
    out.close();
    if (!out) {
      return report(usageFailure("cannot write '" + options.output + "'"));
    }
  }
  size_t events = exported.value().events.size();
  if (global.json) {
    Object summary;
    summary.set("run_id", options.runId);
    summary.set("file", options.output);
    summary.set("events", static_cast<int64_t>(events));
    summary.set("module_hash", exported.value().moduleHash);
    printJson(Value(std::move(summary)));
  }
  note(fmt::format("wrote run {} ({} events) to {}", options.runId, events, options.output));
  return static_cast<int>(ExitCode::Completed);
}

int replayCommand(const GlobalOptions &global, const ReplayOptions &options) {
  std::error_code error;
  CliResult<ExportedRun> exported = std::filesystem::is_regular_file(options.target, error)
                                        ? readExport(options.target)
                                        : readStoredRun(global, options.target);
  if (!exported.ok()) {
    return report(exported.failure());
  }
  const ExportedRun &history = exported.value();

  std::shared_ptr<const vm::Module> module;
  std::string moduleHash;
  if (options.module.empty()) {
    CliResult<std::shared_ptr<const vm::Module>> own =
        loadStoredModule(history.moduleBytes, history.moduleHash, options.target);
    if (!own.ok()) {
      return report(own.failure());
    }
    module = own.value();
    moduleHash = history.moduleHash;
  } else {
    CliResult<GivenModule> given = loadGivenModule(options.module);
    if (!given.ok()) {
      return report(given.failure());
    }
    module = given.value().module;
    moduleHash = given.value().hash;
  }
  CliResult<uint32_t> index = workflowIndexFor(*module, moduleHash, history.run);
  if (!index.ok()) {
    return report(index.failure());
  }

  runtime::Replay replay = replayWhole(module, index.value(), history.run, history.events);
  Object json;
  json.set("run_id", history.run.id);
  json.set("workflow_id", history.run.workflowId);
  json.set("module_hash", moduleHash);
  json.set("events", static_cast<int64_t>(history.events.size()));
  json.set("ok", !replay.mismatch().has_value());
  if (const std::optional<runtime::ReplayMismatch> &mismatch = replay.mismatch()) {
    if (global.json) {
      json.set("mismatch", mismatchJson(*mismatch));
      printJson(Value(std::move(json)));
    }
    return report(mismatchFailure(history.run.id, *mismatch,
                                  "the module cannot continue this run; keep the recorded steps "
                                  "unchanged for runs started before the change"));
  }
  if (global.json) {
    printJson(Value(std::move(json)));
  } else {
    std::cout << fmt::format("OK: run {} ({}) replays on module {}: {} events\n", history.run.id,
                             history.run.workflowId, moduleHash, history.events.size());
  }
  if (!replay.unrecorded().empty()) {
    const vm::Command &next = replay.unrecorded().front();
    note(fmt::format("after its last event the module issues {} more command(s), starting with "
                     "{}{}; the run records them when it continues",
                     replay.unrecorded().size(), vm::commandKindName(next.kind),
                     next.step.empty() ? "" : " for step '" + next.step + "'"));
  }
  return static_cast<int>(ExitCode::Completed);
}

int verifyCommand(const GlobalOptions &global, const std::string &runId) {
  CliResult<std::unique_ptr<runtime::Store>> store = existingStoreFor(global, runId);
  if (!store.ok()) {
    return report(store.failure());
  }
  auto verified = store.value()->query(
      [&](const runtime::StoreReader &reader) { return reader.verifyRun(runId); });
  if (!verified.ok()) {
    return report(storeFailure(verified.error()));
  }
  const runtime::ChainReport &chain = verified.value();
  Object json;
  json.set("run_id", runId);
  json.set("ok", !chain.firstBroken.has_value());
  json.set("events_checked", chain.eventsChecked);
  json.set("checkpoints_checked", chain.checkpointsChecked);
  if (!chain.firstBroken) {
    if (global.json) {
      printJson(Value(std::move(json)));
    } else {
      std::cout << fmt::format("OK: run {}: {} events and {} checkpoint{} verified, every link "
                               "holds\n",
                               runId, chain.eventsChecked, chain.checkpointsChecked,
                               chain.checkpointsChecked == 1 ? "" : "s");
    }
    return static_cast<int>(ExitCode::Completed);
  }
  const runtime::BrokenLink &link = *chain.firstBroken;
  std::string where;
  switch (link.where) {
  case runtime::BrokenLink::Where::Event:
    where = fmt::format("event {}", link.seq);
    break;
  case runtime::BrokenLink::Where::Checkpoint:
    where = fmt::format("the checkpoint at event {}", link.seq);
    break;
  case runtime::BrokenLink::Where::Run:
    where = "the run's row";
    break;
  }
  if (global.json) {
    Object broken;
    broken.set("where", link.where == runtime::BrokenLink::Where::Event        ? "event"
                        : link.where == runtime::BrokenLink::Where::Checkpoint ? "checkpoint"
                                                                               : "run");
    broken.set("seq", link.seq);
    broken.set("reason", link.reason);
    json.set("broken", Value(std::move(broken)));
    printJson(Value(std::move(json)));
  }
  return report(
      Failure{ExitCode::StoreError,
              fmt::format("run {}: the hash chain breaks at {}: {}", runId, where, link.reason),
              {"the store was changed outside kotoba-vm after that point; restore "
               "it from a backup"}});
}

int stateCommand(const GlobalOptions &global, const StateOptions &options) {
  CliResult<std::unique_ptr<runtime::Store>> store = existingStoreFor(global, options.runId);
  if (!store.ok()) {
    return report(store.failure());
  }
  CliResult<PastState> past = readPastState(*store.value(), options);
  if (!past.ok()) {
    return report(past.failure());
  }
  const PastState &state = past.value();
  const runtime::RebuiltRun &rebuilt = *state.rebuilt;
  if (const std::optional<runtime::ReplayMismatch> &mismatch = rebuilt.replay.mismatch()) {
    return report(mismatchFailure(state.run.id, *mismatch,
                                  "the run's history does not replay on its module up to that "
                                  "event; `kotoba-vm replay " +
                                      state.run.id + "` says more"));
  }
  const vm::Machine &machine = rebuilt.replay.machine();
  std::string status = vm::runStatusName(machine.status());
  // What the machine cannot know: a terminated run, and a BLOCKED one at its last event.
  bool atEnd = state.at.seq == state.run.lastSeq;
  if (state.at.type == runtime::EventType::WorkflowTerminated ||
      (atEnd && state.run.status == RunStatus::Blocked)) {
    status = std::string(runtime::runStatusName(
        state.at.type == runtime::EventType::WorkflowTerminated ? RunStatus::Terminated
                                                                : RunStatus::Blocked));
  }
  std::vector<vm::Command> pending = machine.pendingCommands();
  std::string rebuiltFrom =
      rebuilt.checkpointSeq ? fmt::format("the checkpoint at event {} and {} later events",
                                          *rebuilt.checkpointSeq, rebuilt.eventsReplayed)
                            : fmt::format("the start, replaying {} event{}",
                                          rebuilt.eventsReplayed,
                                          rebuilt.eventsReplayed == 1 ? "" : "s");

  if (global.json) {
    Object json;
    json.set("run_id", state.run.id);
    json.set("seq", state.at.seq);
    json.set("tx", state.at.tx);
    json.set("event", std::string(runtime::eventTypeName(state.at.type)));
    json.set("time", formatTime(state.at.timeMs));
    json.set("status", status);
    json.set("vars", machine.vars());
    json.set("results", machine.results());
    Array pendingJsons;
    for (const vm::Command &command : pending) {
      pendingJsons.push_back(pendingJson(command));
    }
    json.set("pending", Value(std::move(pendingJsons)));
    json.set("checkpoint_seq",
             rebuilt.checkpointSeq ? Value(*rebuilt.checkpointSeq) : Value(nullptr));
    json.set("events_replayed", static_cast<int64_t>(rebuilt.eventsReplayed));
    printJson(Value(std::move(json)));
    return static_cast<int>(ExitCode::Completed);
  }
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("run", state.run.id);
  rows.emplace_back("as of", fmt::format("event {} of {}: {} (tx {}, {})", state.at.seq,
                                         state.run.lastSeq, runtime::eventTypeName(state.at.type),
                                         state.at.tx, formatTime(state.at.timeMs)));
  rows.emplace_back("status", status);
  rows.emplace_back("vars", toJson(machine.vars()));
  rows.emplace_back("results", toJson(machine.results()));
  for (const vm::Command &command : pending) {
    rows.emplace_back("pending", pendingText(command));
  }
  rows.emplace_back("rebuilt", "from " + rebuiltFrom);
  printRows(rows);
  return static_cast<int>(ExitCode::Completed);
}

int upgradeCommand(const GlobalOptions &global, const ResumeOptions &resume,
                   const std::string &modulePath) {
  CliResult<GivenModule> given = loadGivenModule(modulePath);
  if (!given.ok()) {
    return report(given.failure());
  }
  const GivenModule &target = given.value();
  CliResult<std::unique_ptr<runtime::Store>> store = existingStoreFor(global, resume.runId);
  if (!store.ok()) {
    return report(store.failure());
  }
  CliResult<ExportedRun> current = readRunForExport(*store.value(), resume.runId);
  if (!current.ok()) {
    return report(current.failure());
  }
  const RunRecord &run = current.value().run;
  if (runtime::isFinalStatus(run.status)) {
    return report(usageFailure(fmt::format("run {} has already finished ({}); only a running or "
                                           "BLOCKED run can move to another module",
                                           run.id, runtime::runStatusName(run.status))));
  }
  if (run.moduleHash == target.hash) {
    note(fmt::format("run {} already runs module {}", run.id, target.hash));
    store.value().reset();
    return resumeCommand(global, resume);
  }
  CliResult<uint32_t> index = workflowIndexFor(*target.module, target.hash, run);
  if (!index.ok()) {
    return report(index.failure());
  }
  runtime::Replay replay = replayWhole(target.module, index.value(), run, current.value().events);
  if (const std::optional<runtime::ReplayMismatch> &mismatch = replay.mismatch()) {
    return report(mismatchFailure(
        run.id, *mismatch,
        fmt::format("the run stays on module {}; nothing was changed", run.moduleHash)));
  }

  // The switch, in one transaction, and only if the run has not moved on meanwhile.
  std::vector<uint8_t> bytes = vm::writeModule(*target.module);
  std::optional<Failure> refused;
  int64_t now = wallClockMs();
  bool settled = replay.unrecorded().empty() && !vm::isFinal(replay.machine().status());
  std::string checkpoint =
      settled ? runtime::encodeCheckpoint(target.hash, replay.machine(), replay.commands())
              : std::string();
  runtime::StoreStatus moved =
      store.value()->write([&](runtime::Transaction &tx) -> runtime::StoreStatus {
        refused.reset();
        auto latest = tx.run(run.id);
        if (!latest.ok()) {
          return latest.error();
        }
        if (!latest.value() || latest.value()->lastSeq != run.lastSeq ||
            latest.value()->status != run.status) {
          refused = usageFailure(fmt::format("run {} moved on while its history was replayed; "
                                             "run the command again",
                                             run.id));
          return {};
        }
        auto lease = tx.lease(run.id);
        if (!lease.ok()) {
          return lease.error();
        }
        // Nothing works on a BLOCKED run; a lease left on one is stale, and so is one whose
        // holder is provably gone (killed, its process token names a free pid).
        if (run.status != RunStatus::Blocked && lease.value() && lease.value()->expiryMs > now &&
            runtime::ownerLiveness(lease.value()->owner) != runtime::OwnerLiveness::Dead) {
          refused = usageFailure(fmt::format("run {} is being worked on by {} until {}; stop that "
                                             "process or wait for its lease to expire",
                                             run.id, lease.value()->owner,
                                             formatTime(lease.value()->expiryMs)));
          return {};
        }
        auto stored = tx.putModule(target.hash, bytes, now);
        if (!stored.ok()) {
          return stored.error();
        }
        runtime::RunUpdate update;
        update.timeMs = now;
        update.moduleHash = target.hash;
        // The new module's relative activity paths resolve next to its file, as for `run`
        // (or in --base-dir); the bindings the run started with stay.
        runtime::RunHost host;
        if (!run.host.isNull()) {
          Result<runtime::RunHost> stored = runtime::runHostFromValue(run.host);
          if (stored.ok()) {
            host = std::move(stored).value();
          }
        }
        host.baseDirectory = resume.baseDirectory.empty()
                                 ? target.baseDirectory
                                 : absoluteDirectory(resume.baseDirectory);
        update.host = runtime::runHostToValue(host);
        if (run.status == RunStatus::Blocked) {
          update.status = RunStatus::Running;
          update.error = Value(nullptr);
        }
        if (runtime::StoreStatus updated = tx.updateRun(run.id, update); !updated.ok()) {
          return updated;
        }
        // The old module's checkpoints describe another machine: a fresh chain starts here.
        auto pruned = tx.pruneCheckpoints(run.id, 0);
        if (!pruned.ok()) {
          return pruned.error();
        }
        if (settled && run.lastSeq > 0) {
          auto saved = tx.saveCheckpoint(run.id, run.lastSeq, checkpoint, now);
          if (!saved.ok()) {
            return saved.error();
          }
        }
        return {};
      });
  if (!moved.ok()) {
    return report(storeFailure(moved.error()));
  }
  if (refused) {
    return report(*refused);
  }
  note(fmt::format("run {} now runs module {}: its {} events replay on it", run.id, target.hash,
                   current.value().events.size()));
  store.value().reset();
  ResumeOptions driven = resume;
  if (driven.baseDirectory.empty()) {
    // Relative activity paths of the new module resolve next to its file, as for `run`.
    driven.baseDirectory = target.baseDirectory;
  }
  return resumeCommand(global, driven);
}

} // namespace kotoba::cli
