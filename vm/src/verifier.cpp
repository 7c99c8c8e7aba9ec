// The module verifier (rules in docs/kbc-format.md, "Verifier rules"). Three layers:
//
// 1. Tables: names unique and non-empty, policies well formed, values within the nesting
//    limit, register counts within kMaxRegisters, block 0 the body and no other.
// 2. Instructions, one at a time, driven by the operand kinds of opcodes.def: every operand
//    in range for its kind, unused operands 0, descriptor constants of the right shape.
//    Descriptors are checked once per (constant, kind) and the verdict cached, so a module
//    that reuses one large descriptor in many places is not checked many times.
// 3. Handler frames, per block, by a walk over the control-flow graph: every path reaches an
//    instruction with the same stack of try and saga frames, pops match pushes, COMPRUN runs
//    only in a saga's handler, and RET leaves no frame open.
#include "kotoba/vm/verifier.h"

#include "kotoba/vm/builtins.h"
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

namespace kotoba::vm {

std::string ModuleError::describe() const {
  std::string text;
  if (byteOffset) {
    text += fmt::format("byte {}: ", *byteOffset);
  }
  if (!location.empty()) {
    text += location;
    text += ": ";
  }
  text += message;
  return text;
}

namespace {

// Whether a value can be stored: nesting within kMaxConstantDepth and no NaN or infinity.
// Stops descending at the limit, so a value built deeper than that cannot exhaust the stack.
std::optional<std::string> checkStorable(const Value &value, uint32_t depth = 0) {
  switch (value.kind()) {
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::String:
    return std::nullopt;
  case ValueKind::Double:
    if (!std::isfinite(value.asDouble())) {
      return "a double is not finite";
    }
    return std::nullopt;
  case ValueKind::Array:
  case ValueKind::Object:
    break;
  }
  if (depth >= kMaxConstantDepth) {
    return fmt::format("nested deeper than {} levels", kMaxConstantDepth);
  }
  if (value.isArray()) {
    for (const Value &element : value.asArray()) {
      if (auto problem = checkStorable(element, depth + 1)) {
        return problem;
      }
    }
  } else {
    for (const ObjectEntry &entry : value.asObject()) {
      if (auto problem = checkStorable(entry.value, depth + 1)) {
        return problem;
      }
    }
  }
  return std::nullopt;
}

// The verdict on one constant used as one descriptor kind, and the numbers from it that
// checks of the instruction using it need.
struct DescriptorVerdict {
  std::optional<std::string> problem;
  // Path: dynamic index count. Keys: key count. Parallel: at_least count (0 otherwise).
  // Foreach: one past the higher of its two registers.
  uint64_t number = 0;
};

enum class Frame : uint8_t { Try, Saga, FailedSaga };

std::string_view frameName(Frame frame) {
  switch (frame) {
  case Frame::Try:
    return "try";
  case Frame::Saga:
    return "saga";
  case Frame::FailedSaga:
    return "failed saga";
  }
  return "unknown";
}

std::string describeFrames(const std::vector<Frame> &frames) {
  std::string text = "[";
  for (size_t index = 0; index < frames.size(); ++index) {
    text += index == 0 ? "" : ", ";
    text += frameName(frames[index]);
  }
  return text + "]";
}

class Verifier {
public:
  Verifier(const Module &module, const ModuleByteOffsets *offsets)
      : module_(module), offsets_(offsets) {}

  std::vector<ModuleError> run() {
    checkConstants();
    checkActivities();
    checkWorkflowTable();
    for (size_t index = 0; index < module_.workflows.size(); ++index) {
      checkWorkflow(index);
    }
    return std::move(errors_);
  }

private:
  // ---- Reporting -------------------------------------------------------------------------

  void report(std::optional<uint64_t> offset, std::string location, std::string message) {
    errors_.push_back(ModuleError{offset, std::move(location), std::move(message)});
  }

  static std::optional<uint64_t> offsetAt(const std::vector<uint64_t> *table, size_t index) {
    if (table == nullptr || index >= table->size()) {
      return std::nullopt;
    }
    return (*table)[index];
  }

  std::optional<uint64_t> workflowOffset(size_t workflow) const {
    return offsetAt(offsets_ ? &offsets_->workflows : nullptr, workflow);
  }

