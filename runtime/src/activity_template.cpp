// Compiling and evaluating implementation templates: a hand-written parser for the small
// expression subset activity_template.h lists, and an evaluator that follows input paths with
// the VM's own path code, so `$.input.items[-1]` means here what `$.inputs.items[-1]` means in
// a workflow, with the same PathError wording.
#include "kotoba/runtime/activity_template.h"

#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/operations.h"
#include "kotoba/vm/path.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <variant>
#include <vector>

namespace kotoba::runtime {

namespace {

struct Operand {
  enum class Kind : uint8_t { Literal, Input, Env };
  Kind kind = Kind::Literal;
  Value literal;
  vm::PathDescriptor path; // Input: the steps after `$.input`, and the path as written
  std::string envName;     // Env
};

struct Expression {
  // `a ?? b ?? c`; a single operand most of the time.
  std::vector<Operand> alternatives;
};

// A run of literal text, or one `${ }`.
struct Piece {
  std::string literal;
  std::optional<Expression> expression;
};

WorkflowError invalidImplementation(std::string message, const std::string &field,
                                    const Value &templateText) {
  Object details;
  details.set("field", field);
  details.set("template", templateText);
  return makeError(activity_errors::InvalidImplementation, std::move(message),
                   Value(std::move(details)));
}

bool isIdentifierStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isIdentifierPart(char c) { return isIdentifierStart(c) || (c >= '0' && c <= '9'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The field name of a member, as a path would spell it: `headers.Authorization`, or
// `env['X-Y']` when the key is not an identifier.
std::string memberField(const std::string &parent, const std::string &key) {
  bool identifier = !key.empty() && isIdentifierStart(key[0]);
  for (char c : key) {
    identifier = identifier && isIdentifierPart(c);
  }
  if (!identifier) {
    std::string quoted;
    appendJsonString(quoted, key);
    return fmt::format("{}[{}]", parent, quoted);
  }
  return parent.empty() ? key : fmt::format("{}.{}", parent, key);
}

// What is wrong with a template, without saying where: the caller adds that.
struct ParseError {
  std::string message;
};
template <typename T> using Parsed = std::variant<T, ParseError>;

// Parses the inside of one `${ ... }`, starting just after `${`, up to and including the
// closing `}`.
class ExpressionParser {
public:
  ExpressionParser(std::string_view text, size_t position) : text_(text), pos_(position) {}

  [[nodiscard]] size_t position() const { return pos_; }

  [[nodiscard]] Parsed<Expression> parse() {
    Expression expression;
    skipSpace();
    if (peek() == '}') {
      return ParseError{"empty template '${}'; write a path such as ${$.input.id}, or $${} "
                        "for a literal '${'"};
    }
    while (true) {
      skipSpace();
      Parsed<Operand> operand = parseOperand();
      if (auto *error = std::get_if<ParseError>(&operand)) {
        return std::move(*error);
      }
      expression.alternatives.push_back(std::move(std::get<Operand>(operand)));
      skipSpace();
      if (atEnd()) {
        return ParseError{"unterminated template: '${' has no closing '}'"};
      }
      if (text_.substr(pos_, 2) == "??") {
        pos_ += 2;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return expression;
      }
      // The literal is split so its two question marks cannot be read as a trigraph.
      return ParseError{fmt::format("expected '?"
                                    "?' or '}}' at '{}'",
                                    excerpt())};
    }
  }

private:
  [[nodiscard]] bool atEnd() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return atEnd() ? '\0' : text_[pos_]; }
  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++pos_;
    }
  }
  // A few characters from the current position, for messages.
  [[nodiscard]] std::string excerpt() const {
    std::string_view rest = text_.substr(pos_, 12);
    return std::string(rest);
  }

