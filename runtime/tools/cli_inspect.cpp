// The commands that only look: `list`, `show` and `history`. They read the store directly,
// in one snapshot each, never create a store that does not exist, and never write. Without
// --json they print aligned text for people; with it, JSON whose field names match the
// store's columns.
#include "cli_commands.h"
#include "cli_support.h"

#include "kotoba/runtime/activity_binding.h"
#include "kotoba/vm/json.h"

#include <algorithm>
#include <cctype>
#include <iostream>

namespace kotoba::cli {

namespace {

using runtime::EventRecord;
using runtime::RunRecord;
using runtime::RunStatus;

// The width of a history or list column: enough for its longest entry, but never so wide
// that one long step id pushes the payload off the screen.
constexpr size_t kMaxColumnWidth = 40;
// Payloads in `history` are cut to this many bytes; `history --json` has them whole.
constexpr size_t kHistoryPayloadBytes = 120;

std::string padded(std::string_view text, size_t width) {
  std::string out(text);
  if (out.size() < width) {
    out.append(width - out.size(), ' ');
  }
  return out;
}

// Left-aligned columns separated by two spaces; the last column is not padded.
void printTable(const std::vector<std::vector<std::string>> &rows) {
  if (rows.empty()) {
    return;
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto &row : rows) {
    for (size_t column = 0; column + 1 < row.size(); ++column) {
      widths[column] = std::max(widths[column], std::min(row[column].size(), kMaxColumnWidth));
    }
  }
  for (const auto &row : rows) {
    std::string line;
    for (size_t column = 0; column < row.size(); ++column) {
      bool last = column + 1 == row.size();
      line += last ? row[column] : padded(row[column], widths[column]) + "  ";
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    std::cout << line << "\n";
  }
  std::cout.flush();
}

Value optionalString(const std::optional<std::string> &text) {
  return text ? Value(*text) : Value(nullptr);
}

Value runJson(const RunRecord &run) {
  Object json;
  json.set("run_id", run.id);
  json.set("workflow_id", run.workflowId);
  json.set("status", std::string(runtime::runStatusName(run.status)));
  json.set("chain_id", run.chainId);
  json.set("parent_run_id", optionalString(run.parentRunId));
  json.set("module_hash", run.moduleHash);
  json.set("attempt", run.attempt);
  json.set("created", formatTime(run.createdMs));
  json.set("updated", formatTime(run.updatedMs));
  json.set("finished", timeValue(run.finishedMs));
  json.set("timeout", timeValue(run.timeoutMs));
  json.set("events", run.lastSeq);
  json.set("inputs", run.inputs);
  json.set("outputs", run.outputs.value_or(Value(nullptr)));
  json.set("error", run.error.value_or(Value(nullptr)));
  return Value(std::move(json));
}

Value eventJson(const EventRecord &event) {
  Object json;
  json.set("seq", event.seq);
  json.set("type", std::string(runtime::eventTypeName(event.type)));
  json.set("time", formatTime(event.timeMs));
  json.set("time_ms", event.timeMs);
  json.set("tx", event.tx);
  json.set("step_id", event.stepId);
  json.set("location", event.location);
  json.set("payload", event.payload);
  json.set("hash", runtime::hashHex(event.hash));
  return Value(std::move(json));
}

// A wait the run has started and that nothing has ended yet, found in its history.
struct OpenWait {
  std::string stepId;
  std::string kind; // "signal" or "event"
  std::string name;
  std::optional<int64_t> timeoutAtMs;
  int64_t sinceMs = 0;
};

// The waits of a history that are still open. A wait ends with an event naming its command
// (EventReceived, WaitTimedOut, WaitCancelled), or, for a signal, with the next
// SignalReceived of its name (signals are consumed in arrival order by the first wait).
std::vector<OpenWait> openWaits(const std::vector<EventRecord> &events) {
  std::vector<std::pair<int64_t, OpenWait>> open; // command id, wait
  auto field = [](const Value &payload, std::string_view key) -> const Value * {
    return payload.isObject() ? payload.asObject().find(key) : nullptr;
  };
  for (const EventRecord &event : events) {
    const Value *commandId = field(event.payload, "command_id");
    bool endsByCommand = event.type == runtime::EventType::EventReceived ||
                         event.type == runtime::EventType::WaitTimedOut ||
                         event.type == runtime::EventType::WaitCancelled;
    if (event.type == runtime::EventType::WaitStarted) {
      const Value *kind = field(event.payload, "kind");
      const Value *name = field(event.payload, "name");
      const Value *timeout = field(event.payload, "timeout_at_ms");
      if (commandId == nullptr || !commandId->isInt() || kind == nullptr || !kind->isString() ||
          name == nullptr || !name->isString()) {
        continue;
      }
      OpenWait wait{event.stepId, kind->asString(), name->asString(), std::nullopt, event.timeMs};
      if (timeout != nullptr && timeout->isInt()) {
        wait.timeoutAtMs = timeout->asInt();
      }
      open.emplace_back(commandId->asInt(), std::move(wait));
    } else if (endsByCommand && commandId != nullptr && commandId->isInt()) {
      std::erase_if(open, [&](const auto &entry) { return entry.first == commandId->asInt(); });
    } else if (event.type == runtime::EventType::SignalReceived) {
      const Value *name = field(event.payload, "name");
      auto consumer = std::find_if(open.begin(), open.end(), [&](const auto &entry) {
        return entry.second.kind == "signal" && name != nullptr && name->isString() &&
               entry.second.name == name->asString();
      });
      if (consumer != open.end()) {
        open.erase(consumer);
      }
    }
  }
  std::vector<OpenWait> waits;
  for (auto &entry : open) {
    waits.push_back(std::move(entry.second));
  }
  return waits;
}

// Everything `show` prints about one run, read in one snapshot.
struct RunDetails {
  RunRecord run;
  std::vector<OpenWait> waits;
  std::vector<runtime::TimerRecord> timers;
  std::vector<runtime::TaskRecord> tasks;
  std::vector<runtime::InboxMessage> inbox;
  std::optional<runtime::LeaseRecord> lease;
  std::vector<RunRecord> children;
};

// Reads what `show` and `history` need, or says that there is no such run.
template <typename T, typename Read>
CliResult<T> readRun(const GlobalOptions &global, const std::string &runId, Read read) {
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return store.failure();
  }
  if (!store.value()) {
    return usageFailure("no run has id '" + runId + "': there is no store at '" + global.dbPath +
                        "'");
  }
  std::optional<T> found;
  runtime::StoreStatus status =
      store.value()->read([&](const runtime::StoreReader &reader) -> runtime::StoreStatus {
        runtime::StoreResult<std::optional<RunRecord>> run = reader.run(runId);
        if (!run.ok()) {
          return run.error();
        }
        if (!run.value()) {
          return {};
        }
        runtime::StoreResult<T> value = read(reader, std::move(*run.value()));
        if (!value.ok()) {
          return value.error();
        }
        found = std::move(value).value();
        return {};
      });
  if (!status.ok()) {
    return storeFailure(status.error());
  }
  if (!found) {
    return usageFailure("no run has id '" + runId + "'; `kotoba-vm list` shows the runs");
  }
  return std::move(*found);
}

runtime::StoreResult<RunDetails> readDetails(const runtime::StoreReader &reader, RunRecord run) {
  RunDetails details;
  auto timers = reader.timersOf(run.id);
  if (!timers.ok()) {
    return timers.error();
  }
  auto tasks = reader.tasksOf(run.id);
  if (!tasks.ok()) {
    return tasks.error();
  }
  auto inbox = reader.inbox(run.id);
  if (!inbox.ok()) {
    return inbox.error();
  }
  auto lease = reader.lease(run.id);
  if (!lease.ok()) {
    return lease.error();
  }
  auto children = reader.children(run.id);
  if (!children.ok()) {
    return children.error();
  }
  if (!runtime::isFinalStatus(run.status)) {
    auto events = reader.events(run.id);
    if (!events.ok()) {
      return events.error();
    }
    details.waits = openWaits(events.value());
  }
  details.run = std::move(run);
  details.timers = std::move(timers).value();
  details.tasks = std::move(tasks).value();
  details.inbox = std::move(inbox).value();
  details.lease = std::move(lease).value();
  details.children = std::move(children).value();
  return details;
}

Value detailsJson(const RunDetails &details) {
  Value run = runJson(details.run);
  Object json = run.asObject();
  Array timers;
  for (const runtime::TimerRecord &timer : details.timers) {
    Object entry;
    entry.set("kind", std::string(runtime::timerKindName(timer.kind)));
    entry.set("command_id", timer.commandId);
    entry.set("fires", formatTime(timer.fireMs));
    timers.emplace_back(std::move(entry));
  }
  json.set("timers", std::move(timers));
  Array waits;
  for (const OpenWait &wait : details.waits) {
    Object entry;
    entry.set("step_id", wait.stepId);
    entry.set("kind", wait.kind);
    entry.set("name", wait.name);
    entry.set("since", formatTime(wait.sinceMs));
    entry.set("timeout", timeValue(wait.timeoutAtMs));
    waits.emplace_back(std::move(entry));
  }
  json.set("waits", std::move(waits));
  Array tasks;
  for (const runtime::TaskRecord &task : details.tasks) {
    Object entry;
    entry.set("activity", task.activity);
    entry.set("step_id", task.stepId);
    entry.set("attempt", task.attempt);
    entry.set("due", formatTime(task.dueMs));
    entry.set("owner", optionalString(task.owner));
    tasks.emplace_back(std::move(entry));
  }
  json.set("tasks", std::move(tasks));
  Array inbox;
  for (const runtime::InboxMessage &message : details.inbox) {
    Object entry;
    entry.set("kind", std::string(runtime::inboxKindName(message.kind)));
    entry.set("name", message.name);
    entry.set("payload", message.payload);
    entry.set("received", formatTime(message.receivedMs));
    inbox.emplace_back(std::move(entry));
  }
  json.set("inbox", std::move(inbox));
  Array children;
  for (const RunRecord &child : details.children) {
    Object entry;
    entry.set("run_id", child.id);
    entry.set("workflow_id", child.workflowId);
    entry.set("status", std::string(runtime::runStatusName(child.status)));
    children.emplace_back(std::move(entry));
  }
  json.set("children", std::move(children));
  if (details.lease) {
    Object lease;
    lease.set("owner", details.lease->owner);
    lease.set("expires", formatTime(details.lease->expiryMs));
    json.set("lease", std::move(lease));
  } else {
    json.set("lease", nullptr);
  }
  // How the run's activities resolve (docs/cli.md): null for a run that recorded nothing.
  json.set("host", details.run.host);
  return Value(std::move(json));
}

void printDetails(const RunDetails &details) {
  const RunRecord &run = details.run;
  std::vector<std::vector<std::string>> rows;
  auto row = [&rows](std::string label, std::string value) {
    rows.push_back({std::move(label), std::move(value)});
  };
  row("run", run.id);
  row("workflow", run.workflowId);
  row("status", std::string(runtime::runStatusName(run.status)));
  if (run.chainId != run.id) {
    row("chain", run.chainId);
  }
  if (run.parentRunId) {
    row("parent", *run.parentRunId);
  }
  row("module", run.moduleHash);
  if (!run.host.isNull()) {
    // What the process that drives the run will use unless it has its own --bind.
    Result<runtime::RunHost> host = runtime::runHostFromValue(run.host);
    if (!host.ok()) {
      row("host", host.error().message);
    } else {
      if (!host.value().baseDirectory.empty()) {
        row("base dir", host.value().baseDirectory);
      }
      for (const runtime::RunBinding &binding : host.value().bindings) {
        std::string text =
            binding.name + " " + compactJson(binding.implementation, kHistoryPayloadBytes);
        if (!binding.baseDirectory.empty()) {
          text += " (typed in " + binding.baseDirectory + ")";
        }
        row("bound", text);
      }
    }
  }
  if (run.attempt != 1) {
    row("attempt", std::to_string(run.attempt));
  }
  row("created", formatTime(run.createdMs));
  row("updated", formatTime(run.updatedMs));
  if (run.finishedMs) {
    row("finished", formatTime(*run.finishedMs));
  }
  if (run.timeoutMs) {
    row("timeout", formatTime(*run.timeoutMs));
  }
  row("events", std::to_string(run.lastSeq));
  row("inputs", toJson(run.inputs));
  if (run.outputs) {
    row("outputs", toJson(*run.outputs));
  }
  if (run.error) {
    std::vector<std::string> lines = describeError(workflowErrorFromValue(*run.error));
    for (size_t index = 0; index < lines.size(); ++index) {
      row(index == 0 ? "error" : "", lines[index]);
    }
  }
  for (const OpenWait &wait : details.waits) {
    std::string text = wait.kind + " " + wait.name + " (step " + wait.stepId + ") since " +
                       formatTime(wait.sinceMs);
    if (wait.timeoutAtMs) {
      text += ", times out " + formatTime(*wait.timeoutAtMs);
    }
    row("waits for", text);
  }
  for (const runtime::TimerRecord &timer : details.timers) {
    row("timer",
        std::string(runtime::timerKindName(timer.kind)) + " fires " + formatTime(timer.fireMs));
  }
  for (const runtime::TaskRecord &task : details.tasks) {
    std::string text =
        task.activity + " (step " + task.stepId + ", attempt " + std::to_string(task.attempt) + ")";
    text += task.owner ? " running in " + *task.owner : " due " + formatTime(task.dueMs);
    row("task", text);
  }
  for (const runtime::InboxMessage &message : details.inbox) {
    std::string text = std::string(runtime::inboxKindName(message.kind));
    if (!message.name.empty()) {
      text += " " + message.name;
    }
    text += " " + compactJson(message.payload, kHistoryPayloadBytes);
    row("inbox", text);
  }
  for (const RunRecord &child : details.children) {
    row("child", child.id + " " + child.workflowId + " " +
                     std::string(runtime::runStatusName(child.status)));
  }
  if (details.lease) {
    row("lease", details.lease->owner + " until " + formatTime(details.lease->expiryMs));
  }
  printTable(rows);
}

} // namespace

int listCommand(const GlobalOptions &global, const ListOptions &options) {
  runtime::RunQuery query;
  query.limit = options.limit;
  query.workflowId = options.workflowId;
  if (options.status) {
    CliResult<RunStatus> status = parseStatus(*options.status);
    if (!status.ok()) {
      return report(status.failure());
    }
    query.status = status.value();
  }
  CliResult<std::unique_ptr<runtime::Store>> store = openExistingStore(global);
  if (!store.ok()) {
    return report(store.failure());
  }
  std::vector<RunRecord> runs;
  if (store.value()) {
    runtime::StoreResult<std::vector<RunRecord>> found = store.value()->query(
        [&](const runtime::StoreReader &reader) { return reader.runs(query); });
    if (!found.ok()) {
      return report(storeFailure(found.error()));
    }
    runs = std::move(found).value();
  }
  if (global.json) {
    Array json;
    for (const RunRecord &run : runs) {
      json.push_back(runJson(run));
    }
    printJson(Value(std::move(json)));
    return static_cast<int>(ExitCode::Completed);
  }
  if (runs.empty()) {
    note("no runs");
    return static_cast<int>(ExitCode::Completed);
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"RUN", "WORKFLOW", "STATUS", "CREATED", "FINISHED"});
  for (const RunRecord &run : runs) {
    rows.push_back({run.id, run.workflowId, std::string(runtime::runStatusName(run.status)),
                    formatTime(run.createdMs), run.finishedMs ? formatTime(*run.finishedMs) : "-"});
  }
  printTable(rows);
  return static_cast<int>(ExitCode::Completed);
}

