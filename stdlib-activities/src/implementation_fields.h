// Checking and reading the fields of an implementation object, shared by the standard
// activities. A factory checks every field once, when the module is resolved, so a typo
// refuses the run before it starts; fields that hold templates can only be checked for
// their final form after evaluation, per attempt, with the same readers.
//
// Templates always evaluate to strings, so fields that are numbers or durations also accept
// a string (`port: "${$.env.SMTP_PORT}"`, `timeout: "${$.env.TIMEOUT ?? '10s'}"`).
#pragma once

#include "kotoba/runtime/activity_registry.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::stdlib::detail {

// An InvalidImplementation error (not retryable): "activity 'NAME': MESSAGE".
[[nodiscard]] WorkflowError invalidImplementation(std::string_view activityName,
                                                  std::string message);

// Whether a string holds a template (`${`); such a field is checked after evaluation.
[[nodiscard]] bool holdsTemplate(const Value &value);

// Checks the field names of an implementation. `typeName` is the implementation type for
// the message ("unknown field 'sttatement' in a sql implementation; it takes ...").
[[nodiscard]] std::optional<WorkflowError>
checkFieldNames(const runtime::ImplementationRequest &request, std::string_view typeName,
                std::initializer_list<std::string_view> fields);

// Field checks at resolve time. Each returns nullopt when the field is absent (unless
// required) or has the right form.
class FieldChecker {
public:
  FieldChecker(const runtime::ImplementationRequest &request, std::string_view typeName)
      : request_(request), typeName_(typeName) {}

  [[nodiscard]] std::optional<WorkflowError> required(std::string_view field,
                                                      std::string_view example) const;
  [[nodiscard]] std::optional<WorkflowError> string(std::string_view field) const;
  [[nodiscard]] std::optional<WorkflowError> boolean(std::string_view field) const;
  // A string, or an array of strings.
  [[nodiscard]] std::optional<WorkflowError> strings(std::string_view field) const;
  // An object whose values are strings, numbers, booleans or null (headers, query).
  [[nodiscard]] std::optional<WorkflowError> textMap(std::string_view field) const;
  // A non-negative integer of milliseconds or a duration string (language.md section 8).
  [[nodiscard]] std::optional<WorkflowError> duration(std::string_view field) const;
  // An integer or a string of digits, within [low, high].
  [[nodiscard]] std::optional<WorkflowError> integer(std::string_view field, int64_t low,
                                                     int64_t high) const;

  [[nodiscard]] const runtime::ImplementationRequest &request() const { return request_; }

private:
  [[nodiscard]] const Value *find(std::string_view field) const;
  [[nodiscard]] WorkflowError wrongKind(std::string_view field, std::string_view expected,
                                        const Value &found) const;

  const runtime::ImplementationRequest &request_;
  std::string_view typeName_;
};

// Per-attempt readers over the evaluated implementation object. `activityName` names the
// activity in errors, which are InvalidImplementation.
[[nodiscard]] Result<std::optional<int64_t>>
readDurationMs(std::string_view activityName, const Object &fields, std::string_view field);
[[nodiscard]] Result<std::optional<int64_t>> readInteger(std::string_view activityName,
                                                         const Object &fields,
                                                         std::string_view field, int64_t low,
                                                         int64_t high);
// A string or an array of strings as a list; absent is empty.
[[nodiscard]] std::vector<std::string> readStrings(const Object &fields, std::string_view field);
// A string field, or nullopt when absent or null.
[[nodiscard]] std::optional<std::string> readString(const Object &fields, std::string_view field);
// Strings, numbers and booleans as template text (templateText); null stays nullopt.
[[nodiscard]] std::optional<std::string> scalarText(const Value &value);

// `path` made absolute against `baseDirectory` (the workflow file's directory), or the
// engine's working directory when that is empty. Absolute paths are kept.
[[nodiscard]] std::string resolvePath(const std::string &path, const std::string &baseDirectory);

// Standard base64 with padding (RFC 4648 section 4).
[[nodiscard]] std::string base64Encode(std::string_view bytes);
// The bytes of standard base64; padding optional, line breaks and spaces skipped. nullopt
// for any other character, or a length no encoder makes.
[[nodiscard]] std::optional<std::string> base64Decode(std::string_view text);

} // namespace kotoba::stdlib::detail
