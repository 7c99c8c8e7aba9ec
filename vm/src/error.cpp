// Workflow errors: conversion to and from the object a workflow sees, and the wording shared
// by every "expected X, found Y" message.
#include "kotoba/vm/error.h"

#include "kotoba/vm/json.h"

#include <fmt/format.h>

namespace kotoba {

// Longer renderings are cut, so a message about a 2 MiB payload stays one readable line.
static constexpr size_t kMaxDescribedValueBytes = 40;

Value WorkflowError::toValue() const {
  Object object;
  object.reserve(4 + extensions.size());
  object.set("type", type);
  object.set("message", message);
  object.set("details", details);
  Array chainValues;
  chainValues.reserve(chain.size());
  for (const std::string &workflowId : chain) {
    chainValues.emplace_back(workflowId);
  }
  object.set("chain", std::move(chainValues));
  for (const ObjectEntry &entry : extensions) {
    object.set(entry.key, entry.value);
  }
  return Value(std::move(object));
}

static WorkflowError malformedError(std::string problem, const Value &value) {
  WorkflowError error = makeError(error_types::InvalidPayload,
                                  fmt::format("malformed error object: {}", problem), value);
  error.retryable = false;
  return error;
}

WorkflowError workflowErrorFromValue(const Value &value) {
  if (!value.isObject()) {
    return malformedError(fmt::format("expected an object, found {}", describeValue(value)),
                          value);
  }
  WorkflowError error;
  error.retryable = true;
  bool sawType = false;
  for (const ObjectEntry &entry : value.asObject()) {
    const Value &field = entry.value;
    if (entry.key == "type") {
      if (!field.isString() || field.asString().empty()) {
        return malformedError(
            fmt::format("'type' must be a non-empty string, found {}", describeValue(field)),
            value);
      }
      error.type = field.asString();
      sawType = true;
    } else if (entry.key == "message") {
      if (!field.isString() && !field.isNull()) {
        return malformedError(
            fmt::format("'message' must be a string, found {}", describeValue(field)), value);
      }
      error.message = field.isString() ? field.asString() : std::string();
    } else if (entry.key == "details") {
      error.details = field;
    } else if (entry.key == "chain") {
      if (!field.isArray()) {
        return malformedError(
            fmt::format("'chain' must be an array of strings, found {}", describeValue(field)),
            value);
      }
      for (const Value &workflowId : field.asArray()) {
        if (!workflowId.isString()) {
          return malformedError(fmt::format("'chain' must hold strings, found {}",
                                            describeValue(workflowId)),
                                value);
        }
        error.chain.push_back(workflowId.asString());
      }
    } else if (entry.key == "retryable") {
      if (!field.isBool()) {
        return malformedError(
            fmt::format("'retryable' must be a boolean, found {}", describeValue(field)),
            value);
      }
      error.retryable = field.asBool();
    } else {
      error.extensions.set(entry.key, field);
    }
  }
  if (!sawType) {
    return malformedError("it has no 'type'; report errors as {\"type\": ..., \"message\": ...}",
                          value);
  }
  return error;
}

WorkflowError makeError(std::string_view type, std::string message, Value details) {
  WorkflowError error;
  error.type = std::string(type);
  error.message = std::move(message);
  error.details = std::move(details);
  return error;
}

WorkflowError expressionError(std::string message) {
  return makeError(error_types::ExpressionError, std::move(message));
}

WorkflowError pathError(std::string message) {
  return makeError(error_types::PathError, std::move(message));
}

const char *kindWithArticle(ValueKind kind) {
  switch (kind) {
  case ValueKind::Null:
    return "null";
  case ValueKind::Bool:
    return "a boolean";
  case ValueKind::Int:
    return "an integer";
  case ValueKind::Double:
    return "a double";
  case ValueKind::String:
    return "a string";
  case ValueKind::Array:
    return "an array";
  case ValueKind::Object:
    return "an object";
  }
  return "an unknown value";
}

// Cuts after at most `limit` bytes without splitting a UTF-8 sequence.
static std::string truncateUtf8(std::string text, size_t limit) {
  if (text.size() <= limit) {
    return text;
  }
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  text.resize(cut);
  text += "...";
  return text;
}

std::string describeValue(const Value &value) {
  if (value.isNull()) {
    return "null";
  }
  if (value.isArray() && value.asArray().empty()) {
    return "an empty array";
  }
  if (value.isObject() && value.asObject().empty()) {
    return "an empty object";
  }
  return fmt::format("{} {}", value.kindName(),
                     truncateUtf8(toJson(value), kMaxDescribedValueBytes));
}

std::string mismatchMessage(std::string_view expected, std::string_view where,
                            const Value &found) {
  return fmt::format("expected {} {}, found {}", expected, where, describeValue(found));
}

WorkflowError typeMismatch(std::string_view expected, std::string_view where,
                           const Value &found) {
  return expressionError(mismatchMessage(expected, where, found));
}

} // namespace kotoba
