// The instruction set as data: the Opcode enum and, for each opcode, its mnemonic, the kinds
// of its four operands, whether it can fall through, and its synopsis. All of it is generated
// from opcodes.def, so the builder, verifier, reader, writer and disassembler cannot disagree
// about an opcode's shape.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kotoba::vm {

// Opcode numbers are persisted in .kbc files (opcodes.def says how to add one).
enum class Opcode : uint8_t {
#define OPCODE(Name, Number, Mnemonic, A, B, C, D, Flow, Synopsis) Name = Number,
#include "kotoba/vm/opcodes.def"
};

inline constexpr size_t kOpcodeCount = 0
#define OPCODE(Name, Number, Mnemonic, A, B, C, D, Flow, Synopsis) +1
#include "kotoba/vm/opcodes.def"
    ;

enum class OperandKind : uint8_t {
#define OPERAND_KIND(Name, Class, Meaning) Name,
#include "kotoba/vm/opcodes.def"
};

// What a code generator hands the builder for an operand of a given kind.
enum class OperandClass : uint8_t { None, Register, Constant, Block, Jump, Immediate };

enum class Flow : uint8_t {
  Falls, // execution may continue with the next instruction
  Ends,  // execution never continues with the next instruction
};

// The roots ROOT reads; numbers are persisted.
enum class StateRoot : uint8_t {
#define STATE_ROOT(Name, Number, Spelling) Name = Number,
#include "kotoba/vm/opcodes.def"
};

inline constexpr size_t kStateRootCount = 0
#define STATE_ROOT(Name, Number, Spelling) +1
#include "kotoba/vm/opcodes.def"
    ;

inline constexpr size_t kOperandsPerInstruction = 4;

struct OpcodeInfo {
  std::string_view mnemonic;
  std::array<OperandKind, kOperandsPerInstruction> operands;
  Flow flow;
  std::string_view synopsis;
};

[[nodiscard]] const OpcodeInfo &opcodeInfo(Opcode opcode);
[[nodiscard]] inline std::string_view mnemonic(Opcode opcode) {
  return opcodeInfo(opcode).mnemonic;
}
// The opcode with that persisted number, or nullopt for a number no opcode has.
[[nodiscard]] std::optional<Opcode> opcodeFromNumber(uint32_t number);
// The opcode with that mnemonic (as written in the disassembly), or nullopt.
[[nodiscard]] std::optional<Opcode> opcodeFromMnemonic(std::string_view mnemonic);
// How many operands the opcode uses: operands after the last used one are None.
[[nodiscard]] size_t usedOperandCount(Opcode opcode);

[[nodiscard]] std::string_view operandKindName(OperandKind kind);
[[nodiscard]] std::string_view operandKindMeaning(OperandKind kind);
[[nodiscard]] OperandClass operandClass(OperandKind kind);

[[nodiscard]] std::optional<StateRoot> stateRootFromNumber(uint32_t number);
// "$.inputs", "$.vars", ...
[[nodiscard]] std::string_view stateRootSpelling(StateRoot root);

} // namespace kotoba::vm
