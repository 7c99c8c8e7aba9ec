// Lowering checked workflows to register bytecode (see codegen.h). One Generator lowers one
// workflow: registers are allocated like a stack (each statement frees its temporaries), so
// the register file stays small however long the workflow is, which keeps the copies that
// fibers and compensations take cheap.
#include "kotoba/compiler/codegen.h"

#include "fold.h"
#include "kotoba/vm/builtins.h"
#include "kotoba/vm/descriptors.h"

#include <fmt/format.h>

#include <algorithm>

#include <cassert>
#include <map>

namespace kotoba::compiler {

namespace {

using vm::BlockId;
using vm::CodeIndex;
using vm::ConstIndex;
using vm::Opcode;
using vm::Operand;
using vm::Reg;

// Which construct an instruction belongs to, as a location in the module's line table.
class Locator {
public:
  Locator(const SourceManager &sources, vm::ModuleBuilder &module)
      : sources_(sources), module_(module) {}

  vm::SourceLocation operator()(SourceRange range) {
    if (!range.valid()) {
      return {};
    }
    LineColumn position = sources_.lineColumn(range.begin);
    vm::FileIndex file = module_.addSourceFile(sources_.path(range.begin.file));
    return vm::SourceLocation{file, position.line, position.column};
  }

private:
  const SourceManager &sources_;
  vm::ModuleBuilder &module_;
};

class Generator {
public:
  Generator(const Program &program, const Workflow &workflow, vm::ModuleBuilder &module,
            Locator &locate)
      : program_(program), workflow_(workflow), module_(module), builder_(module, workflow.id),
        locate_(locate) {}

  vm::Workflow run();

private:
  // ---- registers ----
  Reg allocate(uint32_t count = 1) {
    Reg first{next_};
    next_ += count;
    if (next_ > builder_.workflow().registerCount) {
      builder_.workflow().registerCount = next_;
    }
    return first;
  }
  // Frees every register allocated since `mark` was taken.
  uint32_t mark() const { return next_; }
  void release(uint32_t mark) { next_ = mark; }

  // ---- emission ----
  CodeIndex emit(Opcode opcode, std::initializer_list<Operand> operands, SourceRange where) {
    return builder_.emit(block_, opcode, operands, locate_(where));
  }
  CodeIndex here() const { return builder_.nextIndex(block_); }
  void patch(CodeIndex at) { builder_.patchJump(block_, at, here()); }
  ConstIndex constant(const Value &value) { return builder_.constant(value); }
  std::string syntheticStep(const char *kind) {
    return fmt::format("{}#{}", kind, ++syntheticCounts_[kind]);
  }

  // ---- expressions ----
  void load(const Value &value, Reg target, SourceRange where);
  void expr(const Expr *value, Reg target);
  void node(const Node *syntax, Reg target, bool optional = false);
  void path(const Node *syntax, Reg target, Opcode opcode);
  void logical(const Node *syntax, Reg target);
  void call(const Node *syntax, Reg target);
  bool constantExpr(const Expr *value, Value &out) const;

  // ---- strategies ----
  void strategy(const Strategy *step, Reg target);
  void activity(const Strategy &step, Reg target);
  void activityCall(const Strategy &step, Reg input, Reg target, bool compensation);
  void registerCompensation(const Strategy &step, Reg result);
  void parallel(const Strategy &step, Reg target);
  void decision(const Strategy &step, Reg target);
  void wait(const Strategy &step, Reg target);
  void saga(const Strategy &step, Reg target);
  void foreach (const Strategy &step, Reg target);
  void loop(const Strategy &step, Reg target);
  void tryCatch(const Strategy &step, Reg target);
  void raise(std::string_view type, std::string message, SourceRange where);
  void outputs(SourceRange where);
  void inputObject(const Expr *input, Reg target, SourceRange where);

