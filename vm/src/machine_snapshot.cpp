// Machine snapshots (machine.h): the whole MachineState written out as one Value, and read
// back strictly. The runtime stores snapshots in checkpoints, so that loading a run restores
// the latest one and replays only the events after it; docs/durability.md describes the
// format. A snapshot names its module only by the workflow index: the caller hands the module
// to restore.
//
// Restore trusts nothing. Every field is checked here for its kind and range, and then
// machine_snapshot_check.cpp checks every reference between the parts of the state (fibers
// to blocks, registers, scopes, joins and commands; joins to their owners; the ready set to
// ready fibers) against the module and the rest of the snapshot, so that no lookup the
// machine makes afterwards can go out of bounds. A malformed snapshot is an InvalidSnapshot
// error naming the first field that is wrong, never a crash.
#include "machine_snapshot.h"
#include "machine_state.h"

#include <fmt/format.h>

#include <array>
#include <cassert>
#include <limits>

namespace kotoba::vm {

namespace {

// Raised with the snapshot's format number when a field is added, removed or changes meaning;
// restore refuses other numbers (a checkpoint from another version is simply not used).
constexpr int64_t kSnapshotFormat = 1;
constexpr std::string_view kInvalidSnapshotError = "InvalidSnapshot";

// ---- names of the state's enums ------------------------------------------------------------
//
// Enums are written as names, so a snapshot reads well in a checkpoint dump and a renumbered
// enumerator cannot silently change a stored state. Each kAll* list holds every enumerator;
// restore accepts exactly the names in it.

const char *fiberStateName(FiberState state) {
  switch (state) {
  case FiberState::Ready:
    return "ready";
  case FiberState::WaitingCommand:
    return "waiting_command";
  case FiberState::WaitingJoin:
    return "waiting_join";
  case FiberState::Done:
    return "done";
  case FiberState::Failed:
    return "failed";
  case FiberState::Cancelled:
    return "cancelled";
  }
  return "unknown";
}
constexpr std::array kAllFiberStates = {FiberState::Ready,       FiberState::WaitingCommand,
                                        FiberState::WaitingJoin, FiberState::Done,
                                        FiberState::Failed,      FiberState::Cancelled};

const char *joinKindName(JoinKind kind) {
  switch (kind) {
  case JoinKind::Parallel:
    return "parallel";
  case JoinKind::Foreach:
    return "foreach";
  case JoinKind::Compensation:
    return "compensation";
  }
  return "unknown";
}
constexpr std::array kAllJoinKinds = {JoinKind::Parallel, JoinKind::Foreach,
                                      JoinKind::Compensation};

const char *slotStateName(SlotState state) {
  switch (state) {
  case SlotState::Pending:
    return "pending";
  case SlotState::Running:
    return "running";
  case SlotState::Completed:
    return "completed";
  case SlotState::Failed:
    return "failed";
  case SlotState::Cancelled:
    return "cancelled";
  case SlotState::Skipped:
    return "skipped";
  }
  return "unknown";
}
constexpr std::array kAllSlotStates = {SlotState::Pending,   SlotState::Running,
                                       SlotState::Completed, SlotState::Failed,
                                       SlotState::Cancelled, SlotState::Skipped};

const char *waitKindName(WaitKind kind) {
  switch (kind) {
  case WaitKind::Activity:
    return "activity";
  case WaitKind::Timer:
    return "timer";
  case WaitKind::Signal:
    return "signal";
  case WaitKind::Event:
    return "event";
  case WaitKind::Child:
    return "child";
  case WaitKind::Predicate:
    return "predicate";
  }
  return "unknown";
}
constexpr std::array kAllWaitKinds = {WaitKind::Activity, WaitKind::Timer, WaitKind::Signal,
                                      WaitKind::Event,    WaitKind::Child, WaitKind::Predicate};

const char *frameKindName(Frame::Kind kind) {
  switch (kind) {
  case Frame::Kind::Try:
    return "try";
  case Frame::Kind::Saga:
    return "saga";
  }
  return "unknown";
}
constexpr std::array kAllFrameKinds = {Frame::Kind::Try, Frame::Kind::Saga};

constexpr std::array kAllRunStatuses = {
    RunStatus::Running,   RunStatus::Compensating, RunStatus::Completed,     RunStatus::Failed,
    RunStatus::Cancelled, RunStatus::TimedOut,     RunStatus::ContinuedAsNew};
constexpr std::array kAllCommandKinds = {
    CommandKind::ScheduleActivity, CommandKind::StartTimer,     CommandKind::WaitSignal,
    CommandKind::WaitEvent,        CommandKind::StartChild,     CommandKind::AskPredicate,
    CommandKind::Cancel,           CommandKind::RecordDecision, CommandKind::RecordCompensation,
    CommandKind::Complete,         CommandKind::Fail,           CommandKind::ContinueAsNew,
    CommandKind::Cancelled,        CommandKind::TimedOut};
constexpr std::array kAllParallelModes = {ParallelMode::All, ParallelMode::Any,
                                          ParallelMode::AtLeast, ParallelMode::AllSettled};
constexpr std::array kAllForeachModes = {ForeachMode::All, ForeachMode::AllSettled};

// ---- writing -------------------------------------------------------------------------------

Value integer(uint64_t value) {
  assert(value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
         "machine counters stay far below 2^63");
  return Value(static_cast<int64_t>(value));
}

Value optionalInteger(const std::optional<uint32_t> &value) {
  return value ? integer(*value) : Value();
}

Value locationValue(const SourceLocation &at) {
  return Value(Array{integer(at.file.index), integer(at.line), integer(at.column)});
}

// Every field of the error, `retryable` included (toValue leaves it out).
Value errorValue(const std::optional<WorkflowError> &error) {
  if (!error) {
    return Value();
  }
  Array chain;
  for (const std::string &workflowId : error->chain) {
    chain.emplace_back(workflowId);
  }
  Object object;
  object.appendNew("type", Value(error->type));
  object.appendNew("message", Value(error->message));
  object.appendNew("details", error->details);
  object.appendNew("chain", Value(std::move(chain)));
  object.appendNew("retryable", Value(error->retryable));
  object.appendNew("extensions", Value(error->extensions));
  return Value(std::move(object));
}

Value registersValue(const std::vector<Value> &registers) {
  return Value(Array(registers.begin(), registers.end()));
}

Value commandValue(const Command &command) {
  Object object;
  object.appendNew("kind", Value(commandKindName(command.kind)));
  object.appendNew("id", integer(command.id));
  object.appendNew("fiber", integer(command.fiber));
  object.appendNew("step", Value(command.step));
  object.appendNew("location", locationValue(command.location));
  object.appendNew("name", Value(command.name));
  object.appendNew("value", command.value);
  object.appendNew("descriptor", command.descriptor);
  object.appendNew("fire_at_ms", command.fireAtMs ? Value(*command.fireAtMs) : Value());
  object.appendNew("timeout_at_ms", command.timeoutAtMs ? Value(*command.timeoutAtMs) : Value());
  object.appendNew("target", integer(command.target));
  object.appendNew("detail", Value(command.detail));
  object.appendNew("error", errorValue(command.error));
  return Value(std::move(object));
}

Value recordValue(const CompensationRecord &record) {
  Object object;
  object.appendNew("block", integer(record.block));
  object.appendNew("registers", registersValue(record.registers));
  object.appendNew("step", Value(record.step));
  object.appendNew("scope", integer(record.scope));
  object.appendNew("location", locationValue(record.location));
  return Value(std::move(object));
}

Value recordsValue(const std::vector<CompensationRecord> &records) {
  Array array;
  for (const CompensationRecord &record : records) {
    array.push_back(recordValue(record));
  }
  return Value(std::move(array));
}

Value frameValue(const Frame &frame) {
  Object object;
  object.appendNew("kind", Value(frameKindName(frame.kind)));
  object.appendNew("handler", integer(frame.handler));
  object.appendNew("error_register", integer(frame.errorRegister));
  object.appendNew("descriptor", integer(frame.descriptor));
  object.appendNew("failed", Value(frame.failed));
  object.appendNew("compensations", recordsValue(frame.compensations));
  return Value(std::move(object));
}

Value fiberValue(const Fiber &fiber) {
  Array frames;
  for (const Frame &frame : fiber.frames) {
    frames.push_back(frameValue(frame));
  }
  Object object;
  object.appendNew("id", integer(fiber.id));
  object.appendNew("block", integer(fiber.block));
  object.appendNew("pc", integer(fiber.pc));
  object.appendNew("registers", registersValue(fiber.registers));
  object.appendNew("scope", integer(fiber.scope));
  object.appendNew("frames", Value(std::move(frames)));
  object.appendNew("state", Value(fiberStateName(fiber.state)));
  object.appendNew("command", integer(fiber.command));
  object.appendNew("join", integer(fiber.join));
  object.appendNew("result_register", integer(fiber.resultRegister));
  object.appendNew("member_of", optionalInteger(fiber.memberOf));
  object.appendNew("slot", integer(fiber.slot));
  object.appendNew("spawner", optionalInteger(fiber.spawner));
  object.appendNew("compensating", Value(fiber.compensating));
  // Written only when set, so a snapshot of a state without a running saga handler reads
  // as before; restore takes a missing field as unset (snapshots written before them too).
  if (fiber.handlerDepth) {
    object.appendNew("handler_depth", integer(*fiber.handlerDepth));
  }
  if (fiber.cancelAfterHandler) {
    object.appendNew("cancel_after_handler", Value(true));
  }
  return Value(std::move(object));
}

Value joinValue(uint32_t id, const Join &join) {
  Array slots;
  for (const Slot &slot : join.slots) {
    Object entry;
    entry.appendNew("state", Value(slotStateName(slot.state)));
    entry.appendNew("fiber", integer(slot.fiber));
    entry.appendNew("value", slot.value);
    entry.appendNew("error", errorValue(slot.error));
    slots.push_back(Value(std::move(entry)));
  }
  Object object;
  object.appendNew("id", integer(id));
  object.appendNew("kind", Value(joinKindName(join.kind)));
  object.appendNew("owner", integer(join.owner));
  object.appendNew("target_register", integer(join.targetRegister));
  object.appendNew("location", locationValue(join.location));
  object.appendNew("finished", Value(join.finished));
  object.appendNew("slots", Value(std::move(slots)));
  object.appendNew("parallel_mode", Value(parallelModeName(join.parallelMode)));
  object.appendNew("needed", integer(join.needed));
  object.appendNew("first_block", integer(join.firstBlock));
  object.appendNew("foreach_mode", Value(foreachModeName(join.foreachMode)));
  object.appendNew("items", join.items);
  object.appendNew("max_concurrency", integer(join.maxConcurrency));
  object.appendNew("block", integer(join.block));
  object.appendNew("item_register", integer(join.itemRegister));
  object.appendNew("index_register", integer(join.indexRegister));
  object.appendNew("records", recordsValue(join.records));
  object.appendNew("parallel_compensation", Value(join.parallelCompensation));
  object.appendNew("stop_on_failure", Value(join.stopOnFailure));
  return Value(std::move(object));
}

Value scopeValue(uint32_t id, const Scope &scope) {
  Object object;
  object.appendNew("id", integer(id));
  object.appendNew("parent", optionalInteger(scope.parent));
  object.appendNew("vars", Value(scope.vars));
  object.appendNew("results", Value(scope.results));
  return Value(std::move(object));
}

Value pendingValue(const PendingCommand &waiting) {
  Object object;
  object.appendNew("kind", Value(waitKindName(waiting.kind)));
  object.appendNew("fiber", integer(waiting.fiber));
  object.appendNew("name", Value(waiting.name));
  object.appendNew("has_timeout", Value(waiting.hasTimeout));
  object.appendNew("command", commandValue(waiting.command));
  return Value(std::move(object));
}

// ---- reading -------------------------------------------------------------------------------

// A value inside the snapshot and the way to it, for messages such as
// `fibers[2].registers: expected an array, found null`. Nodes live on the stack of the
// decoder's calls, each pointing at its parent.
struct Node {
  const Value &value;
  const Node *parent = nullptr;
  std::string_view key; // set for an object member
  size_t index = 0;     // for an array element (key empty)
};

std::string pathOf(const Node &node) {
  if (node.parent == nullptr) {
    return "snapshot";
  }
  std::string path = pathOf(*node.parent);
  if (!node.key.empty()) {
    return path + "." + std::string(node.key);
  }
  return fmt::format("{}[{}]", path, node.index);
}

// Reads fields with their kinds and ranges checked. The first problem is kept and later
// reads return defaults, so decoding code reads straight through and checks ok() once.
class Decoder {
public:
  [[nodiscard]] bool ok() const { return !problem_; }
  [[nodiscard]] const std::string &problem() const { return *problem_; }

