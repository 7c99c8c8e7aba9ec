// The verifier: the checks that make a module safe to execute, run on every load and by the
// compiler's tests on everything it generates. After it accepts a module, the VM may index
// registers, constants, blocks and jump targets without bounds checks, decode descriptors
// without handling failure, and rely on every block ending in an instruction that does not
// fall through. docs/kbc-format.md lists the rules.
#pragma once

#include "kotoba/vm/module.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kotoba::vm {

// Limits a valid module stays within; the writer never produces, and the reader never
// accepts, anything beyond them.
// Values nest at most this deep (arrays and objects; a scalar is depth 0). The reader
// recurses once per level.
inline constexpr uint32_t kMaxConstantDepth = 256;
// Every fiber owns a register file of the workflow's register count.
inline constexpr uint32_t kMaxRegisters = 65536;
// Try and saga frames open at once in one block.
inline constexpr uint32_t kMaxHandlerDepth = 64;

// Something wrong with a module, from the reader or the verifier.
struct ModuleError {
  // Where in the .kbc file, when the module came from one.
  std::optional<uint64_t> byteOffset;
  // What the problem is in: "workflow 'order' block b2 instruction 14", "constant k7",
  // "activity 'charge"; empty for the file as a whole.
  std::string location;
  std::string message;

  // "byte 345: workflow 'order' block b2 instruction 14: register r40 out of range ..."
  [[nodiscard]] std::string describe() const;
};

// Where the reader found things, so verifier errors can name byte offsets as well.
struct ModuleByteOffsets {
  std::vector<uint64_t> constants;
  std::vector<uint64_t> activities;
  std::vector<uint64_t> workflows;
  // instructions[workflow][block][instruction]: the offset of the opcode byte.
  std::vector<std::vector<std::vector<uint64_t>>> instructions;
};

// Every problem found, in module order (empty: the module is valid). Stops adding
// instruction errors for a block after the first, since one bad operand tends to make
// the rest of the analysis of that block noise.
[[nodiscard]] std::vector<ModuleError> verifyModule(const Module &module,
                                                    const ModuleByteOffsets *offsets = nullptr);

} // namespace kotoba::vm
