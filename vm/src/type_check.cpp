// Param type parsing and matching. The type syntax is a chain of `array<` prefixes around a
// base name, so it is parsed with a loop rather than recursion, and matching walks arrays
// with an explicit list of element positions for the message.
#include "kotoba/vm/type_check.h"

#include <llvm/ADT/StringRef.h>

#include <fmt/format.h>

#include <array>
#include <utility>
#include <vector>

namespace kotoba {

namespace {

struct NamedKind {
  std::string_view name;
  ParamType::Kind kind;
};

constexpr std::array<NamedKind, 7> kKinds = {{
    {"string", ParamType::Kind::String},
    {"number", ParamType::Kind::Number},
    {"integer", ParamType::Kind::Integer},
    {"boolean", ParamType::Kind::Boolean},
    {"object", ParamType::Kind::Object},
    {"array", ParamType::Kind::Array},
    {"any", ParamType::Kind::Any},
}};

std::string_view kindName(ParamType::Kind kind) {
  for (const NamedKind &named : kKinds) {
    if (named.kind == kind) {
      return named.name;
    }
  }
  return "?";
}

std::string_view trimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// Names other languages use, mapped to the type meant; edit distance would not find them.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kAliases = {{
    {"int", "integer"},
    {"long", "integer"},
    {"bool", "boolean"},
    {"float", "number"},
    {"double", "number"},
    {"str", "string"},
    {"text", "string"},
    {"dict", "object"},
    {"map", "object"},
    {"list", "array"},
}};

WorkflowError unknownType(std::string_view full, std::string_view name) {
  for (const auto &[alias, meant] : kAliases) {
    if (name == alias) {
      return expressionError(fmt::format("unknown type '{}' in '{}'; did you mean '{}'?", name,
                                         full, meant));
    }
  }
  std::string_view closest;
  unsigned closestDistance = 0;
  for (const NamedKind &named : kKinds) {
    unsigned distance = llvm::StringRef(named.name.data(), named.name.size())
                            .edit_distance(llvm::StringRef(name.data(), name.size()));
    if (closest.empty() || distance < closestDistance) {
      closest = named.name;
      closestDistance = distance;
    }
  }
  if (!name.empty() && closestDistance <= 2) {
    return expressionError(fmt::format("unknown type '{}' in '{}'; did you mean '{}'?", name,
                                       full, closest));
  }
  return expressionError(fmt::format("unknown type '{}' in '{}'; the types are string, number, "
                                     "integer, boolean, object, array, array<T> and any",
                                     name, full));
}

} // namespace

ParamType ParamType::arrayOf(ParamType element) {
  ParamType type(Kind::Array);
  type.element_ = std::make_shared<const ParamType>(std::move(element));
  return type;
}

std::string ParamType::toString() const {
  std::string prefix;
  std::string suffix;
  const ParamType *type = this;
  while (type->kind_ == Kind::Array && type->element_ != nullptr) {
    prefix += "array<";
    suffix += ">";
    type = type->element_.get();
  }
  return prefix + std::string(kindName(type->kind_)) + suffix;
}

bool operator==(const ParamType &left, const ParamType &right) {
  const ParamType *a = &left;
  const ParamType *b = &right;
  while (true) {
    if (a->kind_ != b->kind_ || (a->element_ == nullptr) != (b->element_ == nullptr)) {
      return false;
    }
    if (a->element_ == nullptr) {
      return true;
    }
    a = a->element_.get();
    b = b->element_.get();
  }
}

Result<ParamType> parseParamType(std::string_view text) {
  std::string_view full = trimSpaces(text);
  if (full.empty()) {
    return expressionError("empty type; write one of string, number, integer, boolean, object, "
                           "array, array<T> or any");
  }
  // Peel `array<` prefixes and the matching `>` suffixes, outside in.
  std::string_view rest = full;
  size_t depth = 0;
  while (rest.starts_with("array") && trimSpaces(rest.substr(5)).starts_with("<")) {
    rest = trimSpaces(trimSpaces(rest.substr(5)).substr(1));
    if (!rest.ends_with(">")) {
      return expressionError(fmt::format("'{}' is missing '>'", full));
    }
    rest = trimSpaces(rest.substr(0, rest.size() - 1));
    if (rest.empty()) {
      return expressionError(
          fmt::format("'{}' needs an element type, such as array<string>", full));
    }
    if (++depth > kMaxTypeNesting) {
      return expressionError(fmt::format("'{}' nests arrays more than {} deep", full,
                                         kMaxTypeNesting));
    }
  }
  const NamedKind *base = nullptr;
  for (const NamedKind &named : kKinds) {
    if (rest == named.name) {
      base = &named;
    }
  }
  if (base == nullptr) {
    size_t nameEnd = 0;
    while (nameEnd < rest.size() &&
           ((rest[nameEnd] >= 'a' && rest[nameEnd] <= 'z') ||
            (rest[nameEnd] >= 'A' && rest[nameEnd] <= 'Z') || rest[nameEnd] == '_')) {
      ++nameEnd;
    }
    std::string_view name = rest.substr(0, nameEnd);
    bool knownName = false;
    for (const NamedKind &named : kKinds) {
      knownName = knownName || name == named.name;
    }
    if (knownName) {
      return expressionError(fmt::format("unexpected '{}' after '{}' in '{}'",
                                         trimSpaces(rest.substr(nameEnd)), name, full));
    }
    return unknownType(full, name.empty() ? rest : name);
  }
  ParamType type(base->kind);
  for (size_t level = 0; level < depth; ++level) {
    type = ParamType::arrayOf(std::move(type));
  }
  return type;
}

static bool matchesKind(const Value &value, ParamType::Kind kind) {
  switch (kind) {
  case ParamType::Kind::String:
    return value.isString();
  case ParamType::Kind::Number:
    return value.isNumber();
  case ParamType::Kind::Integer:
    return value.isInt();
  case ParamType::Kind::Boolean:
    return value.isBool();
  case ParamType::Kind::Object:
    return value.isObject();
  case ParamType::Kind::Array:
    return value.isArray();
  case ParamType::Kind::Any:
    return true;
  }
  return false;
}

// Finds the first value that does not match, depth first, recording the element positions
// that lead to it. Recursion depth is bounded by the type's nesting (kMaxTypeNesting).
static const Value *findMismatch(const Value &value, const ParamType &type,
                                 std::vector<size_t> &positions) {
  if (!matchesKind(value, type.kind())) {
    return &value;
  }
  if (type.element() == nullptr) {
    return nullptr;
  }
  const Array &elements = value.asArray();
  for (size_t index = 0; index < elements.size(); ++index) {
    positions.push_back(index);
    if (const Value *mismatch = findMismatch(elements[index], *type.element(), positions)) {
      return mismatch;
    }
    positions.pop_back();
  }
  return nullptr;
}

std::optional<std::string> checkParamType(const Value &value, const ParamType &type) {
  std::vector<size_t> positions;
  const Value *mismatch = findMismatch(value, type, positions);
  if (mismatch == nullptr) {
    return std::nullopt;
  }
  if (positions.empty()) {
    return fmt::format("expected {}, found {}", type.toString(), describeValue(*mismatch));
  }
  std::string where;
  if (positions.size() == 1) {
    where = fmt::format("element {}", positions.front());
  } else {
    where = "element ";
    for (size_t position : positions) {
      where += fmt::format("[{}]", position);
    }
  }
  return fmt::format("expected {}, {} is {}", type.toString(), where, describeValue(*mismatch));
}

} // namespace kotoba