int showCommand(const GlobalOptions &global, const std::string &runId) {
  CliResult<RunDetails> details = readRun<RunDetails>(global, runId, readDetails);
  if (!details.ok()) {
    return report(details.failure());
  }
  if (global.json) {
    printJson(detailsJson(details.value()));
  } else {
    printDetails(details.value());
  }
  return static_cast<int>(ExitCode::Completed);
}

int historyCommand(const GlobalOptions &global, const std::string &runId) {
  CliResult<std::vector<EventRecord>> events = readRun<std::vector<EventRecord>>(
      global, runId,
      [](const runtime::StoreReader &reader, RunRecord run) { return reader.events(run.id); });
  if (!events.ok()) {
    return report(events.failure());
  }
  if (global.json) {
    Array json;
    for (const EventRecord &event : events.value()) {
      json.push_back(eventJson(event));
    }
    printJson(Value(std::move(json)));
    return static_cast<int>(ExitCode::Completed);
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"SEQ", "TIME", "TYPE", "STEP", "LOCATION", "PAYLOAD"});
  for (const EventRecord &event : events.value()) {
    rows.push_back({std::to_string(event.seq), formatTime(event.timeMs),
                    std::string(runtime::eventTypeName(event.type)),
                    event.stepId.empty() ? "-" : event.stepId,
                    event.location.empty() ? "-" : event.location,
                    compactJson(event.payload, kHistoryPayloadBytes)});
  }
  printTable(rows);
  return static_cast<int>(ExitCode::Completed);
}

} // namespace kotoba::cli