  const Program &program_;
  const Workflow &workflow_;
  vm::ModuleBuilder &module_;
  vm::WorkflowBuilder builder_;
  Locator &locate_;
  BlockId block_{0};
  uint32_t next_ = 0;
  std::map<std::string, uint32_t> syntheticCounts_;
  // foreach `as`/`at` names in scope, innermost last.
  std::vector<std::pair<std::string, Reg>> locals_;
  // Registers holding $.result and $.error where they are bound.
  std::vector<Reg> resultRegisters_;
  std::vector<Reg> errorRegisters_;
};

// ---- expressions -------------------------------------------------------------------------

bool Generator::constantExpr(const Expr *value, Value &out) const {
  switch (value->kind) {
  case Expr::Kind::Syntax: {
    std::optional<Result<Value>> folded = foldExpression(value->syntax);
    if (!folded || !folded->ok()) {
      return false;
    }
    out = folded->value();
    return true;
  }
  case Expr::Kind::Template:
    return false;
  case Expr::Kind::Array: {
    Array array;
    for (const Expr *element : value->elements) {
      Value item;
      if (!constantExpr(element, item)) {
        return false;
      }
      array.push_back(std::move(item));
    }
    out = Value(std::move(array));
    return true;
  }
  case Expr::Kind::Object: {
    Object object;
    for (const auto &[key, member] : value->members) {
      Value item;
      if (!constantExpr(member, item)) {
        return false;
      }
      object.set(key, std::move(item));
    }
    out = Value(std::move(object));
    return true;
  }
  }
  return false;
}

void Generator::load(const Value &value, Reg target, SourceRange where) {
  if (value.isNull()) {
    emit(Opcode::LoadNull, {target}, where);
  } else if (value.isBool()) {
    emit(Opcode::LoadBool, {target, Operand::boolean(value.asBool())}, where);
  } else {
    emit(Opcode::LoadK, {target, constant(value)}, where);
  }
}

void Generator::expr(const Expr *value, Reg target) {
  Value folded;
  if (constantExpr(value, folded)) {
    load(folded, target, value->range);
    return;
  }
  uint32_t saved = mark();
  switch (value->kind) {
  case Expr::Kind::Syntax:
    node(value->syntax, target);
    break;
  case Expr::Kind::Template: {
    auto count = static_cast<uint32_t>(value->parts.size());
    Reg first = allocate(count);
    for (uint32_t i = 0; i < count; ++i) {
      const TemplatePart &part = value->parts[i];
      Reg slot{first.index + i};
      if (part.expression == nullptr) {
        emit(Opcode::LoadK, {slot, constant(Value(part.text))}, value->range);
      } else {
        node(part.expression, slot);
      }
    }
    emit(Opcode::Concat, {target, first, Operand::immediate(count)}, value->range);
    break;
  }
  case Expr::Kind::Array: {
    auto count = static_cast<uint32_t>(value->elements.size());
    Reg first = allocate(count);
    for (uint32_t i = 0; i < count; ++i) {
      expr(value->elements[i], Reg{first.index + i});
    }
    emit(Opcode::NewArray, {target, first, Operand::immediate(count)}, value->range);
    break;
  }
  case Expr::Kind::Object: {
    auto count = static_cast<uint32_t>(value->members.size());
    Reg first = allocate(count);
    Array keys;
    for (uint32_t i = 0; i < count; ++i) {
      keys.push_back(Value(value->members[i].first));
      expr(value->members[i].second, Reg{first.index + i});
    }
    emit(Opcode::NewObject,
         {target, first, Operand::immediate(count), constant(Value(std::move(keys)))},
         value->range);
    break;
  }
  }
  release(saved);
}

void Generator::node(const Node *syntax, Reg target, bool optional) {
  std::optional<Result<Value>> folded = foldExpression(syntax);
  if (folded && folded->ok()) {
    load(folded->value(), target, syntax->range);
    return;
  }
  uint32_t saved = mark();
  switch (syntax->kind) {
  case NodeKind::Null:
  case NodeKind::Bool:
  case NodeKind::Integer:
  case NodeKind::Double:
  case NodeKind::String:
    assert(false && "literals always fold");
    break;
  case NodeKind::Array: {
    auto count = static_cast<uint32_t>(syntax->children.size());
    Reg first = allocate(count);
    for (uint32_t i = 0; i < count; ++i) {
      node(syntax->children[i], Reg{first.index + i});
    }
    emit(Opcode::NewArray, {target, first, Operand::immediate(count)}, syntax->range);
    break;
  }
  case NodeKind::Object: {
    auto count = static_cast<uint32_t>(syntax->members.size());
    Reg first = allocate(count);
    Array keys;
    for (uint32_t i = 0; i < count; ++i) {
      keys.push_back(Value(syntax->members[i].key));
      node(syntax->members[i].value, Reg{first.index + i});
    }
    emit(Opcode::NewObject,
         {target, first, Operand::immediate(count), constant(Value(std::move(keys)))},
         syntax->range);
    break;
  }
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
    path(syntax, target, optional ? Opcode::PathOpt : Opcode::Path);
    break;
  case NodeKind::Call:
    call(syntax, target);
    break;
  case NodeKind::Identifier:
    assert(false && "the checker rejects bare identifiers");
    break;
  case NodeKind::Unary: {
    node(syntax->children[0], target);
    Opcode opcode = syntax->unaryOp == UnaryOp::Not ? Opcode::Not : Opcode::Neg;
    emit(opcode, {target, target}, syntax->range);
    break;
  }
  case NodeKind::Binary: {
    if (syntax->binaryOp == BinaryOp::And || syntax->binaryOp == BinaryOp::Or ||
        syntax->binaryOp == BinaryOp::Coalesce) {
      logical(syntax, target);
      break;
    }
    Reg right = allocate();
    node(syntax->children[0], target);
    node(syntax->children[1], right);
    Opcode opcode = Opcode::Add;
    switch (syntax->binaryOp) {
    case BinaryOp::Add:
      opcode = Opcode::Add;
      break;
    case BinaryOp::Subtract:
      opcode = Opcode::Sub;
      break;
    case BinaryOp::Multiply:
      opcode = Opcode::Mul;
      break;
    case BinaryOp::Divide:
      opcode = Opcode::Div;
      break;
    case BinaryOp::Modulo:
      opcode = Opcode::Mod;
      break;
    case BinaryOp::Equal:
      opcode = Opcode::Eq;
      break;
    case BinaryOp::NotEqual:
      opcode = Opcode::Ne;
      break;
    case BinaryOp::Less:
      opcode = Opcode::Lt;
      break;
    case BinaryOp::LessEqual:
      opcode = Opcode::Le;
      break;
    case BinaryOp::Greater:
      opcode = Opcode::Gt;
      break;
    case BinaryOp::GreaterEqual:
      opcode = Opcode::Ge;
      break;
    case BinaryOp::In:
      opcode = Opcode::In;
      break;
    case BinaryOp::Coalesce:
    case BinaryOp::Or:
    case BinaryOp::And:
      assert(false && "short-circuit operators are lowered by logical()");
      break;
    }
    emit(opcode, {target, target, right}, syntax->range);
    break;
  }
  case NodeKind::Conditional: {
    node(syntax->children[0], target);
    CodeIndex toElse = emit(Opcode::JmpIfNot, {target, Operand::unresolvedJump()}, syntax->range);
    node(syntax->children[1], target);
    CodeIndex toEnd = emit(Opcode::Jmp, {Operand::unresolvedJump()}, syntax->range);
    patch(toElse);
    node(syntax->children[2], target);
    patch(toEnd);
    break;
  }
  }
  release(saved);
}

void Generator::logical(const Node *syntax, Reg target) {
  const Node *left = syntax->children[0];
  const Node *right = syntax->children[1];
  if (syntax->binaryOp == BinaryOp::Coalesce) {
    // A missing path on the left is no error: `??` is how optional data is read.
    node(left, target, /*optional=*/true);
    CodeIndex skip = emit(Opcode::JmpNotNull, {target, Operand::unresolvedJump()}, syntax->range);
    node(right, target, /*optional=*/true);
    patch(skip);
    return;
  }
  node(left, target);
  // The conditional jump checks that the left side is a boolean; TOBOOL checks the right.
  Opcode test = syntax->binaryOp == BinaryOp::And ? Opcode::JmpIfNot : Opcode::JmpIf;
  CodeIndex skip = emit(test, {target, Operand::unresolvedJump()}, syntax->range);
  node(right, target);
  emit(Opcode::ToBool, {target, target}, syntax->range);
  patch(skip);
}

void Generator::call(const Node *syntax, Reg target) {
  const BuiltinInfo *builtin = findBuiltin(syntax->text);
  assert(builtin != nullptr && "the checker rejects unknown functions");
  bool isExists = builtin->id == BuiltinId::Exists;
  const Node *argument = syntax->children.empty() ? nullptr : syntax->children[0];
  bool isPath = argument != nullptr &&
                (argument->kind == NodeKind::Member || argument->kind == NodeKind::Index ||
                 argument->kind == NodeKind::Projection || argument->kind == NodeKind::Root);
  if (isExists && isPath) {
    path(argument, target, Opcode::PathHas);
    return;
  }
  // coalesce() reads optional data like `??`: its path arguments may be missing.
  bool optionalArguments = builtin->id == BuiltinId::Coalesce;
  auto count = static_cast<uint32_t>(syntax->children.size());
  Reg first = allocate(count);
  for (uint32_t i = 0; i < count; ++i) {
    node(syntax->children[i], Reg{first.index + i}, optionalArguments);
  }
  emit(Opcode::Call,
       {target, Operand::immediate(static_cast<uint32_t>(builtin->id)), first,
        Operand::immediate(count)},
       syntax->range);
}

void Generator::path(const Node *syntax, Reg target, Opcode opcode) {
  // The chain from the root (or another base expression) outwards.
  std::vector<const Node *> chain;
  const Node *base = syntax;
  while (base->kind == NodeKind::Member || base->kind == NodeKind::Index ||
         base->kind == NodeKind::Projection) {
    chain.push_back(base);
    base = base->children[0];
  }
  std::reverse(chain.begin(), chain.end());

  vm::PathDescriptor descriptor;
  descriptor.text = base->kind == NodeKind::Root ? "$" : "(value)";
  size_t start = 0;
  Reg from = target;
  auto segmentKey = [](const Node *segment) -> const std::string * {
    if (segment->kind == NodeKind::Member) {
      return &segment->text;
    }
    if (segment->kind == NodeKind::Index && segment->children[1]->kind == NodeKind::String) {
      return &segment->children[1]->text;
    }
    return nullptr;
  };
  if (base->kind == NodeKind::Root) {
    const std::string *root = chain.empty() ? nullptr : segmentKey(chain.front());
    static const std::pair<const char *, vm::StateRoot> roots[] = {
        {"inputs", vm::StateRoot::Inputs},   {"vars", vm::StateRoot::Vars},
        {"results", vm::StateRoot::Results}, {"signals", vm::StateRoot::Signals},
        {"events", vm::StateRoot::Events},   {"run", vm::StateRoot::Run}};
    bool resolved = false;
    if (root != nullptr) {
      for (const auto &[name, stateRoot] : roots) {
        if (*root == name) {
          emit(Opcode::Root, {target, stateRoot}, syntax->range);
          resolved = true;
        }
      }
      for (auto local = locals_.rbegin(); !resolved && local != locals_.rend(); ++local) {
        if (local->first == *root) {
          emit(Opcode::Move, {target, local->second}, syntax->range);
          resolved = true;
        }
      }
      if (!resolved && (*root == "result" || *root == "error")) {
        std::vector<Reg> &bound = *root == "result" ? resultRegisters_ : errorRegisters_;
        if (bound.empty()) {
          emit(Opcode::LoadNull, {target}, syntax->range);
        } else {
          emit(Opcode::Move, {target, bound.back()}, syntax->range);
        }
        resolved = true;
      }
    }
    if (resolved) {
      descriptor.text += "." + *root;
      start = 1;
    } else {
      // `$` itself, or `$[expr]`: the whole state as one object.
      static const char *const wholeState[] = {"inputs",  "vars",   "results",
                                               "signals", "events", "run"};
      Reg first = allocate(6);
      Array keys;
      for (uint32_t i = 0; i < 6; ++i) {
        keys.push_back(Value(wholeState[i]));
        emit(Opcode::Root, {Reg{first.index + i}, roots[i].second}, syntax->range);
      }
      emit(Opcode::NewObject,
           {target, first, Operand::immediate(6), constant(Value(std::move(keys)))}, syntax->range);
    }
  } else {
    node(base, target);
  }
  if (start == chain.size() && opcode != Opcode::PathHas) {
    return; // the root or base itself
  }

  // Dynamic indexes go to consecutive registers, in path order.
  std::vector<const Node *> dynamic;
  for (size_t i = start; i < chain.size(); ++i) {
    const Node *segment = chain[i];
    vm::PathSegment piece;
    if (segment->kind == NodeKind::Member) {
      piece.member = segment->text;
      descriptor.text += "." + segment->text;
    } else if (segment->kind == NodeKind::Projection) {
      piece.kind = vm::PathSegment::Kind::Project;
      descriptor.text += "[*]";
    } else {
      const Node *index = segment->children[1];
      if (index->kind == NodeKind::String) {
        piece.member = index->text;
        descriptor.text += "['" + index->text + "']";
      } else if (index->kind == NodeKind::Integer) {
        piece.kind = vm::PathSegment::Kind::Index;
        piece.index = index->intValue;
        descriptor.text += fmt::format("[{}]", index->intValue);
      } else {
        piece.kind = vm::PathSegment::Kind::Dynamic;
        piece.index = static_cast<int64_t>(dynamic.size());
        dynamic.push_back(index);
        descriptor.text += "[...]";
      }
    }
    descriptor.segments.push_back(std::move(piece));
  }
  Reg indexes{0};
  if (!dynamic.empty()) {
    indexes = allocate(static_cast<uint32_t>(dynamic.size()));
    for (size_t i = 0; i < dynamic.size(); ++i) {
      node(dynamic[i], Reg{indexes.index + static_cast<uint32_t>(i)});
    }
  }
  emit(opcode, {target, from, constant(descriptor.toValue()), indexes}, syntax->range);
}

// ---- strategies --------------------------------------------------------------------------

void Generator::strategy(const Strategy *step, Reg target) {
  uint32_t saved = mark();
  switch (step->op) {
  case StrategyOp::Activity:
    activity(*step, target);
    break;
  case StrategyOp::Seq:
    if (step->children.empty()) {
      emit(Opcode::LoadNull, {target}, step->range);
    }
    for (const Strategy *child : step->children) {
      strategy(child, target);
    }
    break;
  case StrategyOp::Parallel:
    parallel(*step, target);
    break;
  case StrategyOp::Decision:
    decision(*step, target);
    break;
  case StrategyOp::Wait:
    wait(*step, target);
    break;
  case StrategyOp::Saga:
    saga(*step, target);
    break;
  case StrategyOp::SubWorkflow: {
    Reg input = allocate();
    inputObject(step->input, input, step->range);
    vm::ChildDescriptor descriptor{step->workflowRef, step->stepId, step->timeoutMs};
    emit(Opcode::Child, {target, input, constant(descriptor.toValue())}, step->range);
    break;
  }
  case StrategyOp::Set: {
    Reg value = allocate();
    for (const Binding &binding : step->vars) {
      expr(binding.value, value);
      emit(Opcode::SetVar, {constant(Value(binding.name)), value}, binding.nameRange);
    }
    emit(Opcode::LoadNull, {target}, step->range);
    break;
  }
  case StrategyOp::Foreach:
    foreach (*step, target)
      ;
    break;
  case StrategyOp::Loop:
    loop(*step, target);
    break;
  case StrategyOp::Try:
    tryCatch(*step, target);
    break;
  case StrategyOp::Fail: {
    Reg parts = allocate(3);
    emit(Opcode::LoadK, {parts, constant(Value(step->errorType))}, step->range);
    Reg message{parts.index + 1};
    Reg details{parts.index + 2};
    if (step->message != nullptr) {
      expr(step->message, message);
    } else {
      emit(Opcode::LoadK, {message, constant(Value(""))}, step->range);
    }
    if (step->details != nullptr) {
      expr(step->details, details);
    } else {
      emit(Opcode::LoadNull, {details}, step->range);
    }
    Array keys{Value("type"), Value("message"), Value("details")};
    emit(Opcode::NewObject,
         {target, parts, Operand::immediate(3), constant(Value(std::move(keys)))}, step->range);
    emit(Opcode::Raise, {target}, step->range);
    // RAISE ends the block's straight-line code; anything after it in a seq is unreachable
    // but still emitted, so give it a fresh point to continue from.
    break;
  }
  case StrategyOp::ContinueAsNew: {
    Reg input = allocate();
    inputObject(step->input, input, step->range);
    emit(Opcode::ContinueAsNew, {input}, step->range);
    break;
  }
  }
  if (step->explicitStepId || step->op == StrategyOp::Activity ||
      step->op == StrategyOp::SubWorkflow) {
    emit(Opcode::SetResult, {constant(Value(step->stepId)), target}, step->range);
  }
  release(saved);
}

void Generator::inputObject(const Expr *input, Reg target, SourceRange where) {
  if (input == nullptr) {
    emit(Opcode::LoadK, {target, constant(Value(Object()))}, where);
  } else {
    expr(input, target);
  }
}

void Generator::activityCall(const Strategy &step, Reg input, Reg target, bool compensation) {
  const ActivityDecl *declaration = program_.findActivity(step.activityRef);
  vm::ActivityCallDescriptor descriptor;
  descriptor.activity = step.activityRef;
  descriptor.step = step.stepId;
  descriptor.timeoutMs = step.timeoutMs.value_or(declaration != nullptr && declaration->timeoutMs
                                                     ? *declaration->timeoutMs
                                                     : defaultActivityTimeoutMs);
  descriptor.scheduleToCloseMs = step.scheduleToCloseMs;
  RetryPolicy policy = compensation ? defaultCompensationRetryPolicy() : RetryPolicy();
  if (step.retryPolicy) {
    policy = step.retryPolicy->policy;
  } else if (declaration != nullptr && declaration->retryPolicy) {
    policy = declaration->retryPolicy->policy;
  }
  descriptor.retry = retryPolicyToValue(policy);
  emit(Opcode::Activity, {target, input, constant(descriptor.toValue())}, step.range);
}

void Generator::activity(const Strategy &step, Reg target) {
  Reg input = allocate();
  inputObject(step.input, input, step.range);
  bool attempted = step.compensate != nullptr && step.compensateOnAttempted;
  if (!attempted) {
    activityCall(step, input, target, /*compensation=*/false);
  } else {
    // Registered even when the activity fails or is cancelled: catch everything (the marker
    // lets the VM run this handler for a cancellation too), register, re-raise.
    Reg error = allocate();
    Value types = vm::errorTypesToValue({"*", std::string(vm::kAttemptedRegionMarker)});
    CodeIndex push =
        emit(Opcode::TryPush, {Operand::unresolvedJump(), error, constant(types)}, step.range);
    activityCall(step, input, target, /*compensation=*/false);
    emit(Opcode::TryPop, {}, step.range);
    registerCompensation(step, target);
    CodeIndex done = emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range);
    patch(push);
    Reg noResult = allocate();
    emit(Opcode::LoadNull, {noResult}, step.range);
    registerCompensation(step, noResult);
    emit(Opcode::Raise, {error}, step.range);
    patch(done);
  }
  if (!step.outputMapping.empty()) {
    resultRegisters_.push_back(target);
    Reg value = allocate();
    for (const Binding &binding : step.outputMapping) {
      expr(binding.value, value);
      emit(Opcode::SetVar, {constant(Value(binding.name)), value}, binding.nameRange);
    }
    resultRegisters_.pop_back();
  }
  if (step.compensate != nullptr && !attempted) {
    registerCompensation(step, target);
  }
}

void Generator::registerCompensation(const Strategy &step, Reg result) {
  const Strategy &compensate = *step.compensate;
  // The compensation's input is evaluated now, with $.result bound, so each registration
  // captures its own data; the block reads it from the captured register.
  resultRegisters_.push_back(result);
  Reg input = allocate();
  if (compensate.op == StrategyOp::Activity) {
    inputObject(compensate.input, input, compensate.range);
  }
  BlockId compensationBlock = builder_.newBlock(vm::BlockKind::Compensation);
  BlockId outer = block_;
  block_ = compensationBlock;
  Reg value = allocate();
  if (compensate.op == StrategyOp::Activity) {
    activityCall(compensate, input, value, /*compensation=*/true);
  } else {
    strategy(&compensate, value);
  }
  emit(Opcode::Ret, {value}, compensate.range);
  block_ = outer;
  resultRegisters_.pop_back();
  vm::CompensationDescriptor descriptor{compensate.stepId.empty() ? step.stepId
                                                                  : compensate.stepId};
  emit(Opcode::CompReg, {compensationBlock, constant(descriptor.toValue())}, compensate.range);
}

void Generator::parallel(const Strategy &step, Reg target) {
  // Branch blocks must be consecutive, so all are made before any is filled (a branch may
  // make blocks of its own).
  std::vector<BlockId> blocks;
  for (size_t i = 0; i < step.children.size(); ++i) {
    blocks.push_back(builder_.newBlock(vm::BlockKind::Branch));
  }
  BlockId outer = block_;
  for (size_t i = 0; i < step.children.size(); ++i) {
    block_ = blocks[i];
    uint32_t saved = mark();
    Reg value = allocate();
    strategy(step.children[i], value);
    emit(Opcode::Ret, {value}, step.children[i]->range);
    release(saved);
  }
  block_ = outer;
  vm::ParallelDescriptor descriptor;
  switch (step.completion) {
  case CompletionMode::All:
    descriptor.mode = vm::ParallelMode::All;
    break;
  case CompletionMode::Any:
    descriptor.mode = vm::ParallelMode::Any;
    break;
  case CompletionMode::AtLeast:
    descriptor.mode = vm::ParallelMode::AtLeast;
    descriptor.count = static_cast<uint32_t>(step.count);
    break;
  case CompletionMode::AllSettled:
    descriptor.mode = vm::ParallelMode::AllSettled;
    break;
  }
  BlockId first = blocks.empty() ? BlockId{0} : blocks.front();
  if (blocks.empty()) {
    emit(Opcode::LoadK, {target, constant(Value(Array()))}, step.range);
    return;
  }
  emit(Opcode::Parallel,
       {target, first, Operand::immediate(static_cast<uint32_t>(blocks.size())),
        constant(descriptor.toValue())},
       step.range);
}

void Generator::decision(const Strategy &step, Reg target) {
  std::string stepId = step.explicitStepId ? step.stepId : syntheticStep("decision");
  Reg condition = allocate();
  std::vector<CodeIndex> toEnd;
  for (size_t i = 0; i < step.cases.size(); ++i) {
    const DecisionCase &decisionCase = step.cases[i];
    if (decisionCase.hostPredicate) {
      const std::vector<std::string> &names = workflow_.hostPredicates;
      auto index = static_cast<uint32_t>(
          std::find(names.begin(), names.end(), decisionCase.predicate) - names.begin());
      emit(Opcode::HostPred, {condition, Operand::immediate(index)}, decisionCase.conditionRange);
    } else if (!decisionCase.predicate.empty()) {
      for (const Binding &predicate : workflow_.predicates) {
        if (predicate.name == decisionCase.predicate) {
          expr(predicate.value, condition);
        }
      }
    } else {
      expr(decisionCase.condition, condition);
    }
    CodeIndex next =
        emit(Opcode::JmpIfNot, {condition, Operand::unresolvedJump()}, decisionCase.conditionRange);
    vm::DecisionDescriptor descriptor{stepId, static_cast<uint32_t>(i)};
    emit(Opcode::Decided, {constant(descriptor.toValue())}, decisionCase.conditionRange);
    if (decisionCase.branch != nullptr) {
      strategy(decisionCase.branch, target);
    } else {
      emit(Opcode::LoadNull, {target}, decisionCase.conditionRange);
    }
    toEnd.push_back(emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range));
    patch(next);
  }
  vm::DecisionDescriptor fallback{stepId, std::nullopt};
  if (step.defaultBranch != nullptr) {
    emit(Opcode::Decided, {constant(fallback.toValue())}, step.defaultBranch->range);
    strategy(step.defaultBranch, target);
  } else {
    raise("NoBranchMatched", "no decision condition held and there is no default_branch",
          step.range);
  }
  for (CodeIndex jump : toEnd) {
    patch(jump);
  }
}

