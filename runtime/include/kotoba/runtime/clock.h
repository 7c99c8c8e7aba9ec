// The one clock the runtime reads (runtime.md section 8). Every time the engine records (event
// times, timer due times, retry times, attempt start and finish) comes from Clock::nowMs, and
// the engine's loop sleeps through Clock::waitUntil, so swapping RealClock for VirtualClock
// turns a 30-day timer into an instant without touching the engine.
//
// The loop's contract, the same for both clocks:
//   - when the engine has nothing to run and nothing in flight (no activity attempt, no
//     child, nothing another thread will report), it calls markIdle(next due time);
//   - then, or whenever it waits for something in flight, it calls waitUntil(next due
//     time), which returns when that time has come or when wake() was called (by an
//     activity completion, a signal, a new run).
// RealClock ignores markIdle and sleeps in real time. VirtualClock jumps its time forward to
// the due time on markIdle, so the waitUntil that follows returns at once; while something
// is in flight its time stands still, because a result might still arrive "before" the
// timer. Time never moves backwards and never passes a due time without firing it: the jump
// lands exactly on it.
//
// Attempt timeouts are not measured with this clock: activities run in real time under
// either clock, so the executor uses a steady clock for them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

namespace kotoba::runtime {

enum class WaitResult : uint8_t {
  Reached, // the time has come
  Woken,   // wake() was called before it did
};

class Clock {
public:
  virtual ~Clock() = default;

  // UTC milliseconds since the Unix epoch.
  [[nodiscard]] virtual int64_t nowMs() const = 0;
  [[nodiscard]] virtual bool isVirtual() const = 0;

  // The engine has nothing to do until `nextDueMs` (nullopt: nothing is due at all, only an
  // outside event such as a signal can bring work).
  virtual void markIdle(std::optional<int64_t> nextDueMs) = 0;

  // Blocks until nowMs() >= deadlineMs (nullopt: no deadline) or wake() is called. A wake()
  // that came while nobody was waiting is not lost: the next waitUntil returns Woken at once.
  WaitResult waitUntil(std::optional<int64_t> deadlineMs);
  // Wakes the current or next waitUntil.
  void wake();

protected:
  // How long waitUntil may block before re-reading the time, given how long is left until
  // the deadline (nullopt: no deadline); nullopt blocks until notified. RealClock re-reads the wall
  // clock at least every second so a clock that is set forward is noticed; a clock set back simply
  // makes it wait longer (timers never fire early).
  [[nodiscard]] virtual std::optional<std::chrono::milliseconds>
  maxWaitSlice(std::optional<int64_t> remainingMs) const = 0;
  // For subclasses whose time moves under the lock (VirtualClock).
  void notifyTimeChanged();

  std::mutex waitMutex_;

private:
  std::condition_variable changed_;
  bool wakePending_ = false;
};

// Wall-clock time (std::chrono::system_clock).
class RealClock final : public Clock {
public:
  [[nodiscard]] int64_t nowMs() const override;
  [[nodiscard]] bool isVirtual() const override { return false; }
  void markIdle(std::optional<int64_t> nextDueMs) override {}

private:
  [[nodiscard]] std::optional<std::chrono::milliseconds>
  maxWaitSlice(std::optional<int64_t> remainingMs) const override;
};

// Time that moves only when the engine is idle (markIdle) or a test moves it (advanceTo,
// advanceBy). It starts at `startMs`, by default the real time when it is created, so the
// histories it produces carry plausible dates.
class VirtualClock final : public Clock {
public:
  VirtualClock();
  explicit VirtualClock(int64_t startMs);

  [[nodiscard]] int64_t nowMs() const override;
  [[nodiscard]] bool isVirtual() const override { return true; }
  // Jumps to `nextDueMs` when it lies ahead; with no due time there is nothing to jump to,
  // and time stays where it is.
  void markIdle(std::optional<int64_t> nextDueMs) override;

  // Moves time forward to `timeMs` (never backwards: an earlier time changes nothing) and
  // wakes waiters whose deadline has come.
  void advanceTo(int64_t timeMs);
  void advanceBy(int64_t milliseconds);

private:
  [[nodiscard]] std::optional<std::chrono::milliseconds>
  maxWaitSlice(std::optional<int64_t> remainingMs) const override {
    return std::nullopt; // virtual time changes only under the lock, with a notification
  }

  // Atomic so nowMs() needs no lock; it only changes under waitMutex_, so a waiter cannot
  // miss a change between reading it and blocking.
  std::atomic<int64_t> nowMs_;
};

} // namespace kotoba::runtime
