// Export files (cli_export.h): writing a run out of the store, and reading a file back with
// every field, the hash chain and the module checked before anything replays it.
#include "cli_export.h"

#include "kotoba/runtime/event_types.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/module_format.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <limits>

namespace kotoba::cli {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string toHex(std::span<const uint8_t> bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    text += kHexDigits[byte >> 4];
    text += kHexDigits[byte & 0xF];
  }
  return text;
}

std::optional<std::vector<uint8_t>> fromHex(std::string_view text) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  if (text.size() % 2 != 0) {
    return std::nullopt;
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int high = digit(text[i]);
    int low = digit(text[i + 1]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    bytes.push_back(static_cast<uint8_t>(high * 16 + low));
  }
  return bytes;
}

Value optionalText(const std::optional<std::string> &text) {
  return text ? Value(*text) : Value();
}

// Reads the fields of the export file, remembering the first one that is missing or of the
// wrong kind, so the reading code runs straight through and checks once.
class Fields {
public:
  explicit Fields(std::string file) : file_(std::move(file)) {}

  [[nodiscard]] const Value &get(const Value &object, std::string_view key,
                                 const std::string &where) {
    static const Value null;
    const Value *found = object.isObject() ? object.asObject().find(key) : nullptr;
    if (found == nullptr) {
      fail(fmt::format("{}{} is missing", where, key));
      return null;
    }
    return *found;
  }
  [[nodiscard]] std::string text(const Value &object, std::string_view key,
                                 const std::string &where) {
    const Value &value = get(object, key, where);
    if (!value.isString()) {
      fail(fmt::format("{}{} must be a string, found {}", where, key, describeValue(value)));
      return {};
    }
    return value.asString();
  }
  [[nodiscard]] int64_t integer(const Value &object, std::string_view key,
                                const std::string &where) {
    const Value &value = get(object, key, where);
    if (!value.isInt()) {
      fail(fmt::format("{}{} must be an integer, found {}", where, key, describeValue(value)));
      return 0;
    }
    return value.asInt();
  }
  [[nodiscard]] std::optional<std::string> optionalText(const Value &object, std::string_view key,
                                                        const std::string &where) {
    return get(object, key, where).isNull() ? std::nullopt
                                            : std::optional<std::string>(text(object, key, where));
  }
  [[nodiscard]] runtime::Hash hash(const Value &object, std::string_view key,
                                   const std::string &where) {
    std::string hex = text(object, key, where);
    std::optional<std::vector<uint8_t>> bytes = fromHex(hex);
    runtime::Hash hash{};
    if (ok() && (!bytes || bytes->size() != hash.size())) {
      fail(fmt::format("{}{} must be 64 hex digits", where, key));
      return hash;
    }
    if (bytes) {
      std::copy(bytes->begin(), bytes->end(), hash.begin());
    }
    return hash;
  }

  void fail(std::string problem) {
    if (!problem_) {
      problem_ = std::move(problem);
    }
  }
  [[nodiscard]] bool ok() const { return !problem_; }
  [[nodiscard]] Failure failure() const {
    return usageFailure(fmt::format("{}: not a kotoba-vm export: {}", file_, *problem_));
  }

private:
  std::string file_;
  std::optional<std::string> problem_;
};

Value eventValue(const runtime::EventRecord &event) {
  Object json;
  json.appendNew("seq", Value(event.seq));
  json.appendNew("type", Value(runtime::eventTypeName(event.type)));
  json.appendNew("type_number", Value(static_cast<int64_t>(runtime::eventTypeNumber(event.type))));
  json.appendNew("time_ms", Value(event.timeMs));
  json.appendNew("tx", Value(event.tx));
  json.appendNew("step_id", Value(event.stepId));
  json.appendNew("location", Value(event.location));
  json.appendNew("payload", event.payload);
  json.appendNew("hash", Value(runtime::hashHex(event.hash)));
  json.appendNew("prev_hash", Value(runtime::hashHex(event.prevHash)));
  return Value(std::move(json));
}

