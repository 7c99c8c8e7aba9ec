// The tree builder: the one place where the ANTLR parse tree becomes syntax Nodes. It also
// does the lexical work the grammar leaves open (decoding strings and numbers, folding a
// minus into the number after it), finds duplicate keys, and bounds the depth of the tree
// it makes, so that every later recursive walk over Nodes is safe. Parts that a syntax
// error broke are left out; the diagnostic for them was already reported.
#include "kotoba/compiler/parser.h"

#include "parse_internal.h"
#include "parse_lexical.h"

#include <KotobaBaseVisitor.h>
#include <KotobaParser.h>
#include <antlr4-runtime.h>

#include <cassert>
#include <unordered_map>

namespace kotoba::compiler {
namespace {

using grammar::KotobaParser;
using Expression = KotobaParser::ExpressionContext;

bool isReal(antlr4::Token *token) {
  return token != nullptr && token->getStartIndex() != INVALID_INDEX &&
         token->getType() != antlr4::Token::EOF;
}

bool isReal(antlr4::tree::TerminalNode *node) {
  return node != nullptr && isReal(node->getSymbol());
}

// The first token of a member name or object key, unless recovery left something else.
bool isNameToken(antlr4::Token *token, bool quotedAllowed) {
  if (!isReal(token)) {
    return false;
  }
  switch (token->getType()) {
  case KotobaParser::IDENT:
  case KotobaParser::KW_TRUE:
  case KotobaParser::KW_FALSE:
  case KotobaParser::KW_NULL:
  case KotobaParser::KW_IN:
    return true;
  case KotobaParser::STRING:
  case KotobaParser::UNTERMINATED_STRING:
    return quotedAllowed;
  }
  return false;
}

class TreeBuilder final : public grammar::KotobaBaseVisitor {
public:
  TreeBuilder(ParseSink &sink, SyntaxArena &arena) : sink_(sink), arena_(arena) {}

  [[nodiscard]] bool tooDeep() const { return tooDeep_; }

  // Builds one sub-expression one level deeper. Every recursion of the builder passes
  // here, so the check below bounds both the tree and the builder's own stack.
  Node *build(Expression *context) {
    if (context == nullptr || tooDeep_) {
      return nullptr;
    }
    if (depth_ >= maxNestingDepth) {
      tooDeep_ = true;
      sink_.report(DiagnosticKind::NestingTooDeep, rangeOf(context),
                   "nesting deeper than " + std::to_string(maxNestingDepth) +
                       " levels is not supported; split this expression into smaller ones");
      return nullptr;
    }
    ++depth_;
    result_ = nullptr;
    context->accept(this);
    --depth_;
    return std::exchange(result_, nullptr);
  }

  // A context that recovery left without an alternative: nothing to build.
  antlrcpp::Any visitChildren(antlr4::tree::ParseTree *) override { return {}; }

  antlrcpp::Any visitMemberExpr(KotobaParser::MemberExprContext *context) override {
    Node *object = build(context->expression());
    KotobaParser::MemberNameContext *name = context->memberName();
    if (object == nullptr || name == nullptr || !isNameToken(name->getStart(), false)) {
      return {};
    }
    antlr4::Token *nameToken = name->getStart();
    Node *member = make(NodeKind::Member, spanTo(object, nameToken));
    member->text = sink_.tokenText(nameToken);
    member->nameRange = sink_.tokenRange(nameToken);
    member->children.push_back(object);
    result_ = member;
    return {};
  }

  antlrcpp::Any visitProjectionExpr(KotobaParser::ProjectionExprContext *context) override {
    Node *array = build(context->expression());
    if (array == nullptr || !isReal(context->RBRACKET())) {
      return {};
    }
    Node *projection = make(NodeKind::Projection,
                            spanTo(array, context->RBRACKET()->getSymbol()));
    projection->children.push_back(array);
    result_ = projection;
    return {};
  }

  antlrcpp::Any visitIndexExpr(KotobaParser::IndexExprContext *context) override {
    Node *object = build(context->expression(0));
    Expression *indexContext = context->expression(1);
    if (object == nullptr || indexContext == nullptr || !isReal(context->RBRACKET())) {
      return {};
    }
    SourceRange whole = spanTo(object, context->RBRACKET()->getSymbol());
    // `$['key with spaces']` is a member access, like `$.name`, only with any key.
    if (auto *key = dynamic_cast<KotobaParser::StringExprContext *>(indexContext)) {
      Node *member = make(NodeKind::Member, whole);
      member->text = decodeString(key->getStart()).value;
      member->nameRange = sink_.tokenRange(key->getStart());
      member->children.push_back(object);
      result_ = member;
      return {};
    }
    Node *index = build(indexContext);
    if (index == nullptr) {
      return {};
    }
    Node *node = make(NodeKind::Index, whole);
    node->children = {object, index};
    result_ = node;
    return {};
  }

