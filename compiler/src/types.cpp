// Parameter types for the checker (see types.h).
// TODO(#4): share one type parser with the VM's run-time input validation once it exists.
#include "types.h"

#include <fmt/format.h>

#include <optional>

namespace kotoba::compiler {

namespace {

constexpr std::string_view scalarTypes[] = {"string", "number", "integer", "boolean",
                                            "object", "array",  "any"};

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == ' ') {
    text.remove_suffix(1);
  }
  return text;
}

// The element type of `array<T>`, or nullopt when `type` is not of that form.
std::optional<std::string_view> elementType(std::string_view type) {
  if (!type.starts_with("array<") || !type.ends_with(">")) {
    return std::nullopt;
  }
  return trim(type.substr(6, type.size() - 7));
}

const char *article(std::string_view type) {
  return type == "integer" || type == "object" || type == "array" || type == "any" ? "an" : "a";
}

} // namespace

std::string validateTypeName(std::string_view type) {
  type = trim(type);
  if (std::optional<std::string_view> element = elementType(type)) {
    if (element->empty()) {
      return "'array<>' needs an element type, such as array<string>";
    }
    return validateTypeName(*element);
  }
  for (std::string_view scalar : scalarTypes) {
    if (type == scalar) {
      return {};
    }
  }
  return "use string, number, integer, boolean, object, array, any or array<T>";
}

std::string typeMismatch(std::string_view type, const Value &value) {
  type = trim(type);
  if (std::optional<std::string_view> element = elementType(type)) {
    if (!value.isArray()) {
      return fmt::format("expected {}, found {}", type, valueKindName(value.kind()));
    }
    const Array &items = value.asArray();
    for (size_t i = 0; i < items.size(); ++i) {
      std::string inner = typeMismatch(*element, items[i]);
      if (!inner.empty()) {
        return fmt::format("element {}: {}", i, inner);
      }
    }
    return {};
  }
  bool matches = type == "any" || (type == "string" && value.isString()) ||
                 (type == "number" && value.isNumber()) || (type == "integer" && value.isInt()) ||
                 (type == "boolean" && value.isBool()) || (type == "object" && value.isObject()) ||
                 (type == "array" && value.isArray());
  if (matches) {
    return {};
  }
  return fmt::format("expected {} {}, found {}", article(type), type, valueKindName(value.kind()));
}

} // namespace kotoba::compiler
