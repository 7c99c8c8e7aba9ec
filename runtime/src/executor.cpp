// The executor's thread pool and watchdog. Every attempt moves Queued -> Running ->
// Reported under one mutex; whichever of the worker (the activity returned), the watchdog
// (it would not stop) or cancel() (it was still queued) gets there first reports it, and
// the others find it Reported and drop what they have. Callbacks run with no lock held.
// An attempt the watchdog reports while its function still runs is "abandoned": its thread
// counts as stuck, and a replacement thread keeps the pool's capacity (bounded).
#include "kotoba/runtime/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <limits>
#include <tuple>

namespace kotoba::runtime {

namespace {

using SteadyClock = std::chrono::steady_clock;

SteadyClock::time_point steadyAfter(SteadyClock::time_point start, int64_t milliseconds) {
  // Clamp, so an enormous timeout cannot overflow the time point.
  constexpr int64_t kMaxMs = int64_t{1} << 40;
  return start + std::chrono::milliseconds(std::clamp<int64_t>(milliseconds, 0, kMaxMs));
}

} // namespace

const char *attemptStatusName(AttemptStatus status) {
  switch (status) {
  case AttemptStatus::Completed:
    return "completed";
  case AttemptStatus::Failed:
    return "failed";
  case AttemptStatus::TimedOut:
    return "timed out";
  case AttemptStatus::Cancelled:
    return "cancelled";
  }
  return "unknown";
}

struct Executor::Attempt {
  enum class Phase : uint8_t { Queued, Running, Reported };

  AttemptRequest request;
  CompletionCallback onComplete;
  std::shared_ptr<CancellationSignal> cancellation = std::make_shared<CancellationSignal>();
  Phase phase = Phase::Queued;
  StopReason stopReason = StopReason::None;
  int64_t scheduledAtMs = 0;
  std::optional<int64_t> startedAtMs;
  SteadyClock::time_point startedSteady;
  SteadyClock::time_point timeoutAt;
  // When a stopped attempt is reported even if it has not returned.
  SteadyClock::time_point abandonAt;
  // Reported by the watchdog while its function was still running on a pool thread.
  bool abandoned = false;
  Value lastHeartbeat;

  [[nodiscard]] AttemptKey key() const {
    return {request.identity.runId, request.identity.commandId};
  }
};

Executor::Executor(Clock &clock, ExecutorOptions options)
    : clock_(clock), options_(std::move(options)) {
  if (!options_.logSink) {
    options_.logSink = stderrLogSink();
  }
  size_t threads = options_.threads;
  if (threads == 0) {
    threads = std::max<size_t>(4, std::thread::hardware_concurrency() * kDefaultThreadsPerCore);
  }
  poolSize_ = threads;
  maxReplacements_ = options_.maxReplacementThreads.value_or(threads);
  {
    std::lock_guard lock(mutex_);
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) {
      startWorkerLocked();
    }
  }
  watchdog_ = std::thread([this] { watchdogLoop(); });
}

Executor::~Executor() { shutdown(); }

size_t Executor::threadCount() const {
  std::lock_guard lock(mutex_);
  return liveWorkers_;
}

size_t Executor::stuckThreadCount() const {
  std::lock_guard lock(mutex_);
  return stuckWorkers_;
}

void Executor::startWorkerLocked() {
  for (std::thread::id id : retired_) {
    auto found = std::find_if(workers_.begin(), workers_.end(),
                              [id](const std::thread &worker) { return worker.get_id() == id; });
    assert(found != workers_.end() && "a retired thread is one of the workers");
    // It left workerLoop before it could add itself to retired_ (under this lock), so the
    // join waits for no more than its return.
    found->join();
    workers_.erase(found);
  }
  retired_.clear();
  ++liveWorkers_;
  workers_.emplace_back([this] { workerLoop(); });
}

bool Executor::submit(AttemptRequest request, CompletionCallback onComplete) {
  assert(request.activity && "submit() needs the activity to run; resolve it first");
  auto attempt = std::make_shared<Attempt>();
  attempt->request = std::move(request);
  attempt->onComplete = std::move(onComplete);
  attempt->scheduledAtMs = clock_.nowMs();
  std::lock_guard lock(mutex_);
  if (stopping_) {
    return false;
  }
  auto [position, inserted] = inFlight_.emplace(attempt->key(), attempt);
  if (!inserted) {
    return false;
  }
  queue_.push_back(attempt);
  workAvailable_.notify_one();
  return true;
}

