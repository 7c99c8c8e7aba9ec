// JSON reading and writing: number kinds, key order, UTF-8 and surrogate rejection with
// offsets, depth limits, double spelling and byte-exact round trips.
#include "kotoba/vm/json.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace kotoba;
using kotoba::testing::json;

TEST_CASE("numbers without fraction or exponent that fit int64 parse as integers") {
  CHECK(json("0").isInt());
  CHECK(json("-0").isInt());
  CHECK(json("-0").asInt() == 0);
  CHECK(json("42").asInt() == 42);
  CHECK(json("9223372036854775807").asInt() == std::numeric_limits<int64_t>::max());
  CHECK(json("-9223372036854775808").asInt() == std::numeric_limits<int64_t>::min());
}

TEST_CASE("numbers with a fraction, an exponent or beyond int64 parse as doubles") {
  CHECK(json("1.0").isDouble());
  CHECK(json("1e2").isDouble());
  CHECK(json("1e2").asDouble() == 100.0);
  CHECK(json("-0.0").isDouble());
  CHECK(std::signbit(json("-0.0").asDouble()));
  CHECK(json("9223372036854775808").isDouble());
  CHECK(json("9223372036854775808").asDouble() == 9223372036854775808.0);
  CHECK(json("-9223372036854775809").isDouble());
  CHECK(json("18446744073709551615").isDouble());
  CHECK(json("18446744073709551615").asDouble() == 18446744073709551615.0);
  CHECK(json("123456789012345678901234567890").isDouble());
}

TEST_CASE("a number too large for a double is rejected") {
  Result<Value> parsed = parseJson("[1e400]");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().type == "InvalidPayload");
  CHECK(parsed.error().message.find("number overflow") != std::string::npos);
}

TEST_CASE("object keys keep their insertion order") {
  Value value = json(R"({"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}})");
  CHECK(toJson(value) == R"({"zeta":1,"alpha":2,"mid":{"b":1,"a":2}})");
}

TEST_CASE("a repeated key keeps its first position and its last value") {
  Value value = json(R"({"a": 1, "b": 2, "a": 3})");
  CHECK(toJson(value) == R"({"a":3,"b":2})");
}

TEST_CASE("invalid UTF-8 is rejected with the offset of the first bad byte") {
  std::string text = "{\"name\": \"caf\xC3\xA9 \xFF\"}";
  Result<Value> parsed = parseJson(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().type == "InvalidPayload");
  CHECK(parsed.error().message == "invalid JSON at byte 16: the text is not valid UTF-8");
  CHECK(toJson(parsed.error().details) == R"({"offset":16})");
}

TEST_CASE("findInvalidUtf8 accepts every well-formed sequence length") {
  CHECK_FALSE(findInvalidUtf8("plain ascii").has_value());
  CHECK_FALSE(findInvalidUtf8("\xC2\x80").has_value());              // U+0080
  CHECK_FALSE(findInvalidUtf8("\xDF\xBF").has_value());              // U+07FF
  CHECK_FALSE(findInvalidUtf8("\xE0\xA0\x80").has_value());          // U+0800
  CHECK_FALSE(findInvalidUtf8("\xED\x9F\xBF").has_value());          // U+D7FF
  CHECK_FALSE(findInvalidUtf8("\xEE\x80\x80").has_value());          // U+E000
  CHECK_FALSE(findInvalidUtf8("\xEF\xBF\xBE").has_value());          // U+FFFE
  CHECK_FALSE(findInvalidUtf8("\xEF\xBF\xBF").has_value());          // U+FFFF
  CHECK_FALSE(findInvalidUtf8("\xF0\x90\x80\x80").has_value());      // U+10000
  CHECK_FALSE(findInvalidUtf8("\xF4\x8F\xBF\xBF").has_value());      // U+10FFFF
  CHECK(isValidUtf8(std::string_view("a\0b", 3)));
}

