// The syntax tree: what a .kotoba file says, before any meaning is given to it. A file is one
// value; values are JSON literals, object and array literals, or unquoted expressions, all as
// Nodes. The ANTLR parse tree is turned into these by the parser, and nothing past the parser
// sees an ANTLR type. Quoted strings keep their place so that the checker can re-parse them
// as expressions or templates where the language evaluates them.
#pragma once

#include "kotoba/compiler/source.h"

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace kotoba::compiler {

enum class NodeKind : uint8_t {
  Null,
  Bool,
  Integer,
  Double,
  String,
  Array,      // children: elements
  Object,     // entries
  Root,       // `$`
  Member,     // children[0].text, from `.name` or `['quoted key']`
  Index,      // children[0][children[1]]
  Projection, // children[0][*]
  Call,       // text(children...)
  Identifier, // a bare name that is not a call: text
  Unary,      // unaryOp children[0]
  Binary,     // children[0] binaryOp children[1]
  Conditional // children[0] ? children[1] : children[2]
};

enum class UnaryOp : uint8_t { Not, Negate };

enum class BinaryOp : uint8_t {
  Coalesce, // ??
  Or,
  And,
  Equal,
  NotEqual,
  Less,
  LessEqual,
  Greater,
  GreaterEqual,
  In,
  Add,
  Subtract,
  Multiply,
  Divide,
  Modulo
};

[[nodiscard]] const char *unaryOpSpelling(UnaryOp op);
[[nodiscard]] const char *binaryOpSpelling(BinaryOp op);

struct Node;

struct ObjectMember {
  std::string key;
  SourceRange keyRange;
  Node *value = nullptr;
};

struct Node {
  NodeKind kind = NodeKind::Null;
  SourceRange range;

  bool boolValue = false;
  int64_t intValue = 0;
  double doubleValue = 0;
  // String: the decoded value. Member: the member name. Call/Identifier: the name.
  std::string text;
  // Member and Call: where the name alone is written (`amount` in `$.inputs.amount`, or the
  // quoted key with its quotes), for diagnostics that point at a misspelled name.
  SourceRange nameRange;
  // String only: true when the decoded text maps byte for byte onto the source between the
  // quotes (no escapes), so positions inside it can be mapped back exactly.
  bool verbatim = false;

  UnaryOp unaryOp = UnaryOp::Not;
  BinaryOp binaryOp = BinaryOp::Add;

  std::vector<Node *> children;
  std::vector<ObjectMember> members;

  [[nodiscard]] bool isLiteral() const {
    return kind == NodeKind::Null || kind == NodeKind::Bool || kind == NodeKind::Integer ||
           kind == NodeKind::Double || kind == NodeKind::String;
  }
  // A member of an Object node by key, or nullptr.
  [[nodiscard]] const ObjectMember *member(std::string_view key) const;
};

// Owns the nodes of every file parsed in one compilation. Nodes never move once made.
class SyntaxArena {
public:
  Node *make(NodeKind kind, SourceRange range) {
    Node &node = nodes_.emplace_back();
    node.kind = kind;
    node.range = range;
    return &node;
  }

private:
  std::deque<Node> nodes_;
};

} // namespace kotoba::compiler
