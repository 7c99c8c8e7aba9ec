// The operators of the expression language (language.md section 4) on Values. The VM's
// arithmetic instructions and the compiler's constant folder both call these, so a constant
// expression folds to exactly what it would compute at run time, errors included.
//
// Every operator is strict: no implicit conversion between kinds (`"a" + 1` is an error, use
// a template or to_string), `&&`/`||`/`!` and conditions need booleans, integers never
// silently overflow, and no operation produces NaN or an infinity. Integer and double mix
// freely in arithmetic (the result is a double) and compare by exact mathematical value.
// Failures are ExpressionErrors saying what was expected and what was found.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace kotoba {

// The binary operators that compute a value from both operands. `&&`, `||`, `??` and `?:`
// short-circuit, so they are control flow in the VM and are not listed here.
enum class BinaryOp : uint8_t {
  Add,          // numbers; strings concatenate; arrays concatenate; objects merge, right wins
  Subtract,     // numbers
  Multiply,     // numbers
  Divide,       // numbers; always a double; division by zero is an error
  Remainder,    // integers only; sign follows the dividend; by zero is an error
  Equal,        // deep structural equality, 1 == 1.0; never fails
  NotEqual,     // negation of Equal
  Less,         // numbers, or strings by code point
  LessEqual,    //
  Greater,      //
  GreaterEqual, //
  In,           // element of an array, key of an object, substring of a string
};

enum class UnaryOp : uint8_t {
  Not,    // booleans only
  Negate, // numbers; -INT64_MIN is an overflow error
};

// The operator as written in source: "+", "==", "in", "!", "-".
[[nodiscard]] const char *binaryOpSpelling(BinaryOp op);
[[nodiscard]] const char *unaryOpSpelling(UnaryOp op);

[[nodiscard]] Result<Value> applyBinary(BinaryOp op, const Value &left, const Value &right);
[[nodiscard]] Result<Value> applyUnary(UnaryOp op, const Value &operand);

// The individual operators, for callers that know which one they want.
[[nodiscard]] Result<Value> add(const Value &left, const Value &right);
[[nodiscard]] Result<Value> subtract(const Value &left, const Value &right);
[[nodiscard]] Result<Value> multiply(const Value &left, const Value &right);
[[nodiscard]] Result<Value> divide(const Value &left, const Value &right);
[[nodiscard]] Result<Value> remainder(const Value &left, const Value &right);
[[nodiscard]] Result<Value> negate(const Value &operand);
[[nodiscard]] Result<Value> logicalNot(const Value &operand);
[[nodiscard]] Result<Value> contains(const Value &container, const Value &element);

// Three-way comparison for `<` `<=` `>` `>=` (and min/max): two numbers by exact value, or
// two strings by code point. `where` names the operator or function quoted ("'<'", "max()").
// Returns -1, 0 or 1.
[[nodiscard]] Result<int> compareOrdered(const Value &left, const Value &right,
                                         std::string_view where);

// Exact comparison of an integer with a double, without the rounding a conversion of the
// integer to double would introduce (2^53 + 1 is greater than 2^53 as a double).
[[nodiscard]] int compareIntWithDouble(int64_t integer, double number);

// The boolean a condition, `&&`, `||` or `!` needs; anything else is an ExpressionError
// ("expected a boolean for '&&', found integer 1"). `where` places it: "for '&&'".
[[nodiscard]] Result<bool> requireBoolean(const Value &value, std::string_view where);

// Text for template interpolation and to_string: strings as they are, every other value as
// compact JSON (so null becomes "null" and 1.0 becomes "1.0").
[[nodiscard]] std::string templateText(const Value &value);
void appendTemplateText(std::string &out, const Value &value);

} // namespace kotoba
