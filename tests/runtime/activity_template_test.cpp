// Implementation templates: what `${ }` may hold, how values are inserted, `??` fallbacks,
// the errors for malformed templates and missing data, and the redaction of `$.env` values.
#include "kotoba/runtime/activity_template.h"

#include "kotoba/vm/json.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>

namespace kotoba::runtime {
namespace {

Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

TemplateValue compiled(const Value &source) {
  Result<TemplateValue> result = TemplateValue::compile(source, "activity 'a' implementation");
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  return result.value();
}

struct Evaluation {
  Result<Value> value;
  std::shared_ptr<Redactor> redactor;
};

Evaluation evaluate(const Value &source, const Value &input,
                    std::map<std::string, std::string> env = {}) {
  TemplateValue compiledValue = compiled(source);
  auto redactor = std::make_shared<Redactor>();
  EnvironmentLookup environment = fixedEnvironment(std::move(env));
  Result<Value> value = compiledValue.evaluate(TemplateScope{input, environment, *redactor});
  return Evaluation{std::move(value), redactor};
}

std::string evaluateText(std::string_view text, const Value &input,
                         std::map<std::string, std::string> env = {}) {
  Evaluation result = evaluate(Value(text), input, std::move(env));
  REQUIRE_MESSAGE(result.value.ok(), (result.value.ok() ? "" : result.value.error().message));
  REQUIRE(result.value->isString());
  return result.value->asString();
}

WorkflowError compileError(std::string_view text) {
  Result<TemplateValue> result = TemplateValue::compile(
      json(fmt::format("{{\"url\": {}}}", toJson(Value(text)))), "activity 'a' implementation");
  REQUIRE_FALSE(result.ok());
  return result.error();
}

} // namespace

TEST_CASE("templates insert input values: strings as they are, other values as compact JSON") {
  Value input = json(R"({"id": "A-1", "n": 5, "x": 1.0, "ok": true, "none": null,
                         "list": [1, "two"], "obj": {"k": "v"}})");
  CHECK(evaluateText("order ${$.input.id}!", input) == "order A-1!");
  CHECK(evaluateText("${$.input.n}/${$.input.x}/${$.input.ok}/${$.input.none}", input) ==
        "5/1.0/true/null");
  CHECK(evaluateText("${$.input.list} ${$.input.obj}", input) == R"([1,"two"] {"k":"v"})");
  CHECK(evaluateText("${ $.input }", json(R"({"a":1})")) == R"({"a":1})");
}

TEST_CASE("template paths take members, quoted keys, indexes from either end and projections") {
  Value input = json(R"({"odd key": "o", "items": [{"sku": "s1"}, {"sku": "s2"}]})");
  CHECK(evaluateText("${$.input['odd key']}", input) == "o");
  CHECK(evaluateText("${$.input.items[0].sku}", input) == "s1");
  CHECK(evaluateText("${$.input.items[-1].sku}", input) == "s2");
  CHECK(evaluateText("${$.input.items[*].sku}", input) == R"(["s1","s2"])");
  CHECK(evaluateText("${$['input'].items[ 1 ].sku}", input) == "s2");
}

TEST_CASE("a doubled dollar writes a literal ${ and a string without ${ is left alone") {
  Value input = json(R"({"id": 3})");
  CHECK(evaluateText("cost: $${price} for ${$.input.id}", input) == "cost: ${price} for 3");
  TemplateValue escapedOnly = compiled(Value("$${HOME}"));
  CHECK(escapedOnly.isConstant());
  CHECK(escapedOnly.source() == Value("$${HOME}"));
  TemplateValue plain = compiled(json(R"({"command": "/bin/true", "args": ["$HOME", "$"]})"));
  CHECK(plain.isConstant());
  Redactor redactor;
  EnvironmentLookup none = fixedEnvironment({});
  Result<Value> value = plain.evaluate(TemplateScope{input, none, redactor});
  REQUIRE(value.ok());
  CHECK(value.value() == json(R"({"command": "/bin/true", "args": ["$HOME", "$"]})"));
}

TEST_CASE("templates inside nested objects and arrays are evaluated element by element") {
  Value source = json(R"({"type": "process", "command": "./x.sh",
                          "args": ["--order", "${$.input.id}", 3],
                          "env": {"TOKEN": "${$.env.TOKEN}", "LOG": "1"}})");
  Evaluation result = evaluate(source, json(R"({"id": "o-9"})"), {{"TOKEN", "s3cr3t-value"}});
  REQUIRE(result.value.ok());
  CHECK(result.value.value() == json(R"({"type": "process", "command": "./x.sh",
                                        "args": ["--order", "o-9", 3],
                                        "env": {"TOKEN": "s3cr3t-value", "LOG": "1"}})"));
}

TEST_CASE("?? falls through missing input, null and unset variables to the first present value") {
  Value input = json(R"({"present": "p", "nothing": null})");
  CHECK(evaluateText("${$.input.absent ?? 'fallback'}", input) == "fallback");
  CHECK(evaluateText("${$.input.nothing ?? \"dflt\"}", input) == "dflt");
  CHECK(evaluateText("${$.input.present ?? 'unused'}", input) == "p");
  CHECK(evaluateText("${$.env.UNSET ?? $.input.present}", input) == "p");
  CHECK(evaluateText("${$.env.LEVEL ?? 'info'}", input, {{"LEVEL", "debug"}}) == "debug");
  CHECK(evaluateText("${$.input.absent ?? $.input.other ?? 42}", input) == "42");
  CHECK(evaluateText("${$.input.absent ?? null}", input) == "null");
  CHECK(evaluateText("${$.input.absent ?? -1.5} ${$.input.absent ?? false}", input) ==
        "-1.5 false");
  CHECK(evaluateText(R"(${$.input.absent ?? 'it\'s \\ "q"\n'})", input) == "it's \\ \"q\"\n");
}

