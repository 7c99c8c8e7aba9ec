// The verifier: the sample modules pass, and every rule rejects what it should with a
// message naming the workflow, block and instruction. Each case starts from a minimal
// valid module and breaks one thing.
#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/verifier.h"

#include "vm/bytecode_samples.h"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>

using namespace kotoba;
using namespace kotoba::vm;
using namespace kotoba::vm::samples;

namespace {

Instruction op(Opcode opcode, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0, uint32_t d = 0) {
  return Instruction{opcode, {a, b, c, d}};
}

Block makeBlock(BlockKind kind, std::vector<Instruction> code) {
  Block block{kind, std::move(code), {}};
  for (size_t index = 0; index < block.code.size(); ++index) {
    block.locations.push_back(SourceLocation{FileIndex{0}, static_cast<uint32_t>(index + 1), 1});
  }
  return block;
}

uint32_t addConstant(Module &module, Value value) {
  module.constants.push_back(std::move(value));
  return static_cast<uint32_t>(module.constants.size() - 1);
}

// One workflow "w" with 4 registers whose body is LOADNULL r0; COMPLETE r0, one constant
// k0 = "v", and one host-bound activity "charge".
Module minimal() {
  Module module;
  module.sourceFiles = {"t.kotoba"};
  module.constants = {Value("v")};
  module.hostActivities = {"charge"};
  Workflow workflow;
  workflow.id = "w";
  workflow.registerCount = 4;
  workflow.blocks.push_back(
      makeBlock(BlockKind::Body, {op(Opcode::LoadNull, 0), op(Opcode::Complete, 0)}));
  module.workflows.push_back(std::move(workflow));
  return module;
}

Workflow &body(Module &module) { return module.workflows[0]; }

void setBody(Module &module, std::vector<Instruction> code) {
  body(module).blocks[0] = makeBlock(BlockKind::Body, std::move(code));
}

// The body runs `instruction` and completes.
void bodyRuns(Module &module, Instruction instruction) {
  setBody(module, {instruction, op(Opcode::Complete, 0)});
}

struct Case {
  std::string what;
  std::function<void(Module &)> breakIt;
  std::string expected;
};

void checkCases(const std::vector<Case> &cases) {
  for (const Case &rejected : cases) {
    CAPTURE(rejected.what);
    Module module = minimal();
    rejected.breakIt(module);
    std::vector<ModuleError> errors = verifyModule(module);
    REQUIRE_MESSAGE(!errors.empty(), "accepted: " << rejected.what);
    CHECK(errors.front().describe() == rejected.expected);
  }
}

const std::string at0 = "workflow 'w' block b0 instruction 0: ";

// Arrays nested one level deeper than a module may hold.
Value tooDeep() {
  Value deep;
  for (uint32_t level = 0; level <= kMaxConstantDepth; ++level) {
    deep = Value(Array{deep});
  }
  return deep;
}

} // namespace

TEST_CASE("the sample modules and the minimal module verify") {
  CHECK(verifyModule(minimal()).empty());
  std::vector<ModuleError> errors = verifyModule(orderModule());
  for (const ModuleError &error : errors) {
    FAIL_CHECK(error.describe());
  }
}