  std::optional<uint64_t> instructionOffset(size_t workflow, size_t block,
                                            size_t instruction) const {
    if (offsets_ == nullptr || workflow >= offsets_->instructions.size() ||
        block >= offsets_->instructions[workflow].size()) {
      return std::nullopt;
    }
    return offsetAt(&offsets_->instructions[workflow][block], instruction);
  }

  std::string workflowLocation(size_t workflow) const {
    return fmt::format("workflow '{}'", module_.workflows[workflow].id);
  }

  // ---- Module tables ---------------------------------------------------------------------

  void checkConstants() {
    for (size_t index = 0; index < module_.constants.size(); ++index) {
      if (auto problem = checkStorable(module_.constants[index])) {
        report(offsetAt(offsets_ ? &offsets_->constants : nullptr, index),
               fmt::format("constant k{}", index), *problem);
      }
    }
  }

  // A retry policy slot: null (none) or a well-formed policy.
  static std::optional<std::string> checkOptionalRetry(const Value &policy) {
    if (policy.isNull()) {
      return std::nullopt;
    }
    if (auto problem = checkRetryPolicy(policy)) {
      return *problem;
    }
    return std::nullopt;
  }

  void checkActivities() {
    std::set<std::string_view> names;
    for (size_t index = 0; index < module_.activities.size(); ++index) {
      const ActivityDecl &activity = module_.activities[index];
      std::optional<uint64_t> offset = offsetAt(offsets_ ? &offsets_->activities : nullptr, index);
      std::string location = fmt::format("activity {} '{}'", index, activity.name);
      if (activity.name.empty()) {
        report(offset, location, "the activity name is empty");
      } else if (!names.insert(activity.name).second) {
        report(offset, location, "the activity is declared twice");
      }
      if (activity.declaredIn && activity.declaredIn->index >= module_.sourceFiles.size()) {
        report(offset, location,
               fmt::format("source file index {} out of range (the module has {} source files)",
                           activity.declaredIn->index, module_.sourceFiles.size()));
      }
      if (activity.timeoutMs && *activity.timeoutMs <= 0) {
        report(offset, location, fmt::format("timeout {} ms is not positive", *activity.timeoutMs));
      }
      if (auto problem = checkOptionalRetry(activity.retryPolicy)) {
        report(offset, location, *problem);
      }
      if (!activity.implementation.isNull()) {
        if (!activity.implementation.isObject()) {
          report(offset, location,
                 "implementation must be an object or null, found " +
                     describeValue(activity.implementation));
        } else if (auto problem = checkStorable(activity.implementation)) {
          report(offset, location, "implementation: " + *problem);
        }
      }
    }
    for (size_t index = 0; index < module_.hostActivities.size(); ++index) {
      const std::string &name = module_.hostActivities[index];
      std::string location = fmt::format("host activity '{}'", name);
      if (name.empty()) {
        report(std::nullopt, location, "the name is empty");
      }
      if (index > 0 && module_.hostActivities[index - 1] >= name) {
        report(std::nullopt, location, "host activities must be sorted and distinct");
      }
      const ActivityDecl *declared = module_.findActivity(name);
      if (declared != nullptr && !declared->implementation.isNull()) {
        report(std::nullopt, location,
               "listed as host-bound but its declaration has an implementation");
      }
    }
  }

  void checkWorkflowTable() {
    if (module_.workflows.empty()) {
      report(std::nullopt, "", "the module has no workflow");
    }
    std::set<std::string_view> ids;
    for (size_t index = 0; index < module_.workflows.size(); ++index) {
      const std::string &id = module_.workflows[index].id;
      if (id.empty()) {
        report(workflowOffset(index), fmt::format("workflow {}", index),
               "the workflow id is empty");
      } else if (!ids.insert(id).second) {
        report(workflowOffset(index), workflowLocation(index), "the workflow id is used twice");
      }
    }
  }

  // ---- Workflows -------------------------------------------------------------------------

  void checkParams(size_t workflowIndex, const std::vector<Param> &params, std::string_view what) {
    std::set<std::string_view> names;
    for (const Param &param : params) {
      std::string location =
          fmt::format("{} {} '{}'", workflowLocation(workflowIndex), what, param.name);
      std::optional<uint64_t> offset = workflowOffset(workflowIndex);
      if (param.name.empty()) {
        report(offset, location, "the name is empty");
      } else if (!names.insert(param.name).second) {
        report(offset, location, "the name is used twice");
      }
      Result<ParamType> type = parseParamType(param.type);
      if (!type.ok()) {
        report(offset, location, "type: " + type.error().message);
      }
      if (!param.defaultValue) {
        continue;
      }
      if (auto problem = checkStorable(*param.defaultValue)) {
        report(offset, location, "default: " + *problem);
      } else if (type.ok() && !param.defaultValue->isNull()) {
        // A null default means "no value", which any optional param may have.
        if (auto mismatch = checkParamType(*param.defaultValue, type.value())) {
          report(offset, location, "default: " + *mismatch);
        }
      }
    }
  }

