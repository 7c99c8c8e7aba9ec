// Small helpers of the syntax tree: operator spellings for messages and dumps, and member
// lookup in object literals.
#include "kotoba/compiler/syntax.h"

namespace kotoba::compiler {

const char *unaryOpSpelling(UnaryOp op) {
  switch (op) {
  case UnaryOp::Not:
    return "!";
  case UnaryOp::Negate:
    return "-";
  }
  return "?";
}

const char *binaryOpSpelling(BinaryOp op) {
  switch (op) {
  case BinaryOp::Coalesce:
    return "??";
  case BinaryOp::Or:
    return "||";
  case BinaryOp::And:
    return "&&";
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
  case BinaryOp::Add:
    return "+";
  case BinaryOp::Subtract:
    return "-";
  case BinaryOp::Multiply:
    return "*";
  case BinaryOp::Divide:
    return "/";
  case BinaryOp::Modulo:
    return "%";
  }
  return "?";
}

const ObjectMember *Node::member(std::string_view key) const {
  // Objects are small and keys are unique (the parser rejects duplicates), so a scan is
  // both simplest and fastest here.
  for (const ObjectMember &entry : members) {
    if (entry.key == key) {
      return &entry;
    }
  }
  return nullptr;
}

} // namespace kotoba::compiler
