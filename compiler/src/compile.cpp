// The compiler driver (see compile.h).
#include "kotoba/compiler/compile.h"

#include "kotoba/compiler/codegen.h"

namespace kotoba::compiler {

std::optional<vm::Module> compileFile(Compilation &compilation, const std::string &path,
                                      const CheckOptions &options) {
  if (!checkProgram(compilation, path, options)) {
    return std::nullopt;
  }
  return generateModule(compilation.program, compilation.sources);
}

} // namespace kotoba::compiler