TEST_CASE("operands out of range for their kind are rejected") {
  checkCases({
      {"register", [](Module &m) { bodyRuns(m, op(Opcode::Add, 0, 1, 9)); },
       at0 + "operand C (Reg): register r9 out of range (the workflow has 4 registers)"},
      {"register range", [](Module &m) { bodyRuns(m, op(Opcode::NewArray, 0, 2, 3)); },
       at0 + "operand B (RegRange): registers r2..r4 out of range (the workflow has 4 "
             "registers)"},
      {"register range that wraps",
       [](Module &m) { bodyRuns(m, op(Opcode::Concat, 0, 3, UINT32_MAX)); },
       at0 + "operand B (RegRange): registers r3..r4294967297 out of range (the workflow has 4 "
             "registers)"},
      {"constant", [](Module &m) { bodyRuns(m, op(Opcode::LoadK, 0, 5)); },
       at0 + "operand B (Const): constant k5 out of range (the pool has 1 constants)"},
      {"jump target",
       [](Module &m) {
         setBody(m, {op(Opcode::JmpIf, 0, 9), op(Opcode::Complete, 0)});
       },
       at0 + "operand B (Jump): jump target @9 is outside the block (instructions @0..@1)"},
      {"unused operand", [](Module &m) { setBody(m, {op(Opcode::Complete, 0, 5)}); },
       at0 + "operand B (None): unused operand must be 0, found 5"},
      {"boolean immediate", [](Module &m) { bodyRuns(m, op(Opcode::LoadBool, 0, 2)); },
       at0 + "operand B (Bool): a boolean immediate is 0 or 1, found 2"},
      {"state root", [](Module &m) { bodyRuns(m, op(Opcode::Root, 0, 6)); },
       at0 + "operand B (Root): unknown state root 6 (roots are 0..5)"},
      {"builtin id 0", [](Module &m) { bodyRuns(m, op(Opcode::Call, 0, 0, 1, 1)); },
       at0 + "operand B (Builtin): unknown builtin function id 0"},
      {"builtin id past the list", [](Module &m) { bodyRuns(m, op(Opcode::Call, 0, 999, 1, 1)); },
       at0 + "operand B (Builtin): unknown builtin function id 999"},
      {"builtin arity", [](Module &m) { bodyRuns(m, op(Opcode::Call, 0, 1, 1, 2)); },
       at0 + "operand B (Builtin): len() takes 1 argument, called with 2"},
      {"host predicate", [](Module &m) { bodyRuns(m, op(Opcode::HostPred, 0, 0)); },
       at0 + "operand B (HostPred): host predicate p0 out of range (the workflow lists 0)"},
      {"unknown opcode", [](Module &m) { bodyRuns(m, op(static_cast<Opcode>(200))); },
       at0 + "unknown opcode 200"},
      {"descriptor constant", [](Module &m) { bodyRuns(m, op(Opcode::Timer, 0, 1, 8)); },
       at0 + "operand C (Timer): constant k8 out of range (the pool has 1 constants)"},
      {"source file", [](Module &m) { body(m).blocks[0].locations[0].file = FileIndex{3}; },
       at0 + "source file 3 out of range (the module names 1 files)"},
  });
}

TEST_CASE("block operands must name a block of the right kind") {
  auto withBlock = [](Module &m, BlockKind kind) {
    body(m).blocks.push_back(makeBlock(kind, {op(Opcode::Ret, 0)}));
  };
  uint32_t foreach = 0;
  auto foreachDescriptor = [&](Module &m) {
    foreach
      = addConstant(m, ForeachDescriptor{ForeachMode::All, 1, Reg{2}, Reg{3}}.toValue());
  };
  checkCases({
      {"past the end",
       [&](Module &m) {
         foreachDescriptor(m);
         bodyRuns(m, op(Opcode::Foreach, 0, 1, 7, foreach));
       },
       at0 + "operand C (IterationBlock): block b7 out of range (the workflow has 1 blocks)"},
      {"the body",
       [&](Module &m) {
         foreachDescriptor(m);
         bodyRuns(m, op(Opcode::Foreach, 0, 1, 0, foreach));
       },
       at0 + "operand C (IterationBlock): block b0 is the workflow body, which no instruction "
             "may start"},
      {"a branch where an iteration belongs",
       [&](Module &m) {
         foreachDescriptor(m);
         withBlock(m, BlockKind::Branch);
         bodyRuns(m, op(Opcode::Foreach, 0, 1, 1, foreach));
       },
       at0 + "operand C (IterationBlock): block b1 has kind branch, expected kind iteration"},
      {"an iteration among branches",
       [&](Module &m) {
         uint32_t all = addConstant(m, ParallelDescriptor{}.toValue());
         withBlock(m, BlockKind::Branch);
         withBlock(m, BlockKind::Iteration);
         bodyRuns(m, op(Opcode::Parallel, 0, 1, 2, all));
       },
       at0 + "operand B (Branches): block b2 has kind iteration, expected kind branch"},
      {"a branch range past the end",
       [&](Module &m) {
         uint32_t all = addConstant(m, ParallelDescriptor{}.toValue());
         withBlock(m, BlockKind::Branch);
         bodyRuns(m, op(Opcode::Parallel, 0, 1, 2, all));
       },
       at0 + "operand B (Branches): block b2 out of range (the workflow has 2 blocks)"},
      {"an empty branch range that does not start at 0",
       [&](Module &m) {
         uint32_t all = addConstant(m, ParallelDescriptor{}.toValue());
         bodyRuns(m, op(Opcode::Parallel, 0, 1, 0, all));
       },
       at0 + "operand B (Branches): an empty branch range must start at 0, found b1"},
      {"a branch where a compensation belongs",
       [&](Module &m) {
         uint32_t step = addConstant(m, CompensationDescriptor{"undo"}.toValue());
         withBlock(m, BlockKind::Branch);
         body(m).blocks[1] =
             makeBlock(BlockKind::Branch, {op(Opcode::CompReg, 1, step), op(Opcode::Ret, 0)});
       },
       "workflow 'w' block b1 instruction 0: operand A (CompensationBlock): block b1 has kind "
       "branch, expected kind compensation"},
  });

  Module empty = minimal();
  uint32_t all = addConstant(empty, ParallelDescriptor{}.toValue());
  bodyRuns(empty, op(Opcode::Parallel, 0, 0, 0, all));
  CHECK(verifyModule(empty).empty());
}

