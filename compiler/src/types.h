// Parameter types as the checker reads them: `string`, `number`, `integer`, `boolean`,
// `object`, `array`, `any` and `array<T>`, nested.
#pragma once

#include "kotoba/vm/value.h"

#include <string>
#include <string_view>

namespace kotoba::compiler {

// Empty when `type` is well formed; otherwise what is wrong with it.
[[nodiscard]] std::string validateTypeName(std::string_view type);
// Empty when `value` has type `type` (which must be valid); otherwise why not.
[[nodiscard]] std::string typeMismatch(std::string_view type, const Value &value);

} // namespace kotoba::compiler