  void fail(const Node &at, std::string what) {
    if (!problem_) {
      problem_ = fmt::format("{}: {}", pathOf(at), what);
    }
  }

  [[nodiscard]] Node member(const Node &object, std::string_view key) {
    if (!object.value.isObject()) {
      fail(object, "expected an object, found " + describeValue(object.value));
      return Node{null_, &object, key};
    }
    const Value *found = object.value.asObject().find(key);
    if (found == nullptr) {
      fail(object, fmt::format("the field '{}' is missing", key));
      return Node{null_, &object, key};
    }
    return Node{*found, &object, key};
  }

  // A field added after the format's first version and left out while it holds its
  // default: nothing when it is missing, which the caller reads as that default.
  [[nodiscard]] std::optional<Node> optionalMember(const Node &object, std::string_view key) {
    if (object.value.isObject() && object.value.asObject().find(key) == nullptr) {
      return std::nullopt;
    }
    return member(object, key);
  }

  // Calls `each` with every element of the array at `node`.
  template <typename Function> void elements(const Node &node, Function &&each) {
    if (!node.value.isArray()) {
      fail(node, "expected an array, found " + describeValue(node.value));
      return;
    }
    const Array &array = node.value.asArray();
    for (size_t i = 0; i < array.size() && ok(); ++i) {
      each(Node{array[i], &node, {}, i});
    }
  }

