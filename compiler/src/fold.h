// Constant folding: the value of an expression whose inputs are all constants, computed with
// the same operations the VM runs, so a folded constant is exactly what the run would get.
#pragma once

#include "kotoba/compiler/syntax.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <optional>

namespace kotoba::compiler {

// nullopt when the expression reads the run's state or calls a function that is not pure
// (now, uuid); otherwise its value or the error evaluating it raises.
[[nodiscard]] std::optional<Result<Value>> foldExpression(const Node *node);

} // namespace kotoba::compiler
