// Code generation end to end: sources compile to modules that verify, serialize
// deterministically, and read back to the same disassembly.
#include "kotoba/compiler/compile.h"
#include "kotoba/vm/disassembler.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/verifier.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace kotoba;

namespace {

const char *const goldenSources[] = {
    KOTOBA_SOURCE_DIR "/tests/compiler/dis/order-processing.kotoba",
    KOTOBA_SOURCE_DIR "/tests/compiler/dis/expressions-and-paths.kotoba",
    KOTOBA_SOURCE_DIR "/tests/compiler/dis/control-flow.kotoba",
    KOTOBA_SOURCE_DIR "/tests/compiler/check/every-construct.kotoba",
};

std::vector<uint8_t> build(const std::string &path) {
  compiler::Compilation compilation;
  std::optional<vm::Module> module = compiler::compileFile(compilation, path);
  REQUIRE_MESSAGE(module.has_value(), path);
  std::vector<vm::ModuleError> problems = vm::verifyModule(*module);
  CHECK_MESSAGE(problems.empty(), (problems.empty() ? "" : problems.front().describe()));
  return vm::writeModule(*module);
}

} // namespace

TEST_CASE("building the same source twice gives byte-identical modules") {
  for (const char *path : goldenSources) {
    CAPTURE(path);
    std::vector<uint8_t> first = build(path);
    std::vector<uint8_t> second = build(path);
    CHECK(first == second);
  }
}

TEST_CASE("a built module loads, verifies and writes back to the same bytes") {
  for (const char *path : goldenSources) {
    CAPTURE(path);
    std::vector<uint8_t> bytes = build(path);
    auto loaded = vm::loadModule(bytes);
    REQUIRE(loaded.ok());
    CHECK(vm::writeModule(loaded.value().module) == bytes);
    CHECK(vm::hashToHex(loaded.value().hash) == vm::hashToHex(vm::computeContentHash(bytes)));
  }
}

TEST_CASE("disassembly is the same before writing and after reading back") {
  for (const char *path : goldenSources) {
    CAPTURE(path);
    compiler::Compilation compilation;
    std::optional<vm::Module> module = compiler::compileFile(compilation, path);
    REQUIRE(module.has_value());
    std::vector<uint8_t> bytes = vm::writeModule(*module);
    auto loaded = vm::loadModule(bytes);
    REQUIRE(loaded.ok());
    CHECK(vm::disassemble(*module) == vm::disassemble(loaded.value().module));
  }
}

TEST_CASE("the entry workflow is first and compensations are blocks of their own") {
  compiler::Compilation compilation;
  std::optional<vm::Module> module = compiler::compileFile(
      compilation, KOTOBA_SOURCE_DIR "/tests/compiler/dis/order-processing.kotoba");
  REQUIRE(module.has_value());
  REQUIRE(module->workflows.size() == 1);
  const vm::Workflow &workflow = module->workflows[0];
  CHECK(workflow.id == "order_processing");
  size_t compensations = 0;
  size_t branches = 0;
  for (const vm::Block &block : workflow.blocks) {
    compensations += block.kind == vm::BlockKind::Compensation;
    branches += block.kind == vm::BlockKind::Branch;
    REQUIRE(block.code.size() == block.locations.size());
    for (const vm::SourceLocation &location : block.locations) {
      CHECK(location.line > 0);
    }
  }
  CHECK(compensations == 2); // cancel_payment and release_inventory
  CHECK(branches == 3);      // payment, inventory, timer + fraud check
  CHECK(module->hostActivities.size() == 8);
}