bool Executor::cancel(std::string_view runId, uint64_t commandId) {
  std::optional<AttemptOutcome> outcome;
  std::shared_ptr<Attempt> attempt;
  {
    std::lock_guard lock(mutex_);
    auto found = inFlight_.find(AttemptKey{std::string(runId), commandId});
    if (found == inFlight_.end()) {
      return false;
    }
    attempt = found->second;
    if (attempt->phase == Attempt::Phase::Queued) {
      attempt->stopReason = StopReason::Cancelled;
      outcome = finishLocked(attempt, std::nullopt);
    } else {
      requestStopLocked(attempt, StopReason::Cancelled);
    }
  }
  if (outcome) {
    attempt->onComplete(std::move(*outcome));
  }
  return true;
}

size_t Executor::cancelRun(std::string_view runId) {
  std::vector<uint64_t> commands;
  {
    std::lock_guard lock(mutex_);
    for (const auto &[key, attempt] : inFlight_) {
      if (key.first == runId) {
        commands.push_back(key.second);
      }
    }
  }
  size_t cancelled = 0;
  for (uint64_t command : commands) {
    cancelled += cancel(runId, command) ? 1 : 0;
  }
  return cancelled;
}

size_t Executor::inFlight() const {
  std::lock_guard lock(mutex_);
  return inFlight_.size();
}

void Executor::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) {
      return;
    }
    stopping_ = true;
    for (const std::shared_ptr<Attempt> &attempt : queue_) {
      if (attempt->phase == Attempt::Phase::Queued) {
        attempt->phase = Attempt::Phase::Reported;
        inFlight_.erase(attempt->key());
      }
    }
    queue_.clear();
    for (auto &[key, attempt] : inFlight_) {
      requestStopLocked(attempt, StopReason::Shutdown);
    }
    workAvailable_.notify_all();
    watchdogWake_.notify_all();
  }
  for (std::thread &worker : workers_) {
    worker.join();
  }
  {
    std::lock_guard lock(mutex_);
    workers_.clear();
    watchdogWake_.notify_all();
  }
  if (watchdog_.joinable()) {
    watchdog_.join();
  }
}

void Executor::workerLoop() {
  std::shared_ptr<Attempt> previous;
  while (true) {
    std::shared_ptr<Attempt> attempt;
    {
      std::unique_lock lock(mutex_);
      if (previous && previous->abandoned) {
        // Back from an attempt the watchdog gave up on: a replacement may have taken this
        // thread's place meanwhile, and then this one leaves so the pool stays its size.
        --stuckWorkers_;
        if (!stopping_ && liveWorkers_ - stuckWorkers_ > poolSize_) {
          --liveWorkers_;
          retired_.push_back(std::this_thread::get_id());
          return;
        }
      }
      previous.reset();
      workAvailable_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return; // stopping, and nothing left
      }
      attempt = std::move(queue_.front());
      queue_.pop_front();
      if (attempt->phase != Attempt::Phase::Queued) {
        continue; // cancelled while it waited
      }
      attempt->phase = Attempt::Phase::Running;
      attempt->startedAtMs = clock_.nowMs();
      attempt->startedSteady = SteadyClock::now();
      attempt->timeoutAt = steadyAfter(attempt->startedSteady, attempt->request.timeoutMs);
      // Only a deadline before the watchdog's next look needs it awake: waking it for every
      // attempt cost two thread switches per activity step (bench/findings.md, "The batch
      // writer thread").
      if (attempt->timeoutAt < watchdogLooksAt_) {
        watchdogWake_.notify_one();
      }
    }
    execute(attempt);
    previous = std::move(attempt);
  }
}

void Executor::execute(const std::shared_ptr<Attempt> &attempt) {
  std::weak_ptr<Attempt> weakAttempt = attempt;
  HeartbeatSink heartbeat = [this, weakAttempt](const HeartbeatRecord &record) {
    std::shared_ptr<Attempt> alive = weakAttempt.lock();
    if (!alive) {
      return;
    }
    {
      std::lock_guard lock(mutex_);
      alive->lastHeartbeat = record.details;
    }
    if (options_.heartbeatSink) {
      options_.heartbeatSink(record);
    }
  };
  ActivityContext context(attempt->request.identity, attempt->cancellation, options_.logSink,
                          std::move(heartbeat), options_.payloadLimitBytes);
  Result<Value> result = runActivity(*attempt->request.activity, attempt->request.input, context);

  std::optional<AttemptOutcome> outcome;
  {
    std::lock_guard lock(mutex_);
    outcome = finishLocked(attempt, std::move(result));
  }
  if (outcome) {
    attempt->onComplete(std::move(*outcome));
  }
}

