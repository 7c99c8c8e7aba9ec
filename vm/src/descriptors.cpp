// Encoding and strict decoding of the descriptor constants. Every decoder goes through
// FieldReader, which checks the key set once and then hands out typed fields, remembering
// only the first problem: the messages name the key, what it must be and what was found.
#include "kotoba/vm/descriptors.h"

#include "kotoba/vm/error.h"
#include "kotoba/vm/retry.h"

#include <algorithm>
#include <limits>

namespace kotoba::vm {
namespace {

class FieldReader {
public:
  // `keys` must all be present; `optionalKeys` may be; any other key is an error.
  FieldReader(const Value &value, std::initializer_list<std::string_view> keys,
              std::initializer_list<std::string_view> optionalKeys = {}) {
    if (!value.isObject()) {
      fail("expected an object, found " + describeValue(value));
      return;
    }
    object_ = &value.asObject();
    for (std::string_view key : keys) {
      if (!object_->contains(key)) {
        fail("missing '" + std::string(key) + "'");
        return;
      }
    }
    for (const ObjectEntry &entry : *object_) {
      bool known =
          std::find(keys.begin(), keys.end(), entry.key) != keys.end() ||
          std::find(optionalKeys.begin(), optionalKeys.end(), entry.key) != optionalKeys.end();
      if (!known) {
        fail("unknown key '" + entry.key + "'");
        return;
      }
    }
  }

  [[nodiscard]] bool failed() const { return error_.has_value(); }
  [[nodiscard]] const std::string &error() const { return *error_; }
  [[nodiscard]] bool has(std::string_view key) const {
    return object_ != nullptr && object_->contains(key);
  }

  // The field, or nullptr once anything failed (so later reads quietly do nothing).
  [[nodiscard]] const Value *field(std::string_view key) const {
    if (failed() || object_ == nullptr) {
      return nullptr;
    }
    return object_->find(key);
  }

  std::string string(std::string_view key, bool allowEmpty) {
    const Value *value = field(key);
    if (value == nullptr) {
      return {};
    }
    if (!value->isString() || (!allowEmpty && value->asString().empty())) {
      mismatch(key, allowEmpty ? "a string" : "a non-empty string", *value);
      return {};
    }
    return value->asString();
  }

  // An integer in [minimum, maximum].
  int64_t integer(std::string_view key, int64_t minimum, int64_t maximum,
                  std::string_view expected) {
    const Value *value = field(key);
    if (value == nullptr) {
      return minimum;
    }
    if (!value->isInt() || value->asInt() < minimum || value->asInt() > maximum) {
      mismatch(key, expected, *value);
      return minimum;
    }
    return value->asInt();
  }

  std::optional<int64_t> optionalPositive(std::string_view key) {
    const Value *value = field(key);
    if (value == nullptr || value->isNull()) {
      return std::nullopt;
    }
    return integer(key, 1, std::numeric_limits<int64_t>::max(), "a positive integer or null");
  }

  // A number (integer or double) in [minimum, maximum].
  double number(std::string_view key, double minimum, double maximum, std::string_view expected) {
    const Value *value = field(key);
    if (value == nullptr) {
      return minimum;
    }
    if (!value->isNumber() || !(value->asNumber() >= minimum && value->asNumber() <= maximum)) {
      mismatch(key, expected, *value);
      return minimum;
    }
    return value->asNumber();
  }

  template <typename Enum>
  Enum choice(std::string_view key, std::initializer_list<std::pair<std::string_view, Enum>> names,
              std::string_view expected) {
    const Value *value = field(key);
    if (value == nullptr) {
      return names.begin()->second;
    }
    if (value->isString()) {
      for (const auto &[name, enumerator] : names) {
        if (value->asString() == name) {
          return enumerator;
        }
      }
    }
    mismatch(key, expected, *value);
    return names.begin()->second;
  }

  void fail(std::string message) {
    if (!error_) {
      error_ = std::move(message);
    }
  }

private:
  void mismatch(std::string_view key, std::string_view expected, const Value &found) {
    fail("'" + std::string(key) + "' must be " + std::string(expected) + ", found " +
         describeValue(found));
  }

