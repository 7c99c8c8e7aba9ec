// Code generation: lowers a checked Program to a bytecode Module (vm/module.h). Every
// instruction carries the source location of the construct it came from; compensations,
// parallel branches and foreach bodies become blocks of their own.
#pragma once

#include "kotoba/compiler/model.h"
#include "kotoba/compiler/source.h"
#include "kotoba/vm/module.h"

namespace kotoba::compiler {

// The default per-attempt activity timeout when neither call site nor declaration sets one.
inline constexpr int64_t defaultActivityTimeoutMs = 5 * 60 * 1000;

// Lowers a Program that checked without errors. The entry workflow becomes workflows[0].
[[nodiscard]] vm::Module generateModule(const Program &program, const SourceManager &sources);

} // namespace kotoba::compiler