TEST_CASE("findInvalidUtf8 rejects overlong forms, surrogates, out-of-range and truncation") {
  CHECK(findInvalidUtf8("ab\xC0\xAF") == 2u);            // overlong '/'
  CHECK(findInvalidUtf8("\xC1\xBF") == 0u);              // overlong
  CHECK(findInvalidUtf8("x\xE0\x9F\xBF") == 1u);         // overlong 3-byte
  CHECK(findInvalidUtf8("\xED\xA0\x80") == 0u);          // encoded U+D800
  CHECK(findInvalidUtf8("\xED\xBF\xBF") == 0u);          // encoded U+DFFF
  CHECK(findInvalidUtf8("\xF0\x8F\xBF\xBF") == 0u);      // overlong 4-byte
  CHECK(findInvalidUtf8("\xF4\x90\x80\x80") == 0u);      // above U+10FFFF
  CHECK(findInvalidUtf8("\xF5\x80\x80\x80") == 0u);      // lead byte never valid
  CHECK(findInvalidUtf8("ok\x80") == 2u);                // lone continuation byte
  CHECK(findInvalidUtf8("\xE2\x82") == 0u);              // truncated at the end
  CHECK(findInvalidUtf8("\xE2\x82z") == 0u);             // truncated by ASCII
  CHECK(findInvalidUtf8("\xF0\x9F\x98") == 0u);          // truncated emoji
}

TEST_CASE("a lone surrogate escape is rejected and a valid pair decodes to one code point") {
  for (const char *text : {R"("\ud800")", R"("\udc00")", R"("\ud800x")", R"("\ud800\u0041")"}) {
    INFO(text);
    Result<Value> parsed = parseJson(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().type == "InvalidPayload");
    CHECK(parsed.error().message.find("surrogate") != std::string::npos);
    CHECK(parsed.error().message.rfind("invalid JSON at byte ", 0) == 0);
  }
  CHECK(json(R"("\ud83d\ude00")").asString() == "\xF0\x9F\x98\x80");
}

TEST_CASE("syntax errors name the byte where parsing stopped") {
  Result<Value> parsed = parseJson(R"({"a": 1,})");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message ==
        "invalid JSON at byte 8: syntax error while parsing object key - unexpected '}'; "
        "expected string literal");
  CHECK_FALSE(parseJson("").ok());
  CHECK_FALSE(parseJson("[1] 2").ok());
  CHECK_FALSE(parseJson("{'a': 1}").ok());
  CHECK_FALSE(parseJson("[1, // comment\n 2]").ok());
  CHECK(json("  [1]\n ").asArray().size() == 1);
}

TEST_CASE("nesting is limited to kMaxJsonDepth levels") {
  std::string deepest(kMaxJsonDepth, '[');
  deepest += std::string(kMaxJsonDepth, ']');
  CHECK(parseJson(deepest).ok());

  std::string tooDeep = "{\"a\":" + std::string(kMaxJsonDepth, '[');
  tooDeep += std::string(kMaxJsonDepth, ']') + "}";
  Result<Value> parsed = parseJson(tooDeep);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message ==
        "invalid JSON at byte 516: arrays and objects nest deeper than 512 levels");
}

TEST_CASE("a million nested brackets are rejected without exhausting the stack") {
  std::string hostile(1'000'000, '[');
  CHECK_FALSE(parseJson(hostile).ok());
}

TEST_CASE("doubles are written in shortest round-trip form and stay doubles") {
  CHECK(formatDouble(1.0) == "1.0");
  CHECK(formatDouble(-0.0) == "-0.0");
  CHECK(formatDouble(0.1) == "0.1");
  CHECK(formatDouble(100.0) == "100.0");
  CHECK(formatDouble(1.5e300) == "1.5e+300");
  CHECK(formatDouble(1e21) == "1e+21");
  CHECK(formatDouble(1e-7) == "1e-07");
  CHECK(formatDouble(0.1 + 0.2) == "0.30000000000000004");
  CHECK(formatDouble(9007199254740993.0) == "9007199254740992.0");
  CHECK(toJson(Value(2.0)) == "2.0");
  CHECK(toJson(Value(int64_t{2})) == "2");
}