  void checkWorkflow(size_t index) {
    const Workflow &workflow = module_.workflows[index];
    std::string location = workflowLocation(index);
    std::optional<uint64_t> offset = workflowOffset(index);
    if (auto problem = checkStorable(workflow.metadata)) {
      report(offset, location, "metadata: " + *problem);
    }
    checkParams(index, workflow.inputs, "input");
    checkParams(index, workflow.outputs, "output");
    if (workflow.timeoutMs && *workflow.timeoutMs <= 0) {
      report(offset, location, fmt::format("timeout {} ms is not positive", *workflow.timeoutMs));
    }
    if (auto problem = checkOptionalRetry(workflow.retryPolicy)) {
      report(offset, location, *problem);
    }
    std::set<std::string_view> predicates;
    for (const std::string &name : workflow.hostPredicates) {
      if (name.empty()) {
        report(offset, location, "a host predicate name is empty");
      } else if (!predicates.insert(name).second) {
        report(offset, location, fmt::format("host predicate '{}' is listed twice", name));
      }
    }
    if (workflow.registerCount > kMaxRegisters) {
      report(offset, location,
             fmt::format("{} registers is more than the limit of {}", workflow.registerCount,
                         kMaxRegisters));
      return; // every register check would repeat the same complaint
    }
    if (workflow.blocks.empty()) {
      report(offset, location, "the workflow has no blocks (block 0 must be its body)");
      return;
    }
    for (size_t block = 0; block < workflow.blocks.size(); ++block) {
      checkBlock(index, block);
    }
  }

  // ---- Blocks ----------------------------------------------------------------------------

  struct InstructionContext {
    size_t workflowIndex;
    const Workflow &workflow;
    size_t blockIndex;
    const Block &block;
    size_t instructionIndex;
    const Instruction &instruction;
  };

  void checkBlock(size_t workflowIndex, size_t blockIndex) {
    const Workflow &workflow = module_.workflows[workflowIndex];
    const Block &block = workflow.blocks[blockIndex];
    std::string location = fmt::format("{} block b{}", workflowLocation(workflowIndex), blockIndex);
    std::optional<uint64_t> blockOffset = instructionOffset(workflowIndex, blockIndex, 0);
    if (blockIndex == 0 && block.kind != BlockKind::Body) {
      report(blockOffset, location,
             fmt::format("block 0 must be the workflow body, not a {} block",
                         blockKindName(block.kind)));
    } else if (blockIndex != 0 && block.kind == BlockKind::Body) {
      report(blockOffset, location, "only block 0 may be a body block");
    }
    if (block.code.empty()) {
      report(blockOffset, location,
             "the block is empty (it must end with RET or another "
             "instruction that does not fall through)");
      return;
    }
    if (block.locations.size() != block.code.size()) {
      report(blockOffset, location,
             fmt::format("the line table has {} entries for {} instructions",
                         block.locations.size(), block.code.size()));
      return;
    }
    for (size_t index = 0; index < block.code.size(); ++index) {
      InstructionContext context{workflowIndex, workflow, blockIndex,
                                 block,         index,    block.code[index]};
      if (auto problem = checkInstruction(context)) {
        reportInstruction(context, *problem);
        return;
      }
    }
    const Instruction &last = block.code.back();
    if (opcodeInfo(last.opcode).flow != Flow::Ends) {
      InstructionContext context{workflowIndex,         workflow, blockIndex, block,
                                 block.code.size() - 1, last};
      reportInstruction(context, fmt::format("the block ends with {}, which falls through; end it "
                                             "with RET, RAISE, COMPLETE, CONTINUEASNEW or JMP",
                                             mnemonic(last.opcode)));
      return;
    }
    checkHandlerFrames(workflowIndex, blockIndex);
  }

