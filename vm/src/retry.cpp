// Retry policy validation, parsing, storage form, backoff and deterministic jitter.
#include "kotoba/vm/retry.h"

#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/SHA256.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>

namespace kotoba {

static constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
static constexpr int64_t kDefaultMaximumFactor = 100;
static constexpr int64_t kCompensationAttempts = 10;

int64_t RetryPolicy::effectiveMaximumIntervalMs() const {
  if (maximumIntervalMs) {
    return *maximumIntervalMs;
  }
  int64_t maximum = 0;
  if (__builtin_mul_overflow(initialIntervalMs, kDefaultMaximumFactor, &maximum)) {
    return kMaxInt64;
  }
  return maximum;
}

RetryPolicy defaultCompensationRetryPolicy() {
  RetryPolicy policy;
  policy.maximumAttempts = kCompensationAttempts;
  return policy;
}

// Policies read from source or JSON hold finite numbers; one built in code might not.
static std::string numberText(double number) {
  return std::isfinite(number) ? formatDouble(number) : std::string("a non-finite number");
}

std::vector<RetryPolicyProblem> validateRetryPolicy(const RetryPolicy &policy) {
  std::vector<RetryPolicyProblem> problems;
  if (policy.initialIntervalMs <= 0) {
    problems.push_back({"initial_interval",
                        fmt::format("initial_interval must be longer than 0, found {}",
                                    formatDurationMs(policy.initialIntervalMs))});
  }
  if (!(policy.backoffCoefficient >= 1.0) || !std::isfinite(policy.backoffCoefficient)) {
    problems.push_back({"backoff_coefficient",
                        fmt::format("backoff_coefficient must be at least 1, found {}",
                                    numberText(policy.backoffCoefficient))});
  }
  if (policy.maximumIntervalMs && *policy.maximumIntervalMs < policy.initialIntervalMs) {
    problems.push_back(
        {"maximum_interval",
         fmt::format("maximum_interval ({}) must be at least initial_interval ({})",
                     formatDurationMs(*policy.maximumIntervalMs),
                     formatDurationMs(policy.initialIntervalMs))});
  }
  if (policy.maximumAttempts && *policy.maximumAttempts < 1) {
    problems.push_back({"maximum_attempts",
                        fmt::format("maximum_attempts must be at least 1 (the first attempt "
                                    "counts), found {}; use \"unlimited\" for no limit",
                                    *policy.maximumAttempts)});
  }
  for (const std::string &type : policy.nonRetryableErrors) {
    if (type.empty()) {
      problems.push_back({"non_retryable_errors",
                          "non_retryable_errors must hold error type names, found \"\""});
      break;
    }
  }
  if (!(policy.jitter >= 0.0 && policy.jitter <= 1.0)) {
    problems.push_back(
        {"jitter", fmt::format("jitter must be a fraction from 0 to 1, found {}",
                               numberText(policy.jitter))});
  }
  return problems;
}

// ---- Reading the source form ---------------------------------------------------------------

namespace {

constexpr std::array<std::string_view, 6> kSourceFields = {
    "initial_interval",     "backoff_coefficient", "maximum_interval",
    "maximum_attempts",     "non_retryable_errors", "jitter",
};

std::string unknownFieldMessage(std::string_view field) {
  std::string_view closest;
  unsigned closestDistance = std::numeric_limits<unsigned>::max();
  for (std::string_view known : kSourceFields) {
    unsigned distance = llvm::StringRef(known.data(), known.size())
                            .edit_distance(llvm::StringRef(field.data(), field.size()));
    if (distance < closestDistance) {
      closest = known;
      closestDistance = distance;
    }
  }
  if (closestDistance <= std::max<unsigned>(2, field.size() / 4)) {
    return fmt::format("unknown retry_policy field '{}'; did you mean '{}'?", field, closest);
  }
  return fmt::format("unknown retry_policy field '{}'; the fields are initial_interval, "
                     "backoff_coefficient, maximum_interval, maximum_attempts, "
                     "non_retryable_errors and jitter",
                     field);
}

// A duration field: a duration string. Returns nullopt after recording a problem.
std::optional<int64_t> readDuration(const Value &value, std::string_view field,
                                    std::vector<RetryPolicyProblem> &problems) {
  if (!value.isString()) {
    problems.push_back({std::string(field),
                        fmt::format("{} must be a duration such as \"PT1S\" or \"500ms\", "
                                    "found {}",
                                    field, describeValue(value))});
    return std::nullopt;
  }
  Result<int64_t> parsed = parseDurationMs(value.asString());
  if (!parsed) {
    problems.push_back({std::string(field), fmt::format("{}: {}", field, parsed.error().message)});
    return std::nullopt;
  }
  return *parsed;
}

std::optional<double> readNumber(const Value &value, std::string_view field,
                                 std::vector<RetryPolicyProblem> &problems) {
  if (!value.isNumber()) {
    problems.push_back({std::string(field), fmt::format("{} must be a number, found {}", field,
                                                        describeValue(value))});
    return std::nullopt;
  }
  return value.asNumber();
}

} // namespace

ParsedRetryPolicy parseRetryPolicy(const Value &source) {
  ParsedRetryPolicy parsed;
  std::vector<RetryPolicyProblem> &problems = parsed.problems;
  RetryPolicy &policy = parsed.policy;
  if (!source.isObject()) {
    problems.push_back({"", fmt::format("retry_policy must be an object, found {}",
                                        describeValue(source))});
    return parsed;
  }
  for (const ObjectEntry &entry : source.asObject()) {
    const std::string &field = entry.key;
    const Value &value = entry.value;
    if (field == "initial_interval") {
      if (auto ms = readDuration(value, field, problems)) {
        policy.initialIntervalMs = *ms;
      }
    } else if (field == "maximum_interval") {
      if (auto ms = readDuration(value, field, problems)) {
        policy.maximumIntervalMs = *ms;
      }
    } else if (field == "backoff_coefficient") {
      if (auto number = readNumber(value, field, problems)) {
        policy.backoffCoefficient = *number;
      }
    } else if (field == "jitter") {
      if (auto number = readNumber(value, field, problems)) {
        policy.jitter = *number;
      }
    } else if (field == "maximum_attempts") {
      if (value.isString() && value.asString() == "unlimited") {
        policy.maximumAttempts = std::nullopt;
      } else if (value.isInt()) {
        policy.maximumAttempts = value.asInt();
      } else {
        problems.push_back({field, fmt::format("maximum_attempts must be an integer >= 1 or "
                                               "\"unlimited\", found {}",
                                               describeValue(value))});
      }
    } else if (field == "non_retryable_errors") {
      bool allStrings = value.isArray();
      if (allStrings) {
        for (const Value &type : value.asArray()) {
          allStrings = allStrings && type.isString();
        }
      }
      if (!allStrings) {
        problems.push_back({field, fmt::format("non_retryable_errors must be an array of error "
                                               "type names, found {}",
                                               describeValue(value))});
        continue;
      }
      for (const Value &type : value.asArray()) {
        policy.nonRetryableErrors.push_back(type.asString());
      }
    } else {
      problems.push_back({field, unknownFieldMessage(field)});
    }
  }
  // A field that could not be read keeps its default, which is valid, so nothing is
  // reported twice.
  for (RetryPolicyProblem &problem : validateRetryPolicy(policy)) {
    problems.push_back(std::move(problem));
  }
  return parsed;
}

// ---- The stored form -------------------------------------------------------------------------

Value retryPolicyToValue(const RetryPolicy &policy) {
  Object object;
  object.set("initial_interval_ms", Value(policy.initialIntervalMs));
  object.set("backoff_coefficient", Value(policy.backoffCoefficient));
  object.set("maximum_interval_ms", Value(policy.effectiveMaximumIntervalMs()));
  object.set("maximum_attempts",
             policy.maximumAttempts ? Value(*policy.maximumAttempts) : Value(nullptr));
  Array types;
  for (const std::string &type : policy.nonRetryableErrors) {
    types.emplace_back(type);
  }
  object.set("non_retryable_errors", Value(std::move(types)));
  object.set("jitter", Value(policy.jitter));
  return Value(std::move(object));
}

Result<RetryPolicy> retryPolicyFromValue(const Value &value) {
  auto malformed = [](std::string problem) {
    return makeError(error_types::InvalidPayload,
                     fmt::format("malformed stored retry policy: {}", problem));
  };
  if (!value.isObject()) {
    return malformed(fmt::format("expected an object, found {}", describeValue(value)));
  }
  const Object &object = value.asObject();
  static constexpr std::array<std::string_view, 6> kStoredFields = {
      "initial_interval_ms",  "backoff_coefficient", "maximum_interval_ms",
      "maximum_attempts",     "non_retryable_errors", "jitter",
  };
  for (const ObjectEntry &entry : object) {
    if (std::find(kStoredFields.begin(), kStoredFields.end(), entry.key) == kStoredFields.end()) {
      return malformed(fmt::format("unknown key '{}'", entry.key));
    }
  }
  for (std::string_view field : kStoredFields) {
    if (!object.contains(field)) {
      return malformed(fmt::format("'{}' is missing", field));
    }
  }
  RetryPolicy policy;
  const Value &initial = *object.find("initial_interval_ms");
  const Value &coefficient = *object.find("backoff_coefficient");
  const Value &maximum = *object.find("maximum_interval_ms");
  const Value &attempts = *object.find("maximum_attempts");
  const Value &types = *object.find("non_retryable_errors");
  const Value &jitter = *object.find("jitter");
  if (!initial.isInt() || !maximum.isInt()) {
    return malformed("intervals must be integers (milliseconds)");
  }
  if (!coefficient.isNumber() || !jitter.isNumber()) {
    return malformed("'backoff_coefficient' and 'jitter' must be numbers");
  }
  if (!attempts.isInt() && !attempts.isNull()) {
    return malformed(fmt::format("'maximum_attempts' must be an integer or null, found {}",
                                 describeValue(attempts)));
  }
  if (!types.isArray()) {
    return malformed("'non_retryable_errors' must be an array of strings");
  }
  policy.initialIntervalMs = initial.asInt();
  policy.backoffCoefficient = coefficient.asNumber();
  policy.maximumIntervalMs = maximum.asInt();
  policy.maximumAttempts =
      attempts.isNull() ? std::nullopt : std::optional<int64_t>(attempts.asInt());
  for (const Value &type : types.asArray()) {
    if (!type.isString()) {
      return malformed("'non_retryable_errors' must be an array of strings");
    }
    policy.nonRetryableErrors.push_back(type.asString());
  }
  policy.jitter = jitter.asNumber();
  std::vector<RetryPolicyProblem> problems = validateRetryPolicy(policy);
  if (!problems.empty()) {
    return malformed(problems.front().message);
  }
  return policy;
}

// ---- Delays ------------------------------------------------------------------------------------

int64_t delayBeforeAttempt(const RetryPolicy &policy, int64_t attempt) {
  assert(attempt >= 2 && "the first attempt starts without a delay; retries are attempts >= 2");
  int64_t maximum = policy.effectiveMaximumIntervalMs();
  int64_t initial = std::min(policy.initialIntervalMs, maximum);
  // coefficient^0 is 1: the first retry waits exactly the initial interval, even one too
  // large for a double to hold to the millisecond.
  if (attempt <= 2 || policy.backoffCoefficient <= 1.0) {
    return initial;
  }
  // pow overflows to infinity for huge exponents or coefficients; the comparison below then
  // caps it. For |delay| < 2^53 with an integral coefficient the product is exact.
  double exponent = static_cast<double>(attempt - 2);
  double delay = static_cast<double>(initial) * std::pow(policy.backoffCoefficient, exponent);
  if (!(delay < static_cast<double>(maximum))) {
    return maximum;
  }
  return std::min<int64_t>(std::llround(delay), maximum);
}

// A fraction in [0, 1) that depends only on (run, step, attempt).
static double jitterFraction(std::string_view runId, std::string_view stepId, int64_t attempt) {
  llvm::SHA256 hasher;
  hasher.update(llvm::StringRef("kotoba.jitter.v1\0", 17));
  hasher.update(llvm::StringRef(runId.data(), runId.size()));
  hasher.update(llvm::StringRef("\0", 1));
  hasher.update(llvm::StringRef(stepId.data(), stepId.size()));
  hasher.update(llvm::StringRef("\0", 1));
  std::array<uint8_t, 8> attemptBytes;
  for (size_t index = 0; index < attemptBytes.size(); ++index) {
    attemptBytes[index] = static_cast<uint8_t>(static_cast<uint64_t>(attempt) >>
                                               (56 - 8 * index));
  }
  hasher.update(attemptBytes);
  llvm::StringRef digest = hasher.final();
  uint64_t bits = 0;
  for (size_t index = 0; index < 8; ++index) {
    bits = (bits << 8) | static_cast<uint8_t>(digest[index]);
  }
  // The top 53 bits scaled by 2^-53: uniform over [0, 1) and exactly representable.
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

int64_t jitteredDelay(const RetryPolicy &policy, int64_t delayMs, std::string_view runId,
                      std::string_view stepId, int64_t attempt) {
  if (policy.jitter <= 0.0 || delayMs <= 0) {
    return delayMs;
  }
  double reduction = std::floor(static_cast<double>(delayMs) * policy.jitter *
                                jitterFraction(runId, stepId, attempt));
  // Mathematically reduction < delayMs; rounding of huge products can reach delayMs, so the
  // result is clamped at 0 (jitter 1 allows any delay from 0 to the full one).
  auto taken = static_cast<int64_t>(reduction);
  return std::max<int64_t>(delayMs - taken, 0);
}

int64_t retryDelayMs(const RetryPolicy &policy, int64_t attempt, std::string_view runId,
                     std::string_view stepId) {
  return jitteredDelay(policy, delayBeforeAttempt(policy, attempt), runId, stepId, attempt);
}

bool shouldRetry(const RetryPolicy &policy, int64_t failedAttempt, std::string_view errorType,
                 bool retryable) {
  if (!retryable) {
    return false;
  }
  for (const std::string &type : policy.nonRetryableErrors) {
    if (type == errorType) {
      return false;
    }
  }
  return !policy.maximumAttempts || failedAttempt < *policy.maximumAttempts;
}

} // namespace kotoba