void Generator::wait(const Strategy &step, Reg target) {
  Reg operand = allocate();
  switch (step.waitKind) {
  case WaitKind::Timer: {
    vm::TimerDescriptor descriptor{step.explicitStepId ? step.stepId : syntheticStep("timer")};
    if (step.until != nullptr) {
      expr(step.until, operand);
      emit(Opcode::TimerUntil, {target, operand, constant(descriptor.toValue())}, step.range);
    } else {
      expr(step.duration, operand);
      emit(Opcode::Timer, {target, operand, constant(descriptor.toValue())}, step.range);
    }
    break;
  }
  case WaitKind::Signal: {
    vm::SignalDescriptor descriptor{step.signalName,
                                    step.explicitStepId ? step.stepId : syntheticStep("signal"),
                                    step.timeoutMs};
    emit(Opcode::WaitSignal, {target, constant(descriptor.toValue())}, step.range);
    break;
  }
  case WaitKind::Event: {
    vm::EventDescriptor descriptor{
        step.eventType, step.explicitStepId ? step.stepId : syntheticStep("event"), step.timeoutMs};
    auto count = static_cast<uint32_t>(step.filter.size());
    Reg first = allocate(count);
    Array keys;
    for (uint32_t i = 0; i < count; ++i) {
      keys.push_back(Value(step.filter[i].name));
      expr(step.filter[i].value, Reg{first.index + i});
    }
    emit(Opcode::NewObject,
         {operand, first, Operand::immediate(count), constant(Value(std::move(keys)))}, step.range);
    emit(Opcode::WaitEvent, {target, operand, constant(descriptor.toValue())}, step.range);
    break;
  }
  }
}