// The first link of an exported history that does not hold, as `verify` would report it.
std::optional<std::string> brokenLink(const ExportedRun &exported) {
  runtime::Hash previous{};
  int64_t expectedSeq = 1;
  for (const runtime::EventRecord &event : exported.events) {
    if (event.seq != expectedSeq) {
      return fmt::format("event {} follows event {}", event.seq, expectedSeq - 1);
    }
    if (event.prevHash != previous) {
      return fmt::format("event {} does not link to the event before it", event.seq);
    }
    runtime::Hash hash = runtime::eventHash(
        previous, exported.run.id, event.seq, runtime::eventTypeNumber(event.type), event.timeMs,
        event.tx, event.stepId, event.location, toJson(event.payload));
    if (hash != event.hash) {
      return fmt::format("event {} does not match its hash: its content was changed", event.seq);
    }
    previous = hash;
    ++expectedSeq;
  }
  return std::nullopt;
}

} // namespace

std::string moduleHashOf(const vm::Module &module) {
  return vm::hashToHex(vm::computeContentHash(vm::writeModule(module)));
}

CliResult<std::shared_ptr<const vm::Module>> loadStoredModule(const std::vector<uint8_t> &bytes,
                                                              const std::string &expectedHash,
                                                              const std::string &where) {
  vm::ModuleResult<vm::LoadedModule> loaded = vm::loadModule(bytes);
  if (!loaded.ok()) {
    return Failure{ExitCode::StoreError,
                   fmt::format("{}: module {} does not load: {}", where, expectedHash,
                               loaded.errors().front().describe()),
                   {}};
  }
  std::string hash = vm::hashToHex(loaded.value().hash);
  if (hash != expectedHash) {
    return Failure{
        ExitCode::StoreError,
        fmt::format("{}: the module's bytes have hash {}, not {}", where, hash, expectedHash),
        {}};
  }
  return std::make_shared<const vm::Module>(std::move(loaded).value().module);
}

CliResult<ExportedRun> readRunForExport(runtime::Store &store, const std::string &runId) {
  std::optional<ExportedRun> found;
  std::optional<Failure> missingModule;
  runtime::StoreStatus status =
      store.read([&](const runtime::StoreReader &reader) -> runtime::StoreStatus {
        auto run = reader.run(runId);
        if (!run.ok()) {
          return run.error();
        }
        if (!run.value()) {
          return {};
        }
        auto module = reader.module(run.value()->moduleHash);
        if (!module.ok()) {
          return module.error();
        }
        if (!module.value()) {
          missingModule = Failure{ExitCode::StoreError,
                                  fmt::format("{}: the store has no module {} for run {}",
                                              store.path(), run.value()->moduleHash, runId),
                                  {}};
          return {};
        }
        auto events = reader.events(runId);
        if (!events.ok()) {
          return events.error();
        }
        ExportedRun exported;
        exported.run = std::move(*run.value());
        exported.moduleHash = exported.run.moduleHash;
        exported.moduleBytes = std::move(*module.value());
        exported.events = std::move(events).value();
        found = std::move(exported);
        return {};
      });
  if (!status.ok()) {
    return storeFailure(status.error());
  }
  if (missingModule) {
    return *missingModule;
  }
  if (!found) {
    return usageFailure("no run has id '" + runId + "'; `kotoba-vm list` shows the runs");
  }
  return std::move(*found);
}

Value exportValue(const ExportedRun &exported) {
  const runtime::RunRecord &run = exported.run;
  Object runJson;
  runJson.appendNew("run_id", Value(run.id));
  runJson.appendNew("workflow_id", Value(run.workflowId));
  runJson.appendNew("chain_id", Value(run.chainId));
  runJson.appendNew("parent_run_id", optionalText(run.parentRunId));
  runJson.appendNew("parent_command_id",
                    run.parentCommandId ? Value(*run.parentCommandId) : Value());
  runJson.appendNew("attempt", Value(run.attempt));
  runJson.appendNew("created_ms", Value(run.createdMs));
  runJson.appendNew("status", Value(runtime::runStatusName(run.status)));
  runJson.appendNew("inputs", run.inputs);
  runJson.appendNew("outputs", run.outputs.value_or(Value()));
  runJson.appendNew("error", run.error.value_or(Value()));
  runJson.appendNew("last_seq", Value(run.lastSeq));
  // runs.host: the directory and --bind bindings the run's activities resolve with; null
  // when the starter gave none.
  runJson.appendNew("host", run.host);

  Array events;
  events.reserve(exported.events.size());
  for (const runtime::EventRecord &event : exported.events) {
    events.push_back(eventValue(event));
  }
  Object json;
  json.appendNew("kotoba_export", Value(kExportFormat));
  json.appendNew("run", Value(std::move(runJson)));
  json.appendNew("module_hash", Value(exported.moduleHash));
  json.appendNew("module_kbc_hex", Value(toHex(exported.moduleBytes)));
  json.appendNew("events", Value(std::move(events)));
  return Value(std::move(json));
}