TEST_CASE("every double round-trips exactly through JSON text") {
  // A fixed pseudo-random walk over bit patterns covers subnormals, huge and tiny values.
  uint64_t state = 0x9E3779B97F4A7C15u;
  int checked = 0;
  for (int step = 0; step < 20000; ++step) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    double number = 0;
    std::memcpy(&number, &state, sizeof number);
    if (!std::isfinite(number)) {
      continue;
    }
    Value parsed = json(toJson(Value(number)));
    REQUIRE(parsed.isDouble());
    uint64_t bits = 0;
    double back = parsed.asDouble();
    std::memcpy(&bits, &back, sizeof bits);
    REQUIRE(bits == state);
    ++checked;
  }
  CHECK(checked > 19000);
  for (double number : {std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                        std::numeric_limits<double>::denorm_min(), -1e-320, 5e-324}) {
    CHECK(json(toJson(Value(number))).asDouble() == number);
  }
}

TEST_CASE("strings escape only what JSON requires") {
  Value text(std::string("quote\" backslash\\ slash/ tab\t nl\n cr\r bs\b ff\f nul") +
             std::string(1, '\0') + "\x1F\x7F");
  CHECK(toJson(text) ==
        "\"quote\\\" backslash\\\\ slash/ tab\\t nl\\n cr\\r bs\\b ff\\f nul\\u0000\\u001f\x7F\"");
  CHECK(json(toJson(text)) == text);
}

TEST_CASE("non-ASCII text survives a JSON round trip byte for byte") {
  const char *samples[] = {
      "\xF0\x9F\x98\x80",                 // emoji U+1F600
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB", // ZWJ sequence
      "e\xCC\x81 a\xCC\x8A",              // combining acute and ring
      "\xEF\xBF\xBE",                     // U+FFFE, a noncharacter that is still valid
      "\xEF\xBF\xBF",                     // U+FFFF
      "\xF4\x8F\xBF\xBF",                 // U+10FFFF
      "\xE2\x80\xA8\xE2\x80\xA9",         // line and paragraph separators
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", // CJK
  };
  for (const char *sample : samples) {
    Value original{std::string(sample)};
    std::string text = toJson(original);
    CHECK(text == "\"" + std::string(sample) + "\"");
    Value back = json(text);
    CHECK(back.asString() == sample);
  }
}

TEST_CASE("a string with bad bytes is written with U+FFFD instead of invalid JSON") {
  Value broken(std::string("a\xFFz"));
  CHECK(toJson(broken) == "\"a\xEF\xBF\xBDz\"");
}

TEST_CASE("compact JSON has no whitespace and canonical JSON equals it") {
  Value value = json(R"({ "a" : [ 1 , 2.5 , null , true , false ] , "b" : { } , "c" : [ ] })");
  CHECK(toJson(value) == R"({"a":[1,2.5,null,true,false],"b":{},"c":[]})");
  CHECK(canonicalJson(value) == toJson(value));
}

TEST_CASE("pretty JSON indents nested values and keeps empty containers short") {
  Value value = json(R"({"a":[1,{"b":null}],"e":{},"f":[]})");
  CHECK(toPrettyJson(value) == "{\n"
                               "  \"a\": [\n"
                               "    1,\n"
                               "    {\n"
                               "      \"b\": null\n"
                               "    }\n"
                               "  ],\n"
                               "  \"e\": {},\n"
                               "  \"f\": []\n"
                               "}");
  CHECK(toPrettyJson(Value(1.0), 4) == "1.0");
  CHECK(json(toPrettyJson(value)) == value);
}