void Generator::saga(const Strategy &step, Reg target) {
  Reg error = allocate();
  vm::SagaDescriptor descriptor;
  descriptor.policy = step.parallelCompensation ? vm::CompensationPolicy::Parallel
                                                : vm::CompensationPolicy::Reverse;
  descriptor.onFailure = step.stopOnCompensationFailure ? vm::CompensationFailureMode::Stop
                                                        : vm::CompensationFailureMode::Continue;
  CodeIndex push =
      emit(Opcode::SagaPush, {Operand::unresolvedJump(), error, constant(descriptor.toValue())},
           step.range);
  strategy(step.mainFlow, target);
  emit(Opcode::SagaPop, {}, step.range);
  CodeIndex done = emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range);
  patch(push);
  Reg status = allocate();
  emit(Opcode::CompRun, {status}, step.range);
  if (step.compensation != nullptr) {
    errorRegisters_.push_back(error);
    Reg ignored = allocate();
    strategy(step.compensation, ignored);
    errorRegisters_.pop_back();
  }
  // The saga fails with the original error, extended with how the compensation went.
  emit(Opcode::Add, {error, error, status}, step.range);
  emit(Opcode::Raise, {error}, step.range);
  patch(done);
}

void Generator::foreach (const Strategy &step, Reg target) {
  Reg items = allocate();
  expr(step.items, items);
  Reg item = allocate();
  Reg index = allocate();
  BlockId body = builder_.newBlock(vm::BlockKind::Iteration);
  BlockId outer = block_;
  block_ = body;
  locals_.emplace_back(step.itemName, item);
  locals_.emplace_back(step.indexName, index);
  Reg value = allocate();
  strategy(step.body, value);
  emit(Opcode::Ret, {value}, step.body->range);
  locals_.pop_back();
  locals_.pop_back();
  block_ = outer;
  vm::ForeachDescriptor descriptor;
  descriptor.mode = step.completion == CompletionMode::AllSettled ? vm::ForeachMode::AllSettled
                                                                  : vm::ForeachMode::All;
  descriptor.maxConcurrency = static_cast<uint32_t>(step.maxConcurrency);
  descriptor.item = item;
  descriptor.index = index;
  emit(Opcode::Foreach, {target, items, body, constant(descriptor.toValue())}, step.range);
}

