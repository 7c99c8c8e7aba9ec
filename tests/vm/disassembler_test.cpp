// The disassembly format, compared byte for byte: a listing is what golden tests and
// people diff, so every column of it is pinned here (the full listing in
// tests/vm/golden/shop.dis, single lines inline).
#include "kotoba/vm/disassembler.h"
#include "kotoba/vm/module_format.h"

#include "vm/bytecode_samples.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace kotoba;
using namespace kotoba::vm;
using namespace kotoba::vm::samples;

namespace {

constexpr std::string_view kShopSource = R"({
  workflow: {
    id: "ship",
    strategy: { op: "saga", main_flow: {
      op: "parallel", branches: [
        { op: "activity", activity_ref: "pack", compensate: { activity_ref: "unpack" } },
      ] } },
  },
}
)";

// A saga around a one-branch parallel whose activity registers a compensation. The
// compensation block is created before the branch, so the listing has to move it last.
Module shopModule() {
  ModuleBuilder module;
  FileIndex file = module.addSourceFile("shop.kotoba");
  module.addHostActivity("unpack");
  module.addHostActivity("pack");
  WorkflowBuilder builder(module, "ship");
  builder.workflow().outputs = {{"done", "boolean", false, std::nullopt}};
  builder.workflow().inputs = {{"rush", "boolean", false, Value(false)}};
  Reg value = builder.newRegister();
  Reg error = builder.newRegister();
  Reg outputs = builder.newRegister();
  Reg status = builder.newRegister();
  BlockId undo = builder.newBlock(BlockKind::Compensation);
  BlockId branch = builder.newBlock(BlockKind::Branch);

  Emitter body(builder, BlockId{0}, file);
  body.at(4, 15);
  CodeIndex saga = body(Opcode::SagaPush,
                        {Operand::unresolvedJump(), error, body.k(SagaDescriptor{}.toValue())});
  body.at(5, 7);
  body(Opcode::Parallel, {value, branch, imm(1), body.k(ParallelDescriptor{}.toValue())});
  body.at(4, 15);
  body(Opcode::SagaPop, {});
  body.at(3, 5);
  body(Opcode::NewObject, {outputs, value, imm(1), body.k(keys({"done"}))});
  body(Opcode::Complete, {outputs});
  body.patch(saga, body.next());
  body.at(4, 15);
  body(Opcode::CompRun, {status});
  body(Opcode::Add, {error, error, status});
  body(Opcode::Raise, {error});

  Emitter pack(builder, branch, file);
  pack.at(6, 9);
  pack(Opcode::LoadK, {value, pack.k(Value(Object{}))});
  pack(Opcode::Activity, {value, value, pack.k(call("pack", "pack"))});
  pack.at(6, 59);
  pack(Opcode::CompReg, {undo, pack.k(CompensationDescriptor{"unpack"}.toValue())});
  pack.at(0, 0);
  pack(Opcode::Ret, {value});

  Emitter unpack(builder, undo, file);
  unpack.at(6, 59);
  unpack(Opcode::LoadK, {value, unpack.k(Value(Object{}))});
  unpack(Opcode::Activity, {value, value, unpack.k(call("unpack", "unpack"))});
  unpack(Opcode::Ret, {value});

  module.addWorkflow(std::move(builder).finish());
  return std::move(module).finish();
}

// Compares a listing with tests/vm/golden/NAME. With KOTOBA_UPDATE_GOLDEN=1 in the
// environment, rewrites the file instead (then review the diff before committing it).
void checkGolden(const std::string &name, const std::string &actual) {
  std::string path = std::string(KOTOBA_SOURCE_DIR) + "/tests/vm/golden/" + name;
  const char *update = std::getenv("KOTOBA_UPDATE_GOLDEN");
  if (update != nullptr && std::string_view(update) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream file(path, std::ios::binary);
  REQUIRE_MESSAGE(file.good(),
                  "missing golden file " << path << "; run with KOTOBA_UPDATE_GOLDEN=1");
  std::stringstream expected;
  expected << file.rdbuf();
  CHECK(actual == expected.str());
}

DisassemblyOptions withSource() {
  DisassemblyOptions options;
  options.sourceText = [](std::string_view file) -> std::optional<std::string_view> {
    if (file == "shop.kotoba") {
      return kShopSource;
    }
    return std::nullopt;
  };
  return options;
}

} // namespace

TEST_CASE("a module disassembles to the expected listing, source lines interleaved") {
  Module module = shopModule();
  REQUIRE(verifyModule(module).empty());
  checkGolden("shop.dis", disassemble(module, withSource()));
}

TEST_CASE("without source text, locations are still shown") {
  std::string listing = disassemble(shopModule());
  CHECK(listing.find("    ; shop.kotoba:6\n    @0    LOADK         r0, k3={}") !=
        std::string::npos);
}

TEST_CASE("a listing survives the trip through a .kbc file unchanged") {
  Module module = shopModule();
  ModuleResult<LoadedModule> loaded = loadModule(writeModule(module));
  REQUIRE(loaded.ok());
  CHECK(disassemble(loaded->module, withSource()) == disassemble(module, withSource()));
}

TEST_CASE("long constants are cut without splitting a character") {
  ModuleBuilder module;
  FileIndex file = module.addSourceFile("t.kotoba");
  WorkflowBuilder builder(module, "w");
  Reg reg = builder.newRegister();
  Emitter body(builder, BlockId{0}, file);
  body(Opcode::LoadK, {reg, body.k(Value("\xE3\x81\x93\xE3\x81\xA8\xE3\x81\xB0"))}); // ことば
  body(Opcode::Complete, {reg});
  module.addWorkflow(std::move(builder).finish());
  Module built = std::move(module).finish();

  DisassemblyOptions narrow;
  narrow.maxConstantWidth = 8;
  // "\"ことば\"" is 11 bytes; 5 fit before "...", which would split the second character,
  // so the cut moves back to the end of the first.
  CHECK(
      disassembleInstruction(built, built.workflows[0], built.workflows[0].blocks[0], 0, narrow) ==
      "@0    LOADK         r0, k0=\"\xE3\x81\x93..." + std::string(24, ' ') + "; r[A] = K[B]");
  CHECK(disassembleInstruction(built, built.workflows[0], built.workflows[0].blocks[0], 0) ==
        "@0    LOADK         r0, k0=\"\xE3\x81\x93\xE3\x81\xA8\xE3\x81\xB0\"" +
            std::string(24, ' ') + "; r[A] = K[B]");
}

TEST_CASE("operands longer than the comment column push the comment one space right") {
  Module module = orderModule();
  const Workflow &workflow = module.workflows[0];
  std::string line = disassembleInstruction(module, workflow, workflow.blocks[0], 5);
  CHECK(line.find("@5    ACTIVITY      r7, r6, k4={\"activity\":\"validate_order\",\"step\":") ==
        0);
  CHECK(line.find("... ; r[A] = activity K[C] with input r[B]") != std::string::npos);
}
