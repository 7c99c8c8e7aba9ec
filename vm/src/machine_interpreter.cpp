// The interpreter: one handler per opcode of opcodes.def. Every handler has the same shape:
// decode the operands, do the work, and either fall through to the next instruction or stop
// the fiber (a command to wait for, a join, an error, the end of its block).
#include "machine_state.h"

#include "kotoba/vm/duration.h"
#include "kotoba/vm/operations.h"
#include "kotoba/vm/path.h"
#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <cassert>

namespace kotoba::vm {

namespace {

Value &reg(Fiber &fiber, uint32_t index) {
  assert(index < fiber.registers.size() && "register past the register file; verify the module");
  return fiber.registers[index];
}

llvm::ArrayRef<Value> regRange(Fiber &fiber, uint32_t first, uint32_t count) {
  assert(count == 0 || first + count <= fiber.registers.size());
  return count == 0 ? llvm::ArrayRef<Value>()
                    : llvm::ArrayRef<Value>(&fiber.registers[first], count);
}

template <typename T> T decoded(Decoded<T> result) {
  assert(result.ok() && "the verifier checks descriptor shapes");
  return std::move(result).value();
}

// Milliseconds since the epoch for an RFC 3339 time such as 2026-12-04T15:56:05.123Z or
// 2026-12-04T16:56:05+01:00.
std::optional<int64_t> parseTimestamp(const std::string &text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  size_t at = 19;
  int64_t millis = 0;
  if (at < text.size() && text[at] == '.') {
    int64_t scale = 100;
    for (++at; at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])); ++at) {
      millis += (text[at] - '0') * scale;
      scale /= 10;
    }
  }
  int64_t offsetMinutes = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-')) {
    int offsetHour = 0, offsetMinute = 0;
    if (std::sscanf(text.c_str() + at + 1, "%2d:%2d", &offsetHour, &offsetMinute) != 2) {
      return std::nullopt;
    }
    offsetMinutes = (text[at] == '-' ? -1 : 1) * (offsetHour * 60 + offsetMinute);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
  int64_t y = year - (month <= 2 ? 1 : 0);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yearOfEra = y - era * 400;
  int64_t dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int64_t dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
  int64_t days = era * 146097 + dayOfEra - 719468;
  int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
  return seconds * 1000 + millis;
}

} // namespace