std::optional<AttemptOutcome> Executor::finishLocked(const std::shared_ptr<Attempt> &attempt,
                                                     std::optional<Result<Value>> result) {
  if (attempt->phase == Attempt::Phase::Reported) {
    return std::nullopt; // a late result: the attempt was reported when it was abandoned
  }
  attempt->phase = Attempt::Phase::Reported;
  inFlight_.erase(attempt->key());

  AttemptOutcome outcome;
  outcome.identity = attempt->request.identity;
  outcome.scheduledAtMs = attempt->scheduledAtMs;
  outcome.startedAtMs = attempt->startedAtMs;
  outcome.finishedAtMs = clock_.nowMs();
  if (attempt->startedAtMs) {
    outcome.runMs = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                          attempt->startedSteady)
                        .count();
  }
  outcome.lastHeartbeat = attempt->lastHeartbeat;

  switch (attempt->stopReason) {
  case StopReason::None:
    assert(result && "an attempt nobody stopped is only finished by its own return");
    if (result->ok()) {
      outcome.status = AttemptStatus::Completed;
      outcome.result = std::move(*result).value();
    } else {
      outcome.status = AttemptStatus::Failed;
      outcome.error = std::move(*result).error();
    }
    return outcome;
  case StopReason::TimedOut:
    outcome.status = AttemptStatus::TimedOut;
    outcome.error =
        stoppedError(attempt->request.identity, StopReason::TimedOut, attempt->request.timeoutMs);
    return outcome;
  case StopReason::Cancelled:
    outcome.status = AttemptStatus::Cancelled;
    outcome.error = stoppedError(attempt->request.identity, StopReason::Cancelled);
    return outcome;
  case StopReason::Shutdown:
    // A result that made it is worth reporting (it saves running the side effect again);
    // anything else is the shutdown's doing and the attempt will run again after a restart.
    if (result && result->ok()) {
      outcome.status = AttemptStatus::Completed;
      outcome.result = std::move(*result).value();
      return outcome;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

void Executor::requestStopLocked(const std::shared_ptr<Attempt> &attempt, StopReason reason) {
  if (attempt->stopReason != StopReason::None) {
    return;
  }
  attempt->stopReason = reason;
  attempt->abandonAt = steadyAfter(SteadyClock::now(), options_.stopWaitMs);
  attempt->cancellation->request(reason);
  watchdogWake_.notify_one();
}

void Executor::watchdogLoop() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (stopping_ && workers_.empty()) {
      return;
    }
    SteadyClock::time_point now = SteadyClock::now();
    std::optional<SteadyClock::time_point> next;
    std::vector<std::shared_ptr<Attempt>> abandoned;
    for (auto &[key, attempt] : inFlight_) {
      if (attempt->phase != Attempt::Phase::Running) {
        continue;
      }
      if (attempt->stopReason == StopReason::None && attempt->timeoutAt <= now) {
        requestStopLocked(attempt, StopReason::TimedOut);
      }
      SteadyClock::time_point due =
          attempt->stopReason == StopReason::None ? attempt->timeoutAt : attempt->abandonAt;
      if (attempt->stopReason != StopReason::None && due <= now) {
        abandoned.push_back(attempt);
        continue;
      }
      next = next ? std::min(*next, due) : due;
    }
    // An abandoned attempt keeps its thread until its function returns, which a function
    // that ignores stops may never do: each one gets a replacement, up to the bound, so
    // the other attempts keep their threads.
    std::vector<std::tuple<std::shared_ptr<Attempt>, AttemptOutcome, bool>> outcomes;
    for (const std::shared_ptr<Attempt> &attempt : abandoned) {
      if (std::optional<AttemptOutcome> outcome = finishLocked(attempt, std::nullopt)) {
        attempt->abandoned = true;
        ++stuckWorkers_;
        bool replaced = false;
        if (!stopping_ && liveWorkers_ - stuckWorkers_ < poolSize_ &&
            liveWorkers_ < poolSize_ + maxReplacements_) {
          startWorkerLocked();
          replaced = true;
        }
        outcomes.emplace_back(attempt, std::move(*outcome), replaced);
      }
    }
    if (!outcomes.empty()) {
      size_t stuck = stuckWorkers_;
      lock.unlock();
      for (auto &[attempt, outcome, replaced] : outcomes) {
        std::string message =
            fmt::format("the attempt did not stop within {} ms of being asked ({}); it is "
                        "reported now and its late result will be ignored",
                        options_.stopWaitMs, stopReasonName(attempt->stopReason));
        if (!replaced) {
          message += fmt::format("; {} pool thread(s) are held by attempts that ignored a "
                                 "stop, and no replacement is started beyond {} extra",
                                 stuck, maxReplacements_);
        }
        options_.logSink(ActivityLogRecord{attempt->request.identity, LogLevel::Warning, message});
        attempt->onComplete(std::move(outcome));
      }
      lock.lock();
      continue;
    }
    watchdogLooksAt_ = next.value_or(SteadyClock::time_point::max());
    if (next) {
      watchdogWake_.wait_until(lock, *next);
    } else {
      watchdogWake_.wait(lock);
    }
    watchdogLooksAt_ = SteadyClock::time_point::min();
  }
}

