// The workflow error value and the small result type every fallible operation of the VM's
// data layer returns. A WorkflowError is what `$.error` shows inside a catch, what a failed
// run records, and what an expression that goes wrong raises; Result<T> carries either a T
// or such an error, so expression evaluation never throws and never aborts on user data.
#pragma once

#include "kotoba/vm/value.h"

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace kotoba {

// The error types the language itself raises. Activities and `fail` may use any other name.
namespace error_types {
inline constexpr std::string_view ExpressionError = "ExpressionError";
inline constexpr std::string_view PathError = "PathError";
inline constexpr std::string_view InvalidPayload = "InvalidPayload";
inline constexpr std::string_view PayloadTooLarge = "PayloadTooLarge";
inline constexpr std::string_view InputValidationError = "InputValidationError";
inline constexpr std::string_view OutputValidationError = "OutputValidationError";
} // namespace error_types

struct WorkflowError {
  std::string type;
  std::string message;
  // Free-form data about the failure; null when there is none.
  Value details;
  // Workflow ids the error crossed on its way up from child runs, innermost first.
  std::vector<std::string> chain;
  // Whether a retry policy may retry the step that failed with this error. Errors the
  // language raises are deterministic, so retrying them cannot help: they are not retryable.
  bool retryable = false;
  // Fields beyond the standard four, kept in order (a saga adds `compensation` and
  // `compensation_errors` to the error it re-raises).
  Object extensions;

  // The object a workflow sees: {type, message, details, chain, ...extensions}. `retryable`
  // is a property of the failed step, not data for the workflow, so it is left out.
  [[nodiscard]] Value toValue() const;
};

[[nodiscard]] WorkflowError makeError(std::string_view type, std::string message,
                                      Value details = nullptr);
[[nodiscard]] WorkflowError expressionError(std::string message);
[[nodiscard]] WorkflowError pathError(std::string message);

// A short, single-line rendering of a value for messages: its kind and, when it is small,
// the value itself, as in `string "abc"`, `integer 5`, `array [1,2,...]`, `null`.
[[nodiscard]] std::string describeValue(const Value &value);

// The kind of a value with an article, for sentences: "a string", "an integer", "null".
[[nodiscard]] const char *kindWithArticle(ValueKind kind);

// The standard mismatch message: "expected a number for '+', found string \"abc\"".
// `expected` is a phrase ("a number", "integers"); `where` places it, preposition included
// ("for '+'", "as argument 2 of substr()").
[[nodiscard]] std::string mismatchMessage(std::string_view expected, std::string_view where,
                                          const Value &found);
[[nodiscard]] WorkflowError typeMismatch(std::string_view expected, std::string_view where,
                                         const Value &found);

// Either a value or a WorkflowError. Deliberately tiny: no implicit conversions between
// results, no exceptions. Check ok() (or the bool conversion) before reading value().
template <typename T> class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, WorkflowError>, "a Result cannot hold an error as its value");

public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(WorkflowError error) : state_(std::in_place_index<1>, std::move(error)) {}

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  [[nodiscard]] const T &value() const & {
    assert(ok() && "value() on a failed result; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &value() & {
    assert(ok() && "value() on a failed result; check ok() first");
    return std::get<0>(state_);
  }
  [[nodiscard]] T &&value() && {
    assert(ok() && "value() on a failed result; check ok() first");
    return std::get<0>(std::move(state_));
  }
  [[nodiscard]] const T &operator*() const & { return value(); }
  [[nodiscard]] const T *operator->() const { return &value(); }

  [[nodiscard]] const WorkflowError &error() const & {
    assert(!ok() && "error() on a successful result");
    return std::get<1>(state_);
  }
  [[nodiscard]] WorkflowError &&error() && {
    assert(!ok() && "error() on a successful result");
    return std::get<1>(std::move(state_));
  }

private:
  std::variant<T, WorkflowError> state_;
};

// Reads an error object as activities report it ({type, message, details, retryable}) or as
// toValue wrote it. `message` defaults to "", `details` to null, `chain` to [], `retryable`
// to true (an activity failure is worth retrying unless it says it is not, as in Temporal);
// any other key becomes an extension. A value that is not such an object (no string `type`,
// a field of the wrong kind) is itself a failure of whoever sent it: the result is then an
// InvalidPayload error, not retryable, whose message names the problem and whose details
// hold the original value.
[[nodiscard]] WorkflowError workflowErrorFromValue(const Value &value);

} // namespace kotoba
