// Helpers for the store tests: a temporary directory removed afterwards, unwrapping of
// store results with the error message shown on failure, and a store with one module and
// one run ready to record history.
#pragma once

#include "kotoba/runtime/store.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::runtime::testing {

// A fresh directory under the system's temporary directory, deleted with its contents.
class TempDir {
public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("kotoba-store-test-" + std::to_string(random()) + "-" + std::to_string(++counter));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

template <typename T> T ok(StoreResult<T> result) {
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? std::string() : result.error().message));
  return std::move(result).value();
}

inline void ok(const StoreStatus &status) {
  REQUIRE_MESSAGE(status.ok(), (status.ok() ? std::string() : status.error().message));
}

// The error of a result that must have failed with `kind`.
template <typename Result> StoreError failure(const Result &result, StoreErrorKind kind) {
  REQUIRE_MESSAGE(!result.ok(), "expected the store operation to fail");
  INFO("message: ", result.error().message);
  CHECK(storeErrorKindName(result.error().kind) == std::string(storeErrorKindName(kind)));
  return result.error();
}

inline Value json(std::string_view text) {
  Result<Value> parsed = parseJson(text);
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? std::string() : parsed.error().message));
  return parsed.value();
}

inline constexpr std::string_view kModuleHash =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

inline std::unique_ptr<Store> openStore(const std::string &path, StoreOptions options = {}) {
  return ok(Store::open(path, options));
}

inline NewRun newRun(std::string id, int64_t createdMs = 1000) {
  NewRun run;
  run.id = std::move(id);
  run.workflowId = "order";
  run.moduleHash = std::string(kModuleHash);
  run.inputs = json(R"({"order":"A-1"})");
  run.createdMs = createdMs;
  return run;
}

// Stores the test module and creates the run in one transaction.
inline void createRun(Store &store, const NewRun &run) {
  ok(store.write([&](Transaction &tx) -> StoreStatus {
    const std::vector<uint8_t> kbc = {'K', 'B', 'C', 0, 1};
    if (auto stored = tx.putModule(kModuleHash, kbc, run.createdMs); !stored.ok()) {
      return std::move(stored).error();
    }
    return tx.createRun(run);
  }));
}

inline NewEvent event(EventType type, int64_t timeMs, std::string_view payloadJson,
                      std::string stepId = "", std::string location = "") {
  return NewEvent{type, timeMs, std::move(stepId), std::move(location), json(payloadJson)};
}

inline AppendedEvents append(Store &store, std::string_view runId,
                             const std::vector<NewEvent> &events) {
  AppendedEvents appended;
  ok(store.write([&](Transaction &tx) -> StoreStatus {
    StoreResult<AppendedEvents> result = tx.appendEvents(runId, events);
    if (!result.ok()) {
      return std::move(result).error();
    }
    appended = result.value();
    return {};
  }));
  return appended;
}

inline std::vector<EventRecord> history(Store &store, std::string_view runId,
                                        EventRange range = {}) {
  return ok(store.query([&](const StoreReader &reader) { return reader.events(runId, range); }));
}

inline RunRecord readRun(Store &store, std::string_view runId) {
  auto run = ok(store.query([&](const StoreReader &reader) { return reader.run(runId); }));
  REQUIRE(run.has_value());
  return *run;
}

} // namespace kotoba::runtime::testing
