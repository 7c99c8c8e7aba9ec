// Helpers for the activity tests: a temporary directory that holds the child programs a test
// writes (removed when the test ends), a context for one attempt with its log lines
// captured, and a stopwatch.
#pragma once

#include "kotoba/runtime/activity.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kotoba::runtime::testing {

class TempDir {
public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kotoba-activity-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  [[nodiscard]] const std::filesystem::path &path() const { return path_; }
  [[nodiscard]] std::string file(const std::string &name) const { return (path_ / name).string(); }

  // Writes an executable file (a script with its #! line) and returns its path.
  std::string writeScript(const std::string &name, const std::string &text) const {
    std::string target = writeFile(name, text);
    std::filesystem::permissions(target, std::filesystem::perms::owner_all);
    return target;
  }
  std::string writeFile(const std::string &name, const std::string &text) const {
    std::string target = file(name);
    std::ofstream out(target, std::ios::binary);
    out << text;
    return target;
  }
  [[nodiscard]] std::string read(const std::string &name) const {
    std::ifstream in(file(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

private:
  std::filesystem::path path_;
};

// Log lines an attempt wrote.
struct CapturedLog {
  std::mutex mutex;
  std::vector<std::pair<LogLevel, std::string>> lines;

  [[nodiscard]] ActivityLogSink sink() {
    return [this](const ActivityLogRecord &record) {
      std::lock_guard lock(mutex);
      lines.emplace_back(record.level, std::string(record.message));
    };
  }
};

inline AttemptIdentity testIdentity(std::string activity = "test_activity", int64_t attempt = 1) {
  AttemptIdentity identity;
  identity.runId = "run-1";
  identity.commandId = 7;
  identity.stepId = "step_a";
  identity.activityName = std::move(activity);
  identity.attempt = attempt;
  return identity;
}

inline std::unique_ptr<ActivityContext>
testContext(std::shared_ptr<CancellationSignal> cancellation = nullptr,
            size_t payloadLimitBytes = kDefaultPayloadLimitBytes,
            ActivityLogSink logSink = nullptr) {
  if (!cancellation) {
    cancellation = std::make_shared<CancellationSignal>();
  }
  return std::make_unique<ActivityContext>(testIdentity(), std::move(cancellation),
                                           std::move(logSink), nullptr, payloadLimitBytes);
}

class Stopwatch {
public:
  [[nodiscard]] int64_t elapsedMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
        .count();
  }

private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

} // namespace kotoba::runtime::testing