  [[nodiscard]] Parsed<Operand> parseOperand() {
    char c = peek();
    if (c == '$') {
      return parsePath();
    }
    Operand operand;
    operand.kind = Operand::Kind::Literal;
    if (c == '"' || c == '\'') {
      Parsed<std::string> text = parseString();
      if (auto *error = std::get_if<ParseError>(&text)) {
        return std::move(*error);
      }
      operand.literal = Value(std::get<std::string>(std::move(text)));
      return operand;
    }
    if (c == '-' || isDigit(c)) {
      size_t start = pos_;
      while (!atEnd() && (isDigit(peek()) || peek() == '-' || peek() == '+' || peek() == '.' ||
                          peek() == 'e' || peek() == 'E')) {
        ++pos_;
      }
      std::string_view token = text_.substr(start, pos_ - start);
      Result<Value> number = parseJson(token);
      if (!number.ok() || !number->isNumber()) {
        return ParseError{fmt::format("invalid number '{}'", token)};
      }
      operand.literal = number.value();
      return operand;
    }
    if (isIdentifierStart(c)) {
      size_t start = pos_;
      while (!atEnd() && isIdentifierPart(peek())) {
        ++pos_;
      }
      std::string_view word = text_.substr(start, pos_ - start);
      if (word == "true" || word == "false") {
        operand.literal = Value(word == "true");
        return operand;
      }
      if (word == "null") {
        return operand;
      }
      return ParseError{
          fmt::format("unknown name '{}'; implementation templates take paths into $.input "
                      "and $.env, literals and ??, not functions or other names",
                      word)};
    }
    if (atEnd()) {
      return ParseError{"unterminated template: '${' has no closing '}'"};
    }
    return ParseError{
        fmt::format("unexpected '{}'; implementation templates take paths into $.input "
                    "and $.env, literals and ??",
                    c)};
  }

  // A quoted string, without its quotes and with its escapes applied.
  [[nodiscard]] Parsed<std::string> parseString() {
    char quote = peek();
    ++pos_;
    std::string text;
    while (!atEnd() && peek() != quote) {
      char c = text_[pos_++];
      if (c != '\\') {
        text.push_back(c);
        continue;
      }
      if (atEnd()) {
        break;
      }
      char escaped = text_[pos_++];
      switch (escaped) {
      case '\\':
      case '"':
      case '\'':
        text.push_back(escaped);
        break;
      case 'n':
        text.push_back('\n');
        break;
      case 'r':
        text.push_back('\r');
        break;
      case 't':
        text.push_back('\t');
        break;
      default:
        return ParseError{fmt::format("unknown escape '\\{}' in a string literal; templates "
                                      "know \\\\, \\\", \\', \\n, \\r and \\t",
                                      escaped)};
      }
    }
    if (atEnd()) {
      return ParseError{"unterminated string literal in a template"};
    }
    ++pos_; // closing quote
    return text;
  }

  // One step after the root: `.name`, `['key']`, `[3]`, `[-1]` or `[*]`.
  [[nodiscard]] Parsed<vm::PathSegment> parseSegment() {
    vm::PathSegment segment;
    if (peek() == '.') {
      ++pos_;
      size_t start = pos_;
      if (!isIdentifierStart(peek())) {
        return ParseError{"expected a name after '.' in a path; quote other keys, as "
                          "['my-key']"};
      }
      while (!atEnd() && isIdentifierPart(peek())) {
        ++pos_;
      }
      segment.kind = vm::PathSegment::Kind::Member;
      segment.member = std::string(text_.substr(start, pos_ - start));
      return segment;
    }
    // peek() == '['
    ++pos_;
    skipSpace();
    if (peek() == '*') {
      ++pos_;
      segment.kind = vm::PathSegment::Kind::Project;
    } else if (peek() == '"' || peek() == '\'') {
      Parsed<std::string> key = parseString();
      if (auto *error = std::get_if<ParseError>(&key)) {
        return std::move(*error);
      }
      segment.kind = vm::PathSegment::Kind::Member;
      segment.member = std::get<std::string>(std::move(key));
    } else if (peek() == '-' || isDigit(peek())) {
      size_t start = pos_;
      ++pos_;
      while (!atEnd() && isDigit(peek())) {
        ++pos_;
      }
      std::string digits(text_.substr(start, pos_ - start));
      char *end = nullptr;
      errno = 0;
      long long index = std::strtoll(digits.c_str(), &end, 10);
      if (digits == "-" || errno != 0 || end != digits.c_str() + digits.size()) {
        return ParseError{fmt::format("invalid index '{}' in a path", digits)};
      }
      segment.kind = vm::PathSegment::Kind::Index;
      segment.index = index;
    } else {
      return ParseError{"expected an index, a quoted key or * inside [ ] in a path; "
                        "computed indexes are not available in implementation templates"};
    }
    skipSpace();
    if (peek() != ']') {
      return ParseError{"expected ']' in a path"};
    }
    ++pos_;
    return segment;
  }