TEST_CASE("blocks must be well formed") {
  checkCases({
      {"falls off the end", [](Module &m) { setBody(m, {op(Opcode::LoadNull, 0)}); },
       at0 + "the block ends with LOADNULL, which falls through; end it with RET, RAISE, "
             "COMPLETE, CONTINUEASNEW or JMP"},
      {"empty", [](Module &m) { setBody(m, {}); },
       "workflow 'w' block b0: the block is empty (it must end with RET or another instruction "
       "that does not fall through)"},
      {"line table too short", [](Module &m) { body(m).blocks[0].locations.pop_back(); },
       "workflow 'w' block b0: the line table has 1 entries for 2 instructions"},
      {"RET in the body", [](Module &m) { setBody(m, {op(Opcode::Ret, 0)}); },
       at0 + "RET in the workflow body; the body ends with COMPLETE, RAISE or CONTINUEASNEW"},
      {"block 0 not the body", [](Module &m) { body(m).blocks[0].kind = BlockKind::Branch; },
       "workflow 'w' block b0: block 0 must be the workflow body, not a branch block"},
      {"a second body",
       [](Module &m) {
         body(m).blocks.push_back(makeBlock(BlockKind::Body, {op(Opcode::Complete, 0)}));
       },
       "workflow 'w' block b1: only block 0 may be a body block"},
      {"no blocks", [](Module &m) { body(m).blocks.clear(); },
       "workflow 'w': the workflow has no blocks (block 0 must be its body)"},
  });
}