  antlrcpp::Any visitUnaryExpr(KotobaParser::UnaryExprContext *context) override {
    bool negate = context->op->getType() == KotobaParser::MINUS;
    // A minus written right before a number is part of it: -5 is a constant, and
    // -9223372036854775808 fits in an integer although 9223372036854775808 does not.
    auto *number = dynamic_cast<KotobaParser::NumberExprContext *>(context->expression());
    if (negate && number != nullptr) {
      result_ = makeNumber(number->NUMBER()->getSymbol(), context->op);
      return {};
    }
    Node *operand = build(context->expression());
    if (operand == nullptr) {
      return {};
    }
    Node *unary = make(NodeKind::Unary, spanFrom(context->op, operand));
    unary->unaryOp = negate ? UnaryOp::Negate : UnaryOp::Not;
    unary->children.push_back(operand);
    result_ = unary;
    return {};
  }

  antlrcpp::Any
  visitMultiplicativeExpr(KotobaParser::MultiplicativeExprContext *context) override {
    return binary(context->expression(0), context->op, context->expression(1));
  }
  antlrcpp::Any visitAdditiveExpr(KotobaParser::AdditiveExprContext *context) override {
    return binary(context->expression(0), context->op, context->expression(1));
  }
  antlrcpp::Any visitInExpr(KotobaParser::InExprContext *context) override {
    return binary(context->expression(0), context->KW_IN()->getSymbol(),
                  context->expression(1));
  }
  antlrcpp::Any visitComparisonExpr(KotobaParser::ComparisonExprContext *context) override {
    return binary(context->expression(0), context->op, context->expression(1));
  }
  antlrcpp::Any visitEqualityExpr(KotobaParser::EqualityExprContext *context) override {
    return binary(context->expression(0), context->op, context->expression(1));
  }
  antlrcpp::Any visitAndExpr(KotobaParser::AndExprContext *context) override {
    return binary(context->expression(0), context->AND()->getSymbol(), context->expression(1));
  }
  antlrcpp::Any visitOrExpr(KotobaParser::OrExprContext *context) override {
    return binary(context->expression(0), context->OR()->getSymbol(), context->expression(1));
  }
  antlrcpp::Any visitCoalesceExpr(KotobaParser::CoalesceExprContext *context) override {
    return binary(context->expression(0), context->COALESCE()->getSymbol(),
                  context->expression(1));
  }

  antlrcpp::Any visitConditionalExpr(KotobaParser::ConditionalExprContext *context) override {
    Node *condition = build(context->expression(0));
    Node *then = build(context->expression(1));
    Node *otherwise = build(context->expression(2));
    if (condition == nullptr || then == nullptr || otherwise == nullptr) {
      return {};
    }
    Node *node = make(NodeKind::Conditional, join(condition->range, otherwise->range));
    node->children = {condition, then, otherwise};
    result_ = node;
    return {};
  }

  antlrcpp::Any visitRootExpr(KotobaParser::RootExprContext *context) override {
    result_ = make(NodeKind::Root, sink_.tokenRange(context->DOLLAR()->getSymbol()));
    return {};
  }

  antlrcpp::Any visitCallExpr(KotobaParser::CallExprContext *context) override {
    if (!isReal(context->RPAREN())) {
      return {};
    }
    antlr4::Token *name = context->IDENT()->getSymbol();
    Node *call = make(NodeKind::Call, span(name, context->RPAREN()->getSymbol()));
    call->text = sink_.tokenText(name);
    call->nameRange = sink_.tokenRange(name);
    for (antlr4::tree::ParseTree *child : context->children) {
      auto *argument = dynamic_cast<Expression *>(child);
      if (argument == nullptr) {
        continue;
      }
      Node *built = build(argument);
      // A missing argument would only lead to a wrong-argument-count error after the syntax
      // error that lost it, so the whole call goes.
      if (built == nullptr) {
        return {};
      }
      call->children.push_back(built);
    }
    result_ = call;
    return {};
  }

  antlrcpp::Any visitIdentifierExpr(KotobaParser::IdentifierExprContext *context) override {
    antlr4::Token *name = context->IDENT()->getSymbol();
    Node *identifier = make(NodeKind::Identifier, sink_.tokenRange(name));
    identifier->text = sink_.tokenText(name);
    result_ = identifier;
    return {};
  }

  antlrcpp::Any visitParenExpr(KotobaParser::ParenExprContext *context) override {
    result_ = build(context->expression());
    return {};
  }

