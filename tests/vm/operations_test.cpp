// The expression operators over every combination of kinds that matters: results, result
// kinds, overflow edges and the exact wording of each error.
#include "kotoba/vm/operations.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <limits>

using namespace kotoba;
using kotoba::testing::failMessage;
using kotoba::testing::json;
using kotoba::testing::okJson;
using kotoba::testing::okValue;

static constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
static constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

static Result<Value> op(BinaryOp which, const char *left, const char *right) {
  return applyBinary(which, json(left), json(right));
}

TEST_CASE("'+' adds integers to integers and anything numeric with a double to doubles") {
  CHECK(okJson(op(BinaryOp::Add, "2", "3")) == "5");
  CHECK(okJson(op(BinaryOp::Add, "2", "0.5")) == "2.5");
  CHECK(okJson(op(BinaryOp::Add, "0.5", "2")) == "2.5");
  CHECK(okJson(op(BinaryOp::Add, "1.0", "1.0")) == "2.0");
  CHECK(okJson(op(BinaryOp::Add, "-7", "7")) == "0");
}

TEST_CASE("'+' concatenates strings and arrays and merges objects with the right winning") {
  CHECK(okJson(op(BinaryOp::Add, R"("ab")", R"("cd")")) == R"("abcd")");
  CHECK(okJson(op(BinaryOp::Add, R"("")", R"("")")) == R"("")");
  CHECK(okJson(op(BinaryOp::Add, "[1, [2]]", R"([3, "x"])")) == R"([1,[2],3,"x"])");
  CHECK(okJson(op(BinaryOp::Add, "[]", "[]")) == "[]");
  CHECK(okJson(op(BinaryOp::Add, R"({"a": 1, "b": 2})", R"({"c": 3, "a": 9})")) ==
        R"({"a":9,"b":2,"c":3})");
}

TEST_CASE("'+' overflow of integers is an error, not a wrap-around") {
  Result<Value> sum = applyBinary(BinaryOp::Add, Value(kMax), Value(1));
  CHECK(failMessage(sum) == "integer overflow in '+': 9223372036854775807 + 1 does not fit in "
                            "64 bits; use doubles (multiply by 1.0) for numbers this large");
  CHECK(applyBinary(BinaryOp::Add, Value(kMin), Value(-1)).ok() == false);
  CHECK(okValue(applyBinary(BinaryOp::Add, Value(kMax), Value(0))).asInt() == kMax);
  CHECK(okValue(applyBinary(BinaryOp::Add, Value(kMax), Value(1.0))).isDouble());
}

TEST_CASE("'+' of mismatched kinds says what the right side needed to be") {
  CHECK(failMessage(op(BinaryOp::Add, "1", R"("a")")) ==
        R"(expected a number on the right of '+' (the left is a number), found string "a")");
  CHECK(failMessage(op(BinaryOp::Add, R"("a")", "1")) ==
        "expected a string on the right of '+' (the left is a string), found integer 1; to "
        "build text from other values, use a template: \"${a}${b}\"");
  CHECK(failMessage(op(BinaryOp::Add, "[1]", R"({"a":1})")) ==
        R"(expected an array on the right of '+' (the left is an array), found object {"a":1})");
  CHECK(failMessage(op(BinaryOp::Add, "{}", "[]")) ==
        "expected an object on the right of '+' (the left is an object), found an empty array");
  CHECK(failMessage(op(BinaryOp::Add, "null", "1")) ==
        "expected a number, string, array or object for '+', found null");
  CHECK(failMessage(op(BinaryOp::Add, "true", "true")) ==
        "expected a number, string, array or object for '+', found boolean true");
}