TEST_CASE("descriptor constants must have the shape their operand kind needs") {
  auto withConstant = [](Value value, std::function<Instruction(uint32_t)> make) {
    return [value, make](Module &m) { bodyRuns(m, make(addConstant(m, value))); };
  };
  Value twoKeys = keys({"a", "b"});
  PathDescriptor dynamicPath{
      "$.x[$.i]", {{PathSegment::Kind::Member, "x", 0}, {PathSegment::Kind::Dynamic, {}, 0}}};
  Object badSegment;
  badSegment.set("path", Value("$.x"));
  badSegment.set("segments", Value(Array{Value(true)}));
  Object wrongDynamic;
  wrongDynamic.set("path", Value("$.x"));
  Object dynamicOne;
  dynamicOne.set("dynamic", Value(int64_t{1}));
  wrongDynamic.set("segments", Value(Array{Value(std::move(dynamicOne))}));
  ActivityCallDescriptor slowCall{"charge", "pay", 1000, std::nullopt,
                                  retryPolicy(1000, 2.0, 500, 3)};
  checkCases({
      {"a name that is not a string",
       withConstant(Value(int64_t{3}), [](uint32_t k) { return op(Opcode::SetVar, k, 0); }),
       at0 + "operand A (Name): k1: expected a name string, found integer 3"},
      {"a path without segments",
       withConstant(Value(Object{}), [](uint32_t k) { return op(Opcode::Path, 0, 0, k, 0); }),
       at0 + "operand C (Path): k1: missing 'path'"},
      {"a path segment of the wrong kind",
       withConstant(Value(badSegment), [](uint32_t k) { return op(Opcode::Path, 0, 0, k, 0); }),
       at0 + "operand C (Path): k1: segment 0 must be a string, an integer, null or "
             "{\"dynamic\": n}, found boolean true"},
      {"a dynamic segment out of order",
       withConstant(Value(wrongDynamic), [](uint32_t k) { return op(Opcode::Path, 0, 0, k, 0); }),
       at0 + "operand C (Path): k1: segment 0: 'dynamic' must be the number of dynamic "
             "segments before it, found integer 1"},
      {"index registers for a path without dynamic indexes",
       withConstant(path("$.x", {Value("x")}),
                    [](uint32_t k) { return op(Opcode::PathOpt, 0, 0, k, 2); }),
       at0 + "operand D (PathRegs): the path has no dynamic index, so this must be 0, found 2"},
      {"index registers past the register file",
       withConstant(dynamicPath.toValue(),
                    [](uint32_t k) { return op(Opcode::PathHas, 0, 0, k, 4); }),
       at0 + "operand D (PathRegs): registers r4..r4 out of range (the workflow has 4 "
             "registers)"},
      {"fewer keys than values",
       withConstant(twoKeys, [](uint32_t k) { return op(Opcode::NewObject, 0, 1, 3, k); }),
       at0 + "operand D (Keys): k1 has 2 keys for 3 values"},
      {"a repeated key",
       withConstant(keys({"a", "a"}), [](uint32_t k) { return op(Opcode::NewObject, 0, 1, 2, k); }),
       at0 + "operand D (Keys): k1: key \"a\" appears twice"},
      {"keys that are not strings",
       withConstant(Value(Array{Value(int64_t{1})}),
                    [](uint32_t k) { return op(Opcode::NewObject, 0, 1, 1, k); }),
       at0 + "operand D (Keys): k1: keys must be strings, found integer 1"},
      {"an activity nobody implements",
       withConstant(call("refund", "refund"),
                    [](uint32_t k) { return op(Opcode::Activity, 0, 1, k); }),
       at0 + "operand C (ActivityCall): k1: activity 'refund' is neither implemented by a "
             "declaration nor listed as host-bound"},
      {"an activity call with a broken retry policy",
       withConstant(slowCall.toValue(), [](uint32_t k) { return op(Opcode::Activity, 0, 1, k); }),
       at0 + "operand C (ActivityCall): k1: 'retry': malformed stored retry policy: "
             "maximum_interval (500ms) must be at least initial_interval (1s)"},
      {"an activity call without a timeout",
       withConstant(
           ActivityCallDescriptor{"charge", "pay", 0, std::nullopt, defaultRetry()}.toValue(),
           [](uint32_t k) { return op(Opcode::Activity, 0, 1, k); }),
       at0 + "operand C (ActivityCall): k1: 'timeout_ms' must be a positive integer, found "
             "integer 0"},
      {"a child workflow the module lacks",
       withConstant(ChildDescriptor{"other", "other", std::nullopt}.toValue(),
                    [](uint32_t k) { return op(Opcode::Child, 0, 1, k); }),
       at0 + "operand C (Child): k1: child workflow 'other' is not in the module"},
      {"a timer without a step",
       withConstant(Value(Object{}), [](uint32_t k) { return op(Opcode::Timer, 0, 1, k); }),
       at0 + "operand C (Timer): k1: missing 'step'"},
      {"a signal wait with an extra key",
       withConstant(
           [] {
             Object signal = SignalDescriptor{"go", "go", std::nullopt}.toValue().asObject();
             signal.set("filter", Value());
             return Value(std::move(signal));
           }(),
           [](uint32_t k) { return op(Opcode::WaitSignal, 0, k); }),
       at0 + "operand B (Signal): k1: unknown key 'filter'"},
      {"an event wait with a zero timeout",
       withConstant(EventDescriptor{"done", "done", 0}.toValue(),
                    [](uint32_t k) { return op(Opcode::WaitEvent, 0, 1, k); }),
       at0 + "operand C (Event): k1: 'timeout_ms' must be a positive integer or null, found "
             "integer 0"},
      {"a decision branch that is negative",
       withConstant(
           [] {
             Object decision;
             decision.set("step", Value("route"));
             decision.set("branch", Value(int64_t{-1}));
             return Value(std::move(decision));
           }(),
           [](uint32_t k) { return op(Opcode::Decided, k); }),
       at0 + "operand A (Decision): k1: 'branch' must be a condition index or null (default "
             "branch), found integer -1"},
      {"a saga policy that does not exist",
       withConstant(
           [] {
             Object saga = SagaDescriptor{}.toValue().asObject();
             saga.set("policy", Value("sideways"));
             return Value(std::move(saga));
           }(),
           [](uint32_t k) { return op(Opcode::SagaPush, 1, 0, k); }),
       at0 + "operand C (Saga): k1: 'policy' must be \"reverse\" or \"parallel\", found string "
             "\"sideways\""},
      {"a compensation without a step",
       [](Module &m) {
         body(m).blocks.push_back(makeBlock(BlockKind::Compensation, {op(Opcode::Ret, 0)}));
         uint32_t k = addConstant(m, CompensationDescriptor{""}.toValue());
         bodyRuns(m, op(Opcode::CompReg, 1, k));
       },
       at0 + "operand B (Compensation): k1: 'step' must be a non-empty string, found string "
             "\"\""},
      {"a try that catches nothing",
       withConstant(Value(Array{}), [](uint32_t k) { return op(Opcode::TryPush, 1, 0, k); }),
       at0 + "operand C (ErrorTypes): k1: expected a non-empty array of error type names, "
             "found an empty array"},
  });
}