  [[nodiscard]] Parsed<Operand> parsePath() {
    size_t start = pos_;
    ++pos_; // '$'
    std::vector<vm::PathSegment> segments;
    while (peek() == '.' || peek() == '[') {
      Parsed<vm::PathSegment> segment = parseSegment();
      if (auto *error = std::get_if<ParseError>(&segment)) {
        return std::move(*error);
      }
      segments.push_back(std::move(std::get<vm::PathSegment>(segment)));
    }
    std::string text(text_.substr(start, pos_ - start));
    if (segments.empty() || segments[0].kind != vm::PathSegment::Kind::Member) {
      return ParseError{fmt::format("'{}' is not a path implementation templates can read; use "
                                    "$.input (the activity's input) or $.env.NAME (an environment "
                                    "variable)",
                                    text)};
    }
    const std::string &root = segments[0].member;
    Operand operand;
    if (root == "input") {
      operand.kind = Operand::Kind::Input;
      operand.path.text = std::move(text);
      operand.path.segments.assign(segments.begin() + 1, segments.end());
      return operand;
    }
    if (root == "env") {
      if (segments.size() != 2 || segments[1].kind != vm::PathSegment::Kind::Member) {
        return ParseError{fmt::format("'{}' must name one environment variable, as $.env.NAME or "
                                      "$.env['NAME']",
                                      text)};
      }
      operand.kind = Operand::Kind::Env;
      operand.envName = segments[1].member;
      return operand;
    }
    std::string hint = root == "inputs" ? "; inside an implementation the activity's input "
                                          "is $.input, not $.inputs"
                                        : "";
    return ParseError{
        fmt::format("unknown root '$.{}' in '{}'; implementation templates read $.input "
                    "and $.env{}",
                    root, text, hint)};
  }

  std::string_view text_;
  size_t pos_;
};

} // namespace

struct TemplateValue::Node {
  enum class Kind : uint8_t { Constant, Text, Array, Object };
  Kind kind = Kind::Constant;
  // Constant: the value (with `$${` already turned into `${`); otherwise the source.
  Value value;
  std::string field;
  std::vector<Piece> pieces;     // Text
  std::vector<Node> children;    // Array elements, Object values
  std::vector<std::string> keys; // Object
};

