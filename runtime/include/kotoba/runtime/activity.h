// The activity interface: what every activity the runtime runs (built-in helpers, host
// functions, processes, and later HTTP, SQL, e-mail and webhooks) implements, and the
// context one attempt of it receives. runtime.md section 7: an activity gets its input and a
// context (run id, step id, attempt, idempotency key, a cancellation flag, a heartbeat call,
// a logger) and returns a result Value or a WorkflowError {type, message, details,
// retryable}. Timeouts and cancellation reach the activity through the context's
// cancellation signal; the executor (executor.h) decides when to raise it.
#pragma once

#include "kotoba/vm/error.h"
#include "kotoba/vm/value.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kotoba::runtime {

// The error types activities and the activity runtime raise, besides those of error.h
// (PayloadTooLarge, InvalidPayload, PathError).
namespace activity_errors {
// An attempt ran longer than its `timeout`. Retryable: the next attempt may be faster.
inline constexpr std::string_view ActivityTimeout = "ActivityTimeout";
// The engine cancelled the attempt (a branch lost, the run was cancelled). Not retryable.
inline constexpr std::string_view ActivityCancelled = "ActivityCancelled";
// A host function threw a C++ exception instead of returning an error. Retryable.
inline constexpr std::string_view ActivityException = "ActivityException";
// An implementation object or its templates are wrong (an unknown field, a bad template, an
// environment variable that is not set). Not retryable: the next attempt would fail alike.
inline constexpr std::string_view InvalidImplementation = "InvalidImplementation";
// The implementation type is planned but not built yet (http, sql, email, webhook).
inline constexpr std::string_view ActivityUnavailable = "ActivityUnavailable";
// A process exited with a non-zero status or a signal and wrote no error object.
inline constexpr std::string_view ProcessFailed = "ProcessFailed";
// A process could not be started (no such file, not executable, out of resources).
inline constexpr std::string_view ProcessStartFailed = "ProcessStartFailed";
} // namespace activity_errors

// The payload limit of runtime.md section 7: results larger than this (as compact JSON) are
// refused with PayloadTooLarge.
inline constexpr size_t kDefaultPayloadLimitBytes = 2 * 1024 * 1024;

// Why an attempt is asked to stop. The first request wins: an attempt that timed out and is
// then cancelled stays timed out.
enum class StopReason : uint8_t {
  None,      // not asked to stop
  TimedOut,  // its `timeout` passed
  Cancelled, // the engine cancelled it
  Shutdown,  // the executor is shutting down; the outcome will not be reported
};
[[nodiscard]] const char *stopReasonName(StopReason reason);

// The cancellation flag of one attempt: polled with requested(), waited on with waitFor(),
// or turned into a wake-up of the activity's own event loop with onStop() (the process
// activity writes to a pipe its poll() watches).
class CancellationSignal {
public:
  using CallbackId = uint64_t;

  [[nodiscard]] bool requested() const { return reason_.load() != StopReason::None; }
  [[nodiscard]] StopReason reason() const { return reason_.load(); }

  // Waits until a stop is requested or `timeout` passes (steady time). True when a stop was
  // requested.
  bool waitFor(std::chrono::milliseconds timeout) const;

  // Asks the attempt to stop. Returns false (and changes nothing) when a stop was already
  // requested.
  bool request(StopReason reason);

  // Runs `callback` once when a stop is requested, or at once (on this thread) if one
  // already was. Callbacks run on the requesting thread with internal locks held (this
  // signal's, and the executor's when it is the one asking), so they must be short and must
  // call neither this signal nor the executor. After removeCallback returns, the
  // callback is not running and never will.
  [[nodiscard]] CallbackId onStop(std::function<void()> callback);
  void removeCallback(CallbackId id);

private:
  std::atomic<StopReason> reason_{StopReason::None};
  mutable std::mutex mutex_;
  mutable std::condition_variable stopped_;
  std::map<CallbackId, std::function<void()>> callbacks_;
  CallbackId nextCallbackId_ = 1;
};

// Replaces the values of `$.env` variables an activity used with a marker naming the
// variable, wherever they would reach an error or a log line (runtime.md: `$.env` values
// never enter the history). Values shorter than kMinRedactedLength are left alone: masking
// every "1" of a message because DEBUG=1 was used would destroy the message and protect
// nothing. Thread-safe: the activity adds secrets while the executor may already redact.
class Redactor {
public:
  static constexpr size_t kMinRedactedLength = 4;

  // `name` is the variable (shown in the marker, "[redacted $.env.TOKEN]"), `value` its text.
  void addSecret(std::string_view name, std::string_view value);
  [[nodiscard]] bool empty() const;

  [[nodiscard]] std::string redactText(std::string_view text) const;
  // Every string in the value, object keys included.
  [[nodiscard]] Value redactValue(const Value &value) const;
  // Message, details and extensions.
  [[nodiscard]] WorkflowError redactError(WorkflowError error) const;

private:
  [[nodiscard]] std::string redactLocked(std::string_view text) const;
  [[nodiscard]] Value redactValueLocked(const Value &value) const;

  mutable std::mutex mutex_;
  // Longest first, so a secret that contains another is replaced whole.
  std::vector<std::pair<std::string, std::string>> secrets_; // value, marker
};

enum class LogLevel : uint8_t { Debug, Info, Warning, Error };
[[nodiscard]] const char *logLevelName(LogLevel level);

