// The opcode tables, generated from opcodes.def, and the static checks that keep the list
// well formed: numbers dense from 0 in list order (so the tables are indexed by number) and
// the used operands of every opcode a prefix of A B C D.
#include "kotoba/vm/opcodes.h"

#include <cassert>

namespace kotoba::vm {
namespace {

struct OpcodeEntry {
  unsigned number;
  OpcodeInfo info;
};

constexpr OpcodeEntry kOpcodeTable[] = {
#define OPCODE(Name, Number, Mnemonic, A, B, C, D, FlowKind, Synopsis)                             \
  {Number,                                                                                         \
   {Mnemonic,                                                                                      \
    {OperandKind::A, OperandKind::B, OperandKind::C, OperandKind::D},                              \
    Flow::FlowKind,                                                                                \
    Synopsis}},
#include "kotoba/vm/opcodes.def"
};
static_assert(std::size(kOpcodeTable) == kOpcodeCount);

constexpr bool opcodeNumbersAreDense() {
  for (size_t index = 0; index < std::size(kOpcodeTable); ++index) {
    if (kOpcodeTable[index].number != index) {
      return false;
    }
  }
  return true;
}
static_assert(opcodeNumbersAreDense(),
              "opcodes.def: numbers must run 0, 1, 2, ... in list order; append new opcodes");

constexpr bool usedOperandsArePrefixes() {
  for (const OpcodeEntry &entry : kOpcodeTable) {
    bool seenNone = false;
    for (OperandKind kind : entry.info.operands) {
      if (kind == OperandKind::None) {
        seenNone = true;
      } else if (seenNone) {
        return false;
      }
    }
  }
  return true;
}
static_assert(usedOperandsArePrefixes(),
              "opcodes.def: an opcode must use A, A-B, A-C or A-D, without gaps");

struct OperandKindEntry {
  std::string_view name;
  OperandClass operandClass;
  std::string_view meaning;
};

constexpr OperandKindEntry kOperandKindTable[] = {
#define OPERAND_KIND(Name, Class, Meaning) {#Name, OperandClass::Class, Meaning},
#include "kotoba/vm/opcodes.def"
};

struct StateRootEntry {
  unsigned number;
  std::string_view spelling;
};

constexpr StateRootEntry kStateRootTable[] = {
#define STATE_ROOT(Name, Number, Spelling) {Number, Spelling},
#include "kotoba/vm/opcodes.def"
};
static_assert(std::size(kStateRootTable) == kStateRootCount);

constexpr bool stateRootNumbersAreDense() {
  for (size_t index = 0; index < std::size(kStateRootTable); ++index) {
    if (kStateRootTable[index].number != index) {
      return false;
    }
  }
  return true;
}
static_assert(stateRootNumbersAreDense(), "opcodes.def: state root numbers must run 0, 1, 2, ...");

} // namespace

const OpcodeInfo &opcodeInfo(Opcode opcode) {
  auto index = static_cast<size_t>(opcode);
  assert(index < kOpcodeCount && "opcode outside opcodes.def; decode with opcodeFromNumber");
  return kOpcodeTable[index].info;
}

std::optional<Opcode> opcodeFromNumber(uint32_t number) {
  if (number >= kOpcodeCount) {
    return std::nullopt;
  }
  return static_cast<Opcode>(number);
}

std::optional<Opcode> opcodeFromMnemonic(std::string_view mnemonic) {
  for (const OpcodeEntry &entry : kOpcodeTable) {
    if (entry.info.mnemonic == mnemonic) {
      return static_cast<Opcode>(entry.number);
    }
  }
  return std::nullopt;
}

size_t usedOperandCount(Opcode opcode) {
  const OpcodeInfo &info = opcodeInfo(opcode);
  size_t count = 0;
  while (count < kOperandsPerInstruction && info.operands[count] != OperandKind::None) {
    ++count;
  }
  return count;
}

std::string_view operandKindName(OperandKind kind) {
  return kOperandKindTable[static_cast<size_t>(kind)].name;
}

std::string_view operandKindMeaning(OperandKind kind) {
  return kOperandKindTable[static_cast<size_t>(kind)].meaning;
}

OperandClass operandClass(OperandKind kind) {
  return kOperandKindTable[static_cast<size_t>(kind)].operandClass;
}

std::optional<StateRoot> stateRootFromNumber(uint32_t number) {
  if (number >= kStateRootCount) {
    return std::nullopt;
  }
  return static_cast<StateRoot>(number);
}

std::string_view stateRootSpelling(StateRoot root) {
  auto index = static_cast<size_t>(root);
  assert(index < kStateRootCount && "state root outside opcodes.def");
  return kStateRootTable[index].spelling;
}

} // namespace kotoba::vm