CliResult<ExportedRun> readExport(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return usageFailure("cannot read '" + path + "'");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Result<Value> parsed = parseJson(text);
  if (!parsed.ok()) {
    return usageFailure(path + ": not a kotoba-vm export: " + parsed.error().message);
  }
  const Value &root = parsed.value();
  Fields fields(path);
  int64_t format = fields.integer(root, "kotoba_export", "");
  if (fields.ok() && format != kExportFormat) {
    return usageFailure(fmt::format("{}: export format {} is not the format {} this kotoba-vm "
                                    "reads; export the run again with this version",
                                    path, format, kExportFormat));
  }

  ExportedRun exported;
  const Value &run = fields.get(root, "run", "");
  runtime::RunRecord &record = exported.run;
  record.id = fields.text(run, "run_id", "run.");
  record.workflowId = fields.text(run, "workflow_id", "run.");
  record.chainId = fields.text(run, "chain_id", "run.");
  record.parentRunId = fields.optionalText(run, "parent_run_id", "run.");
  record.attempt = fields.integer(run, "attempt", "run.");
  record.createdMs = fields.integer(run, "created_ms", "run.");
  std::string status = fields.text(run, "status", "run.");
  record.status = runtime::runStatusFromName(status).value_or(runtime::RunStatus::Running);
  if (fields.ok() && !runtime::runStatusFromName(status)) {
    fields.fail(fmt::format("run.status '{}' is not a run status", status));
  }
  record.inputs = fields.get(run, "inputs", "run.");
  record.lastSeq = fields.integer(run, "last_seq", "run.");
  // Exports written before `host` was added have none: the same as a run that stored none.
  if (const Value *host = run.isObject() ? run.asObject().find("host") : nullptr) {
    if (!host->isNull() && !host->isObject()) {
      fields.fail("run.host must be an object or null, found " + describeValue(*host));
    }
    record.host = *host;
  }
  exported.moduleHash = fields.text(root, "module_hash", "");
  std::string moduleHex = fields.text(root, "module_kbc_hex", "");
  std::optional<std::vector<uint8_t>> moduleBytes = fromHex(moduleHex);
  if (fields.ok() && !moduleBytes) {
    fields.fail("module_kbc_hex is not hex digits");
  }
  record.moduleHash = exported.moduleHash;

  const Value &events = fields.get(root, "events", "");
  if (fields.ok() && !events.isArray()) {
    fields.fail("events must be an array");
  }
  for (size_t i = 0; fields.ok() && i < events.asArray().size(); ++i) {
    const Value &entry = events.asArray()[i];
    std::string where = fmt::format("events[{}].", i);
    runtime::EventRecord event;
    event.runId = record.id;
    event.seq = fields.integer(entry, "seq", where);
    int64_t number = fields.integer(entry, "type_number", where);
    std::optional<runtime::EventType> type = runtime::eventTypeFromNumber(number);
    if (fields.ok() && !type) {
      fields.fail(
          fmt::format("{}type_number {} is no event type this kotoba-vm knows", where, number));
    }
    event.type = type.value_or(runtime::EventType::WorkflowStarted);
    event.timeMs = fields.integer(entry, "time_ms", where);
    event.tx = fields.integer(entry, "tx", where);
    event.stepId = fields.text(entry, "step_id", where);
    event.location = fields.text(entry, "location", where);
    event.payload = fields.get(entry, "payload", where);
    event.hash = fields.hash(entry, "hash", where);
    event.prevHash = fields.hash(entry, "prev_hash", where);
    exported.events.push_back(std::move(event));
  }
  if (!fields.ok()) {
    return fields.failure();
  }
  exported.moduleBytes = std::move(*moduleBytes);
  if (std::optional<std::string> broken = brokenLink(exported)) {
    return Failure{ExitCode::StoreError,
                   fmt::format("{}: the history's hash chain breaks: {}", path, *broken),
                   {"the file was changed after `kotoba-vm export` wrote it; export it again"}};
  }
  return exported;
}

} // namespace kotoba::cli
