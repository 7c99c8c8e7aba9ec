// Templates in activity implementation objects (language.md section 6): strings such as
// "http://127.0.0.1/orders/${$.input.order_id}" or "Bearer ${$.env.SHOP_TOKEN}", evaluated
// when the activity runs over `$.input` (the call's evaluated input) and `$.env` (the engine
// process's environment). The compiler keeps implementation objects as written; this file
// compiles them once, when an activity is created from its declaration (so a malformed
// template refuses the run before it starts), and evaluates them per attempt.
//
// Inside `${ }` an implementation template takes a small part of the expression language,
// the part configuration needs:
//   - paths into the input, with the language's steps and semantics (path.h):
//     `$.input`, `$.input.order.id`, `$.input['odd key']`, `$.input.items[0]`,
//     `$.input.items[-1]`, `$.input.items[*].sku`
//   - one environment variable: `$.env.NAME` or `$.env['NAME']`
//   - literals: "text" or 'text' (escapes \\ \" \' \n \r \t), numbers, true, false, null
//   - `a ?? b ?? ...`: the first operand that is present and not null (earlier operands
//     are read optionally: a missing key or an unset variable falls through)
// Values are inserted as template text (operations.h: strings as they are, anything else as
// compact JSON), and `$${` writes a literal `${`. Only strings are templates; object keys
// are taken as written. Every `$.env` value a template reads is added to the attempt's
// Redactor, so it is masked in errors and logs.
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba::runtime {

// Reads one environment variable; nullopt when it is not set.
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The engine process's environment (getenv).
[[nodiscard]] EnvironmentLookup processEnvironment();
// A fixed set of variables, for tests and hosts that pass a curated environment.
[[nodiscard]] EnvironmentLookup fixedEnvironment(std::map<std::string, std::string> variables);

// Appends a value read from `$.input` to the text of a template that holds more than it.
using InputTextWriter = std::function<void(std::string &text, const Value &value)>;

struct TemplateScope {
  const Value &input;
  const EnvironmentLookup &environment;
  // Receives every `$.env` value a template reads.
  Redactor &redactor;
  // How values from `$.input` are written into template text; null writes template text
  // (appendTemplateText). The http activity percent-encodes them in its url with it, so
  // input stays data there. `$.env` values and literals are configuration: always as written.
  const InputTextWriter *inputText = nullptr;
};

// A Value whose strings may hold templates, compiled. Copies share the compiled form.
class TemplateValue {
public:
  // Compiles every string of `source` that contains `${`. `where` names the value in
  // messages ("activity 'reserve' implementation"); fields inside it are named after it
  // ("args[1]", "headers.Authorization"). Errors are InvalidImplementation, not retryable,
  // with details {field, template}.
  [[nodiscard]] static Result<TemplateValue> compile(const Value &source, std::string where);

  // The value with every template replaced by its text. Errors: PathError for a path into
  // the input that does not lead anywhere, InvalidImplementation for an environment variable
  // that is not set (or not UTF-8); neither is retryable.
  [[nodiscard]] Result<Value> evaluate(const TemplateScope &scope) const;

  // The value as written.
  [[nodiscard]] const Value &source() const;
  // Whether no string of it is a template (evaluate returns the source).
  [[nodiscard]] bool isConstant() const;

  struct Node;

private:
  TemplateValue(std::shared_ptr<const Node> root, Value source, std::string where)
      : root_(std::move(root)), source_(std::move(source)), where_(std::move(where)) {}
  std::shared_ptr<const Node> root_;
  Value source_;
  std::string where_;
};

} // namespace kotoba::runtime
