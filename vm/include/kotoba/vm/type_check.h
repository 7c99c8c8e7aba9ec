// Declared param types (language.md section 3): `string`, `number`, `integer`, `boolean`,
// `object`, `array`, `any` and `array<T>` for any type T, nested freely. The compiler parses
// the type text of every input and output; the runtime checks run inputs and outputs against
// the parsed types and lists each mismatch in InputValidationError / OutputValidationError.
//
// Matching is exact about kinds: `integer` takes integers only (2.0 is a double, as the
// JSON rules make it), `number` takes integers and doubles, `array` takes any array, and
// null matches only `any`. Whether null is acceptable for an optional input or output is the
// caller's rule (language.md lets both be null), so callers test for null first.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba {

// How deeply array<...> may nest; more is surely a mistake and is rejected when parsing.
inline constexpr size_t kMaxTypeNesting = 32;

class ParamType {
public:
  enum class Kind : uint8_t { String, Number, Integer, Boolean, Object, Array, Any };

  ParamType() = default;
  explicit ParamType(Kind kind) : kind_(kind) {}
  // array<element>
  [[nodiscard]] static ParamType arrayOf(ParamType element);

  [[nodiscard]] Kind kind() const { return kind_; }
  // The element type of array<T>; nullptr for a plain `array` and for every other kind.
  [[nodiscard]] const ParamType *element() const { return element_.get(); }

  // The type as written in source, canonically: "array<array<integer>>".
  [[nodiscard]] std::string toString() const;

  friend bool operator==(const ParamType &left, const ParamType &right);

private:
  Kind kind_ = Kind::Any;
  std::shared_ptr<const ParamType> element_;
};

// Parses type text. Spaces are allowed around `<` and `>`. Errors (ExpressionError) name the
// fix: "unknown type 'strng'; did you mean 'string'?", "'array<>' needs an element type,
// such as array<string>", "'array<integer' is missing '>'".
[[nodiscard]] Result<ParamType> parseParamType(std::string_view text);

// nullopt when `value` matches `type`, otherwise what is wrong: "expected integer, found
// double 1.5", "expected array<integer>, element 2 is string \"x\"", and for nested arrays
// "expected array<array<integer>>, element [1][0] is null".
[[nodiscard]] std::optional<std::string> checkParamType(const Value &value,
                                                        const ParamType &type);

} // namespace kotoba
