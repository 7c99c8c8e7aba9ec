// RealClock and VirtualClock, and the wait both share: block until a deadline or a wake-up,
// without losing a wake-up that arrives between the engine's last check and its wait.
#include "kotoba/runtime/clock.h"

#include <algorithm>
#include <limits>

namespace kotoba::runtime {

namespace {

// How often a real-time wait re-reads the wall clock, so a clock set forward is noticed
// within this long.
constexpr int64_t kRealClockSliceMs = 1000;

int64_t systemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

WaitResult Clock::waitUntil(std::optional<int64_t> deadlineMs) {
  std::unique_lock lock(waitMutex_);
  while (true) {
    if (wakePending_) {
      wakePending_ = false;
      return WaitResult::Woken;
    }
    int64_t now = nowMs();
    if (deadlineMs && now >= *deadlineMs) {
      return WaitResult::Reached;
    }
    std::optional<int64_t> remaining;
    if (deadlineMs) {
      remaining = *deadlineMs - now;
    }
    std::optional<std::chrono::milliseconds> slice = maxWaitSlice(remaining);
    if (slice) {
      changed_.wait_for(lock, *slice);
    } else {
      changed_.wait(lock);
    }
  }
}

void Clock::wake() {
  std::lock_guard lock(waitMutex_);
  wakePending_ = true;
  changed_.notify_all();
}

void Clock::notifyTimeChanged() { changed_.notify_all(); }

// ---- RealClock ---------------------------------------------------------------------------

int64_t RealClock::nowMs() const { return systemNowMs(); }

std::optional<std::chrono::milliseconds>
RealClock::maxWaitSlice(std::optional<int64_t> remainingMs) const {
  if (!remainingMs) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(std::clamp<int64_t>(*remainingMs, 1, kRealClockSliceMs));
}

// ---- VirtualClock ------------------------------------------------------------------------

VirtualClock::VirtualClock() : VirtualClock(systemNowMs()) {}

VirtualClock::VirtualClock(int64_t startMs) : nowMs_(startMs) {}

int64_t VirtualClock::nowMs() const { return nowMs_.load(); }

void VirtualClock::markIdle(std::optional<int64_t> nextDueMs) {
  if (nextDueMs) {
    advanceTo(*nextDueMs);
  }
}

void VirtualClock::advanceTo(int64_t timeMs) {
  std::lock_guard lock(waitMutex_);
  if (timeMs <= nowMs_.load()) {
    return;
  }
  nowMs_.store(timeMs);
  notifyTimeChanged();
}

void VirtualClock::advanceBy(int64_t milliseconds) {
  std::lock_guard lock(waitMutex_);
  if (milliseconds <= 0) {
    return;
  }
  int64_t now = nowMs_.load();
  int64_t target = now > std::numeric_limits<int64_t>::max() - milliseconds
                       ? std::numeric_limits<int64_t>::max()
                       : now + milliseconds;
  nowMs_.store(target);
  notifyTimeChanged();
}

} // namespace kotoba::runtime
