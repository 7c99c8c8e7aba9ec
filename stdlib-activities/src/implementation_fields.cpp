// Field checks and readers for implementation objects (implementation_fields.h).
#include "implementation_fields.h"

#include "kotoba/runtime/activity.h"
#include "kotoba/vm/duration.h"
#include "kotoba/vm/operations.h"

#include <fmt/format.h>

#include <unistd.h>

#include <array>
#include <charconv>

namespace kotoba::stdlib::detail {

namespace {

// An integer written in decimal digits (an optional leading '-'), nothing else.
std::optional<int64_t> parseDecimal(std::string_view text) {
  int64_t number = 0;
  auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (problem != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return number;
}

} // namespace

WorkflowError invalidImplementation(std::string_view activityName, std::string message) {
  return makeError(runtime::activity_errors::InvalidImplementation,
                   fmt::format("activity '{}': {}", activityName, message));
}

bool holdsTemplate(const Value &value) {
  return value.isString() && value.asString().find("${") != std::string::npos;
}

std::optional<WorkflowError> checkFieldNames(const runtime::ImplementationRequest &request,
                                             std::string_view typeName,
                                             std::initializer_list<std::string_view> fields) {
  for (const ObjectEntry &entry : request.implementation.asObject()) {
    if (entry.key == "type") {
      continue;
    }
    bool known = false;
    for (std::string_view field : fields) {
      known = known || field == entry.key;
    }
    if (!known) {
      std::string list;
      for (std::string_view field : fields) {
        list += list.empty() ? std::string(field) : ", " + std::string(field);
      }
      return invalidImplementation(request.activityName,
                                   fmt::format("unknown field '{}' in the {} implementation; it "
                                               "takes {}",
                                               entry.key, typeName, list));
    }
  }
  return std::nullopt;
}

const Value *FieldChecker::find(std::string_view field) const {
  return request_.implementation.asObject().find(field);
}

WorkflowError FieldChecker::wrongKind(std::string_view field, std::string_view expected,
                                      const Value &found) const {
  return invalidImplementation(request_.activityName,
                               fmt::format("'{}' of the {} implementation must be {}, found {}",
                                           field, typeName_, expected, describeValue(found)));
}

std::optional<WorkflowError> FieldChecker::required(std::string_view field,
                                                    std::string_view example) const {
  if (find(field) != nullptr) {
    return std::nullopt;
  }
  return invalidImplementation(
      request_.activityName,
      fmt::format("the {} implementation needs '{}', as in {}", typeName_, field, example));
}

std::optional<WorkflowError> FieldChecker::string(std::string_view field) const {
  const Value *value = find(field);
  if (value == nullptr || value->isString()) {
    return std::nullopt;
  }
  return wrongKind(field, "a string", *value);
}

std::optional<WorkflowError> FieldChecker::boolean(std::string_view field) const {
  const Value *value = find(field);
  if (value == nullptr || value->isBool()) {
    return std::nullopt;
  }
  return wrongKind(field, "true or false", *value);
}

std::optional<WorkflowError> FieldChecker::strings(std::string_view field) const {
  const Value *value = find(field);
  if (value == nullptr || value->isString()) {
    return std::nullopt;
  }
  if (!value->isArray()) {
    return wrongKind(field, "a string or an array of strings", *value);
  }
  for (const Value &element : value->asArray()) {
    if (!element.isString()) {
      return wrongKind(field, "a string or an array of strings", element);
    }
  }
  return std::nullopt;
}

std::optional<WorkflowError> FieldChecker::textMap(std::string_view field) const {
  const Value *value = find(field);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (!value->isObject()) {
    return wrongKind(field, "an object of strings", *value);
  }
  for (const ObjectEntry &entry : value->asObject()) {
    const Value &element = entry.value;
    if (!element.isString() && !element.isNumber() && !element.isBool() && !element.isNull()) {
      return invalidImplementation(
          request_.activityName,
          fmt::format("'{}.{}' of the {} implementation must be a string, number, boolean or "
                      "null, found {}",
                      field, entry.key, typeName_, describeValue(element)));
    }
  }
  return std::nullopt;
}

std::optional<WorkflowError> FieldChecker::duration(std::string_view field) const {
  const Value *value = find(field);
  if (value == nullptr || holdsTemplate(*value)) {
    return std::nullopt;
  }
  Object single;
  single.set(std::string(field), *value);
  Result<std::optional<int64_t>> parsed = readDurationMs(request_.activityName, single, field);
  if (!parsed.ok()) {
    return std::move(parsed).error();
  }
  return std::nullopt;
}

std::optional<WorkflowError> FieldChecker::integer(std::string_view field, int64_t low,
                                                   int64_t high) const {
  const Value *value = find(field);
  if (value == nullptr || holdsTemplate(*value)) {
    return std::nullopt;
  }
  Object single;
  single.set(std::string(field), *value);
  Result<std::optional<int64_t>> parsed =
      readInteger(request_.activityName, single, field, low, high);
  if (!parsed.ok()) {
    return std::move(parsed).error();
  }
  return std::nullopt;
}

Result<std::optional<int64_t>> readDurationMs(std::string_view activityName, const Object &fields,
                                              std::string_view field) {
  const Value *value = fields.find(field);
  if (value == nullptr || value->isNull()) {
    return std::optional<int64_t>();
  }
  if (value->isInt() && value->asInt() >= 0) {
    return std::optional<int64_t>(value->asInt());
  }
  if (!value->isString()) {
    return invalidImplementation(activityName,
                                 fmt::format("'{}' must be a duration such as \"10s\" or "
                                             "\"PT0.5S\", or milliseconds as an integer, found {}",
                                             field, describeValue(*value)));
  }
  Result<int64_t> parsed = parseDurationMs(value->asString());
  if (!parsed.ok()) {
    return invalidImplementation(activityName,
                                 fmt::format("'{}': {}", field, parsed.error().message));
  }
  return std::optional<int64_t>(parsed.value());
}

Result<std::optional<int64_t>> readInteger(std::string_view activityName, const Object &fields,
                                           std::string_view field, int64_t low, int64_t high) {
  const Value *value = fields.find(field);
  if (value == nullptr || value->isNull()) {
    return std::optional<int64_t>();
  }
  std::optional<int64_t> number;
  if (value->isInt()) {
    number = value->asInt();
  } else if (value->isString()) {
    number = parseDecimal(value->asString());
  }
  if (!number || *number < low || *number > high) {
    return invalidImplementation(activityName,
                                 fmt::format("'{}' must be an integer from {} to {}, found {}",
                                             field, low, high, describeValue(*value)));
  }
  return number;
}

std::vector<std::string> readStrings(const Object &fields, std::string_view field) {
  std::vector<std::string> list;
  const Value *value = fields.find(field);
  if (value == nullptr || value->isNull()) {
    return list;
  }
  if (value->isString()) {
    list.push_back(value->asString());
    return list;
  }
  for (const Value &element : value->asArray()) {
    list.push_back(element.asString());
  }
  return list;
}

std::optional<std::string> readString(const Object &fields, std::string_view field) {
  const Value *value = fields.find(field);
  if (value == nullptr || !value->isString()) {
    return std::nullopt;
  }
  return value->asString();
}

std::optional<std::string> scalarText(const Value &value) {
  if (value.isNull()) {
    return std::nullopt;
  }
  return templateText(value);
}

std::string resolvePath(const std::string &path, const std::string &baseDirectory) {
  if (path.empty() || path.front() == '/') {
    return path;
  }
  std::string base = baseDirectory;
  if (base.empty()) {
    std::array<char, 4096> buffer;
    if (::getcwd(buffer.data(), buffer.size()) != nullptr) {
      base = buffer.data();
    }
  }
  if (base.empty()) {
    return path;
  }
  return base.back() == '/' ? base + path : base + "/" + path;
}

std::string base64Encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t group = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += kAlphabet[(group >> 6) & 63];
    out += kAlphabet[group & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t group = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) {
      group |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    }
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += rest == 2 ? kAlphabet[(group >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t bits = 0;
  int pendingBits = 0;
  size_t digits = 0;
  size_t padding = 0;
  for (char c : text) {
    int value = -1;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=') {
      ++padding;
      continue;
    } else if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
      continue;
    } else {
      return std::nullopt;
    }
    if (padding > 0) {
      return std::nullopt; // a digit after padding
    }
    ++digits;
    bits = (bits << 6) | uint32_t(value);
    pendingBits += 6;
    if (pendingBits >= 8) {
      pendingBits -= 8;
      out += char((bits >> pendingBits) & 0xff);
    }
  }
  // One digit alone in the last group holds under a byte: no encoder writes that.
  if (digits % 4 == 1 || padding > 2 || (padding > 0 && (digits + padding) % 4 != 0)) {
    return std::nullopt;
  }
  return out;
}

} // namespace kotoba::stdlib::detail
