// libFuzzer target for the module loader: any bytes go through loadModule (read and verify)
// with the hash check off, so that mutations reach the decoder and the verifier instead of
// stopping at a hash mismatch. Besides crashes, sanitizer reports and timeouts, it traps when
// a promise the VM relies on breaks:
//
// - a rejected input comes with at least one error, each with a message and an offset
//   inside the input;
// - a module that loads is valid for good: it writes to a file that loads with its hash
//   checked, and writing that module again gives the same bytes;
// - after verification, every descriptor operand decodes (the VM decodes without checking).
//
// Seeds: tests/fuzz/seeds/module/, written by tests/vm/module_format_test.cpp.
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/disassembler.h"
#include "kotoba/vm/module_format.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using namespace kotoba::vm;

namespace {

void require(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

bool decodes(OperandKind kind, const kotoba::Value &constant) {
  switch (kind) {
  case OperandKind::Path:
    return decodePath(constant).ok();
  case OperandKind::ActivityCall:
    return decodeActivityCall(constant).ok();
  case OperandKind::Timer:
    return decodeTimer(constant).ok();
  case OperandKind::Signal:
    return decodeSignal(constant).ok();
  case OperandKind::Event:
    return decodeEvent(constant).ok();
  case OperandKind::Child:
    return decodeChild(constant).ok();
  case OperandKind::Decision:
    return decodeDecision(constant).ok();
  case OperandKind::Parallel:
    return decodeParallel(constant).ok();
  case OperandKind::Foreach:
    return decodeForeach(constant).ok();
  case OperandKind::Saga:
    return decodeSaga(constant).ok();
  case OperandKind::Compensation:
    return decodeCompensation(constant).ok();
  case OperandKind::ErrorTypes:
    return decodeErrorTypes(constant).ok();
  case OperandKind::Name:
    return constant.isString();
  case OperandKind::Keys:
    return constant.isArray();
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
    return true;
  }
  return false;
}

void checkDescriptorsDecode(const Module &module) {
  for (const Workflow &workflow : module.workflows) {
    for (const Block &block : workflow.blocks) {
      for (const Instruction &instruction : block.code) {
        const OpcodeInfo &info = opcodeInfo(instruction.opcode);
        for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
          if (operandClass(info.operands[slot]) == OperandClass::Constant) {
            require(decodes(info.operands[slot], module.constants.at(instruction.operands[slot])));
          }
        }
      }
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  ReadOptions lenient;
  lenient.checkHash = false;
  ModuleResult<LoadedModule> loaded = loadModule(bytes, lenient);
  if (!loaded.ok()) {
    require(!loaded.errors().empty());
    for (const ModuleError &error : loaded.errors()) {
      require(!error.message.empty());
      require(!error.byteOffset || *error.byteOffset <= size);
    }
    return 0;
  }

  checkDescriptorsDecode(loaded->module);
  std::vector<uint8_t> written = writeModule(loaded->module);
  ModuleResult<LoadedModule> again = loadModule(written);
  require(again.ok());
  require(again->hash == computeContentHash(written));
  require(writeModule(again->module) == written);
  require(!disassemble(loaded->module).empty());
  return 0;
}
