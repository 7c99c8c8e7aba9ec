// The whole compiler in one call: check a .kotoba file and its imports, and lower the result
// to a bytecode module. kotobac and the runtime (which runs sources directly) both use it.
#pragma once

#include "kotoba/compiler/check.h"
#include "kotoba/vm/module.h"

#include <optional>
#include <string>

namespace kotoba::compiler {

// Checks and generates. nullopt when the check reported errors (they are in
// compilation.diagnostics); warnings do not prevent a module.
[[nodiscard]] std::optional<vm::Module> compileFile(Compilation &compilation,
                                                    const std::string &path,
                                                    const CheckOptions &options = {});

} // namespace kotoba::compiler