  antlrcpp::Any visitObjectExpr(KotobaParser::ObjectExprContext *context) override {
    Node *object = make(NodeKind::Object, rangeOf(context));
    bool separated = true;
    for (antlr4::tree::ParseTree *child : context->children) {
      auto *entry = dynamic_cast<KotobaParser::ObjectMemberContext *>(child);
      if (!checkSeparated(child, entry, separated) || entry->objectKey() == nullptr ||
          !isNameToken(entry->objectKey()->getStart(), true)) {
        continue;
      }
      antlr4::Token *keyToken = entry->objectKey()->getStart();
      Node *value = build(entry->expression());
      if (value == nullptr) {
        continue;
      }
      ObjectMember &member = object->members.emplace_back();
      member.keyRange = sink_.tokenRange(keyToken);
      bool quoted = keyToken->getType() == KotobaParser::STRING ||
                    keyToken->getType() == KotobaParser::UNTERMINATED_STRING;
      member.key = quoted ? decodeString(keyToken).value : std::string(sink_.tokenText(keyToken));
      member.value = value;
    }
    reportDuplicateKeys(*object);
    result_ = object;
    return {};
  }

  antlrcpp::Any visitArrayExpr(KotobaParser::ArrayExprContext *context) override {
    Node *array = make(NodeKind::Array, rangeOf(context));
    bool separated = true;
    for (antlr4::tree::ParseTree *child : context->children) {
      auto *element = dynamic_cast<Expression *>(child);
      if (!checkSeparated(child, element, separated)) {
        continue;
      }
      if (Node *built = build(element)) {
        array->children.push_back(built);
      }
    }
    result_ = array;
    return {};
  }

  antlrcpp::Any visitStringExpr(KotobaParser::StringExprContext *context) override {
    antlr4::Token *token = context->getStart();
    lexical::DecodedString decoded = decodeString(token);
    Node *string = make(NodeKind::String, sink_.tokenRange(token));
    string->text = std::move(decoded.value);
    string->verbatim = decoded.verbatim;
    result_ = string;
    return {};
  }

  antlrcpp::Any visitNumberExpr(KotobaParser::NumberExprContext *context) override {
    result_ = makeNumber(context->NUMBER()->getSymbol(), nullptr);
    return {};
  }

  antlrcpp::Any visitBoolExpr(KotobaParser::BoolExprContext *context) override {
    antlr4::Token *token = context->getStart();
    Node *node = make(NodeKind::Bool, sink_.tokenRange(token));
    node->boolValue = token->getType() == KotobaParser::KW_TRUE;
    result_ = node;
    return {};
  }

  antlrcpp::Any visitNullExpr(KotobaParser::NullExprContext *context) override {
    result_ = make(NodeKind::Null, sink_.tokenRange(context->getStart()));
    return {};
  }

private:
  Node *make(NodeKind kind, SourceRange range) { return arena_.make(kind, range); }

  // Walks the children of an object or array literal, where the grammar lets commas be
  // missing: reports an `item` (a member or element) with no comma before it. Returns
  // whether `child` is an item; `separated` carries whether a comma came since the last.
  bool checkSeparated(antlr4::tree::ParseTree *child, antlr4::ParserRuleContext *item,
                      bool &separated) {
    if (item == nullptr) {
      auto *terminal = dynamic_cast<antlr4::tree::TerminalNode *>(child);
      if (terminal != nullptr && terminal->getSymbol()->getType() == KotobaParser::COMMA) {
        separated = true;
      }
      return false;
    }
    if (!separated && isReal(item->getStart())) {
      sink_.report(DiagnosticKind::Syntax, sink_.tokenRange(item->getStart()),
                   "missing ',' before " + describeToken(sink_, item->getStart()));
    }
    separated = false;
    return true;
  }

  static SourceRange join(SourceRange first, SourceRange last) {
    SourceRange joined = first;
    joined.end = std::max(first.end, last.end);
    return joined;
  }
  SourceRange span(antlr4::Token *first, antlr4::Token *last) const {
    return join(sink_.tokenRange(first), sink_.tokenRange(last));
  }
  SourceRange spanTo(Node *first, antlr4::Token *last) const {
    return join(first->range, sink_.tokenRange(last));
  }
  SourceRange spanFrom(antlr4::Token *first, Node *last) const {
    return join(sink_.tokenRange(first), last->range);
  }
  // A context's whole text, from its first real token to its last.
  SourceRange rangeOf(antlr4::ParserRuleContext *context) const {
    antlr4::Token *start = context->getStart();
    antlr4::Token *stop = context->getStop();
    if (!isReal(start)) {
      return sink_.tokenRange(start);
    }
    if (!isReal(stop) || stop->getStopIndex() < start->getStartIndex()) {
      stop = start;
    }
    return span(start, stop);
  }

