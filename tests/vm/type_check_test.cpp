// Param types: parsing every form and every rejection, and matching values with messages
// that point at the offending element.
#include "kotoba/vm/type_check.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <string>

using namespace kotoba;
using kotoba::testing::failMessage;
using kotoba::testing::json;
using kotoba::testing::okValue;
using Kind = ParamType::Kind;

static ParamType type(std::string_view text) {
  INFO("type: ", std::string(text));
  return okValue(parseParamType(text));
}

static std::string typeError(std::string_view text) {
  INFO("type: ", std::string(text));
  return failMessage(parseParamType(text));
}

// The mismatch message, or "ok" when the value matches.
static std::string check(const char *valueJson, std::string_view typeText) {
  std::optional<std::string> problem = checkParamType(json(valueJson), type(typeText));
  return problem.value_or("ok");
}

TEST_CASE("every base type parses and prints back the same") {
  for (const char *name : {"string", "number", "integer", "boolean", "object", "array", "any"}) {
    INFO(name);
    ParamType parsed = type(name);
    CHECK(parsed.toString() == name);
    CHECK(parsed.element() == nullptr);
  }
  CHECK(type("integer").kind() == Kind::Integer);
  CHECK(type("array").kind() == Kind::Array);
}

TEST_CASE("typed arrays parse at any nesting, with spaces allowed") {
  ParamType integers = type("array<integer>");
  CHECK(integers.kind() == Kind::Array);
  REQUIRE(integers.element() != nullptr);
  CHECK(integers.element()->kind() == Kind::Integer);
  CHECK(type("array<array<string>>").toString() == "array<array<string>>");
  CHECK(type("  array < array < any > >  ").toString() == "array<array<any>>");
  CHECK(type("array<array>").toString() == "array<array>");
  CHECK(type("array<integer>") == ParamType::arrayOf(ParamType(Kind::Integer)));
  CHECK_FALSE(type("array<integer>") == type("array<number>"));
  CHECK_FALSE(type("array") == type("array<any>"));
}

TEST_CASE("nesting is limited so a hostile type cannot exhaust anything") {
  std::string deepest;
  for (size_t level = 0; level < kMaxTypeNesting; ++level) {
    deepest += "array<";
  }
  deepest += "integer" + std::string(kMaxTypeNesting, '>');
  CHECK(type(deepest).toString() == deepest);
  std::string tooDeep = "array<" + deepest + ">";
  CHECK(typeError(tooDeep) == "'" + tooDeep + "' nests arrays more than 32 deep");
}

TEST_CASE("bad type text gets a message that names the fix") {
  CHECK(typeError("") == "empty type; write one of string, number, integer, boolean, object, "
                         "array, array<T> or any");
  CHECK(typeError("strng") == "unknown type 'strng' in 'strng'; did you mean 'string'?");
  CHECK(typeError("String") == "unknown type 'String' in 'String'; did you mean 'string'?");
  CHECK(typeError("int") == "unknown type 'int' in 'int'; did you mean 'integer'?");
  CHECK(typeError("bool") == "unknown type 'bool' in 'bool'; did you mean 'boolean'?");
  CHECK(typeError("array<float>") ==
        "unknown type 'float' in 'array<float>'; did you mean 'number'?");
  CHECK(typeError("list<string>") == "unknown type 'list' in 'list<string>'; did you mean "
                                     "'array'?");
  CHECK(typeError("datetime") == "unknown type 'datetime' in 'datetime'; the types are string, "
                                 "number, integer, boolean, object, array, array<T> and any");
  CHECK(typeError("array<integer") == "'array<integer' is missing '>'");
  CHECK(typeError("array<>") == "'array<>' needs an element type, such as array<string>");
  CHECK(typeError("array< >") == "'array< >' needs an element type, such as array<string>");
  CHECK(typeError("string>") == "unexpected '>' after 'string' in 'string>'");
  CHECK(typeError("array<string>>") == "unexpected '>' after 'string' in 'array<string>>'");
  CHECK(typeError("integer?") == "unexpected '?' after 'integer' in 'integer?'");
  CHECK(typeError("<string>").find("unknown type '<string>'") != std::string::npos);
}

TEST_CASE("values match their kinds exactly") {
  CHECK(check(R"("x")", "string") == "ok");
  CHECK(check("1", "number") == "ok");
  CHECK(check("1.5", "number") == "ok");
  CHECK(check("1", "integer") == "ok");
  CHECK(check("true", "boolean") == "ok");
  CHECK(check("{}", "object") == "ok");
  CHECK(check("[1, \"a\"]", "array") == "ok");
  CHECK(check("null", "any") == "ok");
  CHECK(check(R"({"a": [1]})", "any") == "ok");
  CHECK(check("2.0", "integer") == "expected integer, found double 2.0");
  CHECK(check("1.5", "integer") == "expected integer, found double 1.5");
  CHECK(check(R"("5")", "number") == R"(expected number, found string "5")");
  CHECK(check("null", "string") == "expected string, found null");
  CHECK(check("[]", "object") == "expected object, found an empty array");
  CHECK(check("{}", "array") == "expected array, found an empty object");
  CHECK(check("0", "boolean") == "expected boolean, found integer 0");
}

TEST_CASE("typed arrays check every element and name the first bad one") {
  CHECK(check("[1, 2, 3]", "array<integer>") == "ok");
  CHECK(check("[]", "array<integer>") == "ok");
  CHECK(check(R"([1, 2, "x"])", "array<integer>") ==
        R"(expected array<integer>, element 2 is string "x")");
  CHECK(check("[1, 2.5]", "array<number>") == "ok");
  CHECK(check("[1, null]", "array<number>") == "expected array<number>, element 1 is null");
  CHECK(check(R"({"a": 1})", "array<integer>") ==
        R"(expected array<integer>, found object {"a":1})");
  CHECK(check("[[1, 2], [3]]", "array<array<integer>>") == "ok");
  CHECK(check("[[1], [2, \"x\"]]", "array<array<integer>>") ==
        R"(expected array<array<integer>>, element [1][1] is string "x")");
  CHECK(check("[[1], 2]", "array<array<integer>>") ==
        "expected array<array<integer>>, element 1 is integer 2");
  CHECK(check("[null, 1, {}]", "array<any>") == "ok");
}
