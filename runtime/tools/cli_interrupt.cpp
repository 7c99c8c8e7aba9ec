// The interrupt watcher: SIGINT and SIGTERM received synchronously on a dedicated thread.
#include "cli_interrupt.h"

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <pthread.h>

namespace kotoba::cli {

InterruptWatcher::InterruptWatcher() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals_, &previousMask_);
  thread_ = std::thread([this] { watch(); });
}

InterruptWatcher::~InterruptWatcher() {
  done_.store(true);
  thread_.join();
  // Signals that arrived after the last wait stay pending and would be delivered the moment
  // the mask is restored; the process is on its way out, so they are left blocked.
}

void InterruptWatcher::onInterrupt(std::function<void(int)> callback) {
  std::lock_guard lock(callbackMutex_);
  callback_ = std::move(callback);
}

void InterruptWatcher::watch() {
  // sigtimedwait with a short timeout rather than sigwait: the destructor has no portable
  // way to wake a thread blocked in sigwait without sending it a signal.
  const timespec slice{0, 100'000'000};
  while (!done_.load()) {
    int received = sigtimedwait(&signals_, nullptr, &slice);
    if (received < 0) {
      continue; // EAGAIN (timeout) or EINTR
    }
    int count = count_.fetch_add(1) + 1;
    std::lock_guard lock(callbackMutex_);
    if (!callback_) {
      std::_Exit(130);
    }
    callback_(count);
  }
}

} // namespace kotoba::cli