  void reportInstruction(const InstructionContext &context, std::string message) {
    report(instructionOffset(context.workflowIndex, context.blockIndex, context.instructionIndex),
           fmt::format("{} block b{} instruction {}", workflowLocation(context.workflowIndex),
                       context.blockIndex, context.instructionIndex),
           std::move(message));
  }

  std::optional<std::string> checkInstruction(const InstructionContext &context) {
    const Instruction &instruction = context.instruction;
    if (!opcodeFromNumber(static_cast<uint32_t>(instruction.opcode))) {
      return fmt::format("unknown opcode {}", static_cast<unsigned>(instruction.opcode));
    }
    const SourceLocation &location = context.block.locations[context.instructionIndex];
    if (location.file.index >= module_.sourceFiles.size()) {
      return fmt::format("source file {} out of range (the module names {} files)",
                         location.file.index, module_.sourceFiles.size());
    }
    if (instruction.opcode == Opcode::Ret && context.block.kind == BlockKind::Body) {
      return std::string("RET in the workflow body; the body ends with COMPLETE, RAISE or "
                         "CONTINUEASNEW");
    }
    for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
      if (auto problem = checkOperand(context, slot)) {
        return fmt::format("operand {} ({}): {}", "ABCD"[slot],
                           operandKindName(opcodeInfo(instruction.opcode).operands[slot]),
                           *problem);
      }
    }
    return std::nullopt;
  }

  // ---- Operands --------------------------------------------------------------------------

  std::optional<std::string> checkRegister(const Workflow &workflow, uint64_t reg) const {
    if (reg >= workflow.registerCount) {
      return fmt::format("register r{} out of range (the workflow has {} registers)", reg,
                         workflow.registerCount);
    }
    return std::nullopt;
  }

  std::optional<std::string> checkRegisterRange(const Workflow &workflow, uint64_t first,
                                                uint64_t count) const {
    if (first + count > workflow.registerCount) {
      return fmt::format("registers r{}..r{} out of range (the workflow has {} registers)", first,
                         first + count - 1, workflow.registerCount);
    }
    return std::nullopt;
  }

  std::optional<std::string> checkBlockOperand(const Workflow &workflow, uint64_t block,
                                               BlockKind expected) const {
    if (block == 0) {
      return std::string("block b0 is the workflow body, which no instruction may start");
    }
    if (block >= workflow.blocks.size()) {
      return fmt::format("block b{} out of range (the workflow has {} blocks)", block,
                         workflow.blocks.size());
    }
    BlockKind kind = workflow.blocks[block].kind;
    if (kind != expected) {
      return fmt::format("block b{} has kind {}, expected kind {}", block, blockKindName(kind),
                         blockKindName(expected));
    }
    return std::nullopt;
  }

