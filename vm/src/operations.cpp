// The expression operators. Each checks its operands' kinds first, then does the work with
// overflow-checked integer arithmetic or finite-checked double arithmetic.
#include "kotoba/vm/operations.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <optional>

namespace kotoba {

const char *binaryOpSpelling(BinaryOp op) {
  switch (op) {
  case BinaryOp::Add:
    return "+";
  case BinaryOp::Subtract:
    return "-";
  case BinaryOp::Multiply:
    return "*";
  case BinaryOp::Divide:
    return "/";
  case BinaryOp::Remainder:
    return "%";
  case BinaryOp::Equal:
    return "==";
  case BinaryOp::NotEqual:
    return "!=";
  case BinaryOp::Less:
    return "<";
  case BinaryOp::LessEqual:
    return "<=";
  case BinaryOp::Greater:
    return ">";
  case BinaryOp::GreaterEqual:
    return ">=";
  case BinaryOp::In:
    return "in";
  }
  return "?";
}

const char *unaryOpSpelling(UnaryOp op) {
  switch (op) {
  case UnaryOp::Not:
    return "!";
  case UnaryOp::Negate:
    return "-";
  }
  return "?";
}

static std::string forOperator(std::string_view spelling) {
  return fmt::format("for '{}'", spelling);
}

static WorkflowError integerOverflow(std::string_view spelling, int64_t left, int64_t right) {
  return expressionError(fmt::format(
      "integer overflow in '{}': {} {} {} does not fit in 64 bits; use doubles (multiply "
      "by 1.0) for numbers this large",
      spelling, left, spelling, right));
}

// Double arithmetic can overflow to an infinity; the language has no infinities.
static Result<Value> finiteDouble(double result, std::string_view spelling) {
  if (!std::isfinite(result)) {
    return expressionError(
        fmt::format("number overflow in '{}': the result is too large for a double", spelling));
  }
  return Value(result);
}

// Checks that both operands are numbers, naming the first one that is not.
static std::optional<WorkflowError> requireNumbers(const Value &left, const Value &right,
                                                   std::string_view spelling) {
  if (!left.isNumber()) {
    return typeMismatch("a number", forOperator(spelling), left);
  }
  if (!right.isNumber()) {
    return typeMismatch("a number", forOperator(spelling), right);
  }
  return std::nullopt;
}

Result<Value> add(const Value &left, const Value &right) {
  if (left.isInt() && right.isInt()) {
    int64_t sum = 0;
    if (__builtin_add_overflow(left.asInt(), right.asInt(), &sum)) {
      return integerOverflow("+", left.asInt(), right.asInt());
    }
    return Value(sum);
  }
  if (left.isNumber() && right.isNumber()) {
    return finiteDouble(left.asNumber() + right.asNumber(), "+");
  }
  if (left.isString() && right.isString()) {
    std::string joined;
    joined.reserve(left.asString().size() + right.asString().size());
    joined += left.asString();
    joined += right.asString();
    return Value(std::move(joined));
  }
  if (left.isArray() && right.isArray()) {
    Array joined;
    joined.reserve(left.asArray().size() + right.asArray().size());
    joined.insert(joined.end(), left.asArray().begin(), left.asArray().end());
    joined.insert(joined.end(), right.asArray().begin(), right.asArray().end());
    return Value(std::move(joined));
  }
  if (left.isObject() && right.isObject()) {
    Object merged = left.asObject();
    for (const ObjectEntry &entry : right.asObject()) {
      merged.set(entry.key, entry.value);
    }
    return Value(std::move(merged));
  }
  // The left operand decides what '+' means; the message says what the right needed to be.
  switch (left.kind()) {
  case ValueKind::Int:
  case ValueKind::Double:
    return typeMismatch("a number", "on the right of '+' (the left is a number)", right);
  case ValueKind::String:
    return expressionError(
        mismatchMessage("a string", "on the right of '+' (the left is a string)", right) +
        "; to build text from other values, use a template: \"${a}${b}\"");
  case ValueKind::Array:
    return typeMismatch("an array", "on the right of '+' (the left is an array)", right);
  case ValueKind::Object:
    return typeMismatch("an object", "on the right of '+' (the left is an object)", right);
  case ValueKind::Null:
  case ValueKind::Bool:
    return typeMismatch("a number, string, array or object", forOperator("+"), left);
  }
  return typeMismatch("a number, string, array or object", forOperator("+"), left);
}

Result<Value> subtract(const Value &left, const Value &right) {
  if (auto mismatch = requireNumbers(left, right, "-")) {
    return std::move(*mismatch);
  }
  if (left.isInt() && right.isInt()) {
    int64_t difference = 0;
    if (__builtin_sub_overflow(left.asInt(), right.asInt(), &difference)) {
      return integerOverflow("-", left.asInt(), right.asInt());
    }
    return Value(difference);
  }
  return finiteDouble(left.asNumber() - right.asNumber(), "-");
}

Result<Value> multiply(const Value &left, const Value &right) {
  if (auto mismatch = requireNumbers(left, right, "*")) {
    return std::move(*mismatch);
  }
  if (left.isInt() && right.isInt()) {
    int64_t product = 0;
    if (__builtin_mul_overflow(left.asInt(), right.asInt(), &product)) {
      return integerOverflow("*", left.asInt(), right.asInt());
    }
    return Value(product);
  }
  return finiteDouble(left.asNumber() * right.asNumber(), "*");
}

Result<Value> divide(const Value &left, const Value &right) {
  if (auto mismatch = requireNumbers(left, right, "/")) {
    return std::move(*mismatch);
  }
  if (right.asNumber() == 0.0) {
    return expressionError(fmt::format("division by zero: {} / {}", toJson(left), toJson(right)));
  }
  return finiteDouble(left.asNumber() / right.asNumber(), "/");
}

Result<Value> remainder(const Value &left, const Value &right) {
  for (const Value *operand : {&left, &right}) {
    if (!operand->isInt()) {
      std::string message = mismatchMessage("integers", forOperator("%"), *operand);
      if (operand->isDouble()) {
        message += "; convert with to_int() first";
      }
      return expressionError(std::move(message));
    }
  }
  if (right.asInt() == 0) {
    return expressionError(fmt::format("division by zero: {} % 0", left.asInt()));
  }
  // INT64_MIN % -1 is mathematically 0 but traps on x86; -1 divides everything.
  if (right.asInt() == -1) {
    return Value(int64_t{0});
  }
  return Value(left.asInt() % right.asInt());
}

Result<Value> negate(const Value &operand) {
  if (operand.isInt()) {
    if (operand.asInt() == std::numeric_limits<int64_t>::min()) {
      return expressionError(fmt::format(
          "integer overflow in unary '-': -({}) does not fit in 64 bits", operand.asInt()));
    }
    return Value(-operand.asInt());
  }
  if (operand.isDouble()) {
    return Value(-operand.asDouble());
  }
  return typeMismatch("a number", "for unary '-'", operand);
}

Result<Value> logicalNot(const Value &operand) {
  Result<bool> truth = requireBoolean(operand, "for '!'");
  if (!truth) {
    return std::move(truth).error();
  }
  return Value(!*truth);
}

Result<Value> contains(const Value &container, const Value &element) {
  switch (container.kind()) {
  case ValueKind::Array:
    for (const Value &candidate : container.asArray()) {
      if (candidate == element) {
        return Value(true);
      }
    }
    return Value(false);
  case ValueKind::Object:
    if (!element.isString()) {
      return typeMismatch("a string key", "to look up in an object", element);
    }
    return Value(container.asObject().contains(element.asString()));
  case ValueKind::String:
    if (!element.isString()) {
      return typeMismatch("a string", "to search for in a string", element);
    }
    return Value(container.asString().find(element.asString()) != std::string::npos);
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::Double:
    break;
  }
  return typeMismatch("an array, object or string", "to search in", container);
}

int compareIntWithDouble(int64_t integer, double number) {
  // 2^63 is exactly representable; every double in [-2^63, 2^63) truncates into int64.
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (number >= kTwoTo63) {
    return -1;
  }
  if (number < -kTwoTo63) {
    return 1;
  }
  auto truncated = static_cast<int64_t>(number);
  if (integer != truncated) {
    return integer < truncated ? -1 : 1;
  }
  // Same integral part: the double's fraction decides. The subtraction is exact.
  double fraction = number - static_cast<double>(truncated);
  if (fraction > 0) {
    return -1;
  }
  return fraction < 0 ? 1 : 0;
}

static int compareNumbers(const Value &left, const Value &right) {
  if (left.isInt() && right.isInt()) {
    return left.asInt() < right.asInt() ? -1 : (left.asInt() > right.asInt() ? 1 : 0);
  }
  if (left.isInt()) {
    return compareIntWithDouble(left.asInt(), right.asDouble());
  }
  if (right.isInt()) {
    return -compareIntWithDouble(right.asInt(), left.asDouble());
  }
  double a = left.asDouble();
  double b = right.asDouble();
  return a < b ? -1 : (a > b ? 1 : 0);
}

Result<int> compareOrdered(const Value &left, const Value &right, std::string_view where) {
  if (left.isNumber() && right.isNumber()) {
    return compareNumbers(left, right);
  }
  if (left.isString() && right.isString()) {
    // UTF-8 byte order is code point order, and std::string compares bytes as unsigned.
    int order = left.asString().compare(right.asString());
    return order < 0 ? -1 : (order > 0 ? 1 : 0);
  }
  if (left.isNumber()) {
    return typeMismatch("a number", fmt::format("on the right of {} (the left is a number)",
                                                where),
                        right);
  }
  if (left.isString()) {
    return typeMismatch("a string", fmt::format("on the right of {} (the left is a string)",
                                                where),
                        right);
  }
  return typeMismatch("two numbers or two strings", fmt::format("for {}", where), left);
}

static Result<Value> ordered(const Value &left, const Value &right, BinaryOp op) {
  // The operator's spelling is only needed for the message; formatting it for every
  // comparison was a tenth of the time of a replay (bench/, callgrind).
  bool comparable =
      (left.isNumber() && right.isNumber()) || (left.isString() && right.isString());
  Result<int> order = compareOrdered(
      left, right, comparable ? std::string() : fmt::format("'{}'", binaryOpSpelling(op)));
  if (!order) {
    return std::move(order).error();
  }
  switch (op) {
  case BinaryOp::Less:
    return Value(*order < 0);
  case BinaryOp::LessEqual:
    return Value(*order <= 0);
  case BinaryOp::Greater:
    return Value(*order > 0);
  case BinaryOp::GreaterEqual:
    return Value(*order >= 0);
  case BinaryOp::Add:
  case BinaryOp::Subtract:
  case BinaryOp::Multiply:
  case BinaryOp::Divide:
  case BinaryOp::Remainder:
  case BinaryOp::Equal:
  case BinaryOp::NotEqual:
  case BinaryOp::In:
    break;
  }
  assert(false && "ordered() is only called with comparison operators");
  return Value(false);
}

Result<Value> applyBinary(BinaryOp op, const Value &left, const Value &right) {
  switch (op) {
  case BinaryOp::Add:
    return add(left, right);
  case BinaryOp::Subtract:
    return subtract(left, right);
  case BinaryOp::Multiply:
    return multiply(left, right);
  case BinaryOp::Divide:
    return divide(left, right);
  case BinaryOp::Remainder:
    return remainder(left, right);
  case BinaryOp::Equal:
    return Value(left == right);
  case BinaryOp::NotEqual:
    return Value(!(left == right));
  case BinaryOp::Less:
  case BinaryOp::LessEqual:
  case BinaryOp::Greater:
  case BinaryOp::GreaterEqual:
    return ordered(left, right, op);
  case BinaryOp::In:
    return contains(right, left);
  }
  assert(false && "every BinaryOp is handled above");
  return Value(nullptr);
}

Result<Value> applyUnary(UnaryOp op, const Value &operand) {
  switch (op) {
  case UnaryOp::Not:
    return logicalNot(operand);
  case UnaryOp::Negate:
    return negate(operand);
  }
  assert(false && "every UnaryOp is handled above");
  return Value(nullptr);
}

Result<bool> requireBoolean(const Value &value, std::string_view where) {
  if (!value.isBool()) {
    return typeMismatch("a boolean", where, value);
  }
  return value.asBool();
}

void appendTemplateText(std::string &out, const Value &value) {
  if (value.isString()) {
    out += value.asString();
    return;
  }
  appendJson(out, value);
}

std::string templateText(const Value &value) {
  std::string out;
  appendTemplateText(out, value);
  return out;
}

} // namespace kotoba