// ---- Retry decisions ---------------------------------------------------------------------

const char *retryVerdictName(RetryVerdict verdict) {
  switch (verdict) {
  case RetryVerdict::RetryAt:
    return "retry";
  case RetryVerdict::NotRetryable:
    return "not retryable";
  case RetryVerdict::NonRetryableType:
    return "non-retryable error type";
  case RetryVerdict::AttemptsExhausted:
    return "attempts exhausted";
  case RetryVerdict::ScheduleToCloseDeadline:
    return "schedule-to-close deadline";
  }
  return "unknown";
}

RetryDecision decideRetry(const RetryPolicy &policy, int64_t failedAttempt,
                          const WorkflowError &error, int64_t failedAtMs,
                          std::optional<int64_t> scheduleToCloseDeadlineMs, std::string_view runId,
                          std::string_view stepId) {
  RetryDecision decision;
  // A cancelled attempt is never retried, whatever its error claims.
  bool retryable = error.retryable && error.type != activity_errors::ActivityCancelled;
  if (!shouldRetry(policy, failedAttempt, error.type, retryable)) {
    // retry.h decided; say which of its rules did.
    if (!retryable) {
      decision.verdict = RetryVerdict::NotRetryable;
    } else if (std::find(policy.nonRetryableErrors.begin(), policy.nonRetryableErrors.end(),
                         error.type) != policy.nonRetryableErrors.end()) {
      decision.verdict = RetryVerdict::NonRetryableType;
    } else {
      decision.verdict = RetryVerdict::AttemptsExhausted;
    }
    return decision;
  }
  int64_t delay = retryDelayMs(policy, failedAttempt + 1, runId, stepId);
  // An error may say how long trying again cannot help (an HTTP 429's Retry-After, as
  // `details.retry_after_ms`): the retry waits at least that, up to the maximum interval.
  if (const Value *hint = error.details.isObject() ? error.details.asObject().find("retry_after_ms")
                                                   : nullptr;
      hint != nullptr && hint->isInt() && hint->asInt() > delay) {
    delay = std::min(hint->asInt(), std::max(delay, policy.effectiveMaximumIntervalMs()));
  }
  int64_t retryAt = failedAtMs > std::numeric_limits<int64_t>::max() - delay
                        ? std::numeric_limits<int64_t>::max()
                        : failedAtMs + delay;
  if (scheduleToCloseDeadlineMs && retryAt >= *scheduleToCloseDeadlineMs) {
    decision.verdict = RetryVerdict::ScheduleToCloseDeadline;
    return decision;
  }
  decision.verdict = RetryVerdict::RetryAt;
  decision.nextAttempt = failedAttempt + 1;
  decision.retryAtMs = retryAt;
  decision.delayMs = delay;
  return decision;
}

RetryDecision decideRetry(const vm::ActivityCallDescriptor &descriptor, int64_t failedAttempt,
                          const WorkflowError &error, int64_t failedAtMs, int64_t scheduledAtMs,
                          std::string_view runId) {
  Result<RetryPolicy> policy = retryPolicyFromValue(descriptor.retry);
  assert(policy.ok() && "the verifier accepts only descriptors with a valid retry policy");
  std::optional<int64_t> deadline;
  if (descriptor.scheduleToCloseMs) {
    deadline = scheduledAtMs + *descriptor.scheduleToCloseMs;
  }
  return decideRetry(policy.ok() ? policy.value() : RetryPolicy(), failedAttempt, error, failedAtMs,
                     deadline, runId, descriptor.step);
}

std::optional<int64_t> attemptTimeoutMs(const vm::ActivityCallDescriptor &descriptor,
                                        int64_t scheduledAtMs, int64_t nowMs) {
  if (!descriptor.scheduleToCloseMs) {
    return descriptor.timeoutMs;
  }
  int64_t remaining = scheduledAtMs + *descriptor.scheduleToCloseMs - nowMs;
  if (remaining <= 0) {
    return std::nullopt;
  }
  return std::min(descriptor.timeoutMs, remaining);
}

} // namespace kotoba::runtime
