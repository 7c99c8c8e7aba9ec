// The attempt context: cancellation signal, redaction of `$.env` values, logging and
// heartbeats, and runActivity, the guard every attempt passes through.
#include "kotoba/runtime/activity.h"

#include "kotoba/vm/duration.h"
#include "kotoba/vm/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace kotoba::runtime {

const char *stopReasonName(StopReason reason) {
  switch (reason) {
  case StopReason::None:
    return "none";
  case StopReason::TimedOut:
    return "timed out";
  case StopReason::Cancelled:
    return "cancelled";
  case StopReason::Shutdown:
    return "shutdown";
  }
  return "unknown";
}

const char *logLevelName(LogLevel level) {
  switch (level) {
  case LogLevel::Debug:
    return "debug";
  case LogLevel::Info:
    return "info";
  case LogLevel::Warning:
    return "warning";
  case LogLevel::Error:
    return "error";
  }
  return "unknown";
}

// ---- CancellationSignal ------------------------------------------------------------------

bool CancellationSignal::waitFor(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return stopped_.wait_for(lock, timeout, [this] { return requested(); });
}

bool CancellationSignal::request(StopReason reason) {
  std::lock_guard lock(mutex_);
  StopReason expected = StopReason::None;
  if (reason == StopReason::None || !reason_.compare_exchange_strong(expected, reason)) {
    return false;
  }
  stopped_.notify_all();
  for (auto &[id, callback] : callbacks_) {
    callback();
  }
  callbacks_.clear();
  return true;
}

CancellationSignal::CallbackId CancellationSignal::onStop(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  if (requested()) {
    callback();
    return 0;
  }
  CallbackId id = nextCallbackId_++;
  callbacks_.emplace(id, std::move(callback));
  return id;
}

void CancellationSignal::removeCallback(CallbackId id) {
  std::lock_guard lock(mutex_);
  callbacks_.erase(id);
}

// ---- Redactor ----------------------------------------------------------------------------

void Redactor::addSecret(std::string_view name, std::string_view value) {
  if (value.size() < kMinRedactedLength) {
    return;
  }
  std::lock_guard lock(mutex_);
  for (const auto &[known, marker] : secrets_) {
    if (known == value) {
      return;
    }
  }
  secrets_.emplace_back(std::string(value), fmt::format("[redacted $.env.{}]", name));
  std::stable_sort(secrets_.begin(), secrets_.end(), [](const auto &left, const auto &right) {
    return left.first.size() > right.first.size();
  });
}

bool Redactor::empty() const {
  std::lock_guard lock(mutex_);
  return secrets_.empty();
}

std::string Redactor::redactLocked(std::string_view text) const {
  std::string result(text);
  for (const auto &[secret, marker] : secrets_) {
    size_t position = 0;
    while ((position = result.find(secret, position)) != std::string::npos) {
      result.replace(position, secret.size(), marker);
      position += marker.size();
    }
  }
  return result;
}

Value Redactor::redactValueLocked(const Value &value) const {
  switch (value.kind()) {
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::Double:
    return value;
  case ValueKind::String:
    return Value(redactLocked(value.asString()));
  case ValueKind::Array: {
    Array elements;
    elements.reserve(value.asArray().size());
    for (const Value &element : value.asArray()) {
      elements.push_back(redactValueLocked(element));
    }
    return Value(std::move(elements));
  }
  case ValueKind::Object: {
    Object object;
    object.reserve(value.asObject().size());
    for (const ObjectEntry &entry : value.asObject()) {
      object.set(redactLocked(entry.key), redactValueLocked(entry.value));
    }
    return Value(std::move(object));
  }
  }
  return value;
}

std::string Redactor::redactText(std::string_view text) const {
  std::lock_guard lock(mutex_);
  return redactLocked(text);
}

Value Redactor::redactValue(const Value &value) const {
  std::lock_guard lock(mutex_);
  if (secrets_.empty()) {
    return value;
  }
  return redactValueLocked(value);
}

WorkflowError Redactor::redactError(WorkflowError error) const {
  std::lock_guard lock(mutex_);
  if (secrets_.empty()) {
    return error;
  }
  error.message = redactLocked(error.message);
  error.details = redactValueLocked(error.details);
  Object extensions;
  for (const ObjectEntry &entry : error.extensions) {
    extensions.set(entry.key, redactValueLocked(entry.value));
  }
  error.extensions = std::move(extensions);
  return error;
}

// ---- Context -----------------------------------------------------------------------------

std::string idempotencyKey(const AttemptIdentity &identity) {
  if (identity.commandId == 0) {
    return fmt::format("{}/{}/{}", identity.runId, identity.stepId, identity.attempt);
  }
  return fmt::format("{}/{}/c{}/{}", identity.runId, identity.stepId, identity.commandId,
                     identity.attempt);
}

