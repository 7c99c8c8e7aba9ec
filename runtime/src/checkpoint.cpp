// Checkpoints (checkpoint.h): the state's JSON layout, restoring a replay from it, and
// rebuilding a run from the nearest checkpoint plus the events after it.
#include "kotoba/runtime/checkpoint.h"

#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <set>
#include <variant>

namespace kotoba::runtime {

namespace {

constexpr std::array kAllCommandKinds = {vm::CommandKind::ScheduleActivity,
                                         vm::CommandKind::StartTimer,
                                         vm::CommandKind::WaitSignal,
                                         vm::CommandKind::WaitEvent,
                                         vm::CommandKind::StartChild,
                                         vm::CommandKind::AskPredicate,
                                         vm::CommandKind::Cancel,
                                         vm::CommandKind::RecordDecision,
                                         vm::CommandKind::RecordCompensation,
                                         vm::CommandKind::Complete,
                                         vm::CommandKind::Fail,
                                         vm::CommandKind::ContinueAsNew,
                                         vm::CommandKind::Cancelled,
                                         vm::CommandKind::TimedOut};

std::optional<vm::CommandKind> commandKindNamed(std::string_view name) {
  for (vm::CommandKind kind : kAllCommandKinds) {
    if (name == vm::commandKindName(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

// The infos the engine can still need: those of the commands the machine waits on (an
// outcome, a timer or a cancel can still name them) and of every child run (terminating the
// run terminates its children). The others only grow with the history: storing them made
// each checkpoint, and so each resume, cost time in proportion to the run's length (5,000
// activities: 15,002 events, 4x the run time and 0.36 s per resume in a debug build).
Value commandsValue(const vm::Machine &machine, const CommandInfos &commands) {
  std::set<vm::CommandId> pending;
  for (const vm::Command &command : machine.pendingCommands()) {
    pending.insert(command.id);
  }
  Array array;
  for (const auto &[id, info] : commands) {
    if (!pending.contains(id) && info.kind != vm::CommandKind::StartChild) {
      continue;
    }
    Object entry;
    entry.appendNew("id", Value(static_cast<int64_t>(id)));
    entry.appendNew("kind", Value(vm::commandKindName(info.kind)));
    entry.appendNew("step", Value(info.step));
    entry.appendNew("name", Value(info.name));
    entry.appendNew("descriptor", info.descriptor);
    entry.appendNew("issued_ms", Value(info.issuedMs));
    entry.appendNew("child_run_id", Value(info.childRunId));
    entry.appendNew("location", Value(info.location));
    array.push_back(Value(std::move(entry)));
  }
  return Value(std::move(array));
}

// The command infos of a checkpoint, or what is wrong with them.
std::variant<CommandInfos, std::string> readCommands(const Value &value) {
  if (!value.isArray()) {
    return std::string("'commands' is not an array");
  }
  CommandInfos commands;
  for (const Value &entry : value.asArray()) {
    const Object *fields = entry.isObject() ? &entry.asObject() : nullptr;
    auto field = [&](std::string_view key) -> const Value * {
      return fields != nullptr ? fields->find(key) : nullptr;
    };
    const Value *id = field("id");
    const Value *kind = field("kind");
    const Value *step = field("step");
    const Value *name = field("name");
    const Value *descriptor = field("descriptor");
    const Value *issued = field("issued_ms");
    const Value *child = field("child_run_id");
    const Value *location = field("location");
    std::optional<vm::CommandKind> kindValue =
        kind != nullptr && kind->isString() ? commandKindNamed(kind->asString()) : std::nullopt;
    if (id == nullptr || !id->isInt() || id->asInt() <= 0 || !kindValue || step == nullptr ||
        !step->isString() || name == nullptr || !name->isString() || descriptor == nullptr ||
        issued == nullptr || !issued->isInt() || child == nullptr || !child->isString() ||
        (location != nullptr && !location->isString())) {
      return fmt::format("command entry {} is malformed", commands.size());
    }
    bool added = commands
                     .emplace(static_cast<vm::CommandId>(id->asInt()),
                              CommandInfo{*kindValue, step->asString(), name->asString(),
                                          *descriptor, issued->asInt(), child->asString(),
                                          // absent in checkpoints written before it existed
                                          location != nullptr ? location->asString() : ""})
                     .second;
    if (!added) {
      return fmt::format("command {} appears twice", id->asInt());
    }
  }
  return commands;
}

WorkflowError unusable(const CheckpointRecord &checkpoint, std::string why) {
  return makeError("CheckpointUnusable",
                   fmt::format("the checkpoint at event {} of run {} cannot be used: {}",
                               checkpoint.seq, checkpoint.runId, why));
}

WorkflowError storeFailure(const StoreError &error) {
  return makeError(engine_errors::StoreFailure, error.message);
}

} // namespace

std::string encodeCheckpoint(std::string_view moduleHash, const vm::Machine &machine,
                             const CommandInfos &commands) {
  Object state;
  state.appendNew("format", Value(kCheckpointFormat));
  state.appendNew("module_hash", Value(moduleHash));
  state.appendNew("machine", machine.snapshot());
  state.appendNew("commands", commandsValue(machine, commands));
  return toJson(Value(std::move(state)));
}

Result<Replay> restoreCheckpoint(std::shared_ptr<const vm::Module> module,
                                 std::string_view moduleHash, const CheckpointRecord &checkpoint,
                                 const EventRecord &covered) {
  if (covered.seq != checkpoint.seq) {
    return unusable(checkpoint,
                    fmt::format("it was handed event {} as the event it covers", covered.seq));
  }
  Hash expected = checkpointHash(checkpoint.prevHash, checkpoint.runId, checkpoint.seq,
                                 covered.hash, checkpoint.state);
  if (expected != checkpoint.hash) {
    return unusable(checkpoint, "its hash does not match its bytes; `kotoba-vm verify` says more");
  }
  Result<Value> parsed = parseJson(checkpoint.state);
  if (!parsed.ok()) {
    return unusable(checkpoint, parsed.error().message);
  }
  const Value &state = parsed.value();
  const Object *fields = state.isObject() ? &state.asObject() : nullptr;
  auto field = [&](std::string_view key) -> const Value * {
    return fields != nullptr ? fields->find(key) : nullptr;
  };
  const Value *format = field("format");
  if (format == nullptr || !format->isInt() || format->asInt() != kCheckpointFormat) {
    return unusable(checkpoint, fmt::format("its format is not {}", kCheckpointFormat));
  }
  const Value *hash = field("module_hash");
  if (hash == nullptr || !hash->isString() || hash->asString() != moduleHash) {
    return unusable(
        checkpoint,
        fmt::format("it was taken with module {}, not {}",
                    hash != nullptr && hash->isString() ? hash->asString() : std::string("(none)"),
                    moduleHash));
  }
  const Value *machineState = field("machine");
  const Value *commandsState = field("commands");
  if (machineState == nullptr || commandsState == nullptr) {
    return unusable(checkpoint, "it has no machine state or no commands");
  }
  Result<vm::Machine> machine = vm::Machine::restore(std::move(module), *machineState);
  if (!machine.ok()) {
    return unusable(checkpoint, machine.error().message);
  }
  std::variant<CommandInfos, std::string> commands = readCommands(*commandsState);
  if (std::holds_alternative<std::string>(commands)) {
    return unusable(checkpoint, std::get<std::string>(commands));
  }
  return Replay(std::make_unique<vm::Machine>(std::move(machine).value()),
                std::move(std::get<CommandInfos>(commands)), checkpoint.seq);
}

Result<RebuiltRun> rebuildRun(const StoreReader &reader, const RunRecord &run,
                              std::shared_ptr<const vm::Module> module,
                              std::optional<int64_t> atSeq) {
  const vm::Workflow *workflow = module->findWorkflow(run.workflowId);
  if (workflow == nullptr) {
    return makeError(engine_errors::UnknownWorkflow,
                     fmt::format("module {} has no workflow '{}'", run.moduleHash, run.workflowId));
  }
  auto workflowIndex = static_cast<uint32_t>(workflow - module->workflows.data());

  std::optional<std::string> skipped;
  auto checkpoint =
      reader.checkpointAtOrBefore(run.id, atSeq.value_or(std::numeric_limits<int64_t>::max()));
  if (!checkpoint.ok()) {
    return storeFailure(checkpoint.error());
  }
  if (checkpoint.value()) {
    const CheckpointRecord &nearest = *checkpoint.value();
    // From the covered event on: its hash checks the checkpoint, the rest are replayed.
    auto events = reader.events(run.id, EventRange{nearest.seq, atSeq, {}});
    if (!events.ok()) {
      return storeFailure(events.error());
    }
    if (events.value().empty() || events.value().front().seq != nearest.seq) {
      skipped = fmt::format("the history has no event {} for it to cover", nearest.seq);
    } else {
      Result<Replay> restored =
          restoreCheckpoint(module, run.moduleHash, nearest, events.value().front());
      if (restored.ok()) {
        std::span<const EventRecord> later = std::span(events.value()).subspan(1);
        RebuiltRun rebuilt{std::move(restored).value(), nearest.seq, std::nullopt, later.size()};
        (void)rebuilt.replay.applyAll(later);
        return rebuilt;
      }
      skipped = restored.error().message;
    }
  }

  auto events = reader.events(run.id, EventRange{1, atSeq, {}});
  if (!events.ok()) {
    return storeFailure(events.error());
  }
  RebuiltRun rebuilt{Replay(module, workflowIndex, runInfoOf(run, *workflow), run.inputs),
                     std::nullopt, std::move(skipped), events.value().size()};
  (void)rebuilt.replay.applyAll(events.value());
  return rebuilt;
}

} // namespace kotoba::runtime
