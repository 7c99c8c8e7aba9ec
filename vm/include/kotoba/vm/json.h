// JSON text <-> Value, and UTF-8 validation. Every payload that enters the engine (run
// inputs, activity results, signals, events) goes through parseJson, and every value that
// leaves it (history, outputs, templates, hashes) through the writers here, so the rules
// that make values round-trip exactly live in this one place:
//
// - A number without fraction or exponent that fits int64 is an integer; any other number
//   (including integers beyond int64, such as 18446744073709551615) is a double. `-0` is the
//   integer 0.
// - Doubles are written in the shortest form that reads back to the same double, and always
//   look like doubles: 1.0 is written `1.0`, 1e21 is written `1e+21`.
// - Object keys keep their order. A key repeated in one JSON object keeps its first position
//   and its last value (JSON payloads come from programs that do not expect rejection here;
//   source files, by contrast, reject duplicates in the parser).
// - Text must be valid UTF-8 and `\u` escapes must not leave a lone surrogate; errors give
//   the byte offset. Non-ASCII characters are written as raw UTF-8, never escaped.
// - Nesting deeper than kMaxJsonDepth is rejected, so a hostile payload cannot exhaust the
//   stack of the code that later walks the value.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba {

inline constexpr size_t kMaxJsonDepth = 512;

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence
// (overlong forms, encoded surrogates and code points above U+10FFFF are ill-formed), or
// nullopt when the whole text is valid.
[[nodiscard]] std::optional<size_t> findInvalidUtf8(std::string_view text);
[[nodiscard]] inline bool isValidUtf8(std::string_view text) {
  return !findInvalidUtf8(text).has_value();
}

// Parses one JSON document (surrounding whitespace allowed, nothing else after it). Errors
// are InvalidPayload, with a message like "invalid JSON at byte 12: ..." and details
// {"offset": 12}. Callers that report to a workflow (json_decode) re-type the error.
[[nodiscard]] Result<Value> parseJson(std::string_view text);

// Compact JSON: no whitespace at all. This is also the canonical form used for hashing and
// for template text, because insertion order is part of a value's identity here.
[[nodiscard]] std::string toJson(const Value &value);
void appendJson(std::string &out, const Value &value);
[[nodiscard]] inline std::string canonicalJson(const Value &value) { return toJson(value); }

// Indented JSON for people: `indent` spaces per level, `": "` after keys, empty arrays and
// objects as `[]` and `{}`.
[[nodiscard]] std::string toPrettyJson(const Value &value, int indent = 2);

// The JSON spelling of one double (shortest round-trip form, with `.0` added when it would
// otherwise read back as an integer). The value must be finite.
[[nodiscard]] std::string formatDouble(double value);

// A JSON string literal, quotes included, escaping only what JSON requires.
void appendJsonString(std::string &out, std::string_view text);

} // namespace kotoba
