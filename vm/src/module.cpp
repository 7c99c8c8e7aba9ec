// The module's lookups and the builders the code generator uses. The builders check what is
// cheap to check at the point of the mistake (operand classes and counts); everything a
// .kbc file could get wrong is the verifier's job.
#include "kotoba/vm/module.h"

#include "kotoba/vm/json.h"

#include <algorithm>
#include <cassert>

namespace kotoba::vm {

std::string_view blockKindName(BlockKind kind) {
  switch (kind) {
  case BlockKind::Body:
    return "body";
  case BlockKind::Branch:
    return "branch";
  case BlockKind::Iteration:
    return "iteration";
  case BlockKind::Compensation:
    return "compensation";
  }
  return "unknown";
}

std::optional<BlockKind> blockKindFromNumber(uint32_t number) {
  if (number >= kBlockKindCount) {
    return std::nullopt;
  }
  return static_cast<BlockKind>(number);
}

const Value &Module::constant(ConstIndex index) const {
  assert(index.index < constants.size() && "constant index past the pool; verify the module");
  return constants[index.index];
}

const Workflow *Module::findWorkflow(std::string_view id) const {
  for (const Workflow &workflow : workflows) {
    if (workflow.id == id) {
      return &workflow;
    }
  }
  return nullptr;
}

const ActivityDecl *Module::findActivity(std::string_view name) const {
  for (const ActivityDecl &activity : activities) {
    if (activity.name == name) {
      return &activity;
    }
  }
  return nullptr;
}

FileIndex ModuleBuilder::addSourceFile(std::string_view path) {
  auto [entry, inserted] =
      fileIndexByName_.try_emplace(path, static_cast<uint32_t>(module_.sourceFiles.size()));
  if (inserted) {
    module_.sourceFiles.emplace_back(path);
  }
  return FileIndex{entry->second};
}

ConstIndex ModuleBuilder::addConstant(const Value &value) {
  auto [entry, inserted] = constantIndexByKey_.try_emplace(
      toJson(value), static_cast<uint32_t>(module_.constants.size()));
  if (inserted) {
    module_.constants.push_back(value);
  }
  return ConstIndex{entry->second};
}

void ModuleBuilder::addActivity(ActivityDecl activity) {
  assert(module_.findActivity(activity.name) == nullptr &&
         "activity declared twice; the checker reports duplicate declarations");
  module_.activities.push_back(std::move(activity));
}

void ModuleBuilder::addHostActivity(std::string_view name) {
  std::vector<std::string> &names = module_.hostActivities;
  auto position = std::lower_bound(names.begin(), names.end(), name);
  if (position == names.end() || *position != name) {
    names.insert(position, std::string(name));
  }
}

void ModuleBuilder::addWorkflow(Workflow workflow) {
  assert(module_.findWorkflow(workflow.id) == nullptr &&
         "workflow id used twice; the checker reports duplicate ids");
  module_.workflows.push_back(std::move(workflow));
}

Module ModuleBuilder::finish() && { return std::move(module_); }

WorkflowBuilder::WorkflowBuilder(ModuleBuilder &module, std::string id) : module_(module) {
  workflow_.id = std::move(id);
  workflow_.blocks.push_back(Block{BlockKind::Body, {}, {}});
}

Reg WorkflowBuilder::newRegisters(uint32_t count) {
  Reg first{workflow_.registerCount};
  workflow_.registerCount += count;
  return first;
}

BlockId WorkflowBuilder::newBlock(BlockKind kind) {
  assert(kind != BlockKind::Body && "only block 0 is a workflow body");
  workflow_.blocks.push_back(Block{kind, {}, {}});
  return BlockId{static_cast<uint32_t>(workflow_.blocks.size() - 1)};
}

Block &WorkflowBuilder::blockAt(BlockId block) {
  assert(block.index < workflow_.blocks.size() && "block id from another workflow");
  return workflow_.blocks[block.index];
}

CodeIndex WorkflowBuilder::emit(BlockId block, Opcode opcode,
                                std::initializer_list<Operand> operands, SourceLocation location) {
  const OpcodeInfo &info = opcodeInfo(opcode);
  assert(operands.size() == usedOperandCount(opcode) &&
         "wrong number of operands for the opcode; see opcodes.def");
  Instruction instruction{opcode, {}};
  size_t slot = 0;
  for (const Operand &operand : operands) {
    assert(operand.operandClass() == operandClass(info.operands[slot]) &&
           "operand of the wrong class (register, constant, block, jump, immediate)");
    instruction.operands[slot] = operand.value();
    ++slot;
  }
  (void)info;
  Block &target = blockAt(block);
  target.code.push_back(instruction);
  target.locations.push_back(location);
  return CodeIndex{static_cast<uint32_t>(target.code.size() - 1)};
}

CodeIndex WorkflowBuilder::nextIndex(BlockId block) const {
  assert(block.index < workflow_.blocks.size() && "block id from another workflow");
  return CodeIndex{static_cast<uint32_t>(workflow_.blocks[block.index].code.size())};
}

void WorkflowBuilder::patchJump(BlockId block, CodeIndex at, CodeIndex target) {
  Block &code = blockAt(block);
  assert(at.index < code.code.size() && "patching an instruction that was never emitted");
  Instruction &instruction = code.code[at.index];
  const OpcodeInfo &info = opcodeInfo(instruction.opcode);
  for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
    if (info.operands[slot] == OperandKind::Jump) {
      instruction.operands[slot] = target.index;
      return;
    }
  }
  assert(false && "patchJump on an instruction without a jump operand");
}

Workflow WorkflowBuilder::finish() && { return std::move(workflow_); }

} // namespace kotoba::vm
