// The lexical checks the grammar leaves to code: UTF-8 validity of a file, decoding of
// quoted strings (escapes and UTF-16 surrogate pairs), and JSON numbers. They work on plain
// text and report problems with offsets relative to that text, so they know nothing of
// ANTLR or of where the text sits in a file.
#pragma once

#include "kotoba/compiler/diagnostics.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::compiler::lexical {

// A problem found in a piece of text: [begin, end) are offsets into that text.
struct Problem {
  DiagnosticKind kind;
  uint32_t begin;
  uint32_t end;
  std::string message;
};

// Offsets of invalid UTF-8: the first bad byte of each line that has one, at most `limit`.
[[nodiscard]] std::vector<uint32_t> findInvalidUtf8(std::string_view text, size_t limit);

// The message for the invalid byte at `offset` (e.g. "invalid UTF-8 byte 0xff; ...").
[[nodiscard]] std::string invalidUtf8Message(std::string_view text, uint32_t offset);

struct DecodedString {
  std::string value;
  bool verbatim = false; // no escapes: value is exactly the text between the quotes
};

// Decodes a quoted string as lexed, quotes included (`"a\n"` or `'b'`). When `terminated`
// is false the closing quote is missing (already reported) and the text runs to its end.
// Invalid escapes and lone surrogates are reported and kept in the value as written.
[[nodiscard]] DecodedString decodeString(std::string_view quoted, bool terminated,
                                         std::vector<Problem> &problems);

struct DecodedNumber {
  bool isInteger = false;
  int64_t integer = 0;
  double real = 0;
};

// Decodes the text of a NUMBER token, which the lexer lets be wider than JSON (leading
// zeros, `.5`, `1e`, `0x1F`). `negative` applies a minus written directly before it, so
// that -9223372036854775808 is an integer. A malformed number is reported and reads as 0.
[[nodiscard]] DecodedNumber decodeNumber(std::string_view text, bool negative,
                                         std::vector<Problem> &problems);

} // namespace kotoba::compiler::lexical
