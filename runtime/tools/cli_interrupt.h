// Ctrl-C and SIGTERM for the commands that drive an engine (`run`, `worker`, `resume`).
// Stopping from a signal handler is not possible (Engine::stop takes a lock), so the watcher
// blocks SIGINT and SIGTERM in every thread and waits for them on a thread of its own, which
// then calls the callback like any other thread would. It must be created before the engine,
// so that the engine's threads inherit the blocked mask (process activities reset their
// mask when they are spawned, so they still receive signals).
#pragma once

#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <thread>

namespace kotoba::cli {

class InterruptWatcher {
public:
  InterruptWatcher();
  ~InterruptWatcher();
  InterruptWatcher(const InterruptWatcher &) = delete;
  InterruptWatcher &operator=(const InterruptWatcher &) = delete;

  // Called (on the watcher's thread) for every SIGINT or SIGTERM; the number of signals
  // received so far is passed, so a second Ctrl-C can give up waiting. Until a callback is
  // set, a signal ends the process with status 130, as it would without the watcher.
  void onInterrupt(std::function<void(int count)> callback);
  [[nodiscard]] bool interrupted() const { return count_.load() > 0; }

private:
  void watch();

  sigset_t signals_;
  sigset_t previousMask_;
  std::atomic<bool> done_{false};
  std::atomic<int> count_{0};
  std::mutex callbackMutex_;
  std::function<void(int)> callback_;
  std::thread thread_;
};

} // namespace kotoba::cli
