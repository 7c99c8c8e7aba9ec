// The disassembler: a module as text, for `kotobac dis`, the VM's trace mode and golden
// tests. The text is meant to be diffed: one instruction per line, operands labelled by kind
// (r3 register, k12 constant, b2 block, @14 instruction, #3 count), constants inline as
// compact JSON, the opcode's synopsis as a trailing comment, and nothing that varies between
// runs (no addresses, no hash, no timestamps). The layout is described in docs/bytecode.md.
#pragma once

#include "kotoba/vm/module.h"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba::vm {

struct DisassemblyOptions {
  // The text of a source file by the name the module records, or nullopt when it is not
  // available. With it, each change of source line is preceded by the line itself.
  std::function<std::optional<std::string_view>(std::string_view fileName)> sourceText;
  // Constants longer than this (in bytes of compact JSON) are cut and end in "...".
  size_t maxConstantWidth = 60;
};

// The whole module: tables, then each workflow with its interface and blocks (compensation
// blocks after the others). The module must have passed verifyModule.
[[nodiscard]] std::string disassemble(const Module &module, const DisassemblyOptions &options = {});

// One instruction as the whole-module listing prints it, without indentation or newline:
// "@3    PATH          r2, r1, k4=..., -    ; r[A] = r[B] . K[C] (indexes r[D]..)".
[[nodiscard]] std::string disassembleInstruction(const Module &module, const Workflow &workflow,
                                                 const Block &block, size_t index,
                                                 const DisassemblyOptions &options = {});

} // namespace kotoba::vm