TEST_CASE("fiber descriptors must fit the instruction") {
  auto parallelOf = [](ParallelDescriptor descriptor, uint32_t branches) {
    return [descriptor, branches](Module &m) {
      for (uint32_t index = 0; index < branches; ++index) {
        body(m).blocks.push_back(makeBlock(BlockKind::Branch, {op(Opcode::Ret, 0)}));
      }
      uint32_t k = addConstant(m, descriptor.toValue());
      bodyRuns(m, op(Opcode::Parallel, 0, 1, branches, k));
    };
  };
  auto foreachWith = [](Value descriptor) {
    return [descriptor](Module &m) {
      body(m).blocks.push_back(makeBlock(BlockKind::Iteration, {op(Opcode::Ret, 0)}));
      bodyRuns(m, op(Opcode::Foreach, 0, 1, 1, addConstant(m, descriptor)));
    };
  };
  Object countForAll;
  countForAll.set("mode", Value("all"));
  countForAll.set("count", Value(int64_t{1}));
  checkCases({
      {"at_least more than there are branches",
       parallelOf(ParallelDescriptor{ParallelMode::AtLeast, 3}, 2),
       at0 + "operand D (Parallel): at_least 3 of 2 branches can never be met"},
      {"a count for a mode that takes none",
       [&](Module &m) {
         body(m).blocks.push_back(makeBlock(BlockKind::Branch, {op(Opcode::Ret, 0)}));
         bodyRuns(m, op(Opcode::Parallel, 0, 1, 1, addConstant(m, Value(countForAll))));
       },
       at0 + "operand D (Parallel): k1: 'count' is only for at_least"},
      {"foreach registers past the register file",
       foreachWith(ForeachDescriptor{ForeachMode::All, 1, Reg{1}, Reg{4}}.toValue()),
       at0 + "operand D (Foreach): k1 names register r4, out of range (the workflow has 4 "
             "registers)"},
      {"foreach item and index in one register",
       foreachWith(ForeachDescriptor{ForeachMode::All, 1, Reg{2}, Reg{2}}.toValue()),
       at0 + "operand D (Foreach): k1: 'item' and 'index' must be different registers"},
      {"foreach with no concurrency",
       foreachWith(ForeachDescriptor{ForeachMode::All, 0, Reg{1}, Reg{2}}.toValue()),
       at0 + "operand D (Foreach): k1: 'max_concurrency' must be a positive integer, found "
             "integer 0"},
  });
  Module fine = minimal();
  parallelOf(ParallelDescriptor{ParallelMode::AtLeast, 2}, 2)(fine);
  CHECK(verifyModule(fine).empty());
}

