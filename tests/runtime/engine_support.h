// Shared pieces of the engine tests: compiling a workflow, a store in a temporary directory,
// a log of activity calls, and reading a run's history back.
#pragma once

#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
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

inline std::vector<runtime::EventRecord> history(runtime::Store &store, const std::string &runId) {
  auto events =
      store.query([&](const runtime::StoreReader &reader) { return reader.events(runId); });
  REQUIRE(events.ok());
  return events.value();
}

} // namespace kotoba::testing