namespace {

using Node = TemplateValue::Node;

Result<Node> compileString(const Value &source, std::string field, const std::string &where) {
  const std::string &text = source.asString();
  Node node;
  node.field = std::move(field);
  node.value = source;
  if (text.find("${") == std::string::npos) {
    return node;
  }
  std::string literal;
  size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, 3, "$${") == 0) {
      literal += "${";
      pos += 3;
      continue;
    }
    if (text.compare(pos, 2, "${") != 0) {
      literal.push_back(text[pos++]);
      continue;
    }
    if (!literal.empty()) {
      node.pieces.push_back(Piece{std::move(literal), std::nullopt});
      literal.clear();
    }
    ExpressionParser parser(text, pos + 2);
    Parsed<Expression> expression = parser.parse();
    if (auto *problem = std::get_if<ParseError>(&expression)) {
      std::string place = node.field.empty() ? where : fmt::format("{} {}", where, node.field);
      return invalidImplementation(
          fmt::format("invalid template in {}: {}", place, problem->message), node.field, source);
    }
    node.pieces.push_back(Piece{"", std::move(std::get<Expression>(expression))});
    pos = parser.position();
  }
  if (!literal.empty()) {
    node.pieces.push_back(Piece{std::move(literal), std::nullopt});
  }
  bool hasExpression = false;
  for (const Piece &piece : node.pieces) {
    hasExpression = hasExpression || piece.expression.has_value();
  }
  if (!hasExpression) {
    // Only `$${` escapes: a constant whose text differs from the source.
    std::string unescaped;
    for (const Piece &piece : node.pieces) {
      unescaped += piece.literal;
    }
    node.pieces.clear();
    node.value = Value(std::move(unescaped));
    return node;
  }
  node.kind = Node::Kind::Text;
  return node;
}

Result<Node> compileNode(const Value &source, std::string field, const std::string &where) {
  switch (source.kind()) {
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::Double: {
    Node node;
    node.value = source;
    node.field = std::move(field);
    return node;
  }
  case ValueKind::String:
    return compileString(source, std::move(field), where);
  case ValueKind::Array: {
    Node node;
    node.kind = Node::Kind::Array;
    node.value = source;
    node.field = field;
    bool constant = true;
    const Array &elements = source.asArray();
    for (size_t i = 0; i < elements.size(); ++i) {
      Result<Node> child = compileNode(elements[i], fmt::format("{}[{}]", field, i), where);
      if (!child.ok()) {
        return std::move(child).error();
      }
      constant = constant && child->kind == Node::Kind::Constant;
      node.children.push_back(std::move(child).value());
    }
    if (constant) {
      Array values;
      for (const Node &child : node.children) {
        values.push_back(child.value);
      }
      node.kind = Node::Kind::Constant;
      node.value = Value(std::move(values));
      node.children.clear();
    }
    return node;
  }
  case ValueKind::Object: {
    Node node;
    node.kind = Node::Kind::Object;
    node.value = source;
    node.field = field;
    bool constant = true;
    for (const ObjectEntry &entry : source.asObject()) {
      Result<Node> child = compileNode(entry.value, memberField(field, entry.key), where);
      if (!child.ok()) {
        return std::move(child).error();
      }
      constant = constant && child->kind == Node::Kind::Constant;
      node.keys.push_back(entry.key);
      node.children.push_back(std::move(child).value());
    }
    if (constant) {
      Object values;
      for (size_t i = 0; i < node.keys.size(); ++i) {
        values.set(node.keys[i], node.children[i].value);
      }
      node.kind = Node::Kind::Constant;
      node.value = Value(std::move(values));
      node.children.clear();
      node.keys.clear();
    }
    return node;
  }
  }
  return invalidImplementation("unknown value kind", field, source);
}