void MachineState::execute(Fiber &fiber) {
  const Workflow &code = workflow();
  while (fiber.state == FiberState::Ready) {
    const Block &block = code.blocks[fiber.block];
    assert(fiber.pc < block.code.size() && "ran off a block; the verifier requires a terminator");
    const Instruction &instruction = block.code[fiber.pc];
    uint32_t a = instruction.a();
    uint32_t b = instruction.b();
    uint32_t c = instruction.c();
    uint32_t d = instruction.d();
    auto fail = [&](WorkflowError error) { raise(fiber, located(std::move(error), fiber)); };

    switch (instruction.opcode) {
    case Opcode::Nop:
      break;
    case Opcode::LoadK:
      reg(fiber, a) = module->constant(ConstIndex{b});
      break;
    case Opcode::LoadNull:
      reg(fiber, a) = Value();
      break;
    case Opcode::LoadBool:
      reg(fiber, a) = Value(b != 0);
      break;
    case Opcode::Move:
      reg(fiber, a) = reg(fiber, b);
      break;

    case Opcode::Root:
      reg(fiber, a) = readRoot(static_cast<StateRoot>(b), fiber.scope);
      break;
    case Opcode::Path:
    case Opcode::PathOpt:
    case Opcode::PathHas: {
      const PathDescriptor &path = pathDescriptor(c);
      llvm::ArrayRef<Value> indexes = regRange(fiber, d, path.dynamicCount());

      if (instruction.opcode == Opcode::PathHas) {
        Result<bool> exists = pathExists(reg(fiber, b), path, indexes);
        if (!exists.ok()) {
          return fail(exists.error());
        }
        reg(fiber, a) = Value(exists.value());
        break;
      }
      PathMode mode = instruction.opcode == Opcode::Path ? PathMode::Required : PathMode::Optional;
      Result<Value> value = evaluatePath(reg(fiber, b), path, indexes, mode);
      if (!value.ok()) {
        return fail(value.error());
      }
      reg(fiber, a) = value.value().isMissing() ? Value() : value.value();
      break;
    }

    case Opcode::NewArray: {
      llvm::ArrayRef<Value> elements = regRange(fiber, b, c);

      reg(fiber, a) = Value(Array(elements.begin(), elements.end()));
      break;
    }
    case Opcode::NewObject: {
      const Array &keys = module->constant(ConstIndex{d}).asArray();
      Object object;
      object.reserve(c);
      for (uint32_t i = 0; i < c; ++i) {
        object.set(keys[i].asString(), reg(fiber, b + i));
      }

      reg(fiber, a) = Value(std::move(object));
      break;
    }
    case Opcode::Concat: {
      std::string text;
      for (uint32_t i = 0; i < c; ++i) {
        appendTemplateText(text, reg(fiber, b + i));
      }

      reg(fiber, a) = Value(std::move(text));
      break;
    }

    case Opcode::Add:
    case Opcode::Sub:
    case Opcode::Mul:
    case Opcode::Div:
    case Opcode::Mod:
    case Opcode::Eq:
    case Opcode::Ne:
    case Opcode::Lt:
    case Opcode::Le:
    case Opcode::Gt:
    case Opcode::Ge:
    case Opcode::In: {
      static constexpr BinaryOp table[] = {
          BinaryOp::Add,       BinaryOp::Subtract, BinaryOp::Multiply,     BinaryOp::Divide,
          BinaryOp::Remainder, BinaryOp::Equal,    BinaryOp::NotEqual,     BinaryOp::Less,
          BinaryOp::LessEqual, BinaryOp::Greater,  BinaryOp::GreaterEqual, BinaryOp::In};
      size_t index = static_cast<size_t>(instruction.opcode) - static_cast<size_t>(Opcode::Add);

      Result<Value> value = applyBinary(table[index], reg(fiber, b), reg(fiber, c));
      if (!value.ok()) {
        return fail(value.error());
      }
      reg(fiber, a) = std::move(value).value();
      break;
    }
    case Opcode::Not:
    case Opcode::Neg: {
      UnaryOp op = instruction.opcode == Opcode::Not ? UnaryOp::Not : UnaryOp::Negate;

      Result<Value> value = applyUnary(op, reg(fiber, b));
      if (!value.ok()) {
        return fail(value.error());
      }
      reg(fiber, a) = std::move(value).value();
      break;
    }
    case Opcode::ToBool: {
      Result<bool> value = requireBoolean(reg(fiber, b), "&& or ||");
      if (!value.ok()) {
        return fail(value.error());
      }
      reg(fiber, a) = Value(value.value());
      break;
    }
    case Opcode::Call: {
      llvm::ArrayRef<Value> arguments = regRange(fiber, c, d);

      Result<Value> value = callBuiltin(static_cast<BuiltinId>(b), arguments, this);
      if (!value.ok()) {
        return fail(value.error());
      }
      reg(fiber, a) = std::move(value).value();
      break;
    }
    case Opcode::HostPred: {
      Command command;
      command.kind = CommandKind::AskPredicate;
      command.name = code.hostPredicates[b];
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Predicate, a);
      return;
    }

    case Opcode::Jmp:
      fiber.pc = a;
      continue;
    case Opcode::JmpIf:
    case Opcode::JmpIfNot: {
      Result<bool> condition = requireBoolean(reg(fiber, a), "a condition");
      if (!condition.ok()) {
        return fail(condition.error());
      }
      bool jump = condition.value() == (instruction.opcode == Opcode::JmpIf);
      if (jump) {
        fiber.pc = b;
        continue;
      }
      break;
    }
    case Opcode::JmpNotNull:
      if (!reg(fiber, a).isNull()) {
        fiber.pc = b;
        continue;
      }
      break;

    case Opcode::SetVar:
      writeVar(fiber.scope, module->constant(ConstIndex{a}).asString(), reg(fiber, b));
      break;
    case Opcode::SetResult:
      writeResult(fiber.scope, module->constant(ConstIndex{a}).asString(), reg(fiber, b));
      break;

    case Opcode::Activity: {
      const Value &descriptor = module->constant(ConstIndex{c});
      // Only the step and the activity are needed here (the runtime reads the rest), so they
      // are read directly: decoding the whole descriptor with its retry policy per call was a
      // quarter of the time of a replay (bench/, callgrind).
      assert(decodeActivityCall(descriptor).ok() && "the verifier checks descriptor shapes");
      const Object &call = descriptor.asObject();

      Command command;
      command.kind = CommandKind::ScheduleActivity;
      command.step = call.find("step")->asString();
      command.name = call.find("activity")->asString();
      command.value = reg(fiber, b);
      command.descriptor = descriptor;
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Activity, a);
      return;
    }
    case Opcode::Timer:
    case Opcode::TimerUntil: {
      TimerDescriptor timer = decoded(decodeTimer(module->constant(ConstIndex{c})));
      const Value &when = reg(fiber, b);
      int64_t fireAt = now;
      if (instruction.opcode == Opcode::TimerUntil) {
        std::optional<int64_t> at =
            when.isString() ? parseTimestamp(when.asString()) : std::nullopt;
        if (!at) {
          return fail(expressionError(fmt::format(
              "a timer's 'until' must be an RFC 3339 time such as 2030-01-01T00:00:00Z, found {}",
              describeValue(when))));
        }
        fireAt = std::max(now, *at); // a time in the past fires at once
      } else if (when.isInt() && when.asInt() >= 0) {
        fireAt = now + when.asInt();
      } else if (when.isString()) {
        Result<int64_t> duration = parseDurationMs(when.asString());
        if (!duration.ok()) {
          return fail(duration.error());
        }
        fireAt = now + duration.value();
      } else {
        return fail(expressionError(fmt::format(
            "a timer's duration must be a duration string such as \"PT10S\" or a number of "
            "milliseconds, found {}",
            describeValue(when))));
      }

      Command command;
      command.kind = CommandKind::StartTimer;
      command.step = timer.step;
      command.fireAtMs = fireAt;
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Timer, a);
      return;
    }
    case Opcode::WaitSignal: {
      SignalDescriptor signal = decoded(decodeSignal(module->constant(ConstIndex{b})));
      auto buffered = signalBuffer.find(signal.signal);
      if (buffered != signalBuffer.end() && !buffered->second.empty()) {
        // It arrived before the wait: consumed at once, in arrival order.
        Value payload = std::move(buffered->second.front());
        buffered->second.pop_front();
        if (buffered->second.empty()) {
          signalBuffer.erase(buffered);
        }
        signals.set(signal.signal, payload);
        reg(fiber, a) = std::move(payload);
        break;
      }

      Command command;
      command.kind = CommandKind::WaitSignal;
      command.step = signal.step;
      command.name = signal.signal;
      if (signal.timeoutMs) {
        command.timeoutAtMs = now + *signal.timeoutMs;
      }
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Signal, a);
      return;
    }
    case Opcode::WaitEvent: {
      EventDescriptor event = decoded(decodeEvent(module->constant(ConstIndex{c})));

      Command command;
      command.kind = CommandKind::WaitEvent;
      command.step = event.step;
      command.name = event.event;
      command.value = reg(fiber, b);
      if (event.timeoutMs) {
        command.timeoutAtMs = now + *event.timeoutMs;
      }
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Event, a);
      return;
    }
    case Opcode::Child: {
      const Value &descriptor = module->constant(ConstIndex{c});
      ChildDescriptor child = decoded(decodeChild(descriptor));

      Command command;
      command.kind = CommandKind::StartChild;
      command.step = child.step;
      command.name = child.workflow;
      command.value = reg(fiber, b);
      command.descriptor = descriptor;
      if (child.timeoutMs) {
        command.timeoutAtMs = now + *child.timeoutMs;
      }
      ++fiber.pc;
      issue(fiber, std::move(command), WaitKind::Child, a);
      return;
    }
    case Opcode::Decided: {
      DecisionDescriptor decision = decoded(decodeDecision(module->constant(ConstIndex{a})));

      Command command;
      command.kind = CommandKind::RecordDecision;
      command.fiber = fiber.id;
      command.step = decision.step;
      command.location = locationOf(fiber);
      command.detail = decision.branch ? std::to_string(*decision.branch) : "default";
      emit(std::move(command));
      break;
    }

    case Opcode::Parallel: {
      ParallelDescriptor parallel = decoded(decodeParallel(module->constant(ConstIndex{d})));

      uint32_t joinId = nextJoin++;
      Join &join = joins[joinId];
      join.kind = JoinKind::Parallel;
      join.owner = fiber.id;
      join.targetRegister = a;
      join.location = locationOf(fiber);
      join.parallelMode = parallel.mode;
      join.needed = parallel.mode == ParallelMode::AtLeast ? parallel.count : c;
      join.slots.resize(c);
      ++fiber.pc;
      fiber.state = FiberState::WaitingJoin;
      fiber.join = joinId;
      ready.erase(fiber.id);
      for (uint32_t i = 0; i < c; ++i) {
        Fiber &branch = spawn(b + i, fiber, fiber.scope);
        branch.memberOf = joinId;
        branch.slot = i;
        join.slots[i].state = SlotState::Running;
        join.slots[i].fiber = branch.id;
      }
      return;
    }
    case Opcode::Foreach: {
      ForeachDescriptor options = decoded(decodeForeach(module->constant(ConstIndex{d})));
      const Value &items = reg(fiber, b);
      if (!items.isArray()) {
        return fail(expressionError(
            fmt::format("foreach 'items' must be an array, found {}", describeValue(items))));
      }
      if (items.asArray().empty()) {
        reg(fiber, a) = Value(Array());
        break;
      }

      uint32_t joinId = nextJoin++;
      Join &join = joins[joinId];
      join.kind = JoinKind::Foreach;
      join.owner = fiber.id;
      join.targetRegister = a;
      join.location = locationOf(fiber);
      join.foreachMode = options.mode;
      join.items = items;
      join.maxConcurrency = options.maxConcurrency;
      join.block = c;
      join.itemRegister = options.item.index;
      join.indexRegister = options.index.index;
      join.slots.resize(items.asArray().size());
      ++fiber.pc;
      fiber.state = FiberState::WaitingJoin;
      fiber.join = joinId;
      ready.erase(fiber.id);
      startForeachIterations(join, joinId);
      return;
    }

    case Opcode::SagaPush:
    case Opcode::TryPush: {
      Frame frame;
      frame.kind = instruction.opcode == Opcode::SagaPush ? Frame::Kind::Saga : Frame::Kind::Try;
      frame.handler = a;
      frame.errorRegister = b;
      frame.descriptor = c;
      fiber.frames.push_back(std::move(frame));
      break;
    }
    case Opcode::TryPop:
      assert(!fiber.frames.empty() && fiber.frames.back().kind == Frame::Kind::Try);
      fiber.frames.pop_back();
      break;
    case Opcode::SagaPop: {
      assert(!fiber.frames.empty() && fiber.frames.back().kind == Frame::Kind::Saga);
      std::vector<CompensationRecord> handed = std::move(fiber.frames.back().compensations);
      fiber.frames.pop_back();
      // A completed saga's compensations belong to the enclosing saga from now on.
      for (CompensationRecord &record : handed) {
        registerCompensation(fiber, std::move(record));
      }
      break;
    }
    case Opcode::CompReg: {
      CompensationDescriptor descriptor =
          decoded(decodeCompensation(module->constant(ConstIndex{b})));

      CompensationRecord record;
      record.block = a;
      record.registers = fiber.registers;
      record.step = descriptor.step;
      record.location = locationOf(fiber);
      registerCompensation(fiber, std::move(record));
      break;
    }
    case Opcode::CompRun: {
      assert(!fiber.frames.empty() && fiber.frames.back().kind == Frame::Kind::Saga &&
             fiber.frames.back().failed && "COMPRUN runs in a failed saga's handler");
      Frame saga = std::move(fiber.frames.back());
      fiber.frames.pop_back();
      if (!fiber.handlerDepth) {
        fiber.handlerDepth = static_cast<uint32_t>(fiber.frames.size());
      }
      SagaDescriptor policy = decoded(decodeSaga(module->constant(ConstIndex{saga.descriptor})));
      if (saga.compensations.empty()) {
        Object outcome;
        outcome.set("compensation", Value("completed"));
        outcome.set("compensation_errors", Value(Array()));
        reg(fiber, a) = Value(std::move(outcome));
        break;
      }

      uint32_t joinId = nextJoin++;
      Join &join = joins[joinId];
      join.kind = JoinKind::Compensation;
      join.owner = fiber.id;
      join.targetRegister = a;
      join.location = locationOf(fiber);
      // Newest first: undo in the reverse order of doing.
      join.records.assign(std::make_move_iterator(saga.compensations.rbegin()),
                          std::make_move_iterator(saga.compensations.rend()));
      join.slots.resize(join.records.size());
      join.parallelCompensation = policy.policy == CompensationPolicy::Parallel;
      join.stopOnFailure = policy.onFailure == CompensationFailureMode::Stop;
      ++activeCompensations;
      status = RunStatus::Compensating;
      ++fiber.pc;
      fiber.state = FiberState::WaitingJoin;
      fiber.join = joinId;
      ready.erase(fiber.id);
      startNextCompensation(join, joinId);
      return;
    }
    case Opcode::Raise: {
      const Value &error = reg(fiber, a);
      return fail(workflowErrorFromValue(error));
    }

    case Opcode::ContinueAsNew: {
      Command command;
      command.kind = CommandKind::ContinueAsNew;
      command.fiber = fiber.id;
      command.location = locationOf(fiber);
      command.value = reg(fiber, a);
      fiber.state = FiberState::Done;
      endRun(RunStatus::ContinuedAsNew, std::move(command));
      return;
    }
    case Opcode::Complete: {
      const Value &outputs = reg(fiber, a);
      // Declared outputs are type-checked; a null output is always allowed.
      for (const Param &output : code.outputs) {
        const Value *value = outputs.isObject() ? outputs.asObject().find(output.name) : nullptr;
        if (value == nullptr || value->isNull()) {
          continue;
        }
        Result<ParamType> type = parseParamType(output.type);
        std::optional<std::string> mismatch =
            type.ok() ? checkParamType(*value, type.value()) : std::nullopt;
        if (mismatch) {
          return fail(makeError(error_types::OutputValidationError,
                                fmt::format("output '{}' does not match its type '{}': {}",
                                            output.name, output.type, *mismatch)));
        }
      }

      Command command;
      command.kind = CommandKind::Complete;
      command.fiber = fiber.id;
      command.location = locationOf(fiber);
      command.value = outputs;
      fiber.state = FiberState::Done;
      endRun(RunStatus::Completed, std::move(command));
      return;
    }
    case Opcode::Ret: {
      Value value = reg(fiber, a);

      fiber.state = FiberState::Done;
      fiber.registers.clear();
      fiber.registers.push_back(std::move(value));
      finishFiber(fiber);
      return;
    }
    }
    ++fiber.pc;
  }
}

} // namespace kotoba::vm