  const Object *object_ = nullptr;
  std::optional<std::string> error_;
};

template <typename T> Decoded<T> finish(const FieldReader &reader, T result) {
  if (reader.failed()) {
    return Decoded<T>::failure(reader.error());
  }
  return result;
}

Value optionalToValue(const std::optional<int64_t> &value) {
  return value ? Value(*value) : Value(nullptr);
}

constexpr int64_t kMaxUint32 = std::numeric_limits<uint32_t>::max();

} // namespace

// ---- Paths -------------------------------------------------------------------------------

uint32_t PathDescriptor::dynamicCount() const {
  uint32_t count = 0;
  for (const PathSegment &segment : segments) {
    if (segment.kind == PathSegment::Kind::Dynamic) {
      ++count;
    }
  }
  return count;
}

Value PathDescriptor::toValue() const {
  Array encoded;
  encoded.reserve(segments.size());
  for (const PathSegment &segment : segments) {
    switch (segment.kind) {
    case PathSegment::Kind::Member:
      encoded.emplace_back(segment.member);
      break;
    case PathSegment::Kind::Index:
      encoded.emplace_back(segment.index);
      break;
    case PathSegment::Kind::Project:
      encoded.emplace_back(nullptr);
      break;
    case PathSegment::Kind::Dynamic: {
      Object dynamic;
      dynamic.set("dynamic", Value(segment.index));
      encoded.emplace_back(std::move(dynamic));
      break;
    }
    }
  }
  Object object;
  object.set("path", Value(text));
  object.set("segments", Value(std::move(encoded)));
  return Value(std::move(object));
}

Decoded<PathDescriptor> decodePath(const Value &value) {
  FieldReader reader(value, {"path", "segments"});
  PathDescriptor path;
  path.text = reader.string("path", false);
  const Value *segments = reader.field("segments");
  if (segments != nullptr && !segments->isArray()) {
    reader.fail("'segments' must be an array, found " + describeValue(*segments));
  }
  if (reader.failed()) {
    return Decoded<PathDescriptor>::failure(reader.error());
  }
  int64_t dynamicSeen = 0;
  for (const Value &segment : segments->asArray()) {
    size_t position = path.segments.size();
    switch (segment.kind()) {
    case ValueKind::String:
      path.segments.push_back({PathSegment::Kind::Member, segment.asString(), 0});
      continue;
    case ValueKind::Int:
      path.segments.push_back({PathSegment::Kind::Index, {}, segment.asInt()});
      continue;
    case ValueKind::Null:
      path.segments.push_back({PathSegment::Kind::Project, {}, 0});
      continue;
    case ValueKind::Object: {
      FieldReader dynamic(segment, {"dynamic"});
      int64_t index = dynamic.integer("dynamic", dynamicSeen, dynamicSeen,
                                      "the number of dynamic segments before it");
      if (dynamic.failed()) {
        return Decoded<PathDescriptor>::failure("segment " + std::to_string(position) + ": " +
                                                dynamic.error());
      }
      path.segments.push_back({PathSegment::Kind::Dynamic, {}, index});
      ++dynamicSeen;
      continue;
    }
    case ValueKind::Bool:
    case ValueKind::Double:
    case ValueKind::Array:
      break;
    }
    return Decoded<PathDescriptor>::failure(
        "segment " + std::to_string(position) +
        " must be a string, an integer, null or {\"dynamic\": n}, found " + describeValue(segment));
  }
  return path;
}

// ---- Retry policies ----------------------------------------------------------------------

std::optional<std::string> checkRetryPolicy(const Value &value) {
  Result<RetryPolicy> policy = retryPolicyFromValue(value);
  if (!policy.ok()) {
    return policy.error().message;
  }
  return std::nullopt;
}

// ---- Commands ----------------------------------------------------------------------------

Value ActivityCallDescriptor::toValue() const {
  Object object;
  object.set("activity", Value(activity));
  object.set("step", Value(step));
  object.set("timeout_ms", Value(timeoutMs));
  object.set("schedule_to_close_ms", optionalToValue(scheduleToCloseMs));
  object.set("retry", retry);
  return Value(std::move(object));
}

Decoded<ActivityCallDescriptor> decodeActivityCall(const Value &value) {
  FieldReader reader(value, {"activity", "step", "timeout_ms", "schedule_to_close_ms", "retry"});
  ActivityCallDescriptor call;
  call.activity = reader.string("activity", false);
  call.step = reader.string("step", false);
  call.timeoutMs =
      reader.integer("timeout_ms", 1, std::numeric_limits<int64_t>::max(), "a positive integer");
  call.scheduleToCloseMs = reader.optionalPositive("schedule_to_close_ms");
  if (const Value *retry = reader.field("retry"); retry != nullptr) {
    if (std::optional<std::string> problem = checkRetryPolicy(*retry)) {
      reader.fail("'retry': " + *problem);
    }
    call.retry = *retry;
  }
  return finish(reader, std::move(call));
}

Value TimerDescriptor::toValue() const {
  Object object;
  object.set("step", Value(step));
  return Value(std::move(object));
}

Decoded<TimerDescriptor> decodeTimer(const Value &value) {
  FieldReader reader(value, {"step"});
  TimerDescriptor timer;
  timer.step = reader.string("step", false);
  return finish(reader, std::move(timer));
}

Value SignalDescriptor::toValue() const {
  Object object;
  object.set("signal", Value(signal));
  object.set("step", Value(step));
  object.set("timeout_ms", optionalToValue(timeoutMs));
  return Value(std::move(object));
}

Decoded<SignalDescriptor> decodeSignal(const Value &value) {
  FieldReader reader(value, {"signal", "step", "timeout_ms"});
  SignalDescriptor signal;
  signal.signal = reader.string("signal", false);
  signal.step = reader.string("step", false);
  signal.timeoutMs = reader.optionalPositive("timeout_ms");
  return finish(reader, std::move(signal));
}

Value EventDescriptor::toValue() const {
  Object object;
  object.set("event", Value(event));
  object.set("step", Value(step));
  object.set("timeout_ms", optionalToValue(timeoutMs));
  return Value(std::move(object));
}

Decoded<EventDescriptor> decodeEvent(const Value &value) {
  FieldReader reader(value, {"event", "step", "timeout_ms"});
  EventDescriptor event;
  event.event = reader.string("event", false);
  event.step = reader.string("step", false);
  event.timeoutMs = reader.optionalPositive("timeout_ms");
  return finish(reader, std::move(event));
}

Value ChildDescriptor::toValue() const {
  Object object;
  object.set("workflow", Value(workflow));
  object.set("step", Value(step));
  object.set("timeout_ms", optionalToValue(timeoutMs));
  return Value(std::move(object));
}

Decoded<ChildDescriptor> decodeChild(const Value &value) {
  FieldReader reader(value, {"workflow", "step", "timeout_ms"});
  ChildDescriptor child;
  child.workflow = reader.string("workflow", false);
  child.step = reader.string("step", false);
  child.timeoutMs = reader.optionalPositive("timeout_ms");
  return finish(reader, std::move(child));
}

Value DecisionDescriptor::toValue() const {
  Object object;
  object.set("step", Value(step));
  object.set("branch", branch ? Value(static_cast<int64_t>(*branch)) : Value(nullptr));
  return Value(std::move(object));
}

Decoded<DecisionDescriptor> decodeDecision(const Value &value) {
  FieldReader reader(value, {"step", "branch"});
  DecisionDescriptor decision;
  decision.step = reader.string("step", false);
  if (const Value *branch = reader.field("branch"); branch != nullptr && !branch->isNull()) {
    decision.branch = static_cast<uint32_t>(
        reader.integer("branch", 0, kMaxUint32, "a condition index or null (default branch)"));
  }
  return finish(reader, std::move(decision));
}

// ---- Fibers ------------------------------------------------------------------------------

std::string_view parallelModeName(ParallelMode mode) {
  switch (mode) {
  case ParallelMode::All:
    return "all";
  case ParallelMode::Any:
    return "any";
  case ParallelMode::AtLeast:
    return "at_least";
  case ParallelMode::AllSettled:
    return "all_settled";
  }
  return "unknown";
}

Value ParallelDescriptor::toValue() const {
  Object object;
  object.set("mode", Value(parallelModeName(mode)));
  if (mode == ParallelMode::AtLeast) {
    object.set("count", Value(static_cast<int64_t>(count)));
  }
  return Value(std::move(object));
}

Decoded<ParallelDescriptor> decodeParallel(const Value &value) {
  FieldReader reader(value, {"mode"}, {"count"});
  ParallelDescriptor parallel;
  parallel.mode = reader.choice<ParallelMode>("mode",
                                              {{"all", ParallelMode::All},
                                               {"any", ParallelMode::Any},
                                               {"at_least", ParallelMode::AtLeast},
                                               {"all_settled", ParallelMode::AllSettled}},
                                              "\"all\", \"any\", \"at_least\" or \"all_settled\"");
  if (!reader.failed()) {
    if (parallel.mode == ParallelMode::AtLeast) {
      if (!reader.has("count")) {
        reader.fail("missing 'count' (required by at_least)");
      }
      parallel.count =
          static_cast<uint32_t>(reader.integer("count", 1, kMaxUint32, "a positive integer"));
    } else if (reader.has("count")) {
      reader.fail("'count' is only for at_least");
    }
  }
  return finish(reader, parallel);
}

std::string_view foreachModeName(ForeachMode mode) {
  switch (mode) {
  case ForeachMode::All:
    return "all";
  case ForeachMode::AllSettled:
    return "all_settled";
  }
  return "unknown";
}

Value ForeachDescriptor::toValue() const {
  Object object;
  object.set("mode", Value(foreachModeName(mode)));
  object.set("max_concurrency", Value(static_cast<int64_t>(maxConcurrency)));
  object.set("item", Value(static_cast<int64_t>(item.index)));
  object.set("index", Value(static_cast<int64_t>(index.index)));
  return Value(std::move(object));
}

Decoded<ForeachDescriptor> decodeForeach(const Value &value) {
  FieldReader reader(value, {"mode", "max_concurrency", "item", "index"});
  ForeachDescriptor foreach;
  foreach
    .mode = reader.choice<ForeachMode>(
        "mode", {{"all", ForeachMode::All}, {"all_settled", ForeachMode::AllSettled}},
        "\"all\" or \"all_settled\"");
  foreach
    .maxConcurrency = static_cast<uint32_t>(
        reader.integer("max_concurrency", 1, kMaxUint32, "a positive integer"));
  foreach
    .item = Reg{static_cast<uint32_t>(reader.integer("item", 0, kMaxUint32, "a register"))};
  foreach
    .index = Reg{static_cast<uint32_t>(reader.integer("index", 0, kMaxUint32, "a register"))};
  if (!reader.failed() && foreach.item == foreach.index) {
    reader.fail("'item' and 'index' must be different registers");
  }
  return finish(reader, foreach);
}

// ---- Sagas and try -----------------------------------------------------------------------

std::string_view compensationPolicyName(CompensationPolicy policy) {
  switch (policy) {
  case CompensationPolicy::Reverse:
    return "reverse";
  case CompensationPolicy::Parallel:
    return "parallel";
  }
  return "unknown";
}

std::string_view compensationFailureModeName(CompensationFailureMode mode) {
  switch (mode) {
  case CompensationFailureMode::Continue:
    return "continue";
  case CompensationFailureMode::Stop:
    return "stop";
  }
  return "unknown";
}

Value SagaDescriptor::toValue() const {
  Object object;
  object.set("policy", Value(compensationPolicyName(policy)));
  object.set("on_failure", Value(compensationFailureModeName(onFailure)));
  return Value(std::move(object));
}

Decoded<SagaDescriptor> decodeSaga(const Value &value) {
  FieldReader reader(value, {"policy", "on_failure"});
  SagaDescriptor saga;
  saga.policy = reader.choice<CompensationPolicy>(
      "policy",
      {{"reverse", CompensationPolicy::Reverse}, {"parallel", CompensationPolicy::Parallel}},
      "\"reverse\" or \"parallel\"");
  saga.onFailure = reader.choice<CompensationFailureMode>(
      "on_failure",
      {{"continue", CompensationFailureMode::Continue}, {"stop", CompensationFailureMode::Stop}},
      "\"continue\" or \"stop\"");
  return finish(reader, saga);
}

Value CompensationDescriptor::toValue() const {
  Object object;
  object.set("step", Value(step));
  return Value(std::move(object));
}

Decoded<CompensationDescriptor> decodeCompensation(const Value &value) {
  FieldReader reader(value, {"step"});
  CompensationDescriptor compensation;
  compensation.step = reader.string("step", false);
  return finish(reader, std::move(compensation));
}

Value errorTypesToValue(const std::vector<std::string> &types) {
  Array array;
  array.reserve(types.size());
  for (const std::string &type : types) {
    array.emplace_back(type);
  }
  return Value(std::move(array));
}

Decoded<std::vector<std::string>> decodeErrorTypes(const Value &value) {
  using Result = Decoded<std::vector<std::string>>;
  if (!value.isArray() || value.asArray().empty()) {
    return Result::failure("expected a non-empty array of error type names, found " +
                           describeValue(value));
  }
  std::vector<std::string> types;
  types.reserve(value.asArray().size());
  for (const Value &type : value.asArray()) {
    if (!type.isString() || type.asString().empty()) {
      return Result::failure("error type " + std::to_string(types.size()) +
                             " must be a non-empty string, found " + describeValue(type));
    }
    types.push_back(type.asString());
  }
  return types;
}

} // namespace kotoba::vm