ActivityLogSink stderrLogSink() {
  return [](const ActivityLogRecord &record) {
    std::string line =
        fmt::format("kotoba: {}: run={} step={} attempt={} activity={}: {}\n",
                    logLevelName(record.level), record.attempt.runId, record.attempt.stepId,
                    record.attempt.attempt, record.attempt.activityName, record.message);
    // One fwrite per line, so lines of concurrent attempts do not interleave.
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

ActivityContext::ActivityContext(AttemptIdentity identity,
                                 std::shared_ptr<CancellationSignal> cancellation,
                                 ActivityLogSink logSink, HeartbeatSink heartbeatSink,
                                 size_t payloadLimitBytes)
    : identity_(std::move(identity)), idempotencyKey_(runtime::idempotencyKey(identity_)),
      cancellation_(std::move(cancellation)), logSink_(std::move(logSink)),
      heartbeatSink_(std::move(heartbeatSink)), payloadLimitBytes_(payloadLimitBytes) {
  if (!cancellation_) {
    cancellation_ = std::make_shared<CancellationSignal>();
  }
}

void ActivityContext::heartbeat(Value details) {
  if (heartbeatSink_) {
    heartbeatSink_(HeartbeatRecord{identity_, redactor_.redactValue(details)});
  }
}

void ActivityContext::log(LogLevel level, std::string_view message) {
  if (logSink_) {
    std::string redacted = redactor_.redactText(message);
    logSink_(ActivityLogRecord{identity_, level, redacted});
  }
}

WorkflowError stoppedError(const AttemptIdentity &attempt, StopReason reason,
                           std::optional<int64_t> timeoutMs) {
  Object details;
  details.set("attempt", attempt.attempt);
  if (reason == StopReason::TimedOut) {
    std::string limit;
    if (timeoutMs) {
      details.set("timeout_ms", *timeoutMs);
      limit = fmt::format(" within its timeout of {}", formatDurationMs(*timeoutMs));
    }
    WorkflowError error =
        makeError(activity_errors::ActivityTimeout,
                  fmt::format("attempt {} of activity '{}' (step '{}') did not finish{}",
                              attempt.attempt, attempt.activityName, attempt.stepId, limit),
                  Value(std::move(details)));
    error.retryable = true;
    return error;
  }
  details.set("reason", stopReasonName(reason));
  return makeError(activity_errors::ActivityCancelled,
                   fmt::format("attempt {} of activity '{}' (step '{}') was cancelled",
                               attempt.attempt, attempt.activityName, attempt.stepId),
                   Value(std::move(details)));
}

// ---- runActivity -------------------------------------------------------------------------

namespace {

struct InvalidText {
  std::string where; // a path into the result: $, $.key, $[2]
  size_t offset;
};

// The first string or key in `value` that is not valid UTF-8. toJson would quietly write
// U+FFFD for such bytes, so the check walks the value itself.
std::optional<InvalidText> findInvalidText(const Value &value, const std::string &where) {
  switch (value.kind()) {
  case ValueKind::Null:
  case ValueKind::Bool:
  case ValueKind::Int:
  case ValueKind::Double:
    return std::nullopt;
  case ValueKind::String:
    if (std::optional<size_t> offset = findInvalidUtf8(value.asString())) {
      return InvalidText{where, *offset};
    }
    return std::nullopt;
  case ValueKind::Array: {
    const Array &elements = value.asArray();
    for (size_t i = 0; i < elements.size(); ++i) {
      if (auto found = findInvalidText(elements[i], fmt::format("{}[{}]", where, i))) {
        return found;
      }
    }
    return std::nullopt;
  }
  case ValueKind::Object:
    for (const ObjectEntry &entry : value.asObject()) {
      if (std::optional<size_t> offset = findInvalidUtf8(entry.key)) {
        return InvalidText{fmt::format("a key of {}", where), *offset};
      }
      std::string member;
      appendJsonString(member, entry.key);
      if (auto found = findInvalidText(entry.value, fmt::format("{}[{}]", where, member))) {
        return found;
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

} // namespace

std::optional<WorkflowError> checkResultPayload(const Value &result, size_t limitBytes) {
  if (std::optional<InvalidText> invalid = findInvalidText(result, "$")) {
    Object details;
    details.set("path", invalid->where);
    details.set("offset", static_cast<int64_t>(invalid->offset));
    return makeError(error_types::InvalidPayload,
                     fmt::format("the result is not valid UTF-8: {} has a bad byte at offset {}",
                                 invalid->where, invalid->offset),
                     Value(std::move(details)));
  }
  std::string json = toJson(result);
  if (json.size() > limitBytes) {
    Object details;
    details.set("size_bytes", static_cast<int64_t>(json.size()));
    details.set("limit_bytes", static_cast<int64_t>(limitBytes));
    return makeError(error_types::PayloadTooLarge,
                     fmt::format("the result is {} bytes as JSON, over the payload limit of {} "
                                 "bytes; return less data or raise the limit",
                                 json.size(), limitBytes),
                     Value(std::move(details)));
  }
  return std::nullopt;
}

Result<Value> runActivity(Activity &activity, const Value &input, ActivityContext &context) {
  std::optional<Result<Value>> result;
  try {
    result.emplace(activity.run(input, context));
  } catch (const std::exception &exception) {
    WorkflowError error =
        makeError(activity_errors::ActivityException,
                  fmt::format("{} activity '{}' threw an exception: {}", activity.type(),
                              context.activityName(), exception.what()));
    error.retryable = true;
    result.emplace(std::move(error));
  } catch (...) {
    WorkflowError error =
        makeError(activity_errors::ActivityException,
                  fmt::format("{} activity '{}' threw an exception that is not a std::exception",
                              activity.type(), context.activityName()));
    error.retryable = true;
    result.emplace(std::move(error));
  }
  if (!result->ok()) {
    return context.redactor().redactError(std::move(*result).error());
  }
  if (std::optional<WorkflowError> problem =
          checkResultPayload(result->value(), context.payloadLimitBytes())) {
    return context.redactor().redactError(std::move(*problem));
  }
  return std::move(*result).value();
}

} // namespace kotoba::runtime
