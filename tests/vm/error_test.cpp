// Workflow errors: the object a workflow sees, reading errors reported by activities, and
// the shared wording of mismatch messages.
#include "kotoba/vm/error.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

using namespace kotoba;
using kotoba::testing::json;

TEST_CASE("an error becomes an object with type, message, details and chain in that order") {
  WorkflowError error = makeError("PaymentDeclined", "card expired", json(R"({"code": 51})"));
  error.chain = {"charge_card", "checkout"};
  error.retryable = true;
  error.extensions.set("compensation", "completed");
  CHECK(toJson(error.toValue()) ==
        R"({"type":"PaymentDeclined","message":"card expired","details":{"code":51},)"
        R"("chain":["charge_card","checkout"],"compensation":"completed"})");
}

TEST_CASE("an error read back from its object is the same error") {
  WorkflowError error = makeError("OutOfStock", "no sku-1", json("[1, 2]"));
  error.chain = {"child"};
  error.extensions.set("compensation_errors", json("[]"));
  WorkflowError back = workflowErrorFromValue(error.toValue());
  CHECK(back.type == "OutOfStock");
  CHECK(back.message == "no sku-1");
  CHECK(back.details == json("[1, 2]"));
  CHECK(back.chain == std::vector<std::string>{"child"});
  CHECK(toJson(back.toValue()) == toJson(error.toValue()));
}

TEST_CASE("an activity error without optional fields gets defaults and is retryable") {
  WorkflowError error = workflowErrorFromValue(json(R"({"type": "Timeout"})"));
  CHECK(error.type == "Timeout");
  CHECK(error.message.empty());
  CHECK(error.details.isNull());
  CHECK(error.chain.empty());
  CHECK(error.retryable);
  CHECK_FALSE(workflowErrorFromValue(json(R"({"type": "Bad", "retryable": false})")).retryable);
}

TEST_CASE("a malformed error object becomes a non-retryable InvalidPayload error") {
  struct Case {
    const char *input;
    const char *message;
  };
  Case cases[] = {
      {R"("boom")", R"(malformed error object: expected an object, found string "boom")"},
      {R"({"message": "x"})", "malformed error object: it has no 'type'; report errors as "
                              R"({"type": ..., "message": ...})"},
      {R"({"type": ""})", R"(malformed error object: 'type' must be a non-empty string, )"
                          R"(found string "")"},
      {R"({"type": "A", "message": 5})",
       "malformed error object: 'message' must be a string, found integer 5"},
      {R"({"type": "A", "chain": "w"})",
       R"(malformed error object: 'chain' must be an array of strings, found string "w")"},
      {R"({"type": "A", "chain": [1]})",
       "malformed error object: 'chain' must hold strings, found integer 1"},
      {R"({"type": "A", "retryable": "yes"})",
       R"(malformed error object: 'retryable' must be a boolean, found string "yes")"},
  };
  for (const Case &c : cases) {
    INFO(c.input);
    Value input = json(c.input);
    WorkflowError error = workflowErrorFromValue(input);
    CHECK(error.type == "InvalidPayload");
    CHECK(error.message == c.message);
    CHECK_FALSE(error.retryable);
    CHECK(error.details == input);
  }
}

TEST_CASE("errors raised by expressions are not retryable") {
  CHECK(expressionError("x").type == "ExpressionError");
  CHECK_FALSE(expressionError("x").retryable);
  CHECK(pathError("x").type == "PathError");
  CHECK_FALSE(pathError("x").retryable);
}

TEST_CASE("values are described by kind and a short preview") {
  CHECK(describeValue(Value(nullptr)) == "null");
  CHECK(describeValue(Value(true)) == "boolean true");
  CHECK(describeValue(Value(5)) == "integer 5");
  CHECK(describeValue(Value(2.0)) == "double 2.0");
  CHECK(describeValue(Value("abc")) == R"(string "abc")");
  CHECK(describeValue(json("[]")) == "an empty array");
  CHECK(describeValue(json("{}")) == "an empty object");
  CHECK(describeValue(json(R"({"a":1})")) == R"(object {"a":1})");
  CHECK(describeValue(Value(std::string(100, 'x'))) ==
        "string \"" + std::string(39, 'x') + "...");
}

TEST_CASE("a long preview is cut without splitting a UTF-8 character") {
  // 38 ASCII bytes after the quote, then a 4-byte emoji straddling the 40-byte limit.
  std::string text = std::string(38, 'a') + "\xF0\x9F\x98\x80" + "tail";
  CHECK(describeValue(Value(text)) == "string \"" + std::string(38, 'a') + "...");
}

TEST_CASE("mismatch messages say what was expected, where, and what was found") {
  CHECK(mismatchMessage("a number", "for '+'", Value("abc")) ==
        R"(expected a number for '+', found string "abc")");
  WorkflowError error = typeMismatch("a boolean", "for '&&'", Value(1));
  CHECK(error.type == "ExpressionError");
  CHECK(error.message == "expected a boolean for '&&', found integer 1");
}

TEST_CASE("kinds read naturally with their article") {
  CHECK(std::string(kindWithArticle(ValueKind::Int)) == "an integer");
  CHECK(std::string(kindWithArticle(ValueKind::Array)) == "an array");
  CHECK(std::string(kindWithArticle(ValueKind::Object)) == "an object");
  CHECK(std::string(kindWithArticle(ValueKind::String)) == "a string");
  CHECK(std::string(kindWithArticle(ValueKind::Null)) == "null");
}

TEST_CASE("a result holds either a value or an error") {
  Result<int> good = 7;
  REQUIRE(good.ok());
  CHECK(*good == 7);
  Result<int> bad = expressionError("nope");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "nope");
  Result<std::string> moved = std::string("payload");
  CHECK(std::move(moved).value() == "payload");
}
