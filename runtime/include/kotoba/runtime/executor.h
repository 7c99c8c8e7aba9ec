// The activity executor: runs activity attempts concurrently on a pool of threads, enforces
// each attempt's timeout, cancels attempts on request, and reports every attempt it accepted
// exactly once through a completion callback, with its outcome and timing.
//
// One attempt at a time: the executor does not retry. The engine records one ActivityFailed
// (or ActivityTimedOut) event per failed attempt, asks decideRetry below whether and when to
// try again, arms a timer for that time, and submits the next attempt when it fires, so a
// retry survives an engine restart and replays like any other timer.
//
// Stopping an attempt (its timeout passed, or cancel()): the attempt's cancellation signal is
// raised, which makes a process activity send SIGTERM and then SIGKILL to its process group,
// and asks an in-process function to return. The attempt is reported as TimedOut or
// Cancelled when it returns, or after `stopWaitMs` if it does not; what it returns after
// that is ignored (runtime.md section 7: "its late result is ignored"). A result that
// arrives after the stop was requested is ignored as well: the engine has already decided.
// A function reported that way still holds its thread; so that functions which never honour
// a stop cannot starve the pool, the executor starts a replacement thread for each (at most
// `maxReplacementThreads` beyond the pool), and a stuck thread that finally returns retires
// if the pool is full without it.
//
// Timeouts are measured on a steady clock: activities do real work, so even under a
// VirtualClock a 30-second timeout is 30 real seconds. The times in outcomes (scheduled,
// started, finished) come from the runtime's Clock, like every recorded time.
#pragma once

#include "kotoba/runtime/activity.h"
#include "kotoba/runtime/clock.h"
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/error.h"
#include "kotoba/vm/retry.h"
#include "kotoba/vm/value.h"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace kotoba::runtime {

// One attempt to run.
struct AttemptRequest {
  AttemptIdentity identity;
  std::shared_ptr<Activity> activity;
  Value input;
  // Start-to-close bound of this attempt; see attemptTimeoutMs for capping it by the
  // schedule-to-close deadline.
  int64_t timeoutMs = 5 * 60 * 1000;
};

enum class AttemptStatus : uint8_t {
  Completed, // `result` holds the value
  Failed,    // `error` holds the activity's error
  TimedOut,  // `error` is an ActivityTimeout
  Cancelled, // `error` is an ActivityCancelled
};
[[nodiscard]] const char *attemptStatusName(AttemptStatus status);

struct AttemptOutcome {
  AttemptIdentity identity;
  AttemptStatus status = AttemptStatus::Completed;
  Value result;
  std::optional<WorkflowError> error;
  // Clock times: when submit() accepted it, when a thread started it (nullopt if it was
  // cancelled while still queued), when it was reported.
  int64_t scheduledAtMs = 0;
  std::optional<int64_t> startedAtMs;
  int64_t finishedAtMs = 0;
  // Real time from start to report, in milliseconds (0 if it never started).
  int64_t runMs = 0;
  // The details of the attempt's last heartbeat, null if it sent none (a retry may resume
  // from them).
  Value lastHeartbeat;
};

// Called once per accepted attempt, on an executor thread, with no executor lock held:
// it may call submit() or cancel(). It should be quick (record, wake the engine).
using CompletionCallback = std::function<void(AttemptOutcome)>;

struct ExecutorOptions {
  // 0: kDefaultThreadsPerCore per hardware thread (activities mostly wait on I/O).
  size_t threads = 0;
  // How long a stopped attempt may take to return before it is reported anyway. Longer than
  // the process activity's SIGTERM grace period, so a process is normally reported dead.
  int64_t stopWaitMs = 5000;
  size_t payloadLimitBytes = kDefaultPayloadLimitBytes;
  // Where attempts' log lines go; null: stderr.
  ActivityLogSink logSink;
  // Called on each heartbeat; null: heartbeats only update lastHeartbeat.
  HeartbeatSink heartbeatSink;
  // How many threads may run beyond `threads` to replace ones held by abandoned attempts
  // (see above); nullopt: as many as `threads`, so the pool at most doubles. Last, so that
  // positional initializers written before it still fit.
  std::optional<size_t> maxReplacementThreads;
};

class Executor {
public:
  static constexpr size_t kDefaultThreadsPerCore = 4;

  Executor(Clock &clock, ExecutorOptions options = {});
  // Shuts down (see shutdown()).
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  // Queues an attempt. Refused (false, and the callback is never called) when an attempt of
  // the same (run id, command id) is still in flight or the executor is shut down.
  [[nodiscard]] bool submit(AttemptRequest request, CompletionCallback onComplete);

  // Cancels the attempt of (run id, command id): a queued one is reported Cancelled at once,
  // a running one is asked to stop. False when no such attempt is in flight.
  bool cancel(std::string_view runId, uint64_t commandId);
  // Cancels every attempt of a run; returns how many there were.
  size_t cancelRun(std::string_view runId);