TEST_CASE("'-' and '*' work on numbers with overflow checks") {
  CHECK(okJson(op(BinaryOp::Subtract, "10", "4")) == "6");
  CHECK(okJson(op(BinaryOp::Subtract, "10", "0.5")) == "9.5");
  CHECK(okJson(op(BinaryOp::Multiply, "6", "7")) == "42");
  CHECK(okJson(op(BinaryOp::Multiply, "6", "0.5")) == "3.0");
  CHECK(failMessage(applyBinary(BinaryOp::Subtract, Value(kMin), Value(1))) ==
        "integer overflow in '-': -9223372036854775808 - 1 does not fit in 64 bits; use "
        "doubles (multiply by 1.0) for numbers this large");
  CHECK_FALSE(applyBinary(BinaryOp::Multiply, Value(kMax / 2 + 1), Value(2)).ok());
  CHECK_FALSE(applyBinary(BinaryOp::Multiply, Value(kMin), Value(-1)).ok());
  CHECK(okValue(applyBinary(BinaryOp::Multiply, Value(kMin / 2), Value(2))).asInt() == kMin);
  CHECK(failMessage(op(BinaryOp::Subtract, R"("5")", "1")) ==
        R"(expected a number for '-', found string "5")");
  CHECK(failMessage(op(BinaryOp::Multiply, "2", "[2]")) ==
        "expected a number for '*', found array [2]");
}

TEST_CASE("double overflow to infinity is an error") {
  CHECK(failMessage(op(BinaryOp::Multiply, "1e308", "10")) ==
        "number overflow in '*': the result is too large for a double");
  CHECK_FALSE(op(BinaryOp::Add, "1.7e308", "1.7e308").ok());
  CHECK_FALSE(op(BinaryOp::Subtract, "-1.7e308", "1.7e308").ok());
  CHECK_FALSE(op(BinaryOp::Divide, "1e308", "1e-10").ok());
}

TEST_CASE("'/' always yields a double and rejects division by zero") {
  CHECK(okJson(op(BinaryOp::Divide, "7", "2")) == "3.5");
  CHECK(okJson(op(BinaryOp::Divide, "6", "3")) == "2.0");
  CHECK(okJson(op(BinaryOp::Divide, "1", "4.0")) == "0.25");
  CHECK(failMessage(op(BinaryOp::Divide, "1", "0")) == "division by zero: 1 / 0");
  CHECK(failMessage(op(BinaryOp::Divide, "1.5", "0.0")) == "division by zero: 1.5 / 0.0");
  CHECK(failMessage(op(BinaryOp::Divide, "0", "-0.0")) == "division by zero: 0 / -0.0");
  CHECK(failMessage(op(BinaryOp::Divide, R"("a")", "1")) ==
        R"(expected a number for '/', found string "a")");
}

TEST_CASE("'%' needs integers, follows the dividend's sign and rejects zero") {
  CHECK(okJson(op(BinaryOp::Remainder, "7", "3")) == "1");
  CHECK(okJson(op(BinaryOp::Remainder, "-7", "3")) == "-1");
  CHECK(okJson(op(BinaryOp::Remainder, "7", "-3")) == "1");
  CHECK(okValue(applyBinary(BinaryOp::Remainder, Value(kMin), Value(-1))).asInt() == 0);
  CHECK(failMessage(op(BinaryOp::Remainder, "7", "0")) == "division by zero: 7 % 0");
  CHECK(failMessage(op(BinaryOp::Remainder, "7.0", "2")) ==
        "expected integers for '%', found double 7.0; convert with to_int() first");
  CHECK(failMessage(op(BinaryOp::Remainder, "7", R"("2")")) ==
        R"(expected integers for '%', found string "2")");
}

TEST_CASE("equality is deep, ignores key order and treats 1 and 1.0 as equal") {
  CHECK(okJson(op(BinaryOp::Equal, "1", "1.0")) == "true");
  CHECK(okJson(op(BinaryOp::Equal, R"({"a":[1,{"b":2}],"c":null})",
                  R"({"c":null,"a":[1.0,{"b":2}]})")) == "true");
  CHECK(okJson(op(BinaryOp::Equal, "[1,2]", "[2,1]")) == "false");
  CHECK(okJson(op(BinaryOp::Equal, "null", "false")) == "false");
  CHECK(okJson(op(BinaryOp::Equal, "0", "false")) == "false");
  CHECK(okJson(op(BinaryOp::Equal, R"("1")", "1")) == "false");
  CHECK(okJson(op(BinaryOp::Equal, R"({"a":1})", R"({"a":1,"b":2})")) == "false");
  CHECK(okJson(op(BinaryOp::NotEqual, "[]", "{}")) == "true");
  CHECK(okJson(op(BinaryOp::NotEqual, "2", "2.0")) == "false");
}

