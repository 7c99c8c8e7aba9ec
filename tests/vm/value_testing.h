// Helpers shared by the value-layer tests: write expected values as JSON text, and unwrap
// results with a check that names the error when there is one.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace kotoba::testing {

// The value written as JSON; the text is the test's own, so a parse failure fails the test.
inline Value json(std::string_view text) {
  Result<Value> parsed = parseJson(text);
  INFO("test JSON: ", std::string(text));
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? std::string() : parsed.error().message));
  return parsed.value();
}

// The value of a result that must have succeeded.
template <typename T> T okValue(const Result<T> &result) {
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? std::string() : result.error().message));
  return result.value();
}

// The message of a result that must have failed with `type`.
template <typename T>
std::string failMessage(const Result<T> &result, std::string_view type = "ExpressionError") {
  REQUIRE_MESSAGE(!result.ok(), "expected a failure");
  CHECK(result.error().type == type);
  return result.error().message;
}

// Compact JSON of a successful result, the easiest form to compare exactly.
inline std::string okJson(const Result<Value> &result) { return toJson(okValue(result)); }

} // namespace kotoba::testing
