// The runtime's clocks: real waits that end at their deadline or on a wake-up, and virtual
// time that jumps to the next due time when the engine is idle, never backwards and never
// past a due time.
#include "kotoba/runtime/clock.h"

#include "activity_test_support.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace kotoba::runtime {
namespace {

using testing::Stopwatch;

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

int64_t systemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

TEST_CASE("the real clock reads wall-clock time") {
  RealClock clock;
  int64_t before = systemNowMs();
  int64_t now = clock.nowMs();
  CHECK(now >= before);
  CHECK(now - before < 1000);
  CHECK_FALSE(clock.isVirtual());
}

TEST_CASE("a real wait ends at its deadline, not before") {
  RealClock clock;
  int64_t deadline = clock.nowMs() + 80;
  Stopwatch watch;
  CHECK(clock.waitUntil(deadline) == WaitResult::Reached);
  CHECK(clock.nowMs() >= deadline);
  CHECK(watch.elapsedMs() >= 70);
  CHECK(clock.waitUntil(clock.nowMs() - 1000) == WaitResult::Reached);
}

TEST_CASE("idleness does not move real time") {
  RealClock clock;
  int64_t before = clock.nowMs();
  clock.markIdle(before + 10 * kDayMs);
  CHECK(clock.nowMs() - before < 1000);
}

TEST_CASE("wake ends a wait early, and a wake before the wait is not lost") {
  RealClock clock;
  std::thread waker([&clock] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    clock.wake();
  });
  Stopwatch watch;
  CHECK(clock.waitUntil(clock.nowMs() + 60'000) == WaitResult::Woken);
  waker.join();
  CHECK(watch.elapsedMs() < 10'000);

  clock.wake();
  CHECK(clock.waitUntil(std::nullopt) == WaitResult::Woken);
  // The pending wake-up was consumed: the next wait runs to its deadline.
  CHECK(clock.waitUntil(clock.nowMs() + 20) == WaitResult::Reached);
}

TEST_CASE("a virtual clock starts where it is told and stands still on its own") {
  VirtualClock clock(1'000'000);
  CHECK(clock.isVirtual());
  CHECK(clock.nowMs() == 1'000'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(clock.nowMs() == 1'000'000);
  VirtualClock aroundNow;
  CHECK(std::abs(aroundNow.nowMs() - systemNowMs()) < 60'000);
}

TEST_CASE("an idle engine jumps virtual time to exactly the next due time") {
  VirtualClock clock(0);
  int64_t thirtyDays = 30 * kDayMs;
  Stopwatch watch;
  clock.markIdle(thirtyDays);
  CHECK(clock.nowMs() == thirtyDays);
  CHECK(clock.waitUntil(thirtyDays) == WaitResult::Reached);
  CHECK(watch.elapsedMs() < 1000);

  clock.markIdle(thirtyDays - 5); // never backwards
  CHECK(clock.nowMs() == thirtyDays);
  clock.markIdle(std::nullopt); // nothing due: nothing to jump to
  CHECK(clock.nowMs() == thirtyDays);
}

TEST_CASE("a virtual wait blocks until time is moved to its deadline") {
  VirtualClock clock(100);
  std::atomic<bool> returned = false;
  WaitResult result = WaitResult::Woken;
  std::thread waiter([&] {
    result = clock.waitUntil(500);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK_FALSE(returned.load());
  clock.advanceTo(499);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK_FALSE(returned.load());
  clock.advanceBy(1);
  waiter.join();
  CHECK(result == WaitResult::Reached);
  CHECK(clock.nowMs() == 500);
}

TEST_CASE("a virtual wait without a deadline ends on wake") {
  VirtualClock clock(0);
  std::thread waker([&clock] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    clock.wake();
  });
  CHECK(clock.waitUntil(std::nullopt) == WaitResult::Woken);
  waker.join();
  CHECK(clock.nowMs() == 0);
}

TEST_CASE("virtual time saturates instead of overflowing") {
  VirtualClock clock(std::numeric_limits<int64_t>::max() - 10);
  clock.advanceBy(100);
  CHECK(clock.nowMs() == std::numeric_limits<int64_t>::max());
  clock.advanceBy(-5);
  CHECK(clock.nowMs() == std::numeric_limits<int64_t>::max());
}

} // namespace kotoba::runtime