TEST_CASE("integer and double compare by exact value, beyond 2^53") {
  Value big(int64_t{9007199254740993}); // 2^53 + 1, not representable as a double
  Value nearest(9007199254740992.0);
  CHECK_FALSE(big == nearest);
  CHECK(okJson(applyBinary(BinaryOp::Greater, big, nearest)) == "true");
  CHECK(okJson(applyBinary(BinaryOp::Less, nearest, big)) == "true");
  CHECK(okJson(applyBinary(BinaryOp::Less, Value(kMax), Value(9223372036854775808.0))) ==
        "true");
  CHECK(okJson(applyBinary(BinaryOp::Greater, Value(kMin), Value(-1e19))) == "true");
  CHECK(okJson(applyBinary(BinaryOp::Equal, Value(kMin), Value(-9223372036854775808.0))) ==
        "true");
  CHECK(compareIntWithDouble(1, 1.5) == -1);
  CHECK(compareIntWithDouble(-1, -1.5) == 1);
  CHECK(compareIntWithDouble(-2, -1.5) == -1);
  CHECK(compareIntWithDouble(3, 3.0) == 0);
  CHECK(compareIntWithDouble(0, -0.0) == 0);
}

TEST_CASE("ordering compares numbers, or strings by code point") {
  CHECK(okJson(op(BinaryOp::Less, "1", "2")) == "true");
  CHECK(okJson(op(BinaryOp::LessEqual, "2", "2.0")) == "true");
  CHECK(okJson(op(BinaryOp::Greater, "2.5", "2")) == "true");
  CHECK(okJson(op(BinaryOp::GreaterEqual, "1", "2")) == "false");
  CHECK(okJson(op(BinaryOp::Less, R"("apple")", R"("banana")")) == "true");
  CHECK(okJson(op(BinaryOp::Less, R"("Z")", R"("a")")) == "true");
  CHECK(okJson(op(BinaryOp::Less, R"("ab")", R"("abc")")) == "true");
  // U+00E9 sorts after U+007A, and U+1F600 after U+FFFD, as code points do.
  CHECK(okJson(op(BinaryOp::Greater, "\"\xC3\xA9\"", R"("z")")) == "true");
  CHECK(okJson(op(BinaryOp::Greater, "\"\xF0\x9F\x98\x80\"", "\"\xEF\xBF\xBD\"")) == "true");
}

TEST_CASE("ordering anything but two numbers or two strings is an error") {
  CHECK(failMessage(op(BinaryOp::Less, "1", R"("2")")) ==
        R"(expected a number on the right of '<' (the left is a number), found string "2")");
  CHECK(failMessage(op(BinaryOp::GreaterEqual, R"("a")", "null")) ==
        "expected a string on the right of '>=' (the left is a string), found null");
  CHECK(failMessage(op(BinaryOp::Greater, "null", "1")) ==
        "expected two numbers or two strings for '>', found null");
  CHECK(failMessage(op(BinaryOp::LessEqual, "[1]", "[2]")) ==
        "expected two numbers or two strings for '<=', found array [1]");
  CHECK_FALSE(op(BinaryOp::Less, "true", "false").ok());
}

TEST_CASE("'in' finds elements of arrays, keys of objects and substrings") {
  CHECK(okJson(op(BinaryOp::In, "2", "[1, 2.0, 3]")) == "true");
  CHECK(okJson(op(BinaryOp::In, R"({"a":1})", R"([{"a":1.0}])")) == "true");
  CHECK(okJson(op(BinaryOp::In, "4", "[1, 2, 3]")) == "false");
  CHECK(okJson(op(BinaryOp::In, "null", "[]")) == "false");
  CHECK(okJson(op(BinaryOp::In, R"("a")", R"({"a": null})")) == "true");
  CHECK(okJson(op(BinaryOp::In, R"("b")", R"({"a": 1})")) == "false");
  CHECK(okJson(op(BinaryOp::In, R"("ell")", R"("hello")")) == "true");
  CHECK(okJson(op(BinaryOp::In, R"("")", R"("")")) == "true");
  CHECK(okJson(op(BinaryOp::In, R"("L")", R"("hello")")) == "false");
}