  std::optional<std::string> checkOperand(const InstructionContext &context, size_t slot) {
    const Instruction &instruction = context.instruction;
    const Workflow &workflow = context.workflow;
    const OpcodeInfo &info = opcodeInfo(instruction.opcode);
    uint32_t value = instruction.operands[slot];
    // The length operand that follows a range operand (the .def keeps them adjacent).
    uint32_t next = slot + 1 < kOperandsPerInstruction ? instruction.operands[slot + 1] : 0;

    switch (info.operands[slot]) {
    case OperandKind::None:
      if (value != 0) {
        return fmt::format("unused operand must be 0, found {}", value);
      }
      return std::nullopt;
    case OperandKind::Reg:
      return checkRegister(workflow, value);
    case OperandKind::RegRange:
      return checkRegisterRange(workflow, value, next);
    case OperandKind::Count:
      return std::nullopt; // checked with the range before it
    case OperandKind::PathRegs: {
      // The path descriptor is operand C of every opcode with a PathRegs operand.
      DescriptorVerdict path = verdict(OperandKind::Path, instruction.operands[2]);
      if (path.problem) {
        return std::nullopt; // reported for operand C
      }
      if (path.number == 0) {
        if (value != 0) {
          return fmt::format("the path has no dynamic index, so this must be 0, found {}", value);
        }
        return std::nullopt;
      }
      return checkRegisterRange(workflow, value, path.number);
    }
    case OperandKind::Jump:
      if (value >= context.block.code.size()) {
        return fmt::format("jump target @{} is outside the block (instructions @0..@{})", value,
                           context.block.code.size() - 1);
      }
      return std::nullopt;
    case OperandKind::Branches:
      if (next == 0) {
        if (value != 0) {
          return fmt::format("an empty branch range must start at 0, found b{}", value);
        }
        return std::nullopt;
      }
      for (uint64_t block = value; block < uint64_t{value} + next; ++block) {
        if (auto problem = checkBlockOperand(workflow, block, BlockKind::Branch)) {
          return problem;
        }
      }
      return std::nullopt;
    case OperandKind::IterationBlock:
      return checkBlockOperand(workflow, value, BlockKind::Iteration);
    case OperandKind::CompensationBlock:
      return checkBlockOperand(workflow, value, BlockKind::Compensation);
    case OperandKind::Bool:
      if (value > 1) {
        return fmt::format("a boolean immediate is 0 or 1, found {}", value);
      }
      return std::nullopt;
    case OperandKind::Root:
      if (!stateRootFromNumber(value)) {
        return fmt::format("unknown state root {} (roots are 0..{})", value, kStateRootCount - 1);
      }
      return std::nullopt;
    case OperandKind::Builtin: {
      const BuiltinInfo *builtin = findBuiltinById(value);
      if (builtin == nullptr) {
        return fmt::format("unknown builtin function id {}", value);
      }
      // CALL's argument count is operand D.
      if (!builtin->acceptsArgCount(instruction.operands[3])) {
        return fmt::format("{}() {}, called with {}", builtin->name, describeArity(*builtin),
                           instruction.operands[3]);
      }
      return std::nullopt;
    }
    case OperandKind::HostPred:
      if (value >= workflow.hostPredicates.size()) {
        return fmt::format("host predicate p{} out of range (the workflow lists {})", value,
                           workflow.hostPredicates.size());
      }
      return std::nullopt;
    case OperandKind::Const:
      return checkConstantIndex(value);
    case OperandKind::Name:
    case OperandKind::Path:
    case OperandKind::ActivityCall:
    case OperandKind::Timer:
    case OperandKind::Signal:
    case OperandKind::Event:
    case OperandKind::Child:
    case OperandKind::Decision:
    case OperandKind::Saga:
    case OperandKind::Compensation:
    case OperandKind::ErrorTypes: {
      DescriptorVerdict result = verdict(info.operands[slot], value);
      return result.problem;
    }
    case OperandKind::Keys: {
      DescriptorVerdict result = verdict(OperandKind::Keys, value);
      if (result.problem) {
        return result.problem;
      }
      // NEWOBJECT's entry count is operand C.
      if (result.number != instruction.operands[2]) {
        return fmt::format("k{} has {} keys for {} values", value, result.number,
                           instruction.operands[2]);
      }
      return std::nullopt;
    }
    case OperandKind::Parallel: {
      DescriptorVerdict result = verdict(OperandKind::Parallel, value);
      if (result.problem) {
        return result.problem;
      }
      // PARALLEL's branch count is operand C.
      if (result.number > instruction.operands[2]) {
        return fmt::format("at_least {} of {} branches can never be met", result.number,
                           instruction.operands[2]);
      }
      return std::nullopt;
    }
    case OperandKind::Foreach: {
      DescriptorVerdict result = verdict(OperandKind::Foreach, value);
      if (result.problem) {
        return result.problem;
      }
      if (result.number > workflow.registerCount) {
        return fmt::format("k{} names register r{}, out of range (the workflow has {} registers)",
                           value, result.number - 1, workflow.registerCount);
      }
      return std::nullopt;
    }
    }
    return std::nullopt;
  }

  std::optional<std::string> checkConstantIndex(uint32_t index) const {
    if (index >= module_.constants.size()) {
      return fmt::format("constant k{} out of range (the pool has {} constants)", index,
                         module_.constants.size());
    }
    return std::nullopt;
  }

  // ---- Descriptors -----------------------------------------------------------------------

  DescriptorVerdict verdict(OperandKind kind, uint32_t index) {
    uint64_t key = (uint64_t{static_cast<uint8_t>(kind)} << 32) | index;
    auto cached = verdicts_.find(key);
    if (cached != verdicts_.end()) {
      return cached->second;
    }
    DescriptorVerdict result;
    if (auto problem = checkConstantIndex(index)) {
      result.problem = problem;
    } else {
      result = judge(kind, module_.constants[index]);
      if (result.problem) {
        result.problem = fmt::format("k{}: {}", index, *result.problem);
      }
    }
    verdicts_.emplace(key, result);
    return result;
  }