TEST_CASE("try and saga frames must balance on every path") {
  auto errorTypes = [](Module &m) { return addConstant(m, errorTypesToValue({"*"})); };
  auto saga = [](Module &m) { return addConstant(m, SagaDescriptor{}.toValue()); };
  checkCases({
      {"a pop without a push",
       [](Module &m) {
         setBody(m, {op(Opcode::TryPop), op(Opcode::Complete, 0)});
       },
       at0 + "TRYPOP needs a try frame innermost, found none (frames [])"},
      {"a saga pop that meets a try",
       [&](Module &m) {
         uint32_t k = errorTypes(m);
         setBody(m, {op(Opcode::TryPush, 3, 1, k), op(Opcode::SagaPop), op(Opcode::Complete, 0),
                     op(Opcode::Raise, 1)});
       },
       "workflow 'w' block b0 instruction 1: SAGAPOP needs a saga frame innermost, found try "
       "(frames [try])"},
      {"compensations run outside a saga's handler",
       [](Module &m) {
         setBody(m, {op(Opcode::CompRun, 0), op(Opcode::Complete, 0)});
       },
       at0 + "COMPRUN needs a failed saga frame innermost, found none (frames [])"},
      {"a join of paths with different frames",
       [&](Module &m) {
         uint32_t k = errorTypes(m);
         setBody(m, {op(Opcode::TryPush, 2, 1, k), op(Opcode::Jmp, 2), op(Opcode::Complete, 0)});
       },
       "workflow 'w' block b0 instruction 1: paths reach @2 with different try/saga frames: [] "
       "and [try]"},
      {"a compensation registered outside any saga",
       [](Module &m) {
         uint32_t k = addConstant(m, CompensationDescriptor{"undo"}.toValue());
         body(m).blocks.push_back(makeBlock(BlockKind::Compensation, {op(Opcode::Ret, 0)}));
         bodyRuns(m, op(Opcode::CompReg, 1, k));
       },
       at0 + "COMPREG outside any saga"},
      {"a branch that returns inside a try",
       [&](Module &m) {
         uint32_t k = errorTypes(m);
         uint32_t all = addConstant(m, ParallelDescriptor{}.toValue());
         body(m).blocks.push_back(
             makeBlock(BlockKind::Branch,
                       {op(Opcode::TryPush, 2, 1, k), op(Opcode::Ret, 0), op(Opcode::Ret, 1)}));
         bodyRuns(m, op(Opcode::Parallel, 0, 1, 1, all));
       },
       "workflow 'w' block b1 instruction 1: RET with frames [try] still open; close them with "
       "TRYPOP or SAGAPOP first"},
      {"frames nested too deep",
       [&](Module &m) {
         uint32_t k = errorTypes(m);
         std::vector<Instruction> code;
         for (uint32_t depth = 0; depth <= kMaxHandlerDepth; ++depth) {
           code.push_back(op(Opcode::TryPush, kMaxHandlerDepth + 2 + depth, 1, k));
         }
         for (uint32_t handler = 0; handler <= kMaxHandlerDepth + 1; ++handler) {
           code.push_back(op(Opcode::Raise, 1));
         }
         setBody(m, std::move(code));
       },
       "workflow 'w' block b0 instruction 64: more than 64 try and saga frames open at once"},
  });

  // A saga whose handler compensates and re-raises, and a try whose handler falls into the
  // code after it, balance.
  Module fine = minimal();
  uint32_t k = errorTypes(fine);
  uint32_t s = saga(fine);
  uint32_t undo = addConstant(fine, CompensationDescriptor{"undo"}.toValue());
  body(fine).blocks.push_back(makeBlock(BlockKind::Compensation, {op(Opcode::Ret, 0)}));
  setBody(fine, {op(Opcode::SagaPush, 7, 1, s), op(Opcode::TryPush, 4, 2, k),
                 op(Opcode::CompReg, 1, undo), op(Opcode::TryPop), op(Opcode::SagaPop),
                 op(Opcode::LoadNull, 0), op(Opcode::Complete, 0), op(Opcode::CompRun, 3),
                 op(Opcode::Raise, 1)});
  CHECK(verifyModule(fine).empty());
}