// Which attempt of which step of which run this is: the fields every log line, heartbeat and
// outcome carries.
struct AttemptIdentity {
  std::string runId;
  // The machine's command id of the ScheduleActivity command: unique within the run, and
  // the same on replay.
  uint64_t commandId = 0;
  std::string stepId;
  std::string activityName;
  // 1 for the first attempt.
  int64_t attempt = 1;
};

// The idempotency key of runtime.md section 6, "run id + step id + attempt", written
// `run/step/attempt`. When the command id is given (non-zero) it is added before the
// attempt, `run/step/c7/attempt`, because a step id alone repeats across foreach iterations
// and across steps that share an id, and two different calls must never share a key.
[[nodiscard]] std::string idempotencyKey(const AttemptIdentity &identity);

struct ActivityLogRecord {
  const AttemptIdentity &attempt;
  LogLevel level;
  std::string_view message;
};
using ActivityLogSink = std::function<void(const ActivityLogRecord &)>;

struct HeartbeatRecord {
  const AttemptIdentity &attempt;
  Value details;
};
using HeartbeatSink = std::function<void(const HeartbeatRecord &)>;

// Writes `kotoba: info: run=R step=S attempt=N activity=A: message` lines to stderr.
[[nodiscard]] ActivityLogSink stderrLogSink();

// What one attempt can see and do besides reading its input. Created by the executor (or a
// test) for each attempt; the activity borrows it for the duration of run().
class ActivityContext {
public:
  ActivityContext(AttemptIdentity identity, std::shared_ptr<CancellationSignal> cancellation,
                  ActivityLogSink logSink = nullptr, HeartbeatSink heartbeatSink = nullptr,
                  size_t payloadLimitBytes = kDefaultPayloadLimitBytes);

  [[nodiscard]] const AttemptIdentity &identity() const { return identity_; }
  [[nodiscard]] const std::string &runId() const { return identity_.runId; }
  [[nodiscard]] const std::string &stepId() const { return identity_.stepId; }
  [[nodiscard]] const std::string &activityName() const { return identity_.activityName; }
  [[nodiscard]] int64_t attempt() const { return identity_.attempt; }
  [[nodiscard]] const std::string &idempotencyKey() const { return idempotencyKey_; }
  [[nodiscard]] size_t payloadLimitBytes() const { return payloadLimitBytes_; }

  // Whether the attempt should stop (timeout, cancel, shutdown), and why.
  [[nodiscard]] bool cancelled() const { return cancellation_->requested(); }
  [[nodiscard]] StopReason stopReason() const { return cancellation_->reason(); }
  // Sleeps up to `timeout`, waking early when asked to stop. True when asked to stop.
  bool waitForCancellation(std::chrono::milliseconds timeout) const {
    return cancellation_->waitFor(timeout);
  }
  [[nodiscard]] CancellationSignal &cancellation() { return *cancellation_; }

  // Says the attempt is alive, with optional progress details (redacted like logs).
  void heartbeat(Value details = nullptr);
  // A line in the engine log, tagged with this attempt; `$.env` values are redacted.
  void log(LogLevel level, std::string_view message);

  // Secrets this attempt used; activities that evaluate templates add to it.
  [[nodiscard]] Redactor &redactor() { return redactor_; }
  [[nodiscard]] const Redactor &redactor() const { return redactor_; }

private:
  AttemptIdentity identity_;
  std::string idempotencyKey_;
  std::shared_ptr<CancellationSignal> cancellation_;
  ActivityLogSink logSink_;
  HeartbeatSink heartbeatSink_;
  size_t payloadLimitBytes_;
  Redactor redactor_;
};

// One activity implementation. run() performs one attempt; it is called concurrently from
// several executor threads, so an implementation keeps no per-attempt state in itself.
// It should return soon after the context's cancellation is requested; the executor reports
// the timeout or cancel either way and ignores a result that arrives late.
class Activity {
public:
  virtual ~Activity() = default;
  [[nodiscard]] virtual Result<Value> run(const Value &input, ActivityContext &context) = 0;
  // The implementation type, for messages: "function", "process", ...
  [[nodiscard]] virtual std::string_view type() const = 0;
};

// The way every caller runs an attempt: run() plus what must hold whatever the activity
// does. A C++ exception becomes an ActivityException error; a result that is not valid
// UTF-8 is InvalidPayload; one over the context's payload limit is PayloadTooLarge; and
// `$.env` values are redacted from the error.
[[nodiscard]] Result<Value> runActivity(Activity &activity, const Value &input,
                                        ActivityContext &context);

// The error of an attempt that stopped because it was asked to: for TimedOut an
// ActivityTimeout (retryable; `timeoutMs`, when known, goes into the message and details),
// otherwise ActivityCancelled (not retryable). Activities return it when they notice the
// request; the executor reports it when it gives up waiting for them.
[[nodiscard]] WorkflowError stoppedError(const AttemptIdentity &attempt, StopReason reason,
                                         std::optional<int64_t> timeoutMs = std::nullopt);

// Checks a result against the payload rules of runtime.md section 7: valid UTF-8 in every
// string and key, and at most `limitBytes` as compact JSON. nullopt when it passes.
[[nodiscard]] std::optional<WorkflowError> checkResultPayload(const Value &result,
                                                              size_t limitBytes);

} // namespace kotoba::runtime