  template <typename T> static DescriptorVerdict fromDecoded(const Decoded<T> &decoded) {
    DescriptorVerdict result;
    if (!decoded) {
      result.problem = decoded.error();
    }
    return result;
  }

  DescriptorVerdict judge(OperandKind kind, const Value &constant) const {
    DescriptorVerdict result;
    switch (kind) {
    case OperandKind::Name:
      if (!constant.isString()) {
        result.problem = "expected a name string, found " + describeValue(constant);
      }
      return result;
    case OperandKind::Path: {
      Decoded<PathDescriptor> path = decodePath(constant);
      result = fromDecoded(path);
      if (path) {
        result.number = path->dynamicCount();
      }
      return result;
    }
    case OperandKind::Keys:
      return judgeKeys(constant);
    case OperandKind::ActivityCall: {
      Decoded<ActivityCallDescriptor> call = decodeActivityCall(constant);
      result = fromDecoded(call);
      if (call && !isCallable(call->activity)) {
        result.problem = fmt::format("activity '{}' is neither implemented by a declaration "
                                     "nor listed as host-bound",
                                     call->activity);
      }
      return result;
    }
    case OperandKind::Timer:
      return fromDecoded(decodeTimer(constant));
    case OperandKind::Signal:
      return fromDecoded(decodeSignal(constant));
    case OperandKind::Event:
      return fromDecoded(decodeEvent(constant));
    case OperandKind::Child: {
      Decoded<ChildDescriptor> child = decodeChild(constant);
      result = fromDecoded(child);
      if (child && module_.findWorkflow(child->workflow) == nullptr) {
        result.problem = fmt::format("child workflow '{}' is not in the module", child->workflow);
      }
      return result;
    }
    case OperandKind::Decision:
      return fromDecoded(decodeDecision(constant));
    case OperandKind::Parallel: {
      Decoded<ParallelDescriptor> parallel = decodeParallel(constant);
      result = fromDecoded(parallel);
      if (parallel && parallel->mode == ParallelMode::AtLeast) {
        result.number = parallel->count;
      }
      return result;
    }
    case OperandKind::Foreach: {
      Decoded<ForeachDescriptor> foreach = decodeForeach(constant);
      result = fromDecoded(foreach);
      if (foreach) {
        result.number = uint64_t{std::max(foreach->item.index, foreach->index.index)} + 1;
      }
      return result;
    }
    case OperandKind::Saga:
      return fromDecoded(decodeSaga(constant));
    case OperandKind::Compensation:
      return fromDecoded(decodeCompensation(constant));
    case OperandKind::ErrorTypes:
      return fromDecoded(decodeErrorTypes(constant));
    case OperandKind::None:
    case OperandKind::Reg:
    case OperandKind::RegRange:
    case OperandKind::Count:
    case OperandKind::PathRegs:
    case OperandKind::Jump:
    case OperandKind::Branches:
    case OperandKind::IterationBlock:
    case OperandKind::CompensationBlock:
    case OperandKind::Bool:
    case OperandKind::Root:
    case OperandKind::Builtin:
    case OperandKind::HostPred:
    case OperandKind::Const:
      break;
    }
    assert(false && "judge() is only called for descriptor operand kinds");
    return result;
  }

  static DescriptorVerdict judgeKeys(const Value &constant) {
    DescriptorVerdict result;
    if (!constant.isArray()) {
      result.problem = "expected an array of keys, found " + describeValue(constant);
      return result;
    }
    std::set<std::string_view> seen;
    for (const Value &key : constant.asArray()) {
      if (!key.isString()) {
        result.problem = "keys must be strings, found " + describeValue(key);
        return result;
      }
      if (!seen.insert(key.asString()).second) {
        result.problem = fmt::format("key \"{}\" appears twice", key.asString());
        return result;
      }
    }
    result.number = constant.asArray().size();
    return result;
  }

  // Declared with an implementation, or left for the host to bind.
  bool isCallable(std::string_view activity) const {
    const ActivityDecl *declared = module_.findActivity(activity);
    if (declared != nullptr && !declared->implementation.isNull()) {
      return true;
    }
    return std::binary_search(module_.hostActivities.begin(), module_.hostActivities.end(),
                              activity);
  }

  // ---- Handler frames --------------------------------------------------------------------