TEST_CASE("'in' with a container of the wrong kind or a non-string key is an error") {
  CHECK(failMessage(op(BinaryOp::In, "1", R"({"1": true})")) ==
        "expected a string key to look up in an object, found integer 1");
  CHECK(failMessage(op(BinaryOp::In, "1", R"("123")")) ==
        "expected a string to search for in a string, found integer 1");
  CHECK(failMessage(op(BinaryOp::In, "1", "1")) ==
        "expected an array, object or string to search in, found integer 1");
  CHECK(failMessage(op(BinaryOp::In, R"("a")", "null")) ==
        "expected an array, object or string to search in, found null");
}

TEST_CASE("'!' needs a boolean") {
  CHECK(okJson(applyUnary(UnaryOp::Not, Value(true))) == "false");
  CHECK(okJson(applyUnary(UnaryOp::Not, Value(false))) == "true");
  CHECK(failMessage(applyUnary(UnaryOp::Not, Value(nullptr))) ==
        "expected a boolean for '!', found null");
  CHECK(failMessage(applyUnary(UnaryOp::Not, Value(0))) ==
        "expected a boolean for '!', found integer 0");
}

TEST_CASE("unary '-' negates numbers and reports the overflow of the smallest integer") {
  CHECK(okJson(applyUnary(UnaryOp::Negate, Value(5))) == "-5");
  CHECK(okJson(applyUnary(UnaryOp::Negate, Value(kMax))) == "-9223372036854775807");
  CHECK(okJson(applyUnary(UnaryOp::Negate, Value(2.5))) == "-2.5");
  CHECK(okJson(applyUnary(UnaryOp::Negate, Value(0.0))) == "-0.0");
  CHECK(failMessage(applyUnary(UnaryOp::Negate, Value(kMin))) ==
        "integer overflow in unary '-': -(-9223372036854775808) does not fit in 64 bits");
  CHECK(failMessage(applyUnary(UnaryOp::Negate, Value("5"))) ==
        R"(expected a number for unary '-', found string "5")");
}

TEST_CASE("conditions need booleans") {
  CHECK(okValue(requireBoolean(Value(true), "for '&&'")) == true);
  CHECK(failMessage(requireBoolean(Value("true"), "for the decision condition")) ==
        R"(expected a boolean for the decision condition, found string "true")");
  CHECK(failMessage(requireBoolean(Value(1), "for '||'")) ==
        "expected a boolean for '||', found integer 1");
}

TEST_CASE("templates insert strings as they are and other values as compact JSON") {
  CHECK(templateText(Value("plain")) == "plain");
  CHECK(templateText(Value(nullptr)) == "null");
  CHECK(templateText(Value(1.0)) == "1.0");
  CHECK(templateText(Value(42)) == "42");
  CHECK(templateText(Value(true)) == "true");
  CHECK(templateText(json(R"({"a": [1, "x"]})")) == R"({"a":[1,"x"]})");
  CHECK(templateText(Value::missing()) == "null");
  std::string out = "id-";
  appendTemplateText(out, Value(7));
  CHECK(out == "id-7");
}

TEST_CASE("the missing marker behaves as null except when asked") {
  Value missing = Value::missing();
  CHECK(missing.isNull());
  CHECK(missing.isMissing());
  CHECK_FALSE(Value(nullptr).isMissing());
  CHECK(missing == Value(nullptr));
  Value copy = missing;
  CHECK(copy.isMissing());
}

TEST_CASE("operators spell themselves as in source") {
  CHECK(std::string(binaryOpSpelling(BinaryOp::In)) == "in");
  CHECK(std::string(binaryOpSpelling(BinaryOp::GreaterEqual)) == ">=");
  CHECK(std::string(binaryOpSpelling(BinaryOp::Remainder)) == "%");
  CHECK(std::string(unaryOpSpelling(UnaryOp::Not)) == "!");
  CHECK(std::string(unaryOpSpelling(UnaryOp::Negate)) == "-");
}
