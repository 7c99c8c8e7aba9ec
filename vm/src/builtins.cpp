// The builtin functions. Each has a doc comment stating what it accepts, what it returns and
// how it treats the edge cases; docs/expressions.md repeats these for users. Common rules:
// arguments are never converted implicitly (a number where a string is expected is an
// error), positions and lengths in strings count Unicode code points, and every failure is
// an ExpressionError that names the function and the offending argument.
#include "kotoba/vm/builtins.h"

#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"
#include "kotoba/vm/operations.h"

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/SHA256.h>

#include <fmt/format.h>

#include <array>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

namespace kotoba {

static constexpr BuiltinInfo kBuiltins[] = {
#define BUILTIN(Enumerator, Name, Id, MinArgs, MaxArgs, Pure)                                   \
  {BuiltinId::Enumerator, Name, MinArgs, MaxArgs, Pure},
#include "kotoba/vm/builtins.def"
};

// builtins.def lists functions in id order from 1 with no gaps; lookups by id rely on it.
static constexpr bool idsAreDense() {
  for (size_t index = 0; index < std::size(kBuiltins); ++index) {
    if (static_cast<size_t>(kBuiltins[index].id) != index + 1) {
      return false;
    }
  }
  return true;
}
static_assert(idsAreDense(), "builtins.def must list ids 1, 2, 3, ... in order");

llvm::ArrayRef<BuiltinInfo> allBuiltins() { return kBuiltins; }

const BuiltinInfo &builtinInfo(BuiltinId id) {
  const BuiltinInfo *info = findBuiltinById(static_cast<uint32_t>(id));
  assert(info != nullptr && "every BuiltinId enumerator has a table entry");
  return *info;
}

const BuiltinInfo *findBuiltin(std::string_view name) {
  for (const BuiltinInfo &info : kBuiltins) {
    if (name == info.name) {
      return &info;
    }
  }
  return nullptr;
}

const BuiltinInfo *findBuiltinById(uint32_t rawId) {
  if (rawId == 0 || rawId > std::size(kBuiltins)) {
    return nullptr;
  }
  return &kBuiltins[rawId - 1];
}

std::optional<std::string_view> closestBuiltinName(std::string_view name) {
  std::optional<std::string_view> best;
  unsigned bestDistance = 0;
  for (const BuiltinInfo &info : kBuiltins) {
    unsigned distance = llvm::StringRef(info.name).edit_distance(
        llvm::StringRef(name.data(), name.size()), /*AllowReplacements=*/true);
    if (!best || distance < bestDistance) {
      best = info.name;
      bestDistance = distance;
    }
  }
  // Two edits make a typo of a long name; for short names a third of the length is plenty.
  unsigned allowed = std::min<unsigned>(2, std::max<unsigned>(1, name.size() / 3));
  if (!best || bestDistance > allowed) {
    return std::nullopt;
  }
  return best;
}

std::string describeArity(const BuiltinInfo &info) {
  if (info.maxArgs == kVariadic) {
    return fmt::format("takes at least {} argument{}", info.minArgs,
                       info.minArgs == 1 ? "" : "s");
  }
  if (info.minArgs == info.maxArgs) {
    return fmt::format("takes {} argument{}", info.minArgs, info.minArgs == 1 ? "" : "s");
  }
  return fmt::format("takes {} or {} arguments", info.minArgs, info.maxArgs);
}

namespace {

// The arguments of one call, with the wording of errors about them.
class Args {
public:
  Args(const BuiltinInfo &info, llvm::ArrayRef<Value> values) : info_(info), values_(values) {}

  [[nodiscard]] const Value &operator[](size_t index) const { return values_[index]; }
  [[nodiscard]] size_t size() const { return values_.size(); }
  [[nodiscard]] llvm::ArrayRef<Value> all() const { return values_; }
  [[nodiscard]] const char *name() const { return info_.name; }

