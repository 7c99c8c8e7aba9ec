// The opcode list: persisted numbers pinned, the structural rules the verifier and the
// disassembler rely on, and the documentation covering every opcode.
#include "kotoba/vm/module.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/opcodes.h"

#include "vm/bytecode_samples.h"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>

using namespace kotoba;
using namespace kotoba::vm;

namespace {

struct PinnedOpcode {
  Opcode opcode;
  unsigned number;
  std::string_view mnemonic;
};

// Changing a number here means every .kbc file ever written decodes differently: add new
// opcodes at the end instead, and bump kKbcFormatVersion if an old one must change meaning.
constexpr PinnedOpcode kPinned[] = {
    {Opcode::Nop, 0, "NOP"},
    {Opcode::LoadK, 1, "LOADK"},
    {Opcode::LoadNull, 2, "LOADNULL"},
    {Opcode::LoadBool, 3, "LOADBOOL"},
    {Opcode::Move, 4, "MOVE"},
    {Opcode::Root, 5, "ROOT"},
    {Opcode::Path, 6, "PATH"},
    {Opcode::PathOpt, 7, "PATHOPT"},
    {Opcode::PathHas, 8, "PATHHAS"},
    {Opcode::NewArray, 9, "NEWARRAY"},
    {Opcode::NewObject, 10, "NEWOBJECT"},
    {Opcode::Concat, 11, "CONCAT"},
    {Opcode::Add, 12, "ADD"},
    {Opcode::Sub, 13, "SUB"},
    {Opcode::Mul, 14, "MUL"},
    {Opcode::Div, 15, "DIV"},
    {Opcode::Mod, 16, "MOD"},
    {Opcode::Eq, 17, "EQ"},
    {Opcode::Ne, 18, "NE"},
    {Opcode::Lt, 19, "LT"},
    {Opcode::Le, 20, "LE"},
    {Opcode::Gt, 21, "GT"},
    {Opcode::Ge, 22, "GE"},
    {Opcode::In, 23, "IN"},
    {Opcode::Not, 24, "NOT"},
    {Opcode::Neg, 25, "NEG"},
    {Opcode::ToBool, 26, "TOBOOL"},
    {Opcode::Call, 27, "CALL"},
    {Opcode::HostPred, 28, "HOSTPRED"},
    {Opcode::Jmp, 29, "JMP"},
    {Opcode::JmpIf, 30, "JMPIF"},
    {Opcode::JmpIfNot, 31, "JMPIFNOT"},
    {Opcode::JmpNotNull, 32, "JMPNOTNULL"},
    {Opcode::SetVar, 33, "SETVAR"},
    {Opcode::SetResult, 34, "SETRESULT"},
    {Opcode::Activity, 35, "ACTIVITY"},
    {Opcode::Timer, 36, "TIMER"},
    {Opcode::TimerUntil, 37, "TIMERUNTIL"},
    {Opcode::WaitSignal, 38, "WAITSIGNAL"},
    {Opcode::WaitEvent, 39, "WAITEVENT"},
    {Opcode::Child, 40, "CHILD"},
    {Opcode::Decided, 41, "DECIDED"},
    {Opcode::Parallel, 42, "PARALLEL"},
    {Opcode::Foreach, 43, "FOREACH"},
    {Opcode::SagaPush, 44, "SAGAPUSH"},
    {Opcode::SagaPop, 45, "SAGAPOP"},
    {Opcode::CompReg, 46, "COMPREG"},
    {Opcode::CompRun, 47, "COMPRUN"},
    {Opcode::TryPush, 48, "TRYPUSH"},
    {Opcode::TryPop, 49, "TRYPOP"},
    {Opcode::Raise, 50, "RAISE"},
    {Opcode::ContinueAsNew, 51, "CONTINUEASNEW"},
    {Opcode::Complete, 52, "COMPLETE"},
    {Opcode::Ret, 53, "RET"},
};

std::vector<Opcode> allOpcodes() {
  std::vector<Opcode> opcodes;
  for (uint32_t number = 0; number < kOpcodeCount; ++number) {
    opcodes.push_back(*opcodeFromNumber(number));
  }
  return opcodes;
}

std::string readSourceFile(const std::string &relative) {
  std::ifstream file(std::string(KOTOBA_SOURCE_DIR) + "/" + relative);
  REQUIRE_MESSAGE(file.good(), "cannot open " << relative);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

} // namespace

TEST_CASE("every opcode keeps its persisted number and mnemonic") {
  CHECK(kOpcodeCount == std::size(kPinned));
  for (const PinnedOpcode &pinned : kPinned) {
    CAPTURE(pinned.mnemonic);
    CHECK(static_cast<unsigned>(pinned.opcode) == pinned.number);
    CHECK(mnemonic(pinned.opcode) == pinned.mnemonic);
    CHECK(opcodeFromMnemonic(pinned.mnemonic) == pinned.opcode);
    CHECK(opcodeFromNumber(pinned.number) == pinned.opcode);
  }
}

TEST_CASE("numbers past the list are not opcodes") {
  CHECK_FALSE(opcodeFromNumber(static_cast<uint32_t>(kOpcodeCount)).has_value());
  CHECK_FALSE(opcodeFromNumber(255).has_value());
  CHECK_FALSE(opcodeFromNumber(UINT32_MAX).has_value());
  CHECK_FALSE(opcodeFromMnemonic("ret").has_value());
  CHECK_FALSE(opcodeFromMnemonic("").has_value());
  // Removed before the first release (docs/kbc-format.md); its number now belongs to JMPNOTNULL.
  CHECK_FALSE(opcodeFromMnemonic("JMPIFNULL").has_value());
}

TEST_CASE("state roots, block kinds and value tags keep their persisted numbers") {
  CHECK(kStateRootCount == 6);
  CHECK(static_cast<unsigned>(StateRoot::Inputs) == 0);
  CHECK(static_cast<unsigned>(StateRoot::Vars) == 1);
  CHECK(static_cast<unsigned>(StateRoot::Results) == 2);
  CHECK(static_cast<unsigned>(StateRoot::Signals) == 3);
  CHECK(static_cast<unsigned>(StateRoot::Events) == 4);
  CHECK(static_cast<unsigned>(StateRoot::Run) == 5);
  CHECK(stateRootSpelling(StateRoot::Inputs) == "$.inputs");
  CHECK(stateRootSpelling(StateRoot::Run) == "$.run");
  CHECK_FALSE(stateRootFromNumber(6).has_value());

  CHECK(kBlockKindCount == 4);
  CHECK(static_cast<unsigned>(BlockKind::Body) == 0);
  CHECK(static_cast<unsigned>(BlockKind::Branch) == 1);
  CHECK(static_cast<unsigned>(BlockKind::Iteration) == 2);
  CHECK(static_cast<unsigned>(BlockKind::Compensation) == 3);
  CHECK_FALSE(blockKindFromNumber(4).has_value());

  CHECK(static_cast<unsigned>(ValueTag::Null) == 0);
  CHECK(static_cast<unsigned>(ValueTag::False) == 1);
  CHECK(static_cast<unsigned>(ValueTag::True) == 2);
  CHECK(static_cast<unsigned>(ValueTag::Int) == 3);
  CHECK(static_cast<unsigned>(ValueTag::Double) == 4);
  CHECK(static_cast<unsigned>(ValueTag::String) == 5);
  CHECK(static_cast<unsigned>(ValueTag::Array) == 6);
  CHECK(static_cast<unsigned>(ValueTag::Object) == 7);
}

TEST_CASE("range operands are followed by their count and paired operands sit where the "
          "verifier looks for them") {
  for (Opcode opcode : allOpcodes()) {
    const OpcodeInfo &info = opcodeInfo(opcode);
    CAPTURE(info.mnemonic);
    for (size_t slot = 0; slot < kOperandsPerInstruction; ++slot) {
      OperandKind kind = info.operands[slot];
      OperandKind next =
          slot + 1 < kOperandsPerInstruction ? info.operands[slot + 1] : OperandKind::None;
      OperandKind previous = slot > 0 ? info.operands[slot - 1] : OperandKind::None;
      if (kind == OperandKind::RegRange || kind == OperandKind::Branches) {
        CHECK(next == OperandKind::Count);
      }
      if (kind == OperandKind::Count) {
        CHECK((previous == OperandKind::RegRange || previous == OperandKind::Branches));
      }
      if (kind == OperandKind::PathRegs) {
        CHECK(slot == 3);
        CHECK(info.operands[2] == OperandKind::Path);
      }
      if (kind == OperandKind::Keys || kind == OperandKind::Parallel) {
        CHECK(info.operands[2] == OperandKind::Count);
      }
      if (kind == OperandKind::Builtin) {
        CHECK(info.operands[3] == OperandKind::Count);
      }
    }
  }
}

TEST_CASE("exactly the block-ending opcodes do not fall through") {
  std::set<Opcode> ending;
  for (Opcode opcode : allOpcodes()) {
    if (opcodeInfo(opcode).flow == Flow::Ends) {
      ending.insert(opcode);
    }
  }
  CHECK(ending == std::set<Opcode>{Opcode::Jmp, Opcode::Raise, Opcode::ContinueAsNew,
                                   Opcode::Complete, Opcode::Ret});
}

TEST_CASE("used operands are counted from A") {
  CHECK(usedOperandCount(Opcode::Nop) == 0);
  CHECK(usedOperandCount(Opcode::SagaPop) == 0);
  CHECK(usedOperandCount(Opcode::Decided) == 1);
  CHECK(usedOperandCount(Opcode::LoadK) == 2);
  CHECK(usedOperandCount(Opcode::Add) == 3);
  CHECK(usedOperandCount(Opcode::Call) == 4);
  CHECK(usedOperandCount(Opcode::Path) == 4);
}

TEST_CASE("every operand kind has a class, and descriptor kinds are constants") {
  CHECK(operandClass(OperandKind::None) == OperandClass::None);
  CHECK(operandClass(OperandKind::Reg) == OperandClass::Register);
  CHECK(operandClass(OperandKind::PathRegs) == OperandClass::Register);
  CHECK(operandClass(OperandKind::Jump) == OperandClass::Jump);
  CHECK(operandClass(OperandKind::Branches) == OperandClass::Block);
  CHECK(operandClass(OperandKind::Builtin) == OperandClass::Immediate);
  CHECK(operandClass(OperandKind::ActivityCall) == OperandClass::Constant);
  CHECK(operandClass(OperandKind::ErrorTypes) == OperandClass::Constant);
  CHECK(operandKindName(OperandKind::ActivityCall) == "ActivityCall");
  CHECK_FALSE(operandKindMeaning(OperandKind::Keys).empty());
}

TEST_CASE("the sample modules use every opcode, so format tests and fuzz seeds cover all") {
  Module module = samples::orderModule();
  std::set<Opcode> used;
  for (const Workflow &workflow : module.workflows) {
    for (const Block &block : workflow.blocks) {
      for (const Instruction &instruction : block.code) {
        used.insert(instruction.opcode);
      }
    }
  }
  for (Opcode opcode : allOpcodes()) {
    CAPTURE(mnemonic(opcode));
    CHECK(used.count(opcode) == 1);
  }
}

TEST_CASE("docs/bytecode.md documents every opcode with its synopsis") {
  std::string doc = readSourceFile("docs/bytecode.md");
  for (Opcode opcode : allOpcodes()) {
    const OpcodeInfo &info = opcodeInfo(opcode);
    CAPTURE(info.mnemonic);
    CHECK(doc.find("### `" + std::string(info.mnemonic) + "`") != std::string::npos);
    CHECK(doc.find(std::string(info.synopsis)) != std::string::npos);
  }
}

TEST_CASE("docs/kbc-format.md states the current format version") {
  std::string doc = readSourceFile("docs/kbc-format.md");
  CHECK(doc.find("format version " + std::to_string(kKbcFormatVersion)) != std::string::npos);
}
