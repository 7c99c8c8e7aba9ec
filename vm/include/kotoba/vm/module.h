// The in-memory module: what the compiler produces, what a .kbc file holds, and what the VM
// executes. A module has the source file names, one constant pool, a table of declared
// activities, the activity names the host must bind, and its workflows; a workflow has its
// interface (params, timeout, retry policy, host predicates), a register count and blocks
// of code. docs/bytecode.md describes the machine; ModuleBuilder and WorkflowBuilder below
// are the code generator's way of making one.
#pragma once

#include "kotoba/vm/opcodes.h"
#include "kotoba/vm/value.h"

#include <llvm/ADT/StringMap.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::vm {

// Distinct index types, so a register cannot be passed where a constant index is meant.
struct Reg {
  uint32_t index = 0;
  friend bool operator==(Reg, Reg) = default;
};
struct ConstIndex {
  uint32_t index = 0;
  friend bool operator==(ConstIndex, ConstIndex) = default;
};
// A block of the same workflow; block 0 is the workflow body.
struct BlockId {
  uint32_t index = 0;
  friend bool operator==(BlockId, BlockId) = default;
};
// An instruction's position in its block: what jump and handler operands hold.
struct CodeIndex {
  uint32_t index = 0;
  friend bool operator==(CodeIndex, CodeIndex) = default;
};
// An entry of Module::sourceFiles.
struct FileIndex {
  uint32_t index = 0;
  friend bool operator==(FileIndex, FileIndex) = default;
};

// Where the construct an instruction was generated from starts. Lines and columns are
// 1-based; 0 means unknown (code the compiler made up, such as a block's final RET).
struct SourceLocation {
  FileIndex file;
  uint32_t line = 0;
  uint32_t column = 0;
  friend bool operator==(const SourceLocation &, const SourceLocation &) = default;
};

struct Instruction {
  Opcode opcode = Opcode::Nop;
  // A, B, C, D; the ones the opcode does not use are 0.
  std::array<uint32_t, kOperandsPerInstruction> operands{};

  [[nodiscard]] uint32_t a() const { return operands[0]; }
  [[nodiscard]] uint32_t b() const { return operands[1]; }
  [[nodiscard]] uint32_t c() const { return operands[2]; }
  [[nodiscard]] uint32_t d() const { return operands[3]; }
  friend bool operator==(const Instruction &, const Instruction &) = default;
};

// Why a block exists; persisted, so the numbers are fixed.
enum class BlockKind : uint8_t {
  Body = 0,         // block 0: the workflow's strategy, ends with COMPLETE (or RAISE, ...)
  Branch = 1,       // one branch of a PARALLEL
  Iteration = 2,    // the body of a FOREACH, run once per element
  Compensation = 3, // registered by COMPREG, run by COMPRUN
};
inline constexpr uint32_t kBlockKindCount = 4;
[[nodiscard]] std::string_view blockKindName(BlockKind kind);
[[nodiscard]] std::optional<BlockKind> blockKindFromNumber(uint32_t number);

struct Block {
  BlockKind kind = BlockKind::Body;
  std::vector<Instruction> code;
  // The line table: locations[i] is where code[i] came from. Always as long as code.
  std::vector<SourceLocation> locations;
};

// A declared input or output.
struct Param {
  std::string name;
  // The type as written: "string", "array<integer>", ...
  std::string type;
  bool required = false;
  std::optional<Value> defaultValue;
  friend bool operator==(const Param &, const Param &) = default;
};

struct Workflow {
  std::string id;
  std::string name;
  std::string version;
  std::string description;
  // `metadata` from the source: stored, never interpreted; null when absent.
  Value metadata;
  std::vector<Param> inputs;
  std::vector<Param> outputs;
  std::optional<int64_t> timeoutMs;
  // The workflow retry policy as a retry policy object (descriptors.h), or null for none.
  Value retryPolicy;
  // Decision conditions no `predicates` entry defines: the host must register them.
  std::vector<std::string> hostPredicates;
  uint32_t registerCount = 0;
  std::vector<Block> blocks;
};

// An entry of the source's `activities`.
struct ActivityDecl {
  std::string name;
  std::string description;
  std::optional<int64_t> timeoutMs;
  // A retry policy object (descriptors.h), or null when the declaration sets none.
  Value retryPolicy;
  // The `implementation` object as written (templates unevaluated), or null for none.
  Value implementation;
  // The source file the declaration is written in: its relative paths resolve against that
  // file's directory. None in modules of format version 1, whose declarations resolve
  // against the entry file's directory.
  std::optional<FileIndex> declaredIn;
  friend bool operator==(const ActivityDecl &, const ActivityDecl &) = default;
};