  // "for len()" when the function takes one argument, else "as argument 2 of substr()".
  [[nodiscard]] std::string where(size_t index) const {
    if (info_.maxArgs == 1) {
      return fmt::format("for {}()", info_.name);
    }
    return fmt::format("as argument {} of {}()", index + 1, info_.name);
  }
  [[nodiscard]] WorkflowError mismatch(size_t index, std::string_view expected) const {
    return typeMismatch(expected, where(index), values_[index]);
  }
  // An error about the call as a whole: "substr(): length must not be negative, found -1".
  [[nodiscard]] WorkflowError fail(std::string_view problem) const {
    return expressionError(fmt::format("{}(): {}", info_.name, problem));
  }

private:
  const BuiltinInfo &info_;
  llvm::ArrayRef<Value> values_;
};

// ---------------------------------------------------------------------------------------
// Code points. Strings are valid UTF-8 (checked where they enter), so a code point starts
// at every byte that is not a continuation byte.

bool isContinuationByte(char byte) { return (static_cast<unsigned char>(byte) & 0xC0) == 0x80; }

size_t codePointCount(std::string_view text) {
  size_t count = 0;
  for (char byte : text) {
    count += isContinuationByte(byte) ? 0 : 1;
  }
  return count;
}

// The byte offset where code point `index` starts (text.size() for index == count).
size_t byteOffsetOfCodePoint(std::string_view text, size_t index) {
  size_t seen = 0;
  for (size_t offset = 0; offset < text.size(); ++offset) {
    if (!isContinuationByte(text[offset])) {
      if (seen == index) {
        return offset;
      }
      ++seen;
    }
  }
  return text.size();
}

bool isAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// ---------------------------------------------------------------------------------------
// Numbers.

constexpr double kTwoTo63 = 9223372036854775808.0;

// A double with no fraction as an integer, or an error when it is outside int64.
Result<Value> integralDoubleToInt(double integral, const Args &args, std::string_view hint) {
  if (integral >= kTwoTo63 || integral < -kTwoTo63) {
    return args.fail(fmt::format("{} is outside the 64-bit integer range{}",
                                 formatDouble(integral), hint));
  }
  return Value(static_cast<int64_t>(integral));
}

// Rounds |value| to `digits` decimals, half away from zero, on its shortest decimal spelling:
// 1.005 is written "1.005", so round(1.005, 2) is 1.01 as a person expects, although the
// double nearest 1.005 is slightly below it.
double roundDecimal(double value, int digits) {
  // Fixed notation of the smallest subnormal needs about 770 characters.
  std::array<char, 1100> buffer;
  auto [end, errc] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                   std::chars_format::fixed);
  assert(errc == std::errc() && "the buffer holds any double in fixed notation");
  std::string text(buffer.data(), end);
  bool negative = !text.empty() && text.front() == '-';
  if (negative) {
    text.erase(0, 1);
  }
  size_t dot = text.find('.');
  if (dot == std::string::npos || text.size() - dot - 1 <= static_cast<size_t>(digits)) {
    return value;
  }
  bool roundUp = text[dot + 1 + digits] >= '5';
  text.resize(digits == 0 ? dot : dot + 1 + digits);
  if (roundUp) {
    size_t index = text.size();
    bool carry = true;
    while (carry && index > 0) {
      --index;
      if (text[index] == '.') {
        continue;
      }
      if (text[index] == '9') {
        text[index] = '0';
      } else {
        ++text[index];
        carry = false;
      }
    }
    if (carry) {
      text.insert(text.begin(), '1');
    }
  }
  double rounded = 0;
  std::from_chars(text.data(), text.data() + text.size(), rounded);
  return negative ? -rounded : rounded;
}

// ---------------------------------------------------------------------------------------
// The functions, in builtins.def order.

/// len(x): the number of code points of a string (not bytes: len("é") is 1, and a
/// combining sequence such as "e\u0301" counts 2), the elements of an array, or the keys of
/// an object.
Result<Value> builtinLen(const Args &args) {
  const Value &value = args[0];
  switch (value.kind()) {
  case ValueKind::String:
    return Value(static_cast<int64_t>(codePointCount(value.asString())));
  case ValueKind::Array:
    return Value(static_cast<int64_t>(value.asArray().size()));
  case ValueKind::Object:
    return Value(static_cast<int64_t>(value.asObject().size()));
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::Double:
    break;
  }
  return args.mismatch(0, "a string, array or object");
}

/// keys(object): its keys as an array of strings, in the object's order.
Result<Value> builtinKeys(const Args &args) {
  if (!args[0].isObject()) {
    return args.mismatch(0, "an object");
  }
  Array keys;
  keys.reserve(args[0].asObject().size());
  for (const ObjectEntry &entry : args[0].asObject()) {
    keys.emplace_back(entry.key);
  }
  return Value(std::move(keys));
}

/// values(object): its values as an array, in the object's order.
Result<Value> builtinValues(const Args &args) {
  if (!args[0].isObject()) {
    return args.mismatch(0, "an object");
  }
  Array values;
  values.reserve(args[0].asObject().size());
  for (const ObjectEntry &entry : args[0].asObject()) {
    values.push_back(entry.value);
  }
  return Value(std::move(values));
}

/// contains(container, x): the same as `x in container`: deep-equal element of an array, key
/// of an object (x must be a string), or substring of a string (x must be a string).
Result<Value> builtinContains(const Args &args) { return contains(args[0], args[1]); }

Result<std::pair<const std::string *, const std::string *>> twoStrings(const Args &args) {
  for (size_t index = 0; index < 2; ++index) {
    if (!args[index].isString()) {
      return args.mismatch(index, "a string");
    }
  }
  return std::pair{&args[0].asString(), &args[1].asString()};
}

/// starts_with(s, prefix): whether s begins with prefix; every string starts with "".
Result<Value> builtinStartsWith(const Args &args) {
  auto strings = twoStrings(args);
  if (!strings) {
    return std::move(strings).error();
  }
  return Value(std::string_view(*strings->first).starts_with(*strings->second));
}

/// ends_with(s, suffix): whether s ends with suffix; every string ends with "".
Result<Value> builtinEndsWith(const Args &args) {
  auto strings = twoStrings(args);
  if (!strings) {
    return std::move(strings).error();
  }
  return Value(std::string_view(*strings->first).ends_with(*strings->second));
}

/// lower(s) / upper(s): change the case of the ASCII letters A-Z / a-z only. Other
/// characters are kept as they are, so the result never depends on a locale or on the
/// Unicode tables of the machine running the workflow (replay must compute the same text).
Result<Value> changeAsciiCase(const Args &args, bool toUpper) {
  if (!args[0].isString()) {
    return args.mismatch(0, "a string");
  }
  std::string text = args[0].asString();
  for (char &c : text) {
    if (toUpper && c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    } else if (!toUpper && c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return Value(std::move(text));
}

/// trim(s): s without ASCII whitespace (space, tab, CR, LF, FF, VT) at either end.
Result<Value> builtinTrim(const Args &args) {
  if (!args[0].isString()) {
    return args.mismatch(0, "a string");
  }
  std::string_view text = args[0].asString();
  while (!text.empty() && isAsciiSpace(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && isAsciiSpace(text.back())) {
    text.remove_suffix(1);
  }
  return Value(text);
}

/// split(s, separator): the pieces of s between occurrences of separator, empty pieces
/// included (split("a,,b", ",") is ["a", "", "b"]; split("", ",") is [""]). An empty
/// separator splits s into its code points (split("", "") is []).
Result<Value> builtinSplit(const Args &args) {
  auto strings = twoStrings(args);
  if (!strings) {
    return std::move(strings).error();
  }
  std::string_view text = *strings->first;
  std::string_view separator = *strings->second;
  Array pieces;
  if (separator.empty()) {
    size_t start = 0;
    for (size_t offset = 1; offset <= text.size(); ++offset) {
      if (offset == text.size() || !isContinuationByte(text[offset])) {
        pieces.emplace_back(text.substr(start, offset - start));
        start = offset;
      }
    }
    return Value(std::move(pieces));
  }
  size_t start = 0;
  while (true) {
    size_t found = text.find(separator, start);
    if (found == std::string_view::npos) {
      pieces.emplace_back(text.substr(start));
      break;
    }
    pieces.emplace_back(text.substr(start, found - start));
    start = found + separator.size();
  }
  return Value(std::move(pieces));
}

/// join(array, separator): the elements' template text (strings as they are, other values
/// as compact JSON) with separator between them; join([], ",") is "".
Result<Value> builtinJoin(const Args &args) {
  if (!args[0].isArray()) {
    return args.mismatch(0, "an array");
  }
  if (!args[1].isString()) {
    return args.mismatch(1, "a string");
  }
  std::string joined;
  bool first = true;
  for (const Value &element : args[0].asArray()) {
    if (!first) {
      joined += args[1].asString();
    }
    first = false;
    appendTemplateText(joined, element);
  }
  return Value(std::move(joined));
}

/// substr(s, start[, length]): the code points of s from start, length of them or to the
/// end. A negative start counts from the end (substr("hello", -3) is "llo"); positions past
/// either end are clamped, as in most languages' slicing, so substr("abc", 5) is "". A
/// negative length is an error. start and length must be integers.
Result<Value> builtinSubstr(const Args &args) {
  if (!args[0].isString()) {
    return args.mismatch(0, "a string");
  }
  if (!args[1].isInt()) {
    return args.mismatch(1, "an integer");
  }
  if (args.size() > 2 && !args[2].isInt()) {
    return args.mismatch(2, "an integer");
  }
  std::string_view text = args[0].asString();
  auto count = static_cast<int64_t>(codePointCount(text));
  int64_t start = args[1].asInt();
  if (start < 0) {
    start = start < -count ? 0 : count + start;
  }
  start = std::min(start, count);
  int64_t end = count;
  if (args.size() > 2) {
    int64_t length = args[2].asInt();
    if (length < 0) {
      return args.fail(fmt::format("length must not be negative, found {}", length));
    }
    end = length > count - start ? count : start + length;
  }
  size_t from = byteOffsetOfCodePoint(text, static_cast<size_t>(start));
  size_t to = byteOffsetOfCodePoint(text, static_cast<size_t>(end));
  return Value(text.substr(from, to - from));
}

/// replace(s, old, new): s with every non-overlapping occurrence of old, left to right,
/// replaced by new. old must not be empty.
Result<Value> builtinReplace(const Args &args) {
  for (size_t index = 0; index < 3; ++index) {
    if (!args[index].isString()) {
      return args.mismatch(index, "a string");
    }
  }
  std::string_view text = args[0].asString();
  std::string_view old = args[1].asString();
  std::string_view replacement = args[2].asString();
  if (old.empty()) {
    return args.fail("the text to replace must not be empty");
  }
  std::string result;
  size_t start = 0;
  while (true) {
    size_t found = text.find(old, start);
    if (found == std::string_view::npos) {
      result.append(text.substr(start));
      break;
    }
    result.append(text.substr(start, found - start));
    result.append(replacement);
    start = found + old.size();
  }
  return Value(std::move(result));
}

/// to_string(x): the template text of x: a string as it is, anything else as compact JSON
/// (to_string(1.0) is "1.0", to_string(null) is "null").
Result<Value> builtinToString(const Args &args) { return Value(templateText(args[0])); }

/// to_number(x): a number as it is; a string holding a JSON number (surrounding ASCII
/// whitespace allowed) as that number, integer or double by the JSON rules ("12" -> 12,
/// "1.5" -> 1.5, "1e3" -> 1000.0). Anything else, including "", "0x10", "+1", "NaN", true
/// and null, is an error.
Result<Value> toNumber(const Args &args) {
  const Value &value = args[0];
  if (value.isNumber()) {
    return value;
  }
  if (!value.isString()) {
    return args.mismatch(0, "a number or a string holding one");
  }
  Result<Value> parsed = parseJson(value.asString());
  if (!parsed.ok() || !parsed->isNumber()) {
    return args.fail(fmt::format("{} is not a number; write numbers as JSON does, such as 12, "
                                 "-3.5 or 1e6",
                                 toJson(value)));
  }
  return parsed;
}

/// to_int(x): an integer as it is; a double truncated toward zero (to_int(-2.7) is -2),
/// an error when the result does not fit in int64; a string is read as by to_number first
/// (to_int("2.7") is 2).
Result<Value> builtinToInt(const Args &args) {
  Result<Value> number = toNumber(args);
  if (!number) {
    return number;
  }
  if (number->isInt()) {
    return number;
  }
  return integralDoubleToInt(std::trunc(number->asDouble()), args, "");
}

/// abs(n): the magnitude, of the same kind; abs of the smallest integer overflows.
Result<Value> builtinAbs(const Args &args) {
  const Value &value = args[0];
  if (value.isInt()) {
    if (value.asInt() == std::numeric_limits<int64_t>::min()) {
      return args.fail(fmt::format("integer overflow: the magnitude of {} does not fit in 64 "
                                   "bits",
                                   value.asInt()));
    }
    return Value(value.asInt() < 0 ? -value.asInt() : value.asInt());
  }
  if (value.isDouble()) {
    return Value(std::fabs(value.asDouble()));
  }
  return args.mismatch(0, "a number");
}

/// min(a, b, ...) / max(a, b, ...), or min(array) / max(array) when given one array: the
/// smallest / largest value, compared as `<` compares (numbers by exact value, mixing
/// integers and doubles; or strings by code point; never a mix of the two). The winning
/// value is returned unchanged, so min(1, 1.0) is 1 (the first of equal values wins) and
/// min(2, 1.5) is 1.5. An empty array is an error.
Result<Value> extreme(const Args &args, bool wantMax) {
  llvm::ArrayRef<Value> candidates = args.all();
  if (args.size() == 1 && args[0].isArray()) {
    candidates = args[0].asArray();
    if (candidates.empty()) {
      return args.fail("the array is empty, so there is no value to return");
    }
  }
  std::string where = fmt::format("{}()", args.name());
  const Value *best = &candidates.front();
  // Comparing the first value with itself rejects a lone non-comparable argument.
  Result<int> check = compareOrdered(*best, *best, where);
  if (!check) {
    return std::move(check).error();
  }
  for (const Value &candidate : candidates.drop_front()) {
    Result<int> order = compareOrdered(candidate, *best, where);
    if (!order) {
      return std::move(order).error();
    }
    if (wantMax ? *order > 0 : *order < 0) {
      best = &candidate;
    }
  }
  return *best;
}

/// sum(array): the sum of an array of numbers; 0 for an empty array. Integers are summed
/// exactly (overflow is an error); if any element is a double the result is a double.
Result<Value> builtinSum(const Args &args) {
  if (!args[0].isArray()) {
    return args.mismatch(0, "an array of numbers");
  }
  int64_t integerSum = 0;
  double doubleSum = 0;
  bool sawDouble = false;
  const Array &elements = args[0].asArray();
  for (size_t index = 0; index < elements.size(); ++index) {
    const Value &element = elements[index];
    if (element.isInt()) {
      if (__builtin_add_overflow(integerSum, element.asInt(), &integerSum)) {
        return args.fail("integer overflow: the sum does not fit in 64 bits; use doubles for "
                         "numbers this large");
      }
    } else if (element.isDouble()) {
      sawDouble = true;
      doubleSum += element.asDouble();
    } else {
      return args.fail(fmt::format("expected an array of numbers, element {} is {}", index,
                                   describeValue(element)));
    }
  }
  if (!sawDouble) {
    return Value(integerSum);
  }
  double total = static_cast<double>(integerSum) + doubleSum;
  if (!std::isfinite(total)) {
    return args.fail("number overflow: the sum is too large for a double");
  }
  return Value(total);
}

/// round(x): the nearest integer, halves away from zero (round(2.5) is 3, round(-2.5) is
/// -3), as an integer; an error if it does not fit in int64. round(x, digits) with digits
/// 0..15 rounds to that many decimals, halves away from zero on x's shortest decimal
/// spelling (round(1.005, 2) is 1.01), and returns a double. An integer x is returned as is.
Result<Value> builtinRound(const Args &args) {
  const Value &value = args[0];
  if (!value.isNumber()) {
    return args.mismatch(0, "a number");
  }
  if (args.size() == 2) {
    if (!args[1].isInt()) {
      return args.mismatch(1, "an integer");
    }
    int64_t digits = args[1].asInt();
    if (digits < 0 || digits > 15) {
      return args.fail(fmt::format("digits must be between 0 and 15, found {}", digits));
    }
    if (value.isInt()) {
      return value;
    }
    return Value(roundDecimal(value.asDouble(), static_cast<int>(digits)));
  }
  if (value.isInt()) {
    return value;
  }
  return integralDoubleToInt(std::round(value.asDouble()), args,
                             "; round(x, 0) keeps the result a double");
}

/// floor(x) / ceil(x): the nearest integer below / above, as an integer; an error if it
/// does not fit in int64. An integer x is returned as is.
Result<Value> floorOrCeil(const Args &args, bool up) {
  const Value &value = args[0];
  if (value.isInt()) {
    return value;
  }
  if (!value.isDouble()) {
    return args.mismatch(0, "a number");
  }
  double integral = up ? std::ceil(value.asDouble()) : std::floor(value.asDouble());
  return integralDoubleToInt(integral, args, "");
}

/// exists(path): false when the path named a key or index that is not there, true
/// otherwise, a present null included. The compiler reads the argument with an optional
/// path read, which yields the missing marker instead of failing; any other argument exists.
/// A path that breaks on a wrong kind (a member of a number) still fails with PathError.
Result<Value> builtinExists(const Args &args) { return Value(!args[0].isMissing()); }

/// type_of(x): "null", "boolean", "integer", "double", "string", "array" or "object".
/// Integers and doubles are told apart because JSON output does (1 versus 1.0); a missing
/// value is "null".
Result<Value> builtinTypeOf(const Args &args) { return Value(args[0].kindName()); }

/// coalesce(a, b, ...): the first argument that is neither null nor missing (path arguments
/// are read optionally, as for `??`), or null when there is none.
Result<Value> builtinCoalesce(const Args &args) {
  for (const Value &candidate : args.all()) {
    if (!candidate.isNull()) {
      return candidate;
    }
  }
  return Value(nullptr);
}

/// merge(a, b, ...): a shallow merge of objects, left to right: a key keeps its first
/// position and takes its last value. merge(a, b) is a + b.
Result<Value> builtinMerge(const Args &args) {
  for (size_t index = 0; index < args.size(); ++index) {
    if (!args[index].isObject()) {
      return args.mismatch(index, "an object");
    }
  }
  Object merged = args[0].asObject();
  for (const Value &object : args.all().drop_front()) {
    for (const ObjectEntry &entry : object.asObject()) {
      merged.set(entry.key, entry.value);
    }
  }
  return Value(std::move(merged));
}

// The keys named by arguments 1.. of pick/omit: strings, or arrays of strings.
Result<std::vector<std::string_view>> keyArguments(const Args &args) {
  std::vector<std::string_view> keys;
  for (size_t index = 1; index < args.size(); ++index) {
    const Value &argument = args[index];
    if (argument.isString()) {
      keys.push_back(argument.asString());
      continue;
    }
    if (!argument.isArray()) {
      return args.mismatch(index, "a key or an array of keys");
    }
    for (const Value &key : argument.asArray()) {
      if (!key.isString()) {
        return args.fail(fmt::format("keys must be strings, found {} in argument {}",
                                     describeValue(key), index + 1));
      }
      keys.push_back(key.asString());
    }
  }
  return keys;
}

/// pick(obj, "a", "b") or pick(obj, ["a", "b"]): a new object with only the named keys, in
/// the order they are named; keys obj does not have are skipped.
Result<Value> builtinPick(const Args &args) {
  if (!args[0].isObject()) {
    return args.mismatch(0, "an object");
  }
  auto keys = keyArguments(args);
  if (!keys) {
    return std::move(keys).error();
  }
  Object picked;
  for (std::string_view key : *keys) {
    if (const Value *value = args[0].asObject().find(key)) {
      picked.set(std::string(key), *value);
    }
  }
  return Value(std::move(picked));
}

/// omit(obj, "a", "b") or omit(obj, ["a", "b"]): obj without the named keys, in obj's
/// order; naming a key obj does not have is not an error.
Result<Value> builtinOmit(const Args &args) {
  if (!args[0].isObject()) {
    return args.mismatch(0, "an object");
  }
  auto keys = keyArguments(args);
  if (!keys) {
    return std::move(keys).error();
  }
  Object kept = args[0].asObject();
  for (std::string_view key : *keys) {
    kept.erase(key);
  }
  return Value(std::move(kept));
}

/// json_encode(x): compact JSON text of x (no whitespace, keys in order, 1.0 as "1.0").
Result<Value> builtinJsonEncode(const Args &args) { return Value(toJson(args[0])); }

/// json_decode(s): the value s holds as JSON text, by the rules of payloads (integers vs
/// doubles, key order, last duplicate wins); an error naming the byte offset otherwise.
Result<Value> builtinJsonDecode(const Args &args) {
  if (!args[0].isString()) {
    return args.mismatch(0, "a string");
  }
  Result<Value> parsed = parseJson(args[0].asString());
  if (!parsed) {
    WorkflowError error = std::move(parsed).error();
    return makeError(error_types::ExpressionError,
                     fmt::format("json_decode(): {}", error.message), error.details);
  }
  return parsed;
}

/// duration_seconds(d): the length of a duration string (as in timeouts: "PT1M30S",
/// "1h30m", "250ms") in seconds: an integer when it is a whole number of seconds, else a
/// double (duration_seconds("1h") is 3600, duration_seconds("250ms") is 0.25).
Result<Value> builtinDurationSeconds(const Args &args) {
  if (!args[0].isString()) {
    return args.mismatch(0, "a duration string");
  }
  Result<int64_t> milliseconds = parseDurationMs(args[0].asString());
  if (!milliseconds) {
    return args.fail(std::move(milliseconds).error().message);
  }
  if (*milliseconds % 1000 == 0) {
    return Value(*milliseconds / 1000);
  }
  return Value(static_cast<double>(*milliseconds) / 1000.0);
}

/// now(): the logical time of the event being processed, as RFC 3339 UTC with
/// milliseconds ("2026-12-04T15:56:05.123Z"). The same on replay, whatever the wall clock.
Result<Value> builtinNow(BuiltinContext &context) {
  Result<std::string> text = formatTimestampMs(context.logicalTimeMs());
  if (!text) {
    return std::move(text).error();
  }
  return Value(std::move(text).value());
}

/// uuid(): a UUID derived from the run id and the run's uuid counter (see
/// deterministicUuid), so replay yields the same ids in the same order.
Result<Value> builtinUuid(BuiltinContext &context) {
  return Value(deterministicUuid(context.runId(), context.nextUuidSequence()));
}

} // namespace

Result<Value> callBuiltin(BuiltinId id, llvm::ArrayRef<Value> values, BuiltinContext *context) {
  const BuiltinInfo &info = builtinInfo(id);
  if (!info.acceptsArgCount(values.size())) {
    return expressionError(fmt::format("{}() {}, found {}", info.name, describeArity(info),
                                       values.size()));
  }
  assert((info.pure || context != nullptr) && "now() and uuid() need the VM's context");
  Args args(info, values);
  switch (id) {
  case BuiltinId::Len:
    return builtinLen(args);
  case BuiltinId::Keys:
    return builtinKeys(args);
  case BuiltinId::Values:
    return builtinValues(args);
  case BuiltinId::Contains:
    return builtinContains(args);
  case BuiltinId::StartsWith:
    return builtinStartsWith(args);
  case BuiltinId::EndsWith:
    return builtinEndsWith(args);
  case BuiltinId::Lower:
    return changeAsciiCase(args, /*toUpper=*/false);
  case BuiltinId::Upper:
    return changeAsciiCase(args, /*toUpper=*/true);
  case BuiltinId::Trim:
    return builtinTrim(args);
  case BuiltinId::Split:
    return builtinSplit(args);
  case BuiltinId::Join:
    return builtinJoin(args);
  case BuiltinId::Substr:
    return builtinSubstr(args);
  case BuiltinId::Replace:
    return builtinReplace(args);
  case BuiltinId::ToString:
    return builtinToString(args);
  case BuiltinId::ToNumber:
    return toNumber(args);
  case BuiltinId::ToInt:
    return builtinToInt(args);
  case BuiltinId::Abs:
    return builtinAbs(args);
  case BuiltinId::Min:
    return extreme(args, /*wantMax=*/false);
  case BuiltinId::Max:
    return extreme(args, /*wantMax=*/true);
  case BuiltinId::Sum:
    return builtinSum(args);
  case BuiltinId::Round:
    return builtinRound(args);
  case BuiltinId::Floor:
    return floorOrCeil(args, /*up=*/false);
  case BuiltinId::Ceil:
    return floorOrCeil(args, /*up=*/true);
  case BuiltinId::Exists:
    return builtinExists(args);
  case BuiltinId::TypeOf:
    return builtinTypeOf(args);
  case BuiltinId::Coalesce:
    return builtinCoalesce(args);
  case BuiltinId::Merge:
    return builtinMerge(args);
  case BuiltinId::Pick:
    return builtinPick(args);
  case BuiltinId::Omit:
    return builtinOmit(args);
  case BuiltinId::JsonEncode:
    return builtinJsonEncode(args);
  case BuiltinId::JsonDecode:
    return builtinJsonDecode(args);
  case BuiltinId::DurationSeconds:
    return builtinDurationSeconds(args);
  case BuiltinId::Now:
    return builtinNow(*context);
  case BuiltinId::Uuid:
    return builtinUuid(*context);
  }
  assert(false && "every BuiltinId is dispatched above");
  return Value(nullptr);
}

Result<std::string> formatTimestampMs(int64_t unixMs) {
  // 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
  constexpr int64_t kEarliest = -62167219200000;
  constexpr int64_t kLatest = 253402300799999;
  if (unixMs < kEarliest || unixMs > kLatest) {
    return expressionError(fmt::format(
        "time {} ms since 1970 is outside the years 0000-9999 that RFC 3339 can write", unixMs));
  }
  using namespace std::chrono;
  sys_time<milliseconds> time{milliseconds{unixMs}};
  sys_days day = floor<days>(time);
  year_month_day date{day};
  hh_mm_ss<milliseconds> clock{time - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     clock.hours().count(), clock.minutes().count(), clock.seconds().count(),
                     clock.subseconds().count());
}

std::string deterministicUuid(std::string_view runId, uint64_t sequence) {
  // The tag keeps these hashes apart from any other SHA-256 the engine computes over run
  // ids; the NUL bytes keep (run id, counter) pairs from running into each other.
  llvm::SHA256 hasher;
  hasher.update(llvm::StringRef("kotoba.uuid.v1\0", 15));
  hasher.update(llvm::StringRef(runId.data(), runId.size()));
  hasher.update(llvm::StringRef("\0", 1));
  std::array<uint8_t, 8> counter;
  for (size_t index = 0; index < counter.size(); ++index) {
    counter[index] = static_cast<uint8_t>(sequence >> (56 - 8 * index));
  }
  hasher.update(counter);
  llvm::StringRef digest = hasher.final();
  std::array<uint8_t, 16> bytes;
  for (size_t index = 0; index < bytes.size(); ++index) {
    bytes[index] = static_cast<uint8_t>(digest[index]);
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0F) | 0x80); // version 8
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3F) | 0x80); // variant 10xx
  std::string text;
  text.reserve(36);
  for (size_t index = 0; index < bytes.size(); ++index) {
    if (index == 4 || index == 6 || index == 8 || index == 10) {
      text += '-';
    }
    text += fmt::format("{:02x}", bytes[index]);
  }
  return text;
}

} // namespace kotoba
