// Retry policies: defaults, exact backoff sequences, capping without overflow, deterministic
// jitter, the retry decision, validation messages, and both the source and stored forms.
#include "kotoba/vm/retry.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <limits>
#include <vector>

using namespace kotoba;
using kotoba::testing::failMessage;
using kotoba::testing::json;
using kotoba::testing::okValue;

static constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

static std::vector<int64_t> delaysUpTo(const RetryPolicy &policy, int64_t lastAttempt) {
  std::vector<int64_t> delays;
  for (int64_t attempt = 2; attempt <= lastAttempt; ++attempt) {
    delays.push_back(delayBeforeAttempt(policy, attempt));
  }
  return delays;
}

TEST_CASE("the default policy matches the language's table") {
  RetryPolicy policy;
  CHECK(policy.initialIntervalMs == 1000);
  CHECK(policy.backoffCoefficient == 2.0);
  CHECK(policy.effectiveMaximumIntervalMs() == 100'000);
  CHECK(policy.maximumAttempts == 3);
  CHECK(policy.nonRetryableErrors.empty());
  CHECK(policy.jitter == 0.0);
  CHECK(validateRetryPolicy(policy).empty());
  CHECK(defaultCompensationRetryPolicy().maximumAttempts == 10);
}

TEST_CASE("200 ms doubling over 10 attempts caps at the default maximum of 100 x initial") {
  RetryPolicy policy;
  policy.initialIntervalMs = 200;
  CHECK(delaysUpTo(policy, 10) ==
        std::vector<int64_t>{200, 400, 800, 1600, 3200, 6400, 12800, 20000, 20000});
}

TEST_CASE("200 ms doubling over 10 attempts with a high maximum grows exactly") {
  RetryPolicy policy;
  policy.initialIntervalMs = 200;
  policy.maximumIntervalMs = 3'600'000;
  CHECK(delaysUpTo(policy, 10) ==
        std::vector<int64_t>{200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200});
}

TEST_CASE("fractional coefficients round each delay to the nearest millisecond") {
  RetryPolicy policy;
  policy.backoffCoefficient = 1.5;
  CHECK(delaysUpTo(policy, 6) == std::vector<int64_t>{1000, 1500, 2250, 3375, 5063});
}

TEST_CASE("a coefficient of 1 keeps the initial interval") {
  RetryPolicy policy;
  policy.backoffCoefficient = 1.0;
  policy.initialIntervalMs = 750;
  CHECK(delaysUpTo(policy, 5) == std::vector<int64_t>{750, 750, 750, 750});
  CHECK(delayBeforeAttempt(policy, kMaxInt64) == 750);
}

TEST_CASE("a huge coefficient or attempt number caps at the maximum without overflow") {
  RetryPolicy policy;
  policy.backoffCoefficient = 1e300;
  CHECK(delayBeforeAttempt(policy, 2) == 1000);
  CHECK(delayBeforeAttempt(policy, 3) == 100'000);
  CHECK(delayBeforeAttempt(policy, 1000) == 100'000);
  policy.backoffCoefficient = std::numeric_limits<double>::max();
  CHECK(delayBeforeAttempt(policy, kMaxInt64) == 100'000);
  policy.backoffCoefficient = 2.0;
  CHECK(delayBeforeAttempt(policy, kMaxInt64) == 100'000);
  policy.backoffCoefficient = 1.0000001;
  CHECK(delayBeforeAttempt(policy, 1'000'000'000) == 100'000);
}

TEST_CASE("intervals near the int64 limit saturate instead of wrapping") {
  RetryPolicy policy;
  policy.initialIntervalMs = kMaxInt64 / 2;
  CHECK(policy.effectiveMaximumIntervalMs() == kMaxInt64);
  CHECK(delayBeforeAttempt(policy, 2) == kMaxInt64 / 2);
  CHECK(delayBeforeAttempt(policy, 3) == kMaxInt64);
  CHECK(delayBeforeAttempt(policy, 100) == kMaxInt64);
  policy.initialIntervalMs = kMaxInt64;
  CHECK(delayBeforeAttempt(policy, 5) == kMaxInt64);
}

TEST_CASE("jitter shortens delays deterministically by run, step and attempt") {
  RetryPolicy policy;
  policy.jitter = 0.5;
  // Pinned values computed independently with Python's hashlib.
  CHECK(jitteredDelay(policy, 10'000, "run-1", "pay", 2) == 5951);
  CHECK(jitteredDelay(policy, 10'000, "run-1", "pay", 3) == 6392);
  CHECK(jitteredDelay(policy, 10'000, "run-1", "pay", 4) == 6153);
  CHECK(jitteredDelay(policy, 10'000, "run-1", "pay", 2) == 5951);
  CHECK(retryDelayMs(policy, 2, "run-1", "pay") == jitteredDelay(policy, 1000, "run-1", "pay", 2));

  int64_t shortest = kMaxInt64;
  int64_t longest = 0;
  for (int64_t attempt = 2; attempt < 2002; ++attempt) {
    int64_t delay = jitteredDelay(policy, 10'000, "run-7", "charge", attempt);
    REQUIRE(delay > 5000);
    REQUIRE(delay <= 10'000);
    shortest = std::min(shortest, delay);
    longest = std::max(longest, delay);
  }
  CHECK(shortest < 5100);
  CHECK(longest > 9900);
  CHECK(jitteredDelay(policy, 10'000, "run-2", "pay", 2) != 5951);
  CHECK(jitteredDelay(policy, 10'000, "run-1", "refund", 2) != 5951);
}

TEST_CASE("no jitter leaves delays exact and full jitter never goes below zero") {
  RetryPolicy exact;
  CHECK(jitteredDelay(exact, 12'345, "r", "s", 2) == 12'345);
  RetryPolicy full;
  full.jitter = 1.0;
  for (int64_t attempt = 2; attempt < 500; ++attempt) {
    int64_t delay = jitteredDelay(full, kMaxInt64, "r", "s", attempt);
    REQUIRE(delay >= 0);
    REQUIRE(delay <= kMaxInt64);
    REQUIRE(jitteredDelay(full, 1, "r", "s", attempt) >= 0);
  }
  CHECK(jitteredDelay(full, 0, "r", "s", 2) == 0);
}

TEST_CASE("retries continue while attempts remain and the error may be retried") {
  RetryPolicy policy;
  policy.nonRetryableErrors = {"PaymentDeclined"};
  CHECK(shouldRetry(policy, 1, "Timeout", true));
  CHECK(shouldRetry(policy, 2, "Timeout", true));
  CHECK_FALSE(shouldRetry(policy, 3, "Timeout", true));
  CHECK_FALSE(shouldRetry(policy, 1, "PaymentDeclined", true));
  CHECK(shouldRetry(policy, 1, "paymentdeclined", true));
  CHECK_FALSE(shouldRetry(policy, 1, "Timeout", false));
  policy.maximumAttempts = std::nullopt;
  CHECK(shouldRetry(policy, 1'000'000, "Timeout", true));
  policy.maximumAttempts = 1;
  CHECK_FALSE(shouldRetry(policy, 1, "Timeout", true));
}

TEST_CASE("validation reports every out-of-range field with its fix") {
  RetryPolicy policy;
  policy.initialIntervalMs = 0;
  policy.backoffCoefficient = 0.5;
  policy.maximumIntervalMs = -1;
  policy.maximumAttempts = 0;
  policy.nonRetryableErrors = {"A", ""};
  policy.jitter = 1.5;
  std::vector<RetryPolicyProblem> expected = {
      {"initial_interval", "initial_interval must be longer than 0, found 0s"},
      {"backoff_coefficient", "backoff_coefficient must be at least 1, found 0.5"},
      {"maximum_interval", "maximum_interval (-1ms) must be at least initial_interval (0s)"},
      {"maximum_attempts", "maximum_attempts must be at least 1 (the first attempt counts), "
                           "found 0; use \"unlimited\" for no limit"},
      {"non_retryable_errors", "non_retryable_errors must hold error type names, found \"\""},
      {"jitter", "jitter must be a fraction from 0 to 1, found 1.5"},
  };
  CHECK(validateRetryPolicy(policy) == expected);
  policy = RetryPolicy();
  policy.jitter = std::numeric_limits<double>::quiet_NaN();
  REQUIRE(validateRetryPolicy(policy).size() == 1);
  CHECK(validateRetryPolicy(policy)[0].message ==
        "jitter must be a fraction from 0 to 1, found a non-finite number");
}

TEST_CASE("a source retry_policy is read with durations and \"unlimited\"") {
  ParsedRetryPolicy parsed = parseRetryPolicy(json(R"({
      "initial_interval": "PT0.5S", "backoff_coefficient": 3, "maximum_interval": "1m",
      "maximum_attempts": "unlimited", "non_retryable_errors": ["A", "B"], "jitter": 0.25})"));
  CHECK(parsed.problems.empty());
  CHECK(parsed.policy.initialIntervalMs == 500);
  CHECK(parsed.policy.backoffCoefficient == 3.0);
  CHECK(parsed.policy.maximumIntervalMs == 60'000);
  CHECK_FALSE(parsed.policy.maximumAttempts.has_value());
  CHECK(parsed.policy.nonRetryableErrors == std::vector<std::string>{"A", "B"});
  CHECK(parsed.policy.jitter == 0.25);

  ParsedRetryPolicy empty = parseRetryPolicy(json("{}"));
  CHECK(empty.problems.empty());
  CHECK(empty.policy == RetryPolicy());
}

TEST_CASE("a source retry_policy reports every problem with its field") {
  ParsedRetryPolicy parsed = parseRetryPolicy(json(R"({
      "initial_intervall": "PT1S", "backoff_coefficient": "2", "maximum_interval": "P1M",
      "maximum_attempts": 0, "non_retryable_errors": "Timeout", "jitter": 2,
      "colour": "blue", "initial_interval": 5})"));
  std::vector<RetryPolicyProblem> expected = {
      {"initial_intervall",
       "unknown retry_policy field 'initial_intervall'; did you mean 'initial_interval'?"},
      {"backoff_coefficient", R"(backoff_coefficient must be a number, found string "2")"},
      {"maximum_interval", "maximum_interval: invalid duration 'P1M': months and years have no "
                           "fixed length; use days instead, such as P30D"},
      {"non_retryable_errors", "non_retryable_errors must be an array of error type names, "
                               "found string \"Timeout\""},
      {"colour", "unknown retry_policy field 'colour'; the fields are initial_interval, "
                 "backoff_coefficient, maximum_interval, maximum_attempts, "
                 "non_retryable_errors and jitter"},
      {"initial_interval", "initial_interval must be a duration such as \"PT1S\" or \"500ms\", "
                           "found integer 5"},
      {"maximum_attempts", "maximum_attempts must be at least 1 (the first attempt counts), "
                           "found 0; use \"unlimited\" for no limit"},
      {"jitter", "jitter must be a fraction from 0 to 1, found 2.0"},
  };
  CHECK(parsed.problems == expected);
  CHECK(parseRetryPolicy(json(R"({"maximum_attempts": 2.0})")).problems.at(0).message ==
        "maximum_attempts must be an integer >= 1 or \"unlimited\", found double 2.0");
  CHECK(parseRetryPolicy(json("[]")).problems.at(0).message ==
        "retry_policy must be an object, found an empty array");
  CHECK(parseRetryPolicy(json(R"({"initial_interval": "10s", "maximum_interval": "5s"})"))
            .problems.at(0)
            .message == "maximum_interval (5s) must be at least initial_interval (10s)");
}

TEST_CASE("the stored form round-trips and resolves the default maximum") {
  RetryPolicy policy;
  policy.initialIntervalMs = 200;
  policy.nonRetryableErrors = {"X"};
  policy.jitter = 0.1;
  Value stored = retryPolicyToValue(policy);
  CHECK(toJson(stored) ==
        R"({"initial_interval_ms":200,"backoff_coefficient":2.0,"maximum_interval_ms":20000,)"
        R"("maximum_attempts":3,"non_retryable_errors":["X"],"jitter":0.1})");
  RetryPolicy back = okValue(retryPolicyFromValue(stored));
  CHECK(back.initialIntervalMs == 200);
  CHECK(back.maximumIntervalMs == 20'000);
  CHECK(back.effectiveMaximumIntervalMs() == policy.effectiveMaximumIntervalMs());
  CHECK(back.nonRetryableErrors == policy.nonRetryableErrors);
  CHECK(back.jitter == 0.1);

  policy.maximumAttempts = std::nullopt;
  CHECK(toJson(retryPolicyToValue(policy)).find(R"("maximum_attempts":null)") !=
        std::string::npos);
  CHECK_FALSE(okValue(retryPolicyFromValue(retryPolicyToValue(policy))).maximumAttempts);
}

TEST_CASE("the stored form is read strictly") {
  std::string good = R"("initial_interval_ms":1000,"backoff_coefficient":2,)"
                     R"("maximum_interval_ms":100000,"maximum_attempts":3,)"
                     R"("non_retryable_errors":[],"jitter":0)";
  CHECK(retryPolicyFromValue(json("{" + good + "}")).ok());
  CHECK(failMessage(retryPolicyFromValue(json("{" + good + R"(,"extra":1})")),
                    "InvalidPayload") == "malformed stored retry policy: unknown key 'extra'");
  CHECK(failMessage(retryPolicyFromValue(json(R"({"initial_interval_ms":1000})")),
                    "InvalidPayload") ==
        "malformed stored retry policy: 'backoff_coefficient' is missing");
  CHECK(failMessage(retryPolicyFromValue(json("5")), "InvalidPayload") ==
        "malformed stored retry policy: expected an object, found integer 5");
  std::string zeroAttempts = good;
  zeroAttempts.replace(zeroAttempts.find("\"maximum_attempts\":3"), 20, "\"maximum_attempts\":0");
  CHECK(failMessage(retryPolicyFromValue(json("{" + zeroAttempts + "}")), "InvalidPayload")
            .find("maximum_attempts must be at least 1") != std::string::npos);
  std::string textInterval = good;
  textInterval.replace(textInterval.find("1000"), 4, "\"1s\"");
  CHECK(failMessage(retryPolicyFromValue(json("{" + textInterval + "}")), "InvalidPayload") ==
        "malformed stored retry policy: intervals must be integers (milliseconds)");
}