  antlrcpp::Any binary(Expression *leftContext, antlr4::Token *op, Expression *rightContext) {
    Node *left = build(leftContext);
    Node *right = build(rightContext);
    if (left == nullptr || right == nullptr) {
      return {};
    }
    Node *node = make(NodeKind::Binary, join(left->range, right->range));
    node->binaryOp = binaryOpOf(op->getType());
    node->children = {left, right};
    result_ = node;
    return {};
  }

  static BinaryOp binaryOpOf(size_t tokenType) {
    switch (tokenType) {
    case KotobaParser::COALESCE:
      return BinaryOp::Coalesce;
    case KotobaParser::OR:
      return BinaryOp::Or;
    case KotobaParser::AND:
      return BinaryOp::And;
    case KotobaParser::EQ:
      return BinaryOp::Equal;
    case KotobaParser::NE:
      return BinaryOp::NotEqual;
    case KotobaParser::LT:
      return BinaryOp::Less;
    case KotobaParser::LE:
      return BinaryOp::LessEqual;
    case KotobaParser::GT:
      return BinaryOp::Greater;
    case KotobaParser::GE:
      return BinaryOp::GreaterEqual;
    case KotobaParser::KW_IN:
      return BinaryOp::In;
    case KotobaParser::PLUS:
      return BinaryOp::Add;
    case KotobaParser::MINUS:
      return BinaryOp::Subtract;
    case KotobaParser::STAR:
      return BinaryOp::Multiply;
    case KotobaParser::SLASH:
      return BinaryOp::Divide;
    case KotobaParser::PERCENT:
      return BinaryOp::Modulo;
    }
    assert(false && "the grammar gives binary alternatives only these operator tokens");
    return BinaryOp::Add;
  }

  // Decodes a STRING or UNTERMINATED_STRING token, reporting bad escapes at their place.
  lexical::DecodedString decodeString(antlr4::Token *token) {
    std::vector<lexical::Problem> problems;
    lexical::DecodedString decoded =
        lexical::decodeString(sink_.tokenText(token),
                              token->getType() == KotobaParser::STRING, problems);
    reportProblems(problems, token->getStartIndex());
    return decoded;
  }

  // A number literal; `minus` is the sign token written directly before it, if any.
  Node *makeNumber(antlr4::Token *number, antlr4::Token *minus) {
    std::vector<lexical::Problem> problems;
    lexical::DecodedNumber decoded =
        lexical::decodeNumber(sink_.tokenText(number), minus != nullptr, problems);
    reportProblems(problems, number->getStartIndex());
    SourceRange range = minus != nullptr ? span(minus, number) : sink_.tokenRange(number);
    Node *node = make(decoded.isInteger ? NodeKind::Integer : NodeKind::Double, range);
    node->intValue = decoded.integer;
    node->doubleValue = decoded.real;
    return node;
  }

  void reportProblems(const std::vector<lexical::Problem> &problems, size_t tokenStart) {
    for (const lexical::Problem &problem : problems) {
      sink_.report(problem.kind,
                   sink_.range(tokenStart + problem.begin, tokenStart + problem.end),
                   problem.message);
    }
  }

  void reportDuplicateKeys(const Node &object) {
    const std::vector<ObjectMember> &members = object.members;
    auto report = [&](const ObjectMember &first, const ObjectMember &again) {
      sink_.report(DiagnosticKind::DuplicateKey, again.keyRange,
                   "duplicate key '" + again.key + "'; remove one of the two");
      sink_.note(first.keyRange, "'" + first.key + "' is first set here");
    };
    // Small objects, the usual case, are cheaper to scan than to hash.
    constexpr size_t scanLimit = 16;
    if (members.size() <= scanLimit) {
      for (size_t later = 1; later < members.size(); ++later) {
        for (size_t earlier = 0; earlier < later; ++earlier) {
          if (members[earlier].key == members[later].key) {
            report(members[earlier], members[later]);
            break;
          }
        }
      }
      return;
    }
    std::unordered_map<std::string_view, size_t> firstByKey;
    firstByKey.reserve(members.size());
    for (size_t index = 0; index < members.size(); ++index) {
      auto [found, inserted] = firstByKey.try_emplace(members[index].key, index);
      if (!inserted) {
        report(members[found->second], members[index]);
      }
    }
  }

  ParseSink &sink_;
  SyntaxArena &arena_;
  Node *result_ = nullptr;
  unsigned depth_ = 0;
  bool tooDeep_ = false;
};

} // namespace

Node *buildTree(antlr4::ParserRuleContext *expression, ParseSink &sink, SyntaxArena &arena) {
  auto *root = dynamic_cast<KotobaParser::ExpressionContext *>(expression);
  if (root == nullptr) {
    return nullptr;
  }
  TreeBuilder builder(sink, arena);
  Node *tree = builder.build(root);
  return builder.tooDeep() ? nullptr : tree;
}

} // namespace kotoba::compiler
