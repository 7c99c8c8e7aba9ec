// Value: the JSON-like data every workflow computes with (null, boolean, int64, double,
// string, array, object). Values are immutable and share their payload, so copying one into
// a register, a checkpoint or an event is a reference-count bump, never a deep copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotoba {

class Value;

// Arrays keep element order; objects keep insertion order (the spec requires it), so an
// object is a vector of entries. Lookups are linear, which beats hashing for the small
// objects workflows carry; Object::find is the one place to change if that stops holding.
using Array = std::vector<Value>;

struct ObjectEntry;
class Object {
public:
  Object() = default;

  [[nodiscard]] const Value *find(std::string_view key) const;
  [[nodiscard]] bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Inserts or overwrites, keeping the original position of an existing key.
  void set(std::string key, Value value);
  // Appends an entry whose key the caller knows is absent (a decoder that tracks the keys it
  // has seen). set() scans the entries first, which makes building a large object quadratic.
  void appendNew(std::string key, Value value);
  bool erase(std::string_view key);

  [[nodiscard]] size_t size() const;
  [[nodiscard]] bool empty() const;
  [[nodiscard]] auto begin() const { return entries_.begin(); }
  [[nodiscard]] auto end() const { return entries_.end(); }
  [[nodiscard]] const std::vector<ObjectEntry> &entries() const { return entries_; }
  void reserve(size_t count);

private:
  std::vector<ObjectEntry> entries_;
};

enum class ValueKind : uint8_t { Null, Bool, Int, Double, String, Array, Object };

[[nodiscard]] const char *valueKindName(ValueKind kind);

class Value {
public:
  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool value) : kind_(ValueKind::Bool), bool_(value) {}
  Value(int value) : kind_(ValueKind::Int), int_(value) {}
  Value(int64_t value) : kind_(ValueKind::Int), int_(value) {}
  Value(double value) : kind_(ValueKind::Double), double_(value) {}
  Value(std::string value);
  Value(std::string_view value) : Value(std::string(value)) {}
  Value(const char *value) : Value(std::string(value)) {}
  Value(Array value);
  Value(Object value);

  // The result of an optional read (`??`, exists(), coalesce) whose path named a key or index
  // that is not there. It is a null in every respect (kind, equality, JSON) except that
  // isMissing() says so; exists() is the one function that tells it from a present null.
  // Operations treat it as null and never produce it; the VM stores a plain null in its place.
  [[nodiscard]] static Value missing();
  [[nodiscard]] bool isMissing() const { return missing_; }

  [[nodiscard]] ValueKind kind() const { return kind_; }
  [[nodiscard]] const char *kindName() const { return valueKindName(kind_); }
  [[nodiscard]] bool isNull() const { return kind_ == ValueKind::Null; }
  [[nodiscard]] bool isBool() const { return kind_ == ValueKind::Bool; }
  [[nodiscard]] bool isInt() const { return kind_ == ValueKind::Int; }
  [[nodiscard]] bool isDouble() const { return kind_ == ValueKind::Double; }
  [[nodiscard]] bool isNumber() const { return isInt() || isDouble(); }
  [[nodiscard]] bool isString() const { return kind_ == ValueKind::String; }
  [[nodiscard]] bool isArray() const { return kind_ == ValueKind::Array; }
  [[nodiscard]] bool isObject() const { return kind_ == ValueKind::Object; }

  // Accessors assert the kind; check it first.
  [[nodiscard]] bool asBool() const;
  [[nodiscard]] int64_t asInt() const;
  [[nodiscard]] double asDouble() const;
  // An integer or a double as a double.
  [[nodiscard]] double asNumber() const;
  [[nodiscard]] const std::string &asString() const;
  [[nodiscard]] const Array &asArray() const;
  [[nodiscard]] const Object &asObject() const;

  // Deep structural equality, with 1 == 1.0 as the language requires.
  friend bool operator==(const Value &left, const Value &right);

private:
  ValueKind kind_ = ValueKind::Null;
  // Only ever true on a Null; fits in the padding after kind_, so it costs no space.
  bool missing_ = false;
  union {
    bool bool_;
    int64_t int_ = 0;
    double double_;
  };
  // The string, Array or Object for those kinds, shared between copies.
  std::shared_ptr<const void> payload_;
};

struct ObjectEntry {
  std::string key;
  Value value;
};

// Defined here, not in Object, where ObjectEntry is still incomplete: clang instantiates
// C++20's constexpr std::vector members where they are used.
inline size_t Object::size() const { return entries_.size(); }
inline bool Object::empty() const { return entries_.empty(); }
inline void Object::reserve(size_t count) { entries_.reserve(count); }
inline void Object::appendNew(std::string key, Value value) {
  entries_.push_back(ObjectEntry{std::move(key), std::move(value)});
}

} // namespace kotoba