void Generator::loop(const Strategy &step, Reg target) {
  Reg iterations = allocate();
  Reg scratch = allocate();
  emit(Opcode::LoadK, {iterations, constant(Value(int64_t{0}))}, step.range);
  emit(Opcode::LoadNull, {target}, step.range);
  CodeIndex top = here();
  expr(step.whileCondition, scratch);
  CodeIndex exit = emit(Opcode::JmpIfNot, {scratch, Operand::unresolvedJump()}, step.range);
  emit(Opcode::LoadK, {scratch, constant(Value(step.maxIterations))}, step.range);
  emit(Opcode::Lt, {scratch, iterations, scratch}, step.range);
  CodeIndex withinLimit = emit(Opcode::JmpIf, {scratch, Operand::unresolvedJump()}, step.range);
  raise("LoopLimitExceeded",
        fmt::format("the loop ran {} times without its 'while' turning false; raise "
                    "'max_iterations' if that is expected",
                    step.maxIterations),
        step.range);
  patch(withinLimit);
  strategy(step.body, target);
  emit(Opcode::LoadK, {scratch, constant(Value(int64_t{1}))}, step.range);
  emit(Opcode::Add, {iterations, iterations, scratch}, step.range);
  CodeIndex back = emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range);
  builder_.patchJump(block_, back, top);
  patch(exit);
}

