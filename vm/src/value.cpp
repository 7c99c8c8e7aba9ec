// Value construction, access and structural equality.
#include "kotoba/vm/value.h"

#include "kotoba/vm/operations.h"

#include <cassert>

namespace kotoba {

const char *valueKindName(ValueKind kind) {
  switch (kind) {
  case ValueKind::Null:
    return "null";
  case ValueKind::Bool:
    return "boolean";
  case ValueKind::Int:
    return "integer";
  case ValueKind::Double:
    return "double";
  case ValueKind::String:
    return "string";
  case ValueKind::Array:
    return "array";
  case ValueKind::Object:
    return "object";
  }
  return "unknown";
}

const Value *Object::find(std::string_view key) const {
  for (const ObjectEntry &entry : entries_) {
    if (entry.key == key) {
      return &entry.value;
    }
  }
  return nullptr;
}

void Object::set(std::string key, Value value) {
  for (ObjectEntry &entry : entries_) {
    if (entry.key == key) {
      entry.value = std::move(value);
      return;
    }
  }
  entries_.push_back(ObjectEntry{std::move(key), std::move(value)});
}

bool Object::erase(std::string_view key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key == key) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

Value::Value(std::string value)
    : kind_(ValueKind::String), int_(0),
      payload_(std::make_shared<const std::string>(std::move(value))) {}

Value::Value(Array value)
    : kind_(ValueKind::Array), int_(0),
      payload_(std::make_shared<const Array>(std::move(value))) {}

Value::Value(Object value)
    : kind_(ValueKind::Object), int_(0),
      payload_(std::make_shared<const Object>(std::move(value))) {}

Value Value::missing() {
  Value marker;
  marker.missing_ = true;
  return marker;
}

bool Value::asBool() const {
  assert(isBool() && "asBool on a value that is not a boolean");
  return bool_;
}

int64_t Value::asInt() const {
  assert(isInt() && "asInt on a value that is not an integer");
  return int_;
}

double Value::asDouble() const {
  assert(isDouble() && "asDouble on a value that is not a double");
  return double_;
}

double Value::asNumber() const {
  assert(isNumber() && "asNumber on a value that is not a number");
  return isInt() ? static_cast<double>(int_) : double_;
}

const std::string &Value::asString() const {
  assert(isString() && "asString on a value that is not a string");
  return *static_cast<const std::string *>(payload_.get());
}

const Array &Value::asArray() const {
  assert(isArray() && "asArray on a value that is not an array");
  return *static_cast<const Array *>(payload_.get());
}

const Object &Value::asObject() const {
  assert(isObject() && "asObject on a value that is not an object");
  return *static_cast<const Object *>(payload_.get());
}

// Mixed integer/double equality is exact: 2^53 + 1 does not equal the double 2^53, which a
// conversion of the integer to double would claim.
static bool numbersEqual(const Value &left, const Value &right) {
  if (left.isInt() && right.isInt()) {
    return left.asInt() == right.asInt();
  }
  if (left.isInt()) {
    return compareIntWithDouble(left.asInt(), right.asDouble()) == 0;
  }
  if (right.isInt()) {
    return compareIntWithDouble(right.asInt(), left.asDouble()) == 0;
  }
  return left.asDouble() == right.asDouble();
}

bool operator==(const Value &left, const Value &right) {
  if (left.isNumber() && right.isNumber()) {
    return numbersEqual(left, right);
  }
  if (left.kind() != right.kind()) {
    return false;
  }
  switch (left.kind()) {
  case ValueKind::Null:
    return true;
  case ValueKind::Bool:
    return left.asBool() == right.asBool();
  case ValueKind::Int:
  case ValueKind::Double:
    return numbersEqual(left, right);
  case ValueKind::String:
    return left.payload_ == right.payload_ || left.asString() == right.asString();
  case ValueKind::Array:
    return left.payload_ == right.payload_ || left.asArray() == right.asArray();
  case ValueKind::Object: {
    if (left.payload_ == right.payload_) {
      return true;
    }
    // Key order does not matter for equality; only the set of entries does.
    const Object &a = left.asObject();
    const Object &b = right.asObject();
    if (a.size() != b.size()) {
      return false;
    }
    for (const ObjectEntry &entry : a) {
      const Value *other = b.find(entry.key);
      if (other == nullptr || !(*other == entry.value)) {
        return false;
      }
    }
    return true;
  }
  }
  return false;
}

} // namespace kotoba