  // Attempts accepted and not yet reported.
  [[nodiscard]] size_t inFlight() const;
  // Threads alive in the pool, counting those held by abandoned attempts.
  [[nodiscard]] size_t threadCount() const;
  // Threads still held by attempts that were reported after ignoring their stop.
  [[nodiscard]] size_t stuckThreadCount() const;

  // Stops accepting attempts, drops queued ones and asks running ones to stop, then waits
  // for the threads. Attempts stopped this way are not reported: their outcome is unknown,
  // and the engine runs them again after a restart, as it would after a crash. Attempts
  // that finish normally before they notice are still reported.
  void shutdown();

private:
  struct Attempt;
  using AttemptKey = std::pair<std::string, uint64_t>;

  void workerLoop();
  void watchdogLoop();
  void execute(const std::shared_ptr<Attempt> &attempt);
  // Takes the attempt out of flight and builds its outcome, or returns nullopt if it was
  // already reported. Called with mutex_ held.
  [[nodiscard]] std::optional<AttemptOutcome> finishLocked(const std::shared_ptr<Attempt> &attempt,
                                                           std::optional<Result<Value>> result);
  void requestStopLocked(const std::shared_ptr<Attempt> &attempt, StopReason reason);
  // Starts one more worker thread, first joining those that retired. Called with mutex_ held.
  void startWorkerLocked();

  Clock &clock_;
  ExecutorOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::condition_variable watchdogWake_;
  // When the waiting watchdog looks next on its own (max: only when woken); min while it is
  // not waiting, since it looks at every attempt before it waits again.
  std::chrono::steady_clock::time_point watchdogLooksAt_ =
      std::chrono::steady_clock::time_point::min();
  std::deque<std::shared_ptr<Attempt>> queue_;
  std::map<AttemptKey, std::shared_ptr<Attempt>, std::less<>> inFlight_;
  bool stopping_ = false;
  size_t poolSize_ = 0;
  size_t maxReplacements_ = 0;
  // Worker threads that have not retired, and how many of them run an abandoned attempt.
  size_t liveWorkers_ = 0;
  size_t stuckWorkers_ = 0;
  std::vector<std::thread> workers_;
  // Threads that left workerLoop after their abandoned attempt returned: joined and dropped
  // from workers_ at the next start of a thread, or at shutdown.
  std::vector<std::thread::id> retired_;
  std::thread watchdog_;
};

// ---- Retry decisions ---------------------------------------------------------------------

enum class RetryVerdict : uint8_t {
  RetryAt,                 // run attempt `nextAttempt` at `retryAtMs`
  NotRetryable,            // the error says it is not retryable (or it was a cancel)
  NonRetryableType,        // the policy's non_retryable_errors lists the error's type
  AttemptsExhausted,       // maximum_attempts reached
  ScheduleToCloseDeadline, // the next attempt would start at or after the deadline
};
[[nodiscard]] const char *retryVerdictName(RetryVerdict verdict);

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::NotRetryable;
  int64_t nextAttempt = 0; // RetryAt
  int64_t retryAtMs = 0;   // RetryAt
  int64_t delayMs = 0;     // RetryAt: the backoff, jitter applied

  [[nodiscard]] bool retry() const { return verdict == RetryVerdict::RetryAt; }
};

// After attempt `failedAttempt` (1 for the first) failed at `failedAtMs` with `error`: retry
// at which time, or is this the final failure? Uses retry.h (shouldRetry, retryDelayMs with
// jitter drawn from run, step and attempt, so replay computes the same time). An error whose
// details hold an integer `retry_after_ms` waits at least that long, capped by the policy's
// maximum interval. With a schedule-to-close deadline, a retry that would start at or after
// it is a final failure.
[[nodiscard]] RetryDecision decideRetry(const RetryPolicy &policy, int64_t failedAttempt,
                                        const WorkflowError &error, int64_t failedAtMs,
                                        std::optional<int64_t> scheduleToCloseDeadlineMs,
                                        std::string_view runId, std::string_view stepId);

// The same from a ScheduleActivity command's descriptor: the retry policy, and the
// deadline `scheduledAtMs` (when the first attempt was scheduled) + schedule_to_close_ms.
// A descriptor the verifier accepted always decodes; a failure here is a bug.
[[nodiscard]] RetryDecision decideRetry(const vm::ActivityCallDescriptor &descriptor,
                                        int64_t failedAttempt, const WorkflowError &error,
                                        int64_t failedAtMs, int64_t scheduledAtMs,
                                        std::string_view runId);

// The timeout of an attempt starting at `nowMs`: the descriptor's timeout, capped by what
// is left of the schedule-to-close deadline; nullopt when that deadline has passed (the
// attempt must not start: the step has timed out).
[[nodiscard]] std::optional<int64_t> attemptTimeoutMs(const vm::ActivityCallDescriptor &descriptor,
                                                      int64_t scheduledAtMs, int64_t nowMs);

} // namespace kotoba::runtime
