// Constant folding over syntax nodes (see fold.h).
#include "fold.h"

#include "kotoba/vm/builtins.h"
#include "kotoba/vm/operations.h"

namespace kotoba::compiler {

namespace {

kotoba::BinaryOp runtimeOp(compiler::BinaryOp op) {
  switch (op) {
  case compiler::BinaryOp::Add:
    return kotoba::BinaryOp::Add;
  case compiler::BinaryOp::Subtract:
    return kotoba::BinaryOp::Subtract;
  case compiler::BinaryOp::Multiply:
    return kotoba::BinaryOp::Multiply;
  case compiler::BinaryOp::Divide:
    return kotoba::BinaryOp::Divide;
  case compiler::BinaryOp::Modulo:
    return kotoba::BinaryOp::Remainder;
  case compiler::BinaryOp::Equal:
    return kotoba::BinaryOp::Equal;
  case compiler::BinaryOp::NotEqual:
    return kotoba::BinaryOp::NotEqual;
  case compiler::BinaryOp::Less:
    return kotoba::BinaryOp::Less;
  case compiler::BinaryOp::LessEqual:
    return kotoba::BinaryOp::LessEqual;
  case compiler::BinaryOp::Greater:
    return kotoba::BinaryOp::Greater;
  case compiler::BinaryOp::GreaterEqual:
    return kotoba::BinaryOp::GreaterEqual;
  case compiler::BinaryOp::In:
    return kotoba::BinaryOp::In;
  case compiler::BinaryOp::Coalesce:
  case compiler::BinaryOp::Or:
  case compiler::BinaryOp::And:
    break;
  }
  assert(false && "short-circuit operators are folded by foldExpression itself");
  return kotoba::BinaryOp::Add;
}

using Folded = std::optional<Result<Value>>;

Folded foldLogical(const Node *node) {
  Folded left = foldExpression(node->children[0]);
  if (!left || !left->ok()) {
    return left;
  }
  const char *spelling = binaryOpSpelling(node->binaryOp);
  if (node->binaryOp == compiler::BinaryOp::Coalesce) {
    return left->value().isNull() ? foldExpression(node->children[1]) : left;
  }
  Result<bool> leftBool = requireBoolean(left->value(), spelling);
  if (!leftBool.ok()) {
    return Result<Value>(leftBool.error());
  }
  bool shortCircuits =
      node->binaryOp == compiler::BinaryOp::Or ? leftBool.value() : !leftBool.value();
  if (shortCircuits) {
    return Result<Value>(Value(leftBool.value()));
  }
  Folded right = foldExpression(node->children[1]);
  if (!right || !right->ok()) {
    return right;
  }
  Result<bool> rightBool = requireBoolean(right->value(), spelling);
  if (!rightBool.ok()) {
    return Result<Value>(rightBool.error());
  }
  return Result<Value>(Value(rightBool.value()));
}

} // namespace

Folded foldExpression(const Node *node) {
  switch (node->kind) {
  case NodeKind::Null:
    return Result<Value>(Value());
  case NodeKind::Bool:
    return Result<Value>(Value(node->boolValue));
  case NodeKind::Integer:
    return Result<Value>(Value(node->intValue));
  case NodeKind::Double:
    return Result<Value>(Value(node->doubleValue));
  case NodeKind::String:
    return Result<Value>(Value(node->text));
  case NodeKind::Array: {
    Array array;
    for (const Node *element : node->children) {
      Folded value = foldExpression(element);
      if (!value || !value->ok()) {
        return value;
      }
      array.push_back(value->value());
    }
    return Result<Value>(Value(std::move(array)));
  }
  case NodeKind::Object: {
    Object object;
    for (const ObjectMember &member : node->members) {
      Folded value = foldExpression(member.value);
      if (!value || !value->ok()) {
        return value;
      }
      object.set(member.key, value->value());
    }
    return Result<Value>(Value(std::move(object)));
  }
  case NodeKind::Unary: {
    Folded operand = foldExpression(node->children[0]);
    if (!operand || !operand->ok()) {
      return operand;
    }
    kotoba::UnaryOp op =
        node->unaryOp == compiler::UnaryOp::Not ? kotoba::UnaryOp::Not : kotoba::UnaryOp::Negate;
    return applyUnary(op, operand->value());
  }
  case NodeKind::Binary: {
    if (node->binaryOp == compiler::BinaryOp::And || node->binaryOp == compiler::BinaryOp::Or ||
        node->binaryOp == compiler::BinaryOp::Coalesce) {
      return foldLogical(node);
    }
    Folded left = foldExpression(node->children[0]);
    if (!left || !left->ok()) {
      return left;
    }
    Folded right = foldExpression(node->children[1]);
    if (!right || !right->ok()) {
      return right;
    }
    return applyBinary(runtimeOp(node->binaryOp), left->value(), right->value());
  }
  case NodeKind::Conditional: {
    Folded condition = foldExpression(node->children[0]);
    if (!condition || !condition->ok()) {
      return condition;
    }
    Result<bool> taken = requireBoolean(condition->value(), "?:");
    if (!taken.ok()) {
      return Result<Value>(taken.error());
    }
    return foldExpression(node->children[taken.value() ? 1 : 2]);
  }
  case NodeKind::Call: {
    const BuiltinInfo *builtin = findBuiltin(node->text);
    if (builtin == nullptr || !builtin->pure || !builtin->acceptsArgCount(node->children.size())) {
      return std::nullopt;
    }
    std::vector<Value> arguments;
    for (const Node *argument : node->children) {
      Folded value = foldExpression(argument);
      if (!value || !value->ok()) {
        return value;
      }
      arguments.push_back(value->value());
    }
    return callBuiltin(builtin->id, arguments, /*context=*/nullptr);
  }
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
  case NodeKind::Identifier:
    return std::nullopt;
  }
  return std::nullopt;
}

} // namespace kotoba::compiler
