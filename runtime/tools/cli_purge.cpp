// `kotoba-vm purge`: retention (runtime.md section 5). Deletes the runs that finished with
// one of the named statuses before a cut-off, with their events, checkpoints, timers, tasks,
// inboxes and leases, and then every module no remaining run refers to, all in one store
// transaction (Transaction::purge). Runs that have not finished are never touched.
#include "cli_commands.h"
#include "cli_support.h"

#include "kotoba/vm/duration.h"

#include <fmt/format.h>

#include <iostream>

namespace kotoba::cli {

namespace {

using runtime::RunStatus;

// The statuses to purge; a status that is not final is refused by name, since purging a run
// that still runs (or waits for a fix) would lose work.
CliResult<std::vector<RunStatus>> finalStatuses(const std::vector<std::string> &texts) {
  std::vector<RunStatus> statuses;
  for (const std::string &text : texts) {
    CliResult<RunStatus> status = parseStatus(text, /*suggestFinalOnly=*/true);
    if (!status.ok()) {
      return status.failure();
    }
    if (!runtime::isFinalStatus(status.value())) {
      return usageFailure(fmt::format(
          "--status {}: {} runs have not finished and are never purged; name a final status "
          "(COMPLETED, FAILED, CANCELLED, TIMED_OUT, TERMINATED, CONTINUED_AS_NEW)",
          text, runtime::runStatusName(status.value())));
    }
    statuses.push_back(status.value());
  }
  return statuses;
}

std::string plural(int64_t count, std::string_view singular) {
  return fmt::format("{} {}{}", count, singular, count == 1 ? "" : "s");
}

} // namespace

int purgeCommand(const GlobalOptions &global, const PurgeOptions &options) {
  CliResult<std::vector<RunStatus>> statuses = finalStatuses(options.statuses);
  if (!statuses.ok()) {
    return report(statuses.failure());
  }
  Result<int64_t> age = parseDurationMs(options.olderThan);
  if (!age.ok()) {
    return report(usageFailure("--older-than: " + age.error().message +
                               "; write an ISO 8601 duration such as P30D or PT1H"));
  }
  // Runs record when they finished in wall-clock time (virtual time under --clock virtual),
  // so the cut-off is measured from the wall clock. Both are non-negative, so no overflow.
  int64_t finishedBeforeMs = wallClockMs() - age.value();

  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  runtime::PurgeCounts counts;
  if (store.value()) {
    runtime::PurgeOptions purge;
    purge.statuses = statuses.value();
    purge.finishedBeforeMs = finishedBeforeMs;
    runtime::StoreStatus written = store.value()->write([&](runtime::Transaction &tx) {
      runtime::StoreResult<runtime::PurgeCounts> purged = tx.purge(purge);
      if (!purged.ok()) {
        return runtime::StoreStatus(purged.error());
      }
      counts = purged.value();
      return runtime::StoreStatus();
    });
    if (!written.ok()) {
      return report(storeFailure(written.error()));
    }
  }

  if (global.json) {
    Array statusNames;
    for (RunStatus status : statuses.value()) {
      statusNames.emplace_back(std::string(runtime::runStatusName(status)));
    }
    Object json;
    json.set("statuses", Value(std::move(statusNames)));
    json.set("finished_before", formatTime(finishedBeforeMs));
    json.set("runs", counts.runs);
    json.set("events", counts.events);
    json.set("checkpoints", counts.checkpoints);
    json.set("modules", counts.modules);
    printJson(Value(std::move(json)));
    return static_cast<int>(ExitCode::Completed);
  }
  std::cout << fmt::format("purged {} ({}, {}) and {} that finished before {}\n",
                           plural(counts.runs, "run"), plural(counts.events, "event"),
                           plural(counts.checkpoints, "checkpoint"),
                           plural(counts.modules, "unused module"), formatTime(finishedBeforeMs));
  std::cout.flush();
  return static_cast<int>(ExitCode::Completed);
}

} // namespace kotoba::cli