  // Runs after every operand of the block checked out, so jump targets are in range.
  void checkHandlerFrames(size_t workflowIndex, size_t blockIndex) {
    const Workflow &workflow = module_.workflows[workflowIndex];
    const Block &block = workflow.blocks[blockIndex];
    std::vector<std::optional<std::vector<Frame>>> frames(block.code.size());
    std::vector<uint32_t> worklist;
    std::optional<std::string> problem;
    size_t problemAt = 0;

    auto flowTo = [&](size_t from, uint32_t target, const std::vector<Frame> &stack) {
      if (problem) {
        return;
      }
      if (stack.size() > kMaxHandlerDepth) {
        problem = fmt::format("more than {} try and saga frames open at once", kMaxHandlerDepth);
        problemAt = from;
        return;
      }
      std::optional<std::vector<Frame>> &known = frames[target];
      if (!known) {
        known = stack;
        worklist.push_back(target);
      } else if (*known != stack) {
        problem = fmt::format("paths reach @{} with different try/saga frames: {} and {}", target,
                              describeFrames(*known), describeFrames(stack));
        problemAt = from;
      }
    };

    flowTo(0, 0, {});
    while (!worklist.empty() && !problem) {
      uint32_t at = worklist.back();
      worklist.pop_back();
      const Instruction &instruction = block.code[at];
      std::vector<Frame> stack = *frames[at];
      auto expectTop = [&](Frame expected, std::string_view what) {
        if (stack.empty() || stack.back() != expected) {
          problem = fmt::format(
              "{} needs a {} frame innermost, found {} (frames {})", what, frameName(expected),
              stack.empty() ? "none" : frameName(stack.back()), describeFrames(stack));
          problemAt = at;
          return false;
        }
        stack.pop_back();
        return true;
      };

      // Only these opcodes touch the frames; jump and fall-through edges come from
      // opcodes.def below.
      Opcode opcode = instruction.opcode;
      if (opcode == Opcode::TryPush) {
        flowTo(at, instruction.a(), stack);
        stack.push_back(Frame::Try);
      } else if (opcode == Opcode::SagaPush) {
        std::vector<Frame> handler = stack;
        handler.push_back(Frame::FailedSaga);
        flowTo(at, instruction.a(), handler);
        stack.push_back(Frame::Saga);
      } else if (opcode == Opcode::TryPop) {
        if (!expectTop(Frame::Try, "TRYPOP")) {
          continue;
        }
      } else if (opcode == Opcode::SagaPop) {
        if (!expectTop(Frame::Saga, "SAGAPOP")) {
          continue;
        }
      } else if (opcode == Opcode::CompRun) {
        if (!expectTop(Frame::FailedSaga, "COMPRUN")) {
          continue;
        }
      } else if (opcode == Opcode::CompReg) {
        // Outside the body, the saga may be open in the fiber that started this block.
        if (block.kind == BlockKind::Body &&
            std::find(stack.begin(), stack.end(), Frame::Saga) == stack.end()) {
          problem = "COMPREG outside any saga";
          problemAt = at;
          continue;
        }
      } else if (opcode == Opcode::Ret && !stack.empty()) {
        problem = fmt::format("RET with frames {} still open; close them with TRYPOP or "
                              "SAGAPOP first",
                              describeFrames(stack));
        problemAt = at;
        continue;
      }
      const OpcodeInfo &info = opcodeInfo(instruction.opcode);
      bool isHandlerPush = opcode == Opcode::TryPush || opcode == Opcode::SagaPush;
      for (size_t slot = 0; slot < kOperandsPerInstruction && !isHandlerPush; ++slot) {
        if (info.operands[slot] == OperandKind::Jump) {
          flowTo(at, instruction.operands[slot], stack);
        }
      }
      if (info.flow == Flow::Falls) {
        // The verifier has checked that the last instruction does not fall through.
        flowTo(at, at + 1, stack);
      }
    }
    if (problem) {
      InstructionContext context{workflowIndex, workflow,  blockIndex,
                                 block,         problemAt, block.code[problemAt]};
      reportInstruction(context, *problem);
    }
  }

  const Module &module_;
  const ModuleByteOffsets *offsets_;
  std::vector<ModuleError> errors_;
  std::unordered_map<uint64_t, DescriptorVerdict> verdicts_;
};

} // namespace

std::vector<ModuleError> verifyModule(const Module &module, const ModuleByteOffsets *offsets) {
  return Verifier(module, offsets).run();
}

} // namespace kotoba::vm
