// Retry policies (language.md section 7): the policy struct with its defaults, validation,
// reading it from source and from its stored form, and the two questions the runtime asks
// after a failed attempt: retry at all, and after how long. Delays are pure functions of the
// policy, the attempt number and the (run, step) identity, so a replayed run computes the
// same timers as the original one.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba {

struct RetryPolicy {
  int64_t initialIntervalMs = 1000;
  double backoffCoefficient = 2.0;
  // nullopt: 100 x initialIntervalMs (saturating at the int64 maximum).
  std::optional<int64_t> maximumIntervalMs;
  // Attempts in total, the first included; nullopt means unlimited.
  std::optional<int64_t> maximumAttempts = 3;
  // Error types that are never retried, matched exactly.
  std::vector<std::string> nonRetryableErrors;
  // The fraction (0..1) of each delay that may be taken off, chosen per attempt by hashing.
  double jitter = 0.0;

  [[nodiscard]] int64_t effectiveMaximumIntervalMs() const;
  friend bool operator==(const RetryPolicy &, const RetryPolicy &) = default;
};

// The default for compensations (language.md section 5, saga): 10 attempts, otherwise the
// usual defaults.
[[nodiscard]] RetryPolicy defaultCompensationRetryPolicy();

// One problem with a policy: the source field it concerns and what is wrong with it.
struct RetryPolicyProblem {
  std::string field;
  std::string message;
  friend bool operator==(const RetryPolicyProblem &, const RetryPolicyProblem &) = default;
};

// Every out-of-range value, in field order; empty when the policy is valid. Messages are
// the compiler's diagnostics: "backoff_coefficient must be at least 1, found 0.5".
[[nodiscard]] std::vector<RetryPolicyProblem> validateRetryPolicy(const RetryPolicy &policy);

// A `retry_policy` object as written in a workflow, with constant values:
//   { initial_interval: "PT1S", backoff_coefficient: 2, maximum_interval: "PT100S",
//     maximum_attempts: 3 | "unlimited", non_retryable_errors: ["E"], jitter: 0.1 }
// Every field is optional. `problems` lists every unknown field (with a suggestion), value of
// the wrong kind, bad duration and out-of-range value; `policy` holds what could be read.
struct ParsedRetryPolicy {
  RetryPolicy policy;
  std::vector<RetryPolicyProblem> problems;
};
[[nodiscard]] ParsedRetryPolicy parseRetryPolicy(const Value &source);

// The stored form used in compiled modules, every field resolved:
//   {"initial_interval_ms": 1000, "backoff_coefficient": 2.0, "maximum_interval_ms": 100000,
//    "maximum_attempts": 3 | null, "non_retryable_errors": [], "jitter": 0.0}
[[nodiscard]] Value retryPolicyToValue(const RetryPolicy &policy);
// Reads the stored form strictly (exactly those keys, valid ranges); the error message
// names the first problem.
[[nodiscard]] Result<RetryPolicy> retryPolicyFromValue(const Value &value);

// The delay before attempt `attempt` (2 for the first retry): language.md's "delay before
// attempt n+1 is min(initial * coefficient^(n-1), maximum)", that is
// min(initial * coefficient^(attempt-2), maximum), rounded to the nearest millisecond. It is
// computed in floating point and compared with the maximum before converting, so a huge
// coefficient or attempt number simply yields the maximum. Jitter is not applied.
[[nodiscard]] int64_t delayBeforeAttempt(const RetryPolicy &policy, int64_t attempt);

// The delay with jitter applied: delay - floor(delay * jitter * u), where u in [0, 1) comes
// from SHA-256 of (run id, step id, attempt). Jitter only shortens a delay, so the maximum
// interval still holds; with jitter 0 this is the delay itself.
[[nodiscard]] int64_t jitteredDelay(const RetryPolicy &policy, int64_t delayMs,
                                    std::string_view runId, std::string_view stepId,
                                    int64_t attempt);

// delayBeforeAttempt followed by jitteredDelay: what the runtime waits before `attempt`.
[[nodiscard]] int64_t retryDelayMs(const RetryPolicy &policy, int64_t attempt,
                                   std::string_view runId, std::string_view stepId);

// Whether a step whose attempt number `failedAttempt` (1 for the first) failed with an error
// of `errorType` gets another attempt: only if the error is retryable, its type is not in
// non_retryable_errors, and attempts remain.
[[nodiscard]] bool shouldRetry(const RetryPolicy &policy, int64_t failedAttempt,
                               std::string_view errorType, bool retryable);

} // namespace kotoba