void Generator::tryCatch(const Strategy &step, Reg target) {
  Reg finallyError = allocate();
  Reg error = allocate();
  CodeIndex finallyPush{0};
  if (step.finally != nullptr) {
    finallyPush =
        emit(Opcode::TryPush,
             {Operand::unresolvedJump(), finallyError, constant(vm::errorTypesToValue({"*"}))},
             step.range);
  }
  CodeIndex catchPush{0};
  if (!step.catches.empty()) {
    std::vector<std::string> all;
    for (const CatchClause &clause : step.catches) {
      for (const std::string &type : clause.errors) {
        if (std::find(all.begin(), all.end(), type) == all.end()) {
          all.push_back(type);
        }
      }
    }
    catchPush =
        emit(Opcode::TryPush,
             {Operand::unresolvedJump(), error, constant(vm::errorTypesToValue(all))}, step.range);
  }
  strategy(step.body, target);
  std::vector<CodeIndex> toFinally;
  if (!step.catches.empty()) {
    emit(Opcode::TryPop, {}, step.range);
    toFinally.push_back(emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range));
    patch(catchPush);
    // The frame matched one of the clauses' types; find which, first clause first.
    Reg type = allocate();
    Reg matches = allocate();
    vm::PathDescriptor typePath{"$.error.type", {vm::PathSegment{}}};
    typePath.segments[0].member = "type";
    emit(Opcode::Path, {type, error, constant(typePath.toValue()), Reg{0}}, step.range);
    errorRegisters_.push_back(error);
    for (const CatchClause &clause : step.catches) {
      bool any = std::find(clause.errors.begin(), clause.errors.end(), "*") != clause.errors.end();
      CodeIndex next{0};
      if (!any) {
        Array types;
        for (const std::string &name : clause.errors) {
          types.push_back(Value(name));
        }
        emit(Opcode::LoadK, {matches, constant(Value(std::move(types)))}, clause.range);
        emit(Opcode::In, {matches, type, matches}, clause.range);
        next = emit(Opcode::JmpIfNot, {matches, Operand::unresolvedJump()}, clause.range);
      }
      strategy(clause.handler, target);
      toFinally.push_back(emit(Opcode::Jmp, {Operand::unresolvedJump()}, clause.range));
      if (!any) {
        patch(next);
      }
    }
    errorRegisters_.pop_back();
    emit(Opcode::Raise, {error}, step.range);
  }
  for (CodeIndex jump : toFinally) {
    patch(jump);
  }
  if (step.finally != nullptr) {
    Reg ignored = allocate();
    emit(Opcode::TryPop, {}, step.range);
    strategy(step.finally, ignored);
    CodeIndex done = emit(Opcode::Jmp, {Operand::unresolvedJump()}, step.range);
    patch(finallyPush);
    strategy(step.finally, ignored);
    emit(Opcode::Raise, {finallyError}, step.range);
    patch(done);
  }
}

