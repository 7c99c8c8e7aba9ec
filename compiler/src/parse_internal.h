// Private to the parser (parser.cpp and parse_tree_builder.cpp), the only two files that see
// ANTLR: what they share about one parse. Nothing outside compiler/src/parse* includes this.
#pragma once

#include "kotoba/compiler/diagnostics.h"
#include "kotoba/compiler/syntax.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace antlr4 {
class CommonTokenStream;
class ParserRuleContext;
class Token;
} // namespace antlr4

namespace kotoba::compiler {

// Where one parse's text sits in a file, and the diagnostics it found so far. Diagnostics
// are held back and reported in source order, because the steps of a parse find them out
// of order (UTF-8 first, duplicate keys last).
class ParseSink {
public:
  // `base`: the offset in `file` of the text's first byte.
  ParseSink(std::string_view text, FileId file, size_t base)
      : text(text), file(file), base(base) {}

  std::string_view text;
  FileId file;
  size_t base;
  // False: the text is not a copy of the file's bytes (a string with escapes), so every
  // position is `origin`.
  bool exactPositions = true;
  SourceRange origin;
  // The text is one expression (parseExpression), not a file: only changes wording.
  bool expressionMode = false;
  // Set when an unterminated string or block comment runs to the end of the text.
  bool inputEndsUnterminated = false;

  void setTokens(antlr4::CommonTokenStream *tokens) { tokens_ = tokens; }

  // [begin, end) in the text, as a range in the file.
  [[nodiscard]] SourceRange range(size_t begin, size_t end) const;
  // The token's range; for the end of input, an empty range right after the last token.
  [[nodiscard]] SourceRange tokenRange(antlr4::Token *token) const;
  [[nodiscard]] std::string_view tokenText(antlr4::Token *token) const;

  void report(DiagnosticKind kind, SourceRange where, std::string message);
  void note(SourceRange where, std::string message);
  [[nodiscard]] bool hasErrors() const { return !pending_.empty(); }
  // Reports the held diagnostics in source order; past a limit, only how many there were.
  void flush(DiagnosticEngine &diagnostics);

private:
  struct Pending {
    DiagnosticKind kind;
    SourceRange where;
    std::string message;
    std::vector<std::pair<SourceRange, std::string>> notes;
  };
  std::vector<Pending> pending_;
  size_t dropped_ = 0;       // reports past the limit of held diagnostics
  bool lastDropped_ = false; // so that its notes are dropped too
  antlr4::CommonTokenStream *tokens_ = nullptr;
};

// How a token is named in a message: its text for punctuation, keywords and short words,
// the start of it for long strings, a code for characters that do not print.
[[nodiscard]] std::string describeToken(const ParseSink &sink, antlr4::Token *token);

// Turns the parse tree of one expression (a KotobaParser::ExpressionContext) into Nodes.
// Returns nullptr when the expression is missing, broken by a syntax error or nested too
// deeply; parts broken by syntax errors are left out of the tree.
[[nodiscard]] Node *buildTree(antlr4::ParserRuleContext *expression, ParseSink &sink,
                              SyntaxArena &arena);

} // namespace kotoba::compiler