  [[nodiscard]] int64_t integer(const Node &node, int64_t min, int64_t max) {
    if (!node.value.isInt()) {
      fail(node, "expected an integer, found " + describeValue(node.value));
      return min;
    }
    int64_t value = node.value.asInt();
    if (value < min || value > max) {
      fail(node, fmt::format("{} is out of range [{}, {}]", value, min, max));
      return min;
    }
    return value;
  }
  [[nodiscard]] uint32_t u32(const Node &node) {
    return static_cast<uint32_t>(integer(node, 0, std::numeric_limits<uint32_t>::max()));
  }
  [[nodiscard]] uint64_t u64(const Node &node) {
    return static_cast<uint64_t>(integer(node, 0, std::numeric_limits<int64_t>::max()));
  }
  [[nodiscard]] int64_t i64(const Node &node) {
    return integer(node, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  }
  [[nodiscard]] std::optional<uint32_t> optionalU32(const Node &node) {
    return node.value.isNull() ? std::nullopt : std::optional<uint32_t>(u32(node));
  }
  [[nodiscard]] std::optional<int64_t> optionalI64(const Node &node) {
    return node.value.isNull() ? std::nullopt : std::optional<int64_t>(i64(node));
  }

  [[nodiscard]] bool boolean(const Node &node) {
    if (!node.value.isBool()) {
      fail(node, "expected a boolean, found " + describeValue(node.value));
      return false;
    }
    return node.value.asBool();
  }

  [[nodiscard]] std::string string(const Node &node) {
    if (!node.value.isString()) {
      fail(node, "expected a string, found " + describeValue(node.value));
      return {};
    }
    return node.value.asString();
  }

  [[nodiscard]] Object object(const Node &node) {
    if (!node.value.isObject()) {
      fail(node, "expected an object, found " + describeValue(node.value));
      return {};
    }
    return node.value.asObject();
  }

  // One of `all`, by the name `nameOf` gives it.
  template <typename Enum, size_t Count, typename NameOf>
  [[nodiscard]] Enum named(const Node &node, const std::array<Enum, Count> &all, NameOf nameOf) {
    std::string name = string(node);
    for (Enum candidate : all) {
      if (name == std::string_view(nameOf(candidate))) {
        return candidate;
      }
    }
    if (ok()) {
      fail(node, fmt::format("'{}' is not a known name here", name));
    }
    return all.front();
  }

private:
  static inline const Value null_;
  std::optional<std::string> problem_;
};

SourceLocation readLocation(Decoder &in, const Node &node) {
  SourceLocation at;
  if (!node.value.isArray() || node.value.asArray().size() != 3) {
    in.fail(node, "expected [file, line, column], found " + describeValue(node.value));
    return at;
  }
  const Array &parts = node.value.asArray();
  at.file.index = in.u32(Node{parts[0], &node, {}, 0});
  at.line = in.u32(Node{parts[1], &node, {}, 1});
  at.column = in.u32(Node{parts[2], &node, {}, 2});
  return at;
}

std::optional<WorkflowError> readError(Decoder &in, const Node &node) {
  if (node.value.isNull()) {
    return std::nullopt;
  }
  WorkflowError error;
  error.type = in.string(in.member(node, "type"));
  error.message = in.string(in.member(node, "message"));
  error.details = in.member(node, "details").value;
  in.elements(in.member(node, "chain"),
              [&](const Node &workflowId) { error.chain.push_back(in.string(workflowId)); });
  error.retryable = in.boolean(in.member(node, "retryable"));
  error.extensions = in.object(in.member(node, "extensions"));
  return error;
}

std::vector<Value> readRegisters(Decoder &in, const Node &node) {
  std::vector<Value> registers;
  in.elements(node, [&](const Node &value) { registers.push_back(value.value); });
  return registers;
}

Command readCommand(Decoder &in, const Node &node) {
  Command command;
  command.kind = in.named(in.member(node, "kind"), kAllCommandKinds, commandKindName);
  command.id = in.u64(in.member(node, "id"));
  command.fiber = in.u32(in.member(node, "fiber"));
  command.step = in.string(in.member(node, "step"));
  command.location = readLocation(in, in.member(node, "location"));
  command.name = in.string(in.member(node, "name"));
  command.value = in.member(node, "value").value;
  command.descriptor = in.member(node, "descriptor").value;
  command.fireAtMs = in.optionalI64(in.member(node, "fire_at_ms"));
  command.timeoutAtMs = in.optionalI64(in.member(node, "timeout_at_ms"));
  command.target = in.u64(in.member(node, "target"));
  command.detail = in.string(in.member(node, "detail"));
  command.error = readError(in, in.member(node, "error"));
  return command;
}

std::vector<CompensationRecord> readRecords(Decoder &in, const Node &node) {
  std::vector<CompensationRecord> records;
  in.elements(node, [&](const Node &entry) {
    CompensationRecord record;
    record.block = in.u32(in.member(entry, "block"));
    record.registers = readRegisters(in, in.member(entry, "registers"));
    record.step = in.string(in.member(entry, "step"));
    record.scope = in.u32(in.member(entry, "scope"));
    record.location = readLocation(in, in.member(entry, "location"));
    records.push_back(std::move(record));
  });
  return records;
}

Fiber readFiber(Decoder &in, const Node &node) {
  Fiber fiber;
  fiber.id = in.u32(in.member(node, "id"));
  fiber.block = in.u32(in.member(node, "block"));
  fiber.pc = in.u32(in.member(node, "pc"));
  fiber.registers = readRegisters(in, in.member(node, "registers"));
  fiber.scope = in.u32(in.member(node, "scope"));
  in.elements(in.member(node, "frames"), [&](const Node &entry) {
    Frame frame;
    frame.kind = in.named(in.member(entry, "kind"), kAllFrameKinds, frameKindName);
    frame.handler = in.u32(in.member(entry, "handler"));
    frame.errorRegister = in.u32(in.member(entry, "error_register"));
    frame.descriptor = in.u32(in.member(entry, "descriptor"));
    frame.failed = in.boolean(in.member(entry, "failed"));
    frame.compensations = readRecords(in, in.member(entry, "compensations"));
    fiber.frames.push_back(std::move(frame));
  });
  fiber.state = in.named(in.member(node, "state"), kAllFiberStates, fiberStateName);
  fiber.command = in.u64(in.member(node, "command"));
  fiber.join = in.u32(in.member(node, "join"));
  fiber.resultRegister = in.u32(in.member(node, "result_register"));
  fiber.memberOf = in.optionalU32(in.member(node, "member_of"));
  fiber.slot = in.u32(in.member(node, "slot"));
  fiber.spawner = in.optionalU32(in.member(node, "spawner"));
  fiber.compensating = in.boolean(in.member(node, "compensating"));
  // Written only when set: present, they must hold a set value, so that whatever restore
  // accepts it writes back as it read it.
  if (std::optional<Node> depth = in.optionalMember(node, "handler_depth")) {
    fiber.handlerDepth = in.u32(*depth);
  }
  if (std::optional<Node> cancelled = in.optionalMember(node, "cancel_after_handler")) {
    fiber.cancelAfterHandler = in.boolean(*cancelled);
    if (!fiber.cancelAfterHandler) {
      in.fail(*cancelled, "expected true (the field is left out when false)");
    }
  }
  return fiber;
}

Join readJoin(Decoder &in, const Node &node) {
  Join join;
  join.kind = in.named(in.member(node, "kind"), kAllJoinKinds, joinKindName);
  join.owner = in.u32(in.member(node, "owner"));
  join.targetRegister = in.u32(in.member(node, "target_register"));
  join.location = readLocation(in, in.member(node, "location"));
  join.finished = in.boolean(in.member(node, "finished"));
  in.elements(in.member(node, "slots"), [&](const Node &entry) {
    Slot slot;
    slot.state = in.named(in.member(entry, "state"), kAllSlotStates, slotStateName);
    slot.fiber = in.u32(in.member(entry, "fiber"));
    slot.value = in.member(entry, "value").value;
    slot.error = readError(in, in.member(entry, "error"));
    join.slots.push_back(std::move(slot));
  });
  join.parallelMode =
      in.named(in.member(node, "parallel_mode"), kAllParallelModes, parallelModeName);
  join.needed = in.u32(in.member(node, "needed"));
  join.firstBlock = in.u32(in.member(node, "first_block"));
  join.foreachMode = in.named(in.member(node, "foreach_mode"), kAllForeachModes, foreachModeName);
  join.items = in.member(node, "items").value;
  join.maxConcurrency = in.u32(in.member(node, "max_concurrency"));
  join.block = in.u32(in.member(node, "block"));
  join.itemRegister = in.u32(in.member(node, "item_register"));
  join.indexRegister = in.u32(in.member(node, "index_register"));
  join.records = readRecords(in, in.member(node, "records"));
  join.parallelCompensation = in.boolean(in.member(node, "parallel_compensation"));
  join.stopOnFailure = in.boolean(in.member(node, "stop_on_failure"));
  return join;
}

PendingCommand readPending(Decoder &in, const Node &node) {
  PendingCommand waiting;
  waiting.kind = in.named(in.member(node, "kind"), kAllWaitKinds, waitKindName);
  waiting.fiber = in.u32(in.member(node, "fiber"));
  waiting.name = in.string(in.member(node, "name"));
  waiting.hasTimeout = in.boolean(in.member(node, "has_timeout"));
  waiting.command = readCommand(in, in.member(node, "command"));
  return waiting;
}

WorkflowError invalidSnapshot(std::string message) {
  return makeError(kInvalidSnapshotError, "invalid machine snapshot: " + message);
}

} // namespace

Value Machine::snapshot() const {
  const MachineState &state = *state_;
  assert(state.out.empty() && "commands are handed out before start() and apply() return");

  Object info;
  info.appendNew("run_id", Value(state.info.runId));
  info.appendNew("workflow_version", Value(state.info.workflowVersion));
  info.appendNew("attempt", Value(state.info.attempt));
  info.appendNew("started_at_ms", Value(state.info.startedAtMs));
  info.appendNew("parent_run_id",
                 state.info.parentRunId ? Value(*state.info.parentRunId) : Value());

  Array fibers;
  for (const auto &[id, fiber] : state.fibers) {
    fibers.push_back(fiberValue(fiber));
  }
  Array ready;
  for (FiberId id : state.ready) {
    ready.push_back(integer(id));
  }
  Array joins;
  for (const auto &[id, join] : state.joins) {
    joins.push_back(joinValue(id, join));
  }
  Array scopes;
  for (const auto &[id, scope] : state.scopes) {
    scopes.push_back(scopeValue(id, scope));
  }
  Array pending;
  for (const auto &[id, waiting] : state.pending) {
    pending.push_back(pendingValue(waiting));
  }
  Array signalBuffer;
  for (const auto &[name, queue] : state.signalBuffer) {
    Object entry;
    entry.appendNew("name", Value(name));
    entry.appendNew("payloads", Value(Array(queue.begin(), queue.end())));
    signalBuffer.push_back(Value(std::move(entry)));
  }

  Object snapshot;
  snapshot.appendNew("format", Value(kSnapshotFormat));
  snapshot.appendNew("workflow", integer(state.workflowIndex));
  // Not needed to restore; lets restore refuse a module whose workflow at that index is
  // another one.
  snapshot.appendNew("workflow_id", Value(state.workflow().id));
  snapshot.appendNew("info", Value(std::move(info)));
  snapshot.appendNew("inputs", state.inputs);
  snapshot.appendNew("now", Value(state.now));
  snapshot.appendNew("uuid_counter", integer(state.uuidCounter));
  snapshot.appendNew("next_command", integer(state.nextCommand));
  snapshot.appendNew("next_fiber", integer(state.nextFiber));
  snapshot.appendNew("next_join", integer(state.nextJoin));
  snapshot.appendNew("next_scope", integer(state.nextScope));
  snapshot.appendNew("active_compensations", integer(state.activeCompensations));
  snapshot.appendNew("status", Value(runStatusName(state.status)));
  snapshot.appendNew("ending", errorValue(state.ending));
  snapshot.appendNew("fibers", Value(std::move(fibers)));
  snapshot.appendNew("ready", Value(std::move(ready)));
  snapshot.appendNew("joins", Value(std::move(joins)));
  snapshot.appendNew("scopes", Value(std::move(scopes)));
  snapshot.appendNew("pending", Value(std::move(pending)));
  snapshot.appendNew("signal_buffer", Value(std::move(signalBuffer)));
  snapshot.appendNew("signals", Value(state.signals));
  snapshot.appendNew("events", Value(state.events));
  return Value(std::move(snapshot));
}

Result<Machine> Machine::restore(std::shared_ptr<const Module> module, const Value &snapshot) {
  assert(module != nullptr && "restore needs the module the snapshot was taken with");
  Decoder in;
  Node root{snapshot, nullptr, {}, 0};
  if (!snapshot.isObject()) {
    return invalidSnapshot("expected an object, found " + describeValue(snapshot));
  }
  int64_t format = in.i64(in.member(root, "format"));
  if (in.ok() && format != kSnapshotFormat) {
    return invalidSnapshot(
        fmt::format("format {} is not the format {} this version reads", format, kSnapshotFormat));
  }
  uint32_t workflowIndex = in.u32(in.member(root, "workflow"));
  std::string workflowId = in.string(in.member(root, "workflow_id"));
  if (!in.ok()) {
    return invalidSnapshot(in.problem());
  }
  if (workflowIndex >= module->workflows.size() ||
      module->workflows[workflowIndex].id != workflowId) {
    return invalidSnapshot(fmt::format("the module has no workflow '{}' at index {}; restore "
                                       "with the module the snapshot was taken with",
                                       workflowId, workflowIndex));
  }

  Node infoNode = in.member(root, "info");
  RunInfo info;
  info.runId = in.string(in.member(infoNode, "run_id"));
  info.workflowVersion = in.string(in.member(infoNode, "workflow_version"));
  info.attempt = in.i64(in.member(infoNode, "attempt"));
  info.startedAtMs = in.i64(in.member(infoNode, "started_at_ms"));
  Node parent = in.member(infoNode, "parent_run_id");
  if (!parent.value.isNull()) {
    info.parentRunId = in.string(parent);
  }

  auto state = std::make_unique<MachineState>(module, workflowIndex, std::move(info));
  state->inputs = in.member(root, "inputs").value;
  state->now = in.i64(in.member(root, "now"));
  state->uuidCounter = in.u64(in.member(root, "uuid_counter"));
  state->nextCommand = in.u64(in.member(root, "next_command"));
  state->nextFiber = in.u32(in.member(root, "next_fiber"));
  state->nextJoin = in.u32(in.member(root, "next_join"));
  state->nextScope = in.u32(in.member(root, "next_scope"));
  state->activeCompensations = in.u32(in.member(root, "active_compensations"));
  state->status = in.named(in.member(root, "status"), kAllRunStatuses, runStatusName);
  state->ending = readError(in, in.member(root, "ending"));

  // Each map is keyed by the id its entries carry; a repeated id is malformed.
  auto unique = [&](bool inserted, const Node &at) {
    if (!inserted) {
      in.fail(at, "repeats an id");
    }
  };
  in.elements(in.member(root, "fibers"), [&](const Node &entry) {
    Fiber fiber = readFiber(in, entry);
    FiberId id = fiber.id;
    unique(state->fibers.emplace(id, std::move(fiber)).second, entry);
  });
  in.elements(in.member(root, "ready"),
              [&](const Node &entry) { unique(state->ready.insert(in.u32(entry)).second, entry); });
  in.elements(in.member(root, "joins"), [&](const Node &entry) {
    uint32_t id = in.u32(in.member(entry, "id"));
    unique(state->joins.emplace(id, readJoin(in, entry)).second, entry);
  });
  in.elements(in.member(root, "scopes"), [&](const Node &entry) {
    uint32_t id = in.u32(in.member(entry, "id"));
    Scope scope;
    scope.parent = in.optionalU32(in.member(entry, "parent"));
    scope.vars = in.object(in.member(entry, "vars"));
    scope.results = in.object(in.member(entry, "results"));
    unique(state->scopes.emplace(id, std::move(scope)).second, entry);
  });
  in.elements(in.member(root, "pending"), [&](const Node &entry) {
    PendingCommand waiting = readPending(in, entry);
    CommandId id = waiting.command.id;
    unique(state->pending.emplace(id, std::move(waiting)).second, entry);
  });
  in.elements(in.member(root, "signal_buffer"), [&](const Node &entry) {
    std::string name = in.string(in.member(entry, "name"));
    std::deque<Value> payloads;
    in.elements(in.member(entry, "payloads"),
                [&](const Node &payload) { payloads.push_back(payload.value); });
    unique(state->signalBuffer.emplace(std::move(name), std::move(payloads)).second, entry);
  });
  state->signals = in.object(in.member(root, "signals"));
  state->events = in.object(in.member(root, "events"));
  if (!in.ok()) {
    return invalidSnapshot(in.problem());
  }
  if (std::optional<std::string> problem = checkSnapshotState(*state)) {
    return invalidSnapshot(*problem);
  }
  return Machine(std::move(state));
}

} // namespace kotoba::vm