void Generator::raise(std::string_view type, std::string message, SourceRange where) {
  Reg error = allocate();
  Object object;
  object.set("type", Value(std::string(type)));
  object.set("message", Value(std::move(message)));
  object.set("details", Value());
  emit(Opcode::LoadK, {error, constant(Value(std::move(object)))}, where);
  emit(Opcode::Raise, {error}, where);
}

void Generator::outputs(SourceRange where) {
  // Declared outputs in order: the mapping, else $.vars.<name> (null when never set), else
  // the declared default. Without declared outputs the mapping alone defines them.
  std::vector<std::string> names;
  for (const Param &output : workflow_.outputs) {
    names.push_back(output.name);
  }
  for (const Binding &binding : workflow_.outputMapping) {
    if (std::find(names.begin(), names.end(), binding.name) == names.end()) {
      names.push_back(binding.name);
    }
  }
  auto count = static_cast<uint32_t>(names.size());
  Reg first = allocate(count);
  Reg result = allocate();
  Array keys;
  for (uint32_t i = 0; i < count; ++i) {
    Reg slot{first.index + i};
    keys.push_back(Value(names[i]));
    const Binding *mapped = nullptr;
    for (const Binding &binding : workflow_.outputMapping) {
      if (binding.name == names[i]) {
        mapped = &binding;
      }
    }
    if (mapped != nullptr) {
      expr(mapped->value, slot);
      continue;
    }
    emit(Opcode::Root, {slot, vm::StateRoot::Vars}, where);
    vm::PathDescriptor descriptor{"$.vars." + names[i], {vm::PathSegment{}}};
    descriptor.segments[0].member = names[i];
    emit(Opcode::PathOpt, {slot, slot, constant(descriptor.toValue()), Reg{0}}, where);
    const Param *declared = nullptr;
    for (const Param &output : workflow_.outputs) {
      if (output.name == names[i]) {
        declared = &output;
      }
    }
    if (declared != nullptr && declared->defaultValue && !declared->defaultValue->isNull()) {
      CodeIndex set = emit(Opcode::JmpNotNull, {slot, Operand::unresolvedJump()}, where);
      emit(Opcode::LoadK, {slot, constant(*declared->defaultValue)}, where);
      patch(set);
    }
  }
  emit(Opcode::NewObject,
       {result, first, Operand::immediate(count), constant(Value(std::move(keys)))}, where);
  emit(Opcode::Complete, {result}, where);
}

