// Shared pieces of the engine tests: compiling a workflow, a store in a temporary directory,
// a log of activity calls, an engine over both with a loaded workflow, and reading a run's
// history back and stepping an engine until it records an event.
#pragma once

#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/clock.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kotoba::testing {

inline vm::Module compileWorkflow(const std::string &source) {
  compiler::Compilation compilation;
  bool ok = compiler::checkSource(compilation, "engine.kotoba", source);
  std::ostringstream diagnostics;
  compilation.diagnostics.print(diagnostics);
  REQUIRE_MESSAGE(ok, diagnostics.str());
  return compiler::generateModule(compilation.program, compilation.sources);
}

inline Value parse(const std::string &text) {
  Result<Value> parsed = parseJson(text);
  REQUIRE(parsed.ok());
  return parsed.value();
}

struct TemporaryStore {
  std::filesystem::path directory;
  std::unique_ptr<runtime::Store> store;

  TemporaryStore() {
    static std::atomic<int> counter{0};
    directory = std::filesystem::temp_directory_path() /
                ("kotoba-engine-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(directory);
    auto opened = runtime::Store::open((directory / "kotoba.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
  }
  ~TemporaryStore() {
    store.reset();
    std::filesystem::remove_all(directory);
  }
};

// Records every activity call in order; activities run on executor threads.
struct CallLog {
  std::mutex mutex;
  std::vector<std::string> calls;
  void add(std::string call) {
    std::lock_guard lock(mutex);
    calls.push_back(std::move(call));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mutex);
    return calls;
  }
};

// A store, a virtual clock, an activity registry with a call log, and an engine over them
// once `load` has given it a workflow. Tests derive their fixtures from it.
struct EngineFixture {
  TemporaryStore temp;
  runtime::VirtualClock clock{1'700'000'000'000};
  runtime::ActivityRegistry registry;
  CallLog log;
  std::unique_ptr<runtime::Engine> engine;
  std::string hash;

  void load(const std::string &source) {
    engine = std::make_unique<runtime::Engine>(*temp.store, registry, clock);
    auto added = engine->addModule(compileWorkflow(source));
    REQUIRE(added.ok());
    hash = added.value();
  }
};

// Options for an engine that names itself `owner` and takes leases and claims for `leaseMs`.
inline runtime::EngineOptions ownedBy(const std::string &owner, int64_t leaseMs) {
  runtime::EngineOptions options;
  options.owner = owner;
  options.leaseMs = leaseMs;
  return options;
}

inline std::vector<runtime::EventRecord> history(runtime::Store &store, const std::string &runId) {
  auto events =
      store.query([&](const runtime::StoreReader &reader) { return reader.events(runId); });
  REQUIRE(events.ok());
  return events.value();
}

inline std::vector<std::string> eventTypes(runtime::Store &store, const std::string &runId) {
  std::vector<std::string> types;
  for (const runtime::EventRecord &event : history(store, runId)) {
    types.emplace_back(runtime::eventTypeName(event.type));
  }
  return types;
}

// Steps the engine until the run's history has an event of `type` (activities finish on
// other threads, so this waits for them rather than counting steps).
inline void stepUntil(runtime::Engine &engine, runtime::Store &store, const std::string &runId,
                      const char *type) {
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::string> types = eventTypes(store, runId);
    if (std::find(types.begin(), types.end(), type) != types.end()) {
      return;
    }
    REQUIRE(engine.step().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("the run never recorded " << type);
}

} // namespace kotoba::testing