// `source` receives the kind of operand the value came from.
Result<Value> evaluateExpression(const Expression &expression, const TemplateScope &scope,
                                 const std::string &place, Operand::Kind &source) {
  source = Operand::Kind::Literal;
  for (size_t i = 0; i < expression.alternatives.size(); ++i) {
    const Operand &operand = expression.alternatives[i];
    bool last = i + 1 == expression.alternatives.size();
    source = operand.kind;
    Value value;
    switch (operand.kind) {
    case Operand::Kind::Literal:
      value = operand.literal;
      break;
    case Operand::Kind::Input: {
      Result<Value> read = evaluatePath(scope.input, operand.path, {},
                                        last ? PathMode::Required : PathMode::Optional);
      if (!read.ok()) {
        WorkflowError error = std::move(read).error();
        error.message = fmt::format("{}: {}", place, error.message);
        return error;
      }
      value = std::move(read).value();
      break;
    }
    case Operand::Kind::Env: {
      std::optional<std::string> variable =
          scope.environment ? scope.environment(operand.envName) : std::nullopt;
      if (!variable) {
        if (!last) {
          continue;
        }
        Object details;
        details.set("variable", operand.envName);
        return makeError(activity_errors::InvalidImplementation,
                         fmt::format("{} reads environment variable '{}', which is not set; "
                                     "set it in the engine's environment or give a default, "
                                     "as ${{$.env.{} ?? \"...\"}}",
                                     place, operand.envName, operand.envName),
                         Value(std::move(details)));
      }
      if (!isValidUtf8(*variable)) {
        Object details;
        details.set("variable", operand.envName);
        return makeError(error_types::InvalidPayload,
                         fmt::format("{} reads environment variable '{}', which is not valid "
                                     "UTF-8",
                                     place, operand.envName),
                         Value(std::move(details)));
      }
      scope.redactor.addSecret(operand.envName, *variable);
      value = Value(std::move(*variable));
      break;
    }
    }
    if (!last && value.isNull()) {
      continue;
    }
    if (value.isMissing()) {
      return Value(nullptr);
    }
    return value;
  }
  source = Operand::Kind::Literal; // every operand fell through: the null is no one's
  return Value(nullptr);
}

Result<Value> evaluateNode(const Node &node, const TemplateScope &scope, const std::string &where) {
  switch (node.kind) {
  case Node::Kind::Constant:
    return node.value;
  case Node::Kind::Text: {
    std::string text;
    std::string place = node.field.empty() ? where : fmt::format("{} {}", where, node.field);
    for (const Piece &piece : node.pieces) {
      if (!piece.expression) {
        text += piece.literal;
        continue;
      }
      Operand::Kind source = Operand::Kind::Literal;
      Result<Value> value = evaluateExpression(*piece.expression, scope, place, source);
      if (!value.ok()) {
        return std::move(value).error();
      }
      if (source == Operand::Kind::Input && scope.inputText != nullptr && *scope.inputText) {
        (*scope.inputText)(text, value.value());
      } else {
        appendTemplateText(text, value.value());
      }
    }
    return Value(std::move(text));
  }
  case Node::Kind::Array: {
    Array elements;
    elements.reserve(node.children.size());
    for (const Node &child : node.children) {
      Result<Value> value = evaluateNode(child, scope, where);
      if (!value.ok()) {
        return std::move(value).error();
      }
      elements.push_back(std::move(value).value());
    }
    return Value(std::move(elements));
  }
  case Node::Kind::Object: {
    Object object;
    object.reserve(node.children.size());
    for (size_t i = 0; i < node.children.size(); ++i) {
      Result<Value> value = evaluateNode(node.children[i], scope, where);
      if (!value.ok()) {
        return std::move(value).error();
      }
      object.set(node.keys[i], std::move(value).value());
    }
    return Value(std::move(object));
  }
  }
  return node.value;
}

} // namespace

EnvironmentLookup processEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char *value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
      return std::nullopt;
    }
    return std::string(value);
  };
}

EnvironmentLookup fixedEnvironment(std::map<std::string, std::string> variables) {
  auto shared = std::make_shared<const std::map<std::string, std::string>>(std::move(variables));
  return [shared](std::string_view name) -> std::optional<std::string> {
    auto found = shared->find(std::string(name));
    if (found == shared->end()) {
      return std::nullopt;
    }
    return found->second;
  };
}

Result<TemplateValue> TemplateValue::compile(const Value &source, std::string where) {
  Result<Node> root = compileNode(source, "", where);
  if (!root.ok()) {
    return std::move(root).error();
  }
  return TemplateValue(std::make_shared<const Node>(std::move(root).value()), source,
                       std::move(where));
}

Result<Value> TemplateValue::evaluate(const TemplateScope &scope) const {
  return evaluateNode(*root_, scope, where_);
}

const Value &TemplateValue::source() const { return source_; }

bool TemplateValue::isConstant() const { return root_->kind == Node::Kind::Constant; }

} // namespace kotoba::runtime
