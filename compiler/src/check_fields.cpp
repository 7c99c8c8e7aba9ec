// Field-level checking shared by every construct: known and unknown fields, constant values
// of the right type, durations, retry policies, and "did you mean" suggestions.
#include "checker.h"

#include "kotoba/vm/duration.h"

#include <llvm/ADT/StringRef.h>

#include <fmt/format.h>

#include <algorithm>

namespace kotoba::compiler {

std::string closestMatch(std::string_view name, const std::vector<std::string> &candidates) {
  std::string best;
  unsigned bestDistance = UINT32_MAX;
  for (const std::string &candidate : candidates) {
    unsigned distance = llvm::StringRef(candidate).edit_distance(
        llvm::StringRef(name.data(), name.size()), /*AllowReplacements=*/true,
        /*MaxEditDistance=*/bestDistance);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  // A third of the name's length, at least one edit: "paralel" -> "parallel", but not
  // "x" -> "id".
  unsigned limit = std::max<unsigned>(1, static_cast<unsigned>(name.size()) / 3);
  return bestDistance <= limit ? best : std::string();
}

std::string didYouMean(std::string_view name, const std::vector<std::string> &candidates) {
  std::string match = closestMatch(name, candidates);
  return match.empty() ? std::string() : fmt::format("; did you mean '{}'?", match);
}

const char *nodeKindDescription(NodeKind kind) {
  switch (kind) {
  case NodeKind::Null:
    return "null";
  case NodeKind::Bool:
    return "a boolean";
  case NodeKind::Integer:
    return "an integer";
  case NodeKind::Double:
    return "a number";
  case NodeKind::String:
    return "a string";
  case NodeKind::Array:
    return "an array";
  case NodeKind::Object:
    return "an object";
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
  case NodeKind::Call:
  case NodeKind::Identifier:
  case NodeKind::Unary:
  case NodeKind::Binary:
  case NodeKind::Conditional:
    return "an expression";
  }
  return "a value";
}

bool isIdentifierLike(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  auto isStart = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto isRest = [&](char c) {
    return isStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  };
  if (!isStart(text[0])) {
    return false;
  }
  for (char c : text.substr(1)) {
    if (!isRest(c)) {
      return false;
    }
  }
  return true;
}

FieldReader::FieldReader(Checker &checker, const Node *object, std::string context,
                         std::vector<std::string> allowed)
    : checker_(checker), object_(object), context_(std::move(context)),
      allowed_(std::move(allowed)) {}

const ObjectMember *FieldReader::find(std::string_view key) const {
  return object_->member(key);
}

const ObjectMember *FieldReader::require(std::string_view key) {
  const ObjectMember *member = find(key);
  if (member == nullptr) {
    checker_.error(DiagnosticKind::MissingField, object_->range,
                   fmt::format("{} is missing the required field '{}'", context_, key));
  }
  return member;
}

std::optional<std::string> FieldReader::string(std::string_view key, bool required) {
  const ObjectMember *member = required ? require(key) : find(key);
  if (member == nullptr) {
    return std::nullopt;
  }
  if (member->value->kind != NodeKind::String) {
    if (!checker_.isConstant(member->value)) {
      checker_.error(DiagnosticKind::ExpressionInConstant, member->value->range,
                     fmt::format("'{}' is not evaluated; write a string constant", key));
    } else {
      checker_.error(DiagnosticKind::WrongType, member->value->range,
                     fmt::format("'{}' must be a string, found {}", key,
                                 nodeKindDescription(member->value->kind)));
    }
    return std::nullopt;
  }
  return member->value->text;
}

void FieldReader::reportKind(std::string_view key, const Node *value,
                             std::string_view expected) {
  // A constant of another kind is the wrong type; an expression is not evaluated here at all.
  DiagnosticKind kind = checker_.isConstant(value) ? DiagnosticKind::WrongType
                                                   : DiagnosticKind::ExpressionInConstant;
  checker_.error(kind, value->range,
                 fmt::format("'{}' must be {}, found {}", key, expected,
                             nodeKindDescription(value->kind)));
}

std::optional<int64_t> FieldReader::integer(std::string_view key) {
  const ObjectMember *member = find(key);
  if (member == nullptr) {
    return std::nullopt;
  }
  if (member->value->kind != NodeKind::Integer) {
    reportKind(key, member->value, "an integer constant");
    return std::nullopt;
  }
  return member->value->intValue;
}

std::optional<double> FieldReader::number(std::string_view key) {
  const ObjectMember *member = find(key);
  if (member == nullptr) {
    return std::nullopt;
  }
  if (member->value->kind == NodeKind::Integer) {
    return static_cast<double>(member->value->intValue);
  }
  if (member->value->kind == NodeKind::Double) {
    return member->value->doubleValue;
  }
  reportKind(key, member->value, "a number constant");
  return std::nullopt;
}

std::optional<bool> FieldReader::boolean(std::string_view key) {
  const ObjectMember *member = find(key);
  if (member == nullptr) {
    return std::nullopt;
  }
  if (member->value->kind != NodeKind::Bool) {
    reportKind(key, member->value, "true or false");
    return std::nullopt;
  }
  return member->value->boolValue;
}

std::optional<int64_t> FieldReader::duration(std::string_view key) {
  const ObjectMember *member = find(key);
  if (member == nullptr) {
    return std::nullopt;
  }
  return checker_.durationOf(member->value, key);
}

std::optional<std::string> FieldReader::choice(std::string_view key,
                                               const std::vector<std::string> &choices) {
  std::optional<std::string> text = string(key);
  if (!text) {
    return std::nullopt;
  }
  for (const std::string &candidate : choices) {
    if (candidate == *text) {
      return text;
    }
  }
  std::string list;
  for (const std::string &candidate : choices) {
    list += (list.empty() ? "'" : ", '") + candidate + "'";
  }
  checker_.error(DiagnosticKind::InvalidValue, find(key)->value->range,
                 fmt::format("'{}' must be one of {}, found '{}'{}", key, list, *text,
                             didYouMean(*text, choices)));
  return std::nullopt;
}

void FieldReader::reportUnknown() {
  for (const ObjectMember &member : object_->members) {
    bool known = false;
    for (const std::string &name : allowed_) {
      if (name == member.key) {
        known = true;
        break;
      }
    }
    if (!known) {
      checker_.error(DiagnosticKind::UnknownField, member.keyRange,
                     fmt::format("unknown field '{}' in {}{}", member.key, context_,
                                 didYouMean(member.key, allowed_)));
    }
  }
}

void Checker::error(DiagnosticKind kind, SourceRange range, std::string message) {
  compilation_.diagnostics.report(kind, range, std::move(message));
}

void Checker::warning(DiagnosticKind kind, SourceRange range, std::string message) {
  compilation_.diagnostics.report(kind, range, std::move(message));
}

bool Checker::isConstant(const Node *node) const {
  switch (node->kind) {
  case NodeKind::Null:
  case NodeKind::Bool:
  case NodeKind::Integer:
  case NodeKind::Double:
  case NodeKind::String:
    return true;
  case NodeKind::Array:
    for (const Node *element : node->children) {
      if (!isConstant(element)) {
        return false;
      }
    }
    return true;
  case NodeKind::Object:
    for (const ObjectMember &member : node->members) {
      if (!isConstant(member.value)) {
        return false;
      }
    }
    return true;
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
  case NodeKind::Call:
  case NodeKind::Identifier:
  case NodeKind::Unary:
  case NodeKind::Binary:
  case NodeKind::Conditional:
    return false;
  }
  return false;
}

std::optional<Value> Checker::constant(const Node *node, std::string_view context) {
  switch (node->kind) {
  case NodeKind::Null:
    return Value();
  case NodeKind::Bool:
    return Value(node->boolValue);
  case NodeKind::Integer:
    return Value(node->intValue);
  case NodeKind::Double:
    return Value(node->doubleValue);
  case NodeKind::String:
    return Value(node->text);
  case NodeKind::Array: {
    Array array;
    bool ok = true;
    for (const Node *element : node->children) {
      std::optional<Value> value = constant(element, context);
      ok = ok && value.has_value();
      array.push_back(value.value_or(Value()));
    }
    return ok ? std::optional<Value>(Value(std::move(array))) : std::nullopt;
  }
  case NodeKind::Object: {
    Object object;
    bool ok = true;
    for (const ObjectMember &member : node->members) {
      std::optional<Value> value = constant(member.value, context);
      ok = ok && value.has_value();
      object.set(member.key, value.value_or(Value()));
    }
    return ok ? std::optional<Value>(Value(std::move(object))) : std::nullopt;
  }
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
  case NodeKind::Call:
  case NodeKind::Identifier:
  case NodeKind::Unary:
  case NodeKind::Binary:
  case NodeKind::Conditional:
    error(DiagnosticKind::ExpressionInConstant, node->range,
          fmt::format("{} is not evaluated; write a constant value here", context));
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<int64_t> Checker::durationOf(const Node *node, std::string_view context) {
  if (node->kind != NodeKind::String) {
    DiagnosticKind kind =
        isConstant(node) ? DiagnosticKind::WrongType : DiagnosticKind::ExpressionInConstant;
    error(kind, node->range,
          fmt::format("'{}' must be a duration string such as \"PT30S\" or \"30s\", found {}",
                      context, nodeKindDescription(node->kind)));
    return std::nullopt;
  }
  Result<int64_t> parsed = parseDurationMs(node->text);
  if (!parsed.ok()) {
    error(DiagnosticKind::InvalidDuration, node->range, parsed.error().message);
    return std::nullopt;
  }
  return parsed.value();
}

std::optional<RetryPolicySpec> Checker::retryPolicy(const Node *node) {
  if (node->kind != NodeKind::Object) {
    error(
        DiagnosticKind::WrongType, node->range,
        fmt::format("'retry_policy' must be an object, found {}", nodeKindDescription(node->kind)));
    return std::nullopt;
  }
  std::optional<Value> source = constant(node, "'retry_policy'");
  if (!source) {
    return std::nullopt;
  }
  // retry.h owns the rules; each problem it finds is placed on the field it concerns.
  static const std::vector<std::string> known = {"initial_interval",     "backoff_coefficient",
                                                 "maximum_interval",     "maximum_attempts",
                                                 "non_retryable_errors", "jitter"};
  ParsedRetryPolicy parsed = parseRetryPolicy(*source);
  for (const RetryPolicyProblem &problem : parsed.problems) {
    const ObjectMember *member = node->member(problem.field);
    bool unknown = std::find(known.begin(), known.end(), problem.field) == known.end();
    SourceRange where = member == nullptr ? node->range
                        : unknown         ? member->keyRange
                                          : member->value->range;
    error(unknown ? DiagnosticKind::UnknownField : DiagnosticKind::InvalidRetryPolicy, where,
          problem.message);
  }
  if (!parsed.problems.empty()) {
    return std::nullopt;
  }
  return RetryPolicySpec{parsed.policy, node->range};
}

} // namespace kotoba::compiler