struct Module {
  std::vector<std::string> sourceFiles;
  std::vector<Value> constants;
  std::vector<ActivityDecl> activities;
  // Activity names the code calls that nothing implements: a run is refused until the host
  // binds each of them. Sorted, without duplicates.
  std::vector<std::string> hostActivities;
  // workflows[0] is the entry workflow (the source's `workflow`, else the first of
  // `workflows`).
  std::vector<Workflow> workflows;

  [[nodiscard]] const Value &constant(ConstIndex index) const;
  [[nodiscard]] const Workflow *findWorkflow(std::string_view id) const;
  [[nodiscard]] const ActivityDecl *findActivity(std::string_view name) const;
};

// One operand as a code generator names it. The builder checks its class against the
// opcode's operand kind, so passing a register where a constant belongs is caught at once.
class Operand {
public:
  Operand(Reg reg) : class_(OperandClass::Register), value_(reg.index) {}
  Operand(ConstIndex constant) : class_(OperandClass::Constant), value_(constant.index) {}
  Operand(BlockId block) : class_(OperandClass::Block), value_(block.index) {}
  Operand(CodeIndex target) : class_(OperandClass::Jump), value_(target.index) {}
  Operand(StateRoot root) : class_(OperandClass::Immediate), value_(static_cast<uint32_t>(root)) {}
  // A count, a builtin id, a host predicate index.
  [[nodiscard]] static Operand immediate(uint32_t value) {
    return Operand(OperandClass::Immediate, value);
  }
  [[nodiscard]] static Operand boolean(bool value) { return immediate(value ? 1 : 0); }
  // The jump target of a forward jump, patched later with WorkflowBuilder::patchJump.
  [[nodiscard]] static Operand unresolvedJump() { return Operand(OperandClass::Jump, 0); }

  [[nodiscard]] OperandClass operandClass() const { return class_; }
  [[nodiscard]] uint32_t value() const { return value_; }

private:
  Operand(OperandClass operandClass, uint32_t value) : class_(operandClass), value_(value) {}
  OperandClass class_;
  uint32_t value_;
};

// Builds the module-level tables. Constants are de-duplicated exactly: 1 and 1.0, 0.0 and
// -0.0, and objects with the same entries in another order stay distinct.
class ModuleBuilder {
public:
  // The index of that file name, adding it the first time.
  FileIndex addSourceFile(std::string_view path);
  ConstIndex addConstant(const Value &value);
  void addActivity(ActivityDecl activity);
  // Records a name the host must bind; repeats are ignored, the list is kept sorted.
  void addHostActivity(std::string_view name);
  // Appends a finished workflow (see WorkflowBuilder::finish); the first one added is the
  // entry workflow.
  void addWorkflow(Workflow workflow);

  [[nodiscard]] const Module &module() const { return module_; }
  [[nodiscard]] Module finish() &&;

private:
  Module module_;
  llvm::StringMap<uint32_t> fileIndexByName_;
  // Keyed by the constant's compact JSON, which tells every distinct Value apart.
  llvm::StringMap<uint32_t> constantIndexByKey_;
};

// Builds one workflow's code. The body block (b0) exists from the start.
class WorkflowBuilder {
public:
  WorkflowBuilder(ModuleBuilder &module, std::string id);

  // The workflow's interface fields (name, params, timeout, ...), to fill in directly.
  [[nodiscard]] Workflow &workflow() { return workflow_; }

  [[nodiscard]] Reg newRegister() { return newRegisters(1); }
  // `count` consecutive registers, for NEWARRAY, NEWOBJECT, CONCAT and CALL arguments.
  [[nodiscard]] Reg newRegisters(uint32_t count);
  [[nodiscard]] BlockId newBlock(BlockKind kind);
  [[nodiscard]] ConstIndex constant(const Value &value) { return module_.addConstant(value); }

  // Appends an instruction; operands are A, B, ... in order, exactly as many as the opcode
  // uses. Returns the instruction's index.
  CodeIndex emit(BlockId block, Opcode opcode, std::initializer_list<Operand> operands,
                 SourceLocation location);
  // The index the next instruction emitted into `block` will get: a backward jump target.
  [[nodiscard]] CodeIndex nextIndex(BlockId block) const;
  // Sets the Jump operand of the instruction at `at` (a JMP*, TRYPUSH or SAGAPUSH).
  void patchJump(BlockId block, CodeIndex at, CodeIndex target);

  [[nodiscard]] Workflow finish() &&;

private:
  Block &blockAt(BlockId block);

  ModuleBuilder &module_;
  Workflow workflow_;
};

} // namespace kotoba::vm
