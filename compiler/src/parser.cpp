// The parser: runs the ANTLR lexer and parser generated from grammar/Kotoba.g4 and turns the
// parse tree into syntax Nodes. This file and parse_tree_builder.cpp are the only ones that
// see an ANTLR type.
//
// One parse goes through these steps, each of which can only add diagnostics:
//   1. UTF-8 check of the whole file (the lexer reads bytes, so bad bytes cannot upset it);
//   2. lexing every token, reporting unterminated strings and block comments;
//   3. a nesting check over the tokens, before ANTLR's recursive descent can overflow the
//      stack on input like 10,000 `[`;
//   4. the ANTLR parse, with syntax errors worded for people and recovery to find more;
//   5. building the Nodes, which decodes strings and numbers and finds duplicate keys.
// Diagnostics of one parse are reported in source order at the end.
#include "kotoba/compiler/parser.h"

#include "parse_internal.h"
#include "parse_lexical.h"

#include <KotobaLexer.h>
#include <KotobaParser.h>
#include <antlr4-runtime.h>

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace kotoba::compiler {
namespace {

using grammar::KotobaLexer;
using grammar::KotobaParser;

// At most this many syntax errors per parse: past them, a file is usually not .kotoba at
// all (a binary, or the wrong file), and more messages would bury the first, useful ones.
constexpr size_t maxSyntaxErrors = 50;
// The same for invalid UTF-8 (already limited to one per line).
constexpr size_t maxInvalidUtf8Reports = 20;
// All diagnostics of one parse: those past maxShownDiagnostics (in source order) are only
// counted, and past maxHeldDiagnostics not even kept, so garbage costs little memory.
constexpr size_t maxShownDiagnostics = 100;
constexpr size_t maxHeldDiagnostics = 10000;

// The text as ANTLR input, one symbol per byte, so token indexes are byte offsets into the
// file. ANTLR's own ANTLRInputStream would first widen the text to UTF-32 (four times the
// file's size) and number tokens by code point.
class ByteStream final : public antlr4::CharStream {
public:
  ByteStream(std::string_view text, size_t start, std::string name)
      : text_(text), position_(start), name_(std::move(name)) {}

  void consume() override {
    if (position_ >= text_.size()) {
      throw antlr4::IllegalStateException("cannot consume EOF");
    }
    ++position_;
  }

  size_t LA(ssize_t offset) override {
    if (offset == 0) {
      return 0; // undefined by the interface; ANTLR never asks
    }
    ssize_t at = static_cast<ssize_t>(position_) + (offset > 0 ? offset - 1 : offset);
    if (at < 0 || at >= static_cast<ssize_t>(text_.size())) {
      return antlr4::IntStream::EOF;
    }
    return static_cast<unsigned char>(text_[static_cast<size_t>(at)]);
  }

  // The whole text is in memory, so marks need no bookkeeping.
  ssize_t mark() override { return -1; }
  void release(ssize_t) override {}
  size_t index() override { return position_; }
  void seek(size_t index) override { position_ = std::min(index, text_.size()); }
  size_t size() override { return text_.size(); }
  std::string getSourceName() const override { return name_; }

  std::string getText(const antlr4::misc::Interval &interval) override {
    if (interval.a < 0 || interval.b < interval.a ||
        static_cast<size_t>(interval.a) >= text_.size()) {
      return {};
    }
    auto begin = static_cast<size_t>(interval.a);
    size_t end = std::min(static_cast<size_t>(interval.b) + 1, text_.size());
    return std::string(text_.substr(begin, end - begin));
  }
  std::string toString() const override { return std::string(text_); }

private:
  std::string_view text_;
  size_t position_;
  std::string name_;
};

bool isContinuationByte(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

// Expected-token sets in words: "a value", "',' or '}'", "':'".
std::string describeExpected(antlr4::misc::IntervalSet expected,
                             const antlr4::dfa::Vocabulary &vocabulary, bool expressionMode) {
  auto containsAll = [&](std::initializer_list<size_t> types) {
    return std::all_of(types.begin(), types.end(),
                       [&](size_t type) { return expected.contains(type); });
  };
  auto removeAll = [&](std::initializer_list<size_t> types) {
    for (size_t type : types) {
      expected.remove(type);
    }
  };
  std::vector<std::string> words;
  const std::initializer_list<size_t> valueStart = {
      KotobaParser::DOLLAR,   KotobaParser::IDENT,    KotobaParser::LPAREN,
      KotobaParser::LBRACE,   KotobaParser::LBRACKET, KotobaParser::STRING,
      KotobaParser::NUMBER,   KotobaParser::KW_TRUE,  KotobaParser::KW_FALSE,
      KotobaParser::KW_NULL,  KotobaParser::BANG,     KotobaParser::MINUS};
  const std::initializer_list<size_t> keyStart = {
      KotobaParser::IDENT, KotobaParser::STRING, KotobaParser::KW_TRUE, KotobaParser::KW_FALSE,
      KotobaParser::KW_NULL, KotobaParser::KW_IN};
  const std::initializer_list<size_t> nameStart = {KotobaParser::IDENT, KotobaParser::KW_TRUE,
                                                   KotobaParser::KW_FALSE,
                                                   KotobaParser::KW_NULL, KotobaParser::KW_IN};
  // Tokens that only continue an expression; listing them would drown the useful choices.
  const std::initializer_list<size_t> operators = {
      KotobaParser::DOT,   KotobaParser::LBRACKET, KotobaParser::QUESTION, KotobaParser::COALESCE,
      KotobaParser::OR,    KotobaParser::AND,      KotobaParser::EQ,       KotobaParser::NE,
      KotobaParser::LT,    KotobaParser::LE,       KotobaParser::GT,       KotobaParser::GE,
      KotobaParser::KW_IN, KotobaParser::PLUS,     KotobaParser::MINUS,    KotobaParser::STAR,
      KotobaParser::SLASH, KotobaParser::PERCENT};
  expected.remove(static_cast<size_t>(KotobaParser::UNTERMINATED_STRING));
  // Between the items of an object or array the grammar also takes the next item (commas
  // are optional there for recovery), but what a person should write is a comma or the end.
  bool betweenItems = expected.contains(static_cast<size_t>(KotobaParser::COMMA)) &&
                      (expected.contains(static_cast<size_t>(KotobaParser::RBRACE)) ||
                       expected.contains(static_cast<size_t>(KotobaParser::RBRACKET)));
  if (betweenItems) {
    removeAll(valueStart);
    removeAll(keyStart);
  }
  if (containsAll(valueStart)) {
    words.push_back("a value");
    removeAll(valueStart);
  } else if (containsAll(keyStart)) {
    words.push_back("a key");
    removeAll(keyStart);
  } else if (containsAll(nameStart)) {
    words.push_back("a name");
    removeAll(nameStart);
  }
  if (containsAll({KotobaParser::PLUS, KotobaParser::STAR})) {
    removeAll(operators);
    if (expected.isEmpty() && words.empty()) {
      words.push_back("an operator");
    }
  }
  // A comma first: "',' or '}'" reads as the usual fix, "'}' or ','" does not.
  if (expected.contains(static_cast<size_t>(KotobaParser::COMMA))) {
    words.push_back("','");
    expected.remove(static_cast<size_t>(KotobaParser::COMMA));
  }
  for (ssize_t type : expected.toList()) {
    if (type == static_cast<ssize_t>(antlr4::Token::EOF) || type == -1) {
      words.push_back(expressionMode ? "the end of the expression" : "the end of the file");
    } else if (type == KotobaParser::IDENT) {
      words.push_back("a name");
    } else if (type == KotobaParser::STRING) {
      words.push_back("a string");
    } else if (type == KotobaParser::NUMBER) {
      words.push_back("a number");
    } else if (type > 0) {
      std::string literal = vocabulary.getLiteralName(static_cast<size_t>(type));
      if (!literal.empty()) {
        words.push_back(literal);
      }
    }
  }
  if (words.empty()) {
    return "something else";
  }
  std::string out = words[0];
  for (size_t index = 1; index < words.size(); ++index) {
    out += index + 1 == words.size() ? " or " : ", ";
    out += words[index];
  }
  return out;
}

// Replaces ANTLR's messages ("mismatched input 'x' expecting {...}") with plain words, and
// stops the parse once a file has produced more errors than anyone will read.
class SyntaxErrorStrategy final : public antlr4::DefaultErrorStrategy {
public:
  explicit SyntaxErrorStrategy(ParseSink &sink) : sink_(sink) {}

  [[nodiscard]] bool cancelled() const { return cancelled_; }

protected:
  void reportNoViableAlternative(antlr4::Parser *parser,
                                 const antlr4::NoViableAltException &error) override {
    reportExpected(parser, error.getOffendingToken(), parser->getExpectedTokens());
  }

  void reportInputMismatch(antlr4::Parser *parser,
                           const antlr4::InputMismatchException &error) override {
    reportExpected(parser, error.getOffendingToken(), error.getExpectedTokens());
  }

  void reportFailedPredicate(antlr4::Parser *parser,
                             const antlr4::FailedPredicateException &error) override {
    reportExpected(parser, error.getOffendingToken(), parser->getExpectedTokens());
  }

  void reportUnwantedToken(antlr4::Parser *parser) override {
    if (inErrorRecoveryMode(parser)) {
      return;
    }
    beginErrorCondition(parser);
    antlr4::Token *token = parser->getCurrentToken();
    reportExpected(parser, token, getExpectedTokens(parser));
  }

  void reportMissingToken(antlr4::Parser *parser) override {
    if (inErrorRecoveryMode(parser)) {
      return;
    }
    beginErrorCondition(parser);
    antlr4::Token *token = parser->getCurrentToken();
    if (token->getType() == antlr4::Token::EOF) {
      reportExpected(parser, token, getExpectedTokens(parser));
      return;
    }
    report(token, "expected " +
                      describeExpected(getExpectedTokens(parser), parser->getVocabulary(),
                                       sink_.expressionMode) +
                      " before " + describeToken(sink_, token));
  }

private:
  void reportExpected(antlr4::Parser *parser, antlr4::Token *token,
                      const antlr4::misc::IntervalSet &expected) {
    if (token == nullptr) {
      token = parser->getCurrentToken();
    }
    std::string found = describeToken(sink_, token);
    std::string wanted =
        describeExpected(expected, parser->getVocabulary(), sink_.expressionMode);
    if (token->getType() == KotobaParser::UNEXPECTED_CHARACTER) {
      report(token, "unexpected " + found + "; expected " + wanted);
    } else {
      report(token, "expected " + wanted + ", found " + found);
    }
  }

  void report(antlr4::Token *token, std::string message) {
    // After an unterminated string or comment swallowed the rest of the text, "expected
    // '}', found the end of the file" says nothing new.
    if (token->getType() == antlr4::Token::EOF && sink_.inputEndsUnterminated) {
      return;
    }
    sink_.report(DiagnosticKind::Syntax, sink_.tokenRange(token), std::move(message));
    if (++errors_ >= maxSyntaxErrors) {
      cancelled_ = true;
      throw antlr4::ParseCancellationException("too many syntax errors");
    }
  }

  ParseSink &sink_;
  size_t errors_ = 0;
  bool cancelled_ = false;
};

bool opensNesting(size_t type) {
  return type == KotobaParser::LBRACE || type == KotobaParser::LBRACKET ||
         type == KotobaParser::LPAREN;
}

bool closesNesting(size_t type) {
  return type == KotobaParser::RBRACE || type == KotobaParser::RBRACKET ||
         type == KotobaParser::RPAREN;
}

// Tokens after which a value is complete, so that a following '-' is binary.
bool endsOperand(size_t type) {
  switch (type) {
  case KotobaParser::IDENT:
  case KotobaParser::NUMBER:
  case KotobaParser::STRING:
  case KotobaParser::UNTERMINATED_STRING:
  case KotobaParser::KW_TRUE:
  case KotobaParser::KW_FALSE:
  case KotobaParser::KW_NULL:
  case KotobaParser::DOLLAR:
  case KotobaParser::RBRACE:
  case KotobaParser::RBRACKET:
  case KotobaParser::RPAREN:
    return true;
  }
  return false;
}

// Finds the first token at which the parse would recurse deeper than maxNestingDepth, or
// returns nullptr. ANTLR's parser recurses once per bracket, per prefix operator and per
// `?` of a conditional (whose branches nest to the right); binary operators loop instead.
// The count is an upper bound: every `?` and prefix operator counts until the end of the
// element (`,`) or bracket it is in, which is where the recursion for them unwinds at last.
antlr4::Token *findTooDeepNesting(antlr4::CommonTokenStream &tokens) {
  struct Level {
    unsigned pending = 0; // prefix operators and `?` still open at this bracket level
  };
  std::vector<Level> levels(1);
  unsigned depth = 0;
  size_t previousType = antlr4::Token::INVALID_TYPE;
  for (size_t index = 0; index < tokens.size(); ++index) {
    antlr4::Token *token = tokens.get(index);
    if (token->getChannel() != antlr4::Token::DEFAULT_CHANNEL) {
      continue;
    }
    size_t type = token->getType();
    bool prefix = type == KotobaParser::BANG ||
                  (type == KotobaParser::MINUS && !endsOperand(previousType));
    if (opensNesting(type)) {
      levels.emplace_back();
      ++depth;
    } else if (closesNesting(type) && levels.size() > 1) {
      depth -= 1 + levels.back().pending;
      levels.pop_back();
    } else if (type == KotobaParser::COMMA) {
      depth -= levels.back().pending;
      levels.back().pending = 0;
    } else if (prefix || type == KotobaParser::QUESTION) {
      ++levels.back().pending;
      ++depth;
    }
    if (depth > maxNestingDepth) {
      return token;
    }
    previousType = type;
  }
  return nullptr;
}

// Runs steps 2 to 5 over `text`. `start` skips a byte order mark.
Node *parseText(std::string_view text, size_t start, ParseSink &sink, SyntaxArena &arena) {
  ByteStream input(text, start, "");
  KotobaLexer lexer(&input);
  lexer.removeErrorListeners(); // the last lexer rule accepts any byte, so none can occur
  // Parsing holds every token and the whole parse tree until the Nodes are built: about 130
  // bytes of heap per source byte for a whole compile (heaptrack, docs/fuzzing.md). Building
  // Nodes as rules exit would not lower it: ANTLR 4.9's C++ parser keeps every context it
  // creates in its ParseTreeTracker until the parser itself is destroyed.
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  sink.setTokens(&tokens);

  bool anyToken = false;
  for (size_t index = 0; index < tokens.size(); ++index) {
    antlr4::Token *token = tokens.get(index);
    switch (token->getType()) {
    case KotobaParser::UNTERMINATED_STRING:
      sink.report(DiagnosticKind::UnterminatedString, sink.tokenRange(token),
                  std::string("unterminated string; add the closing ") +
                      sink.tokenText(token)[0] + " before the end of the line");
      sink.inputEndsUnterminated |= token->getStopIndex() + 1 == text.size();
      break;
    case KotobaParser::UNTERMINATED_COMMENT: {
      SourceRange opening = sink.range(token->getStartIndex(), token->getStartIndex() + 2);
      sink.report(DiagnosticKind::UnterminatedComment, opening,
                  "unterminated block comment; close it with */");
      sink.inputEndsUnterminated = true;
      break;
    }
    }
    if (token->getType() != antlr4::Token::EOF &&
        token->getChannel() == antlr4::Token::DEFAULT_CHANNEL) {
      anyToken = true;
    }
  }
  if (!anyToken) {
    if (!sink.inputEndsUnterminated) {
      sink.report(DiagnosticKind::Syntax, sink.range(text.size(), text.size()),
                  sink.expressionMode ? "empty expression; write one after '$', as in $.inputs.x"
                                 : "the file is empty; a .kotoba file holds one object, as "
                                   "in { workflow: { ... } }");
    }
    return nullptr;
  }

  if (antlr4::Token *tooDeep = findTooDeepNesting(tokens)) {
    sink.report(DiagnosticKind::NestingTooDeep, sink.tokenRange(tooDeep),
                "nesting deeper than " + std::to_string(maxNestingDepth) +
                    " levels is not supported; flatten this value or expression");
    return nullptr;
  }

  KotobaParser parser(&tokens);
  parser.removeErrorListeners();
  auto strategy = std::make_shared<SyntaxErrorStrategy>(sink);
  parser.setErrorHandler(strategy);
  KotobaParser::ExpressionContext *root = nullptr;
  try {
    root = sink.expressionMode ? parser.expressionOnly()->expression()
                               : parser.file()->expression();
  } catch (const antlr4::ParseCancellationException &) {
    assert(strategy->cancelled() && "only the error strategy cancels a parse");
    return nullptr;
  }
  return buildTree(root, sink, arena);
}

} // namespace

// ---- ParseSink ----

SourceRange ParseSink::range(size_t begin, size_t end) const {
  if (!exactPositions) {
    return origin;
  }
  end = std::max(begin, end);
  SourceRange mapped;
  mapped.begin = SourceLoc{file, static_cast<uint32_t>(base + begin)};
  mapped.end = static_cast<uint32_t>(base + end);
  return mapped;
}

SourceRange ParseSink::tokenRange(antlr4::Token *token) const {
  size_t begin = token->getStartIndex();
  if (token->getType() != antlr4::Token::EOF) {
    // Tokens conjured by error recovery have no place; they never reach a diagnostic.
    assert(begin != INVALID_INDEX && "only real tokens are reported");
    return range(begin, token->getStopIndex() + 1);
  }
  // Nothing to underline at the end: point just after the last real token, where something
  // is missing, rather than at a blank last line.
  size_t at = 0;
  for (size_t index = token->getTokenIndex(); tokens_ != nullptr && index-- > 0;) {
    antlr4::Token *before = tokens_->get(index);
    if (before->getChannel() == antlr4::Token::DEFAULT_CHANNEL) {
      at = before->getStopIndex() + 1;
      break;
    }
  }
  return range(at, at);
}

std::string_view ParseSink::tokenText(antlr4::Token *token) const {
  size_t begin = token->getStartIndex();
  size_t stop = token->getStopIndex();
  if (begin == INVALID_INDEX || stop == INVALID_INDEX || stop < begin || stop >= text.size()) {
    return {};
  }
  return text.substr(begin, stop + 1 - begin);
}

void ParseSink::report(DiagnosticKind kind, SourceRange where, std::string message) {
  lastDropped_ = pending_.size() >= maxHeldDiagnostics;
  if (lastDropped_) {
    ++dropped_;
    return;
  }
  pending_.push_back(Pending{kind, where, std::move(message), {}});
}

void ParseSink::note(SourceRange where, std::string message) {
  if (lastDropped_) {
    return;
  }
  assert(!pending_.empty() && "a note needs a diagnostic to attach to");
  pending_.back().notes.emplace_back(where, std::move(message));
}

void ParseSink::flush(DiagnosticEngine &diagnostics) {
  std::stable_sort(pending_.begin(), pending_.end(), [](const Pending &a, const Pending &b) {
    return a.where.begin.offset < b.where.begin.offset;
  });
  size_t shown = std::min(pending_.size(), maxShownDiagnostics);
  for (size_t index = 0; index < shown; ++index) {
    Pending &entry = pending_[index];
    diagnostics.report(entry.kind, entry.where, std::move(entry.message));
    for (auto &[where, message] : entry.notes) {
      diagnostics.note(where, std::move(message));
    }
  }
  size_t hidden = pending_.size() - shown + dropped_;
  if (hidden > 0) {
    diagnostics.note(SourceRange{}, std::to_string(hidden) +
                                        " more problems in this file are not shown; fix "
                                        "the ones above first");
  }
  pending_.clear();
  dropped_ = 0;
}

std::string describeToken(const ParseSink &sink, antlr4::Token *token) {
  if (token->getType() == antlr4::Token::EOF) {
    return sink.expressionMode ? "the end of the expression" : "the end of the file";
  }
  std::string_view text = sink.tokenText(token);
  if (token->getType() == KotobaParser::UNEXPECTED_CHARACTER) {
    auto lead = static_cast<unsigned char>(text.empty() ? 0 : text[0]);
    if (lead < 0x20 || lead == 0x7F || (text.size() == 1 && lead >= 0x80)) {
      static const char digits[] = "0123456789abcdef";
      std::string code = lead < 0x80 ? "character U+00" : "byte 0x";
      code += digits[lead >> 4];
      code += digits[lead & 0xF];
      return code;
    }
    if (lead < 0x80) {
      return "character '" + std::string(text) + "'";
    }
    // Non-ASCII: also by code point, since a no-break space or a zero-width one looks like
    // nothing at all when printed.
    uint32_t codePoint = lead & (lead >= 0xF0 ? 0x07 : lead >= 0xE0 ? 0x0F : 0x1F);
    for (char continuation : text.substr(1)) {
      codePoint = (codePoint << 6) | (static_cast<unsigned char>(continuation) & 0x3F);
    }
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", codePoint);
    return "character '" + std::string(text) + "' (" + code + ")";
  }
  constexpr size_t shown = 24;
  if (text.size() <= shown) {
    return "'" + std::string(text) + "'";
  }
  size_t cut = shown;
  while (cut > 0 && isContinuationByte(text[cut])) {
    --cut;
  }
  return "'" + std::string(text.substr(0, cut)) + "...'";
}

// ---- Entry points ----

Node *parseFile(const SourceManager &sources, FileId file, SyntaxArena &arena,
                DiagnosticEngine &diagnostics) {
  std::string_view text = sources.text(file);
  ParseSink sink(text, file, 0);
  for (uint32_t offset : lexical::findInvalidUtf8(text, maxInvalidUtf8Reports)) {
    sink.report(DiagnosticKind::InvalidUtf8, sink.range(offset, offset + 1),
                lexical::invalidUtf8Message(text, offset));
  }
  constexpr std::string_view byteOrderMark = "\xEF\xBB\xBF";
  size_t start = text.substr(0, 3) == byteOrderMark ? 3 : 0;
  Node *root = parseText(text, start, sink, arena);
  sink.flush(diagnostics);
  return root;
}

Node *parseExpression(std::string_view text, SourceRange origin, bool exactPositions,
                      SyntaxArena &arena, DiagnosticEngine &diagnostics) {
  ParseSink sink(text, origin.begin.file, origin.begin.offset + 1);
  sink.exactPositions = exactPositions;
  sink.origin = origin;
  sink.expressionMode = true;
  Node *root = parseText(text, 0, sink, arena);
  // A partial expression is of no use to the checker, which would report its gaps again.
  bool failed = sink.hasErrors();
  sink.flush(diagnostics);
  return failed ? nullptr : root;
}

} // namespace kotoba::compiler