vm::Workflow Generator::run() {
  vm::Workflow &info = builder_.workflow();
  info.name = workflow_.name;
  info.version = workflow_.version;
  info.description = workflow_.description;
  info.metadata = workflow_.metadata;
  for (const Param &input : workflow_.inputs) {
    info.inputs.push_back(vm::Param{input.name, input.type, input.required, input.defaultValue});
  }
  for (const Param &output : workflow_.outputs) {
    info.outputs.push_back(
        vm::Param{output.name, output.type, output.required, output.defaultValue});
  }
  info.timeoutMs = workflow_.timeoutMs;
  info.retryPolicy =
      workflow_.retryPolicy ? retryPolicyToValue(workflow_.retryPolicy->policy) : Value();
  info.hostPredicates = workflow_.hostPredicates;

  Reg value = allocate();
  strategy(workflow_.strategy, value);
  outputs(workflow_.range);
  return std::move(builder_).finish();
}

} // namespace

vm::Module generateModule(const Program &program, const SourceManager &sources) {
  vm::ModuleBuilder module;
  Locator locate(sources, module);
  for (const std::string &file : program.sourceFiles) {
    (void)module.addSourceFile(file);
  }
  for (const ActivityDecl &declaration : program.activities) {
    vm::ActivityDecl activity;
    activity.name = declaration.name;
    activity.description = declaration.description;
    activity.timeoutMs = declaration.timeoutMs;
    activity.retryPolicy =
        declaration.retryPolicy ? retryPolicyToValue(declaration.retryPolicy->policy) : Value();
    activity.implementation = declaration.implementation.value_or(Value());
    if (declaration.range.valid()) {
      // Its relative paths resolve against this file's directory (docs/cli.md).
      activity.declaredIn = module.addSourceFile(sources.path(declaration.range.begin.file));
    }
    module.addActivity(std::move(activity));
  }
  for (const std::string &name : program.hostActivities) {
    module.addHostActivity(name);
  }
  // The entry workflow first, then the others in source order.
  std::vector<const Workflow *> order;
  order.push_back(program.workflows[program.entry]);
  for (size_t i = 0; i < program.workflows.size(); ++i) {
    if (i != program.entry) {
      order.push_back(program.workflows[i]);
    }
  }
  for (const Workflow *workflow : order) {
    Generator generator(program, *workflow, module, locate);
    module.addWorkflow(generator.run());
  }
  return std::move(module).finish();
}

} // namespace kotoba::compiler
