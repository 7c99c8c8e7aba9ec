// Path evaluation: following `.member`, `[index]`, `[*]` and `[expr]` steps from a value,
// as the PATH, PATHOPT and PATHHAS instructions do. The path itself is the constant
// descriptor of descriptors.h (the segments after the root, plus the text as written); this
// file gives it meaning:
//
// - A member step needs an object that has the key. An index step needs an array; a negative
//   index counts from the end ([-1] is the last element). A dynamic step uses its value as an
//   index when it is an integer and as a key when it is a string.
// - `[*]` needs an array and applies the rest of the path to each element, giving an array
//   (`$.items[*].sku` is the array of every item's sku).
// - In Required mode every problem is a PathError whose message starts with the full path
//   and then says where and why it broke: "$.results.pay.id: $.results.pay has no member
//   'id'; did you mean 'ids'?". Inside a projection the place names the element
//   ($.items[2] has no member 'sku').
// - In Optional mode (for `??`, exists() and coalesce()) a key that is not there, an index
//   out of range, or a step into null yields Value::missing() instead of an error. A step
//   into a value of the wrong kind (a member of a number, [*] over an object) is still a
//   PathError: that is a mistake in the workflow, not absent data. If any element of a
//   projection is missing, the whole projection is missing.
#pragma once

#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <llvm/ADT/ArrayRef.h>

#include <cstdint>

namespace kotoba {

enum class PathMode : uint8_t {
  Required, // every problem is a PathError
  Optional, // absent data yields Value::missing()
};

// Follows `path` from `base` (the value of the path's root or base expression).
// `dynamicValues` holds the values of the path's dynamic index expressions in path order;
// there must be exactly path.dynamicCount() of them (the verifier guarantees it).
[[nodiscard]] Result<Value> evaluatePath(const Value &base, const vm::PathDescriptor &path,
                                         llvm::ArrayRef<Value> dynamicValues, PathMode mode);

// Whether the path leads to a value, a present null included (exists()). Errors are those
// of Optional mode.
[[nodiscard]] Result<bool> pathExists(const Value &base, const vm::PathDescriptor &path,
                                      llvm::ArrayRef<Value> dynamicValues);

} // namespace kotoba
