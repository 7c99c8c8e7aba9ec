// Shared pieces of the engine tests: compiling a workflow, a store in a temporary directory,
// and reading a run's history back.
#pragma once

#include "kotoba/compiler/codegen.h"
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
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

inline std::vector<runtime::EventRecord> history(runtime::Store &store, const std::string &runId) {
  auto events =
      store.query([&](const runtime::StoreReader &reader) { return reader.events(runId); });
  REQUIRE(events.ok());
  return events.value();
}

} // namespace kotoba::testing