TEST_CASE("module and workflow tables must be consistent") {
  checkCases({
      {"no workflow", [](Module &m) { m.workflows.clear(); }, "the module has no workflow"},
      {"a repeated workflow id", [](Module &m) { m.workflows.push_back(m.workflows[0]); },
       "workflow 'w': the workflow id is used twice"},
      {"an empty workflow id", [](Module &m) { body(m).id.clear(); },
       "workflow 0: the workflow id is empty"},
      {"a repeated activity",
       [](Module &m) {
         m.activities.push_back({"charge", "", std::nullopt, Value(), Value(), std::nullopt});
         m.activities.push_back({"charge", "", std::nullopt, Value(), Value(), std::nullopt});
       },
       "activity 1 'charge': the activity is declared twice"},
      {"an activity timeout of zero",
       [](Module &m) {
         m.activities.push_back({"charge", "", 0, Value(), Value(), std::nullopt});
       },
       "activity 0 'charge': timeout 0 ms is not positive"},
      {"an activity retry policy out of range",
       [](Module &m) {
         m.activities.push_back(
             {"charge", "", std::nullopt, retryPolicy(1000, 0.5, 2000, 3), Value(), std::nullopt});
       },
       "activity 0 'charge': malformed stored retry policy: backoff_coefficient must be at "
       "least 1, found 0.5"},
      {"an activity declared in a source file the module lacks",
       [](Module &m) {
         m.activities.push_back({"pay", "", std::nullopt, Value(), Value(), FileIndex{7}});
       },
       "activity 0 'pay': source file index 7 out of range (the module has 1 source files)"},
      {"an implementation that is not an object",
       [](Module &m) {
         m.activities.push_back({"pay", "", std::nullopt, Value(), Value("x"), std::nullopt});
       },
       "activity 0 'pay': implementation must be an object or null, found string \"x\""},
      {"host activities out of order",
       [](Module &m) {
         m.hostActivities = {"b", "a"};
       },
       "host activity 'a': host activities must be sorted and distinct"},
      {"a host activity that has an implementation",
       [](Module &m) {
         Object implementation;
         implementation.set("type", Value("http"));
         m.activities.push_back(
             {"charge", "", std::nullopt, Value(), Value(std::move(implementation)), std::nullopt});
       },
       "host activity 'charge': listed as host-bound but its declaration has an implementation"},
      {"a repeated input",
       [](Module &m) {
         body(m).inputs = {{"a", "string", false, std::nullopt},
                           {"a", "string", false, std::nullopt}};
       },
       "workflow 'w' input 'a': the name is used twice"},
      {"an output without a type",
       [](Module &m) {
         body(m).outputs = {{"a", "", false, std::nullopt}};
       },
       "workflow 'w' output 'a': type: empty type; write one of string, number, integer, "
       "boolean, object, array, array<T> or any"},
      {"a misspelled type",
       [](Module &m) {
         body(m).inputs = {{"a", "strng", false, std::nullopt}};
       },
       "workflow 'w' input 'a': type: unknown type 'strng' in 'strng'; did you mean 'string'?"},
      {"a default of the wrong type",
       [](Module &m) {
         body(m).inputs = {{"a", "array<integer>", false, keys({"x"})}};
       },
       "workflow 'w' input 'a': default: expected array<integer>, element 0 is string \"x\""},
      {"a workflow timeout of zero", [](Module &m) { body(m).timeoutMs = 0; },
       "workflow 'w': timeout 0 ms is not positive"},
      {"a workflow retry policy missing a field",
       [](Module &m) {
         Object policy = defaultRetry().asObject();
         policy.erase("jitter");
         body(m).retryPolicy = Value(std::move(policy));
       },
       "workflow 'w': malformed stored retry policy: 'jitter' is missing"},
      {"a repeated host predicate",
       [](Module &m) {
         body(m).hostPredicates = {"vip", "vip"};
       },
       "workflow 'w': host predicate 'vip' is listed twice"},
      {"too many registers", [](Module &m) { body(m).registerCount = kMaxRegisters + 1; },
       "workflow 'w': 65537 registers is more than the limit of 65536"},
      {"a constant nested too deep", [](Module &m) { m.constants.push_back(tooDeep()); },
       "constant k1: nested deeper than 256 levels"},
      {"metadata nested too deep", [](Module &m) { body(m).metadata = tooDeep(); },
       "workflow 'w': metadata: nested deeper than 256 levels"},
      {"a default nested too deep",
       [](Module &m) {
         body(m).inputs = {{"a", "any", false, tooDeep()}};
       },
       "workflow 'w' input 'a': default: nested deeper than 256 levels"},
      {"an implementation nested too deep",
       [](Module &m) {
         Object implementation;
         implementation.set("type", tooDeep());
         m.activities.push_back(
             {"pay", "", std::nullopt, Value(), Value(std::move(implementation)), std::nullopt});
       },
       "activity 0 'pay': implementation: nested deeper than 256 levels"},
      {"an empty activity name",
       [](Module &m) {
         m.activities.push_back({"", "", std::nullopt, Value(), Value(), std::nullopt});
       },
       "activity 0 '': the activity name is empty"},
      {"an empty host activity name", [](Module &m) { m.hostActivities = {""}; },
       "host activity '': the name is empty"},
      {"an empty input name",
       [](Module &m) {
         body(m).inputs = {{"", "string", false, std::nullopt}};
       },
       "workflow 'w' input '': the name is empty"},
      {"an empty host predicate name", [](Module &m) { body(m).hostPredicates = {""}; },
       "workflow 'w': a host predicate name is empty"},
      {"a constant that is not a finite number",
       [](Module &m) { m.constants.push_back(Value(std::numeric_limits<double>::infinity())); },
       "constant k1: a double is not finite"},
  });
}

TEST_CASE("the verifier reports problems in every workflow, one per block") {
  Module module = minimal();
  Workflow second = body(module);
  second.id = "second";
  module.workflows.push_back(second);
  bodyRuns(module, op(Opcode::Move, 0, 7));
  module.workflows[1].blocks[0] = makeBlock(
      BlockKind::Body, {op(Opcode::Move, 0, 8), op(Opcode::Move, 0, 9), op(Opcode::Complete, 0)});
  std::vector<ModuleError> errors = verifyModule(module);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].location == "workflow 'w' block b0 instruction 0");
  CHECK(errors[1].location == "workflow 'second' block b0 instruction 0");
  CHECK(errors[1].message ==
        "operand B (Reg): register r8 out of range (the workflow has 4 registers)");
  CHECK_FALSE(errors[1].byteOffset.has_value());
}