TEST_CASE("a path into the input that leads nowhere is a PathError naming the field") {
  Evaluation result =
      evaluate(json(R"({"args": ["${$.input.order.id}"]})"), json(R"({"order": {"ids": 1}})"));
  REQUIRE_FALSE(result.value.ok());
  CHECK(result.value.error().type == "PathError");
  CHECK(result.value.error().message ==
        "activity 'a' implementation args[0]: $.input.order.id: $.input.order has no member "
        "'id'; did you mean 'ids'?");
  CHECK_FALSE(result.value.error().retryable);
}

TEST_CASE("an unset environment variable without a default names the variable and the fix") {
  Evaluation result = evaluate(
      json(R"({"headers": {"Authorization": "Bearer ${$.env.SHOP_TOKEN}"}})"), Value(Object()));
  REQUIRE_FALSE(result.value.ok());
  const WorkflowError &error = result.value.error();
  CHECK(error.type == "InvalidImplementation");
  CHECK(error.message ==
        "activity 'a' implementation headers.Authorization reads environment variable "
        "'SHOP_TOKEN', which is not set; set it in the engine's environment or give a "
        "default, as ${$.env.SHOP_TOKEN ?? \"...\"}");
  CHECK(error.details == json(R"({"variable": "SHOP_TOKEN"})"));
}

TEST_CASE("malformed templates are rejected when the implementation is compiled") {
  CHECK(compileError("a ${$.input.x").message ==
        "invalid template in activity 'a' implementation url: unterminated template: '${' has "
        "no closing '}'");
  CHECK(compileError("${}").message.find("empty template") != std::string::npos);
  CHECK(compileError("${ $.inputs.x }").message ==
        "invalid template in activity 'a' implementation url: unknown root '$.inputs' in "
        "'$.inputs.x'; implementation templates read $.input and $.env; inside an "
        "implementation the activity's input is $.input, not $.inputs");
  CHECK(compileError("${$.vars.x}").message.find("unknown root '$.vars'") != std::string::npos);
  CHECK(compileError("${$.env}").message.find("must name one environment variable") !=
        std::string::npos);
  CHECK(compileError("${$.env.A.B}").message.find("must name one environment variable") !=
        std::string::npos);
  CHECK(compileError("${len($.input)}").message.find("unknown name 'len'") != std::string::npos);
  CHECK(compileError("${$.input.a + 1}")
            .message.find("expected '?"
                          "?' or '}'") != std::string::npos);
  CHECK(compileError("${$.input[$.input.i]}").message.find("computed indexes") !=
        std::string::npos);
  CHECK(compileError("${'open}").message.find("unterminated string") != std::string::npos);
  CHECK(compileError("${'\\q'}").message.find("unknown escape") != std::string::npos);
  WorkflowError error = compileError("x ${$.input.");
  CHECK(error.type == "InvalidImplementation");
  CHECK_FALSE(error.retryable);
  CHECK(error.details == json(R"({"field": "url", "template": "x ${$.input."})"));
}

TEST_CASE("fields with keys that are not identifiers are named with a quoted key") {
  Result<TemplateValue> result = TemplateValue::compile(
      json(R"({"headers": {"X-Token": "${oops}"}})"), "activity 'a' implementation");
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("implementation headers[\"X-Token\"]:") != std::string::npos);
}

TEST_CASE("environment values a template reads are redacted, short ones are not") {
  Evaluation result = evaluate(json(R"(["${$.env.TOKEN}", "${$.env.DEBUG}"])"), Value(Object()),
                               {{"TOKEN", "tok-123456"}, {"DEBUG", "1"}});
  REQUIRE(result.value.ok());
  const Redactor &redactor = *result.redactor;
  CHECK(redactor.redactText("header tok-123456 sent, exit 1") ==
        "header [redacted $.env.TOKEN] sent, exit 1");
  WorkflowError error = makeError("E", "failed with tok-123456",
                                  json(R"({"argv": ["x", "tok-123456"], "tok-123456": 2})"));
  error.extensions.set("extra", Value("tok-123456!"));
  WorkflowError redacted = redactor.redactError(error);
  CHECK(redacted.message == "failed with [redacted $.env.TOKEN]");
  CHECK(redacted.details == json(R"({"argv": ["x", "[redacted $.env.TOKEN]"],
                                     "[redacted $.env.TOKEN]": 2})"));
  CHECK(*redacted.extensions.find("extra") == Value("[redacted $.env.TOKEN]!"));
}

TEST_CASE("a secret that contains another is replaced whole") {
  Redactor redactor;
  redactor.addSecret("SHORT", "abcd");
  redactor.addSecret("LONG", "xxabcdxx");
  CHECK(redactor.redactText("xxabcdxx and abcd") ==
        "[redacted $.env.LONG] and [redacted $.env.SHORT]");
}

TEST_CASE("an environment value that is not UTF-8 is refused") {
  Evaluation result = evaluate(Value("${$.env.BAD}"), Value(Object()), {{"BAD", "\xff\xfe"}});
  REQUIRE_FALSE(result.value.ok());
  CHECK(result.value.error().type == "InvalidPayload");
}

} // namespace kotoba::runtime