TEST_CASE("descriptors decode to what they were encoded from") {
  ActivityCallDescriptor call{"charge", "pay", 30000, 600000, defaultRetry()};
  Decoded<ActivityCallDescriptor> decodedCall = decodeActivityCall(call.toValue());
  REQUIRE(decodedCall.ok());
  CHECK(decodedCall->activity == "charge");
  CHECK(decodedCall->step == "pay");
  CHECK(decodedCall->timeoutMs == 30000);
  CHECK(decodedCall->scheduleToCloseMs == 600000);
  CHECK(decodedCall->retry == defaultRetry());

  PathDescriptor path{"$.a[0][*][$.i]",
                      {{PathSegment::Kind::Member, "a", 0},
                       {PathSegment::Kind::Index, {}, 0},
                       {PathSegment::Kind::Project, {}, 0},
                       {PathSegment::Kind::Dynamic, {}, 0}}};
  Decoded<PathDescriptor> decodedPath = decodePath(path.toValue());
  REQUIRE(decodedPath.ok());
  CHECK(decodedPath->text == path.text);
  CHECK(decodedPath->segments == path.segments);
  CHECK(decodedPath->dynamicCount() == 1);

  Decoded<SignalDescriptor> signal = decodeSignal(SignalDescriptor{"go", "wait", 5}.toValue());
  REQUIRE(signal.ok());
  CHECK(signal->timeoutMs == 5);
  Decoded<EventDescriptor> event = decodeEvent(EventDescriptor{"e", "s", std::nullopt}.toValue());
  REQUIRE(event.ok());
  CHECK_FALSE(event->timeoutMs.has_value());
  Decoded<ChildDescriptor> child = decodeChild(ChildDescriptor{"c", "s", 9}.toValue());
  REQUIRE(child.ok());
  CHECK(child->workflow == "c");
  Decoded<DecisionDescriptor> decision = decodeDecision(DecisionDescriptor{"d", 2}.toValue());
  REQUIRE(decision.ok());
  CHECK(decision->branch == 2u);
  Decoded<ParallelDescriptor> parallel =
      decodeParallel(ParallelDescriptor{ParallelMode::AtLeast, 2}.toValue());
  REQUIRE(parallel.ok());
  CHECK(parallel->mode == ParallelMode::AtLeast);
  CHECK(parallel->count == 2);
  Decoded<ForeachDescriptor> foreach =
      decodeForeach(ForeachDescriptor{ForeachMode::AllSettled, 3, Reg{4}, Reg{5}}.toValue());
  REQUIRE(foreach.ok());
  CHECK(foreach->mode == ForeachMode::AllSettled);
  CHECK(foreach->maxConcurrency == 3);
  CHECK(foreach->item == Reg{4});
  CHECK(foreach->index == Reg{5});
  Decoded<SagaDescriptor> saga = decodeSaga(
      SagaDescriptor{CompensationPolicy::Parallel, CompensationFailureMode::Stop}.toValue());
  REQUIRE(saga.ok());
  CHECK(saga->policy == CompensationPolicy::Parallel);
  CHECK(saga->onFailure == CompensationFailureMode::Stop);
  Decoded<std::vector<std::string>> types = decodeErrorTypes(errorTypesToValue({"A", "*"}));
  REQUIRE(types.ok());
  CHECK(types.value() == std::vector<std::string>{"A", "*"});
  CHECK(decodeTimer(TimerDescriptor{"t"}.toValue())->step == "t");
  CHECK(decodeCompensation(CompensationDescriptor{"c"}.toValue())->step == "c");
}

TEST_CASE("retry policies are checked in retry.h's stored form") {
  CHECK_FALSE(checkRetryPolicy(defaultRetry()).has_value());
  CHECK_FALSE(checkRetryPolicy(retryPolicy(1, 1.0, 1, std::nullopt)).has_value());
  // retry_test.cpp covers the individual rules; here only that they are applied.
  CHECK(checkRetryPolicy(retryPolicy(10, 2.0, 100, 0)).has_value());
  CHECK(checkRetryPolicy(Value("x")).has_value());
}
