// Hand-built modules for the bytecode tests: what the code generator would emit for the
// order-processing sample (a saga around a parallel with compensations, a host predicate,
// templates, output mapping) plus a second workflow that uses every opcode the first does
// not (foreach with a dynamic path, try, waits, a child, continue-as-new, the remaining
// operators). Built with the public builder API only, so they also exercise it. The format
// tests serialize them, the fuzz seeds are their bytes, and a test checks that together
// they use every opcode.
#pragma once

#include "kotoba/vm/descriptors.h"
#include "kotoba/vm/module.h"
#include "kotoba/vm/retry.h"

#include <string>
#include <utility>
#include <vector>

namespace kotoba::vm::samples {

inline Value retryPolicy(int64_t initialMs, double coefficient, int64_t maximumMs,
                         std::optional<int64_t> attempts,
                         std::vector<std::string> nonRetryable = {}) {
  RetryPolicy policy;
  policy.initialIntervalMs = initialMs;
  policy.backoffCoefficient = coefficient;
  policy.maximumIntervalMs = maximumMs;
  policy.maximumAttempts = attempts;
  policy.nonRetryableErrors = std::move(nonRetryable);
  return retryPolicyToValue(policy);
}

inline Value defaultRetry() { return retryPolicy(1000, 2.0, 100000, 3); }

// A path descriptor from its text and segments (strings are members, integers indexes).
inline Value path(std::string text, std::vector<Value> segments) {
  PathDescriptor descriptor;
  descriptor.text = std::move(text);
  uint32_t dynamic = 0;
  for (const Value &segment : segments) {
    if (segment.isString()) {
      descriptor.segments.push_back({PathSegment::Kind::Member, segment.asString(), 0});
    } else if (segment.isInt()) {
      descriptor.segments.push_back({PathSegment::Kind::Index, {}, segment.asInt()});
    } else if (segment.isNull()) {
      descriptor.segments.push_back({PathSegment::Kind::Project, {}, 0});
    } else {
      descriptor.segments.push_back({PathSegment::Kind::Dynamic, {}, dynamic++});
    }
  }
  return descriptor.toValue();
}

// A marker for a dynamic segment in path().
inline Value dynamicSegment() { return Value(true); }

inline Value keys(std::initializer_list<const char *> names) {
  Array array;
  for (const char *name : names) {
    array.emplace_back(name);
  }
  return Value(std::move(array));
}

inline Value call(std::string activity, std::string step, int64_t timeoutMs = 300000) {
  return ActivityCallDescriptor{std::move(activity), std::move(step), timeoutMs, std::nullopt,
                                defaultRetry()}
      .toValue();
}

// Emits into one block with a running source line, so the samples read like listings.
class Emitter {
public:
  Emitter(WorkflowBuilder &builder, BlockId block, FileIndex file)
      : builder_(builder), block_(block), file_(file) {}

  // Subsequent instructions come from this source line and column.
  Emitter &at(uint32_t line, uint32_t column = 1) {
    line_ = line;
    column_ = column;
    return *this;
  }
  CodeIndex operator()(Opcode opcode, std::initializer_list<Operand> operands) {
    return builder_.emit(block_, opcode, operands, SourceLocation{file_, line_, column_});
  }
  [[nodiscard]] CodeIndex next() const { return builder_.nextIndex(block_); }
  void patch(CodeIndex at, CodeIndex target) { builder_.patchJump(block_, at, target); }
  ConstIndex k(const Value &value) { return builder_.constant(value); }

private:
  WorkflowBuilder &builder_;
  BlockId block_;
  FileIndex file_;
  uint32_t line_ = 0;
  uint32_t column_ = 0;
};

inline Operand imm(uint32_t value) { return Operand::immediate(value); }

// The order-processing workflow, compiled by hand.
inline Workflow orderWorkflow(ModuleBuilder &module, FileIndex file) {
  WorkflowBuilder builder(module, "order_processing");
  Workflow &header = builder.workflow();
  header.name = "Order Processing Workflow";
  header.version = "1.0.0";
  header.inputs = {{"orderId", "string", true, std::nullopt},
                   {"customerId", "string", true, std::nullopt},
                   {"amount", "number", true, std::nullopt},
                   {"items", "array", false, Value(Array{})}};
  header.outputs = {{"processed", "boolean", false, std::nullopt},
                    {"confirmationId", "string", false, std::nullopt}};
  header.timeoutMs = 1800000;
  header.hostPredicates = {"is_vip"};
  Object metadata;
  metadata.set("team", Value("shop"));
  header.metadata = Value(std::move(metadata));

  Reg inputs = builder.newRegister();
  Reg error = builder.newRegister();
  Reg scratch = builder.newRegisters(4);
  Reg value = builder.newRegister();
  Reg result = builder.newRegister();
  auto r = [&](uint32_t offset) { return Reg{scratch.index + offset}; };

  BlockId payment = builder.newBlock(BlockKind::Branch);
  BlockId inventory = builder.newBlock(BlockKind::Branch);
  BlockId fraud = builder.newBlock(BlockKind::Branch);
  BlockId cancelPayment = builder.newBlock(BlockKind::Compensation);
  BlockId releaseInventory = builder.newBlock(BlockKind::Compensation);

  Emitter body(builder, BlockId{0}, file);
  body.at(37, 15);
  CodeIndex saga = body(Opcode::SagaPush,
                        {Operand::unresolvedJump(), error, body.k(SagaDescriptor{}.toValue())});
  body.at(43, 13);
  body(Opcode::Root, {inputs, StateRoot::Inputs});
  body.at(46, 25);
  body(Opcode::Path, {r(0), inputs, body.k(path("$.inputs.orderId", {Value("orderId")})), Reg{0}});
  body.at(47, 28);
  body(Opcode::Path,
       {r(1), inputs, body.k(path("$.inputs.customerId", {Value("customerId")})), Reg{0}});
  body.at(45, 28);
  body(Opcode::NewObject, {value, r(0), imm(2), body.k(keys({"order_id", "customer_id"}))});
  body.at(43, 13);
  body(Opcode::Activity, {result, value, body.k(call("validate_order", "validate_order", 10000))});
  body(Opcode::SetResult, {body.k(Value("validate_order")), result});
  body.at(58, 13);
  body(Opcode::Parallel, {result, payment, imm(3), body.k(ParallelDescriptor{}.toValue())});
  body.at(96, 13);
  body(Opcode::LoadK, {r(0), body.k(Value("Order "))});
  body(Opcode::Path, {r(1), inputs, body.k(path("$.inputs.orderId", {Value("orderId")})), Reg{0}});
  body(Opcode::LoadK, {r(2), body.k(Value(" confirmed for "))});
  body(Opcode::Path, {r(3), inputs, body.k(path("$.inputs.amount", {Value("amount")})), Reg{0}});
  body(Opcode::Concat, {value, r(0), imm(4)});
  body(Opcode::Move, {r(0), r(1)});
  body(Opcode::Move, {r(1), value});
  body(Opcode::NewObject, {value, r(0), imm(2), body.k(keys({"order_id", "message"}))});
  body(Opcode::Activity, {result, value, body.k(call("send_confirmation", "send_confirmation"))});
  body(Opcode::SetResult, {body.k(Value("send_confirmation")), result});
  body(Opcode::SagaPop, {});
  // A decision on a host predicate, recorded either way.
  body.at(110, 5);
  body(Opcode::HostPred, {value, imm(0)});
  CodeIndex toDefault = body(Opcode::JmpIfNot, {value, Operand::unresolvedJump()});
  body(Opcode::Decided, {body.k(DecisionDescriptor{"vip", 0}.toValue())});
  body(Opcode::LoadBool, {value, Operand::boolean(true)});
  CodeIndex toJoin = body(Opcode::Jmp, {Operand::unresolvedJump()});
  body.patch(toDefault, body.next());
  body(Opcode::Decided, {body.k(DecisionDescriptor{"vip", std::nullopt}.toValue())});
  body(Opcode::LoadBool, {value, Operand::boolean(false)});
  body.patch(toJoin, body.next());
  body(Opcode::SetVar, {body.k(Value("vip")), value});
  // output_mapping
  body.at(31, 5);
  body(Opcode::LoadBool, {r(0), Operand::boolean(true)});
  body(Opcode::Root, {r(2), StateRoot::Results});
  body(Opcode::PathOpt, {r(1), r(2),
                         body.k(path("$.results.send_confirmation.confirmation_id",
                                     {Value("send_confirmation"), Value("confirmation_id")})),
                         Reg{0}});
  body(Opcode::NewObject, {value, r(0), imm(2), body.k(keys({"processed", "confirmationId"}))});
  body(Opcode::Complete, {value});
  // The saga's handler: compensate, run `compensation`, fail with the extended error.
  body.patch(saga, body.next());
  body.at(37, 15);
  body(Opcode::CompRun, {r(3)});
  body.at(114, 7);
  body(Opcode::Root, {inputs, StateRoot::Inputs});
  body(Opcode::Path, {r(0), inputs, body.k(path("$.inputs.orderId", {Value("orderId")})), Reg{0}});
  body(Opcode::Path, {r(1), error, body.k(path("$.error.message", {Value("message")})), Reg{0}});
  body(Opcode::NewObject, {value, r(0), imm(2), body.k(keys({"order_id", "reason"}))});
  body(Opcode::Activity,
       {result, value, body.k(call("send_failure_notification", "send_failure_notification"))});
  body(Opcode::Add, {error, error, r(3)});
  body(Opcode::Raise, {error});

  // The three branches. Payment and inventory register their compensations with the
  // enclosing saga; the compensation input is evaluated at registration (into `value`,
  // which the compensation block finds in its copy of the registers).
  auto branchWithCompensation = [&](BlockId block, uint32_t line, const char *activity,
                                    const char *inputKey, const char *resultPath,
                                    const char *resultKey, const char *compensationStep,
                                    BlockId compensation) {
    Emitter branch(builder, block, file);
    branch.at(line, 17);
    branch(Opcode::Root, {inputs, StateRoot::Inputs});
    branch(Opcode::Path,
           {r(0), inputs, branch.k(path("$.inputs.amount", {Value("amount")})), Reg{0}});
    branch(Opcode::Path,
           {r(1), inputs, branch.k(path("$.inputs.orderId", {Value("orderId")})), Reg{0}});
    branch(Opcode::NewObject, {value, r(0), imm(2), branch.k(keys({inputKey, "order_id"}))});
    branch(Opcode::Activity, {result, value, branch.k(call(activity, activity, 30000))});
    branch(Opcode::SetResult, {branch.k(Value(activity)), result});
    branch.at(line + 5, 17);
    branch(Opcode::Path, {r(0), result, branch.k(path(resultPath, {Value(resultKey)})), Reg{0}});
    branch(Opcode::NewObject, {value, r(0), imm(1), branch.k(keys({resultKey}))});
    branch(Opcode::CompReg,
           {compensation, branch.k(CompensationDescriptor{compensationStep}.toValue())});
    branch(Opcode::Ret, {result});

    Emitter undo(builder, compensation, file);
    undo.at(line + 6, 19);
    undo(Opcode::Activity, {result, value, undo.k(call(compensationStep, compensationStep))});
    undo(Opcode::Ret, {result});
  };
  branchWithCompensation(payment, 62, "process_payment", "amount", "$.result.payment_id",
                         "payment_id", "cancel_payment", cancelPayment);
  branchWithCompensation(inventory, 73, "reserve_inventory", "amount", "$.result.reservation_id",
                         "reservation_id", "release_inventory", releaseInventory);

  Emitter third(builder, fraud, file);
  third.at(86, 19);
  third(Opcode::LoadK, {r(0), third.k(Value(int64_t{2000}))});
  third(Opcode::Timer, {result, r(0), third.k(TimerDescriptor{"fraud_pause"}.toValue())});
  third.at(87, 19);
  third(Opcode::Root, {inputs, StateRoot::Inputs});
  third(Opcode::Path,
        {r(0), inputs, third.k(path("$.inputs.customerId", {Value("customerId")})), Reg{0}});
  third(Opcode::Path, {r(1), inputs, third.k(path("$.inputs.amount", {Value("amount")})), Reg{0}});
  third(Opcode::NewObject, {value, r(0), imm(2), third.k(keys({"customer_id", "amount"}))});
  third(Opcode::Activity, {result, value, third.k(call("fraud_check", "fraud_check", 10000))});
  third(Opcode::Ret, {result});
  return std::move(builder).finish();
}

// A workflow that exercises the rest of the instruction set.
inline Workflow refundWorkflow(ModuleBuilder &module, FileIndex file) {
  WorkflowBuilder builder(module, "refund_items");
  Workflow &header = builder.workflow();
  header.description = "Refund each item, waiting for approval";
  header.inputs = {{"items", "array<object>", true, std::nullopt},
                   {"deadline", "string", false, Value("2026-12-31T00:00:00Z")},
                   {"cursor", "any", false, std::nullopt}};
  header.outputs = {{"results", "array", false, std::nullopt}};
  header.retryPolicy = retryPolicy(200, 1.5, 60000, std::nullopt, {"Fatal"});

  Reg inputs = builder.newRegister();
  Reg items = builder.newRegister();
  Reg refunds = builder.newRegister();
  Reg item = builder.newRegister();
  Reg index = builder.newRegister();
  Reg error = builder.newRegister();
  Reg approval = builder.newRegister();
  Reg scratch = builder.newRegisters(6);
  auto r = [&](uint32_t offset) { return Reg{scratch.index + offset}; };
  BlockId perItem = builder.newBlock(BlockKind::Iteration);

  Emitter body(builder, BlockId{0}, file);
  body.at(140, 5);
  body(Opcode::Nop, {});
  body(Opcode::Root, {inputs, StateRoot::Inputs});
  body(Opcode::Path, {items, inputs, body.k(path("$.inputs.items", {Value("items")})), Reg{0}});
  body.at(141, 5);
  body(Opcode::Foreach,
       {refunds, items, perItem,
        body.k(ForeachDescriptor{ForeachMode::AllSettled, 4, item, index}.toValue())});
  body.at(150, 5);
  CodeIndex guard = body(Opcode::TryPush, {Operand::unresolvedJump(), error,
                                           body.k(errorTypesToValue({"WaitTimeout"}))});
  body(Opcode::WaitSignal,
       {approval, body.k(SignalDescriptor{"approve", "approval", 86400000}.toValue())});
  body(Opcode::TryPop, {});
  CodeIndex skip = body(Opcode::Jmp, {Operand::unresolvedJump()});
  body.patch(guard, body.next());
  body(Opcode::LoadNull, {approval});
  body.patch(skip, body.next());
  body.at(160, 5);
  body(Opcode::LoadK, {r(0), body.k(Value(Object{}))});
  body(Opcode::WaitEvent,
       {r(1), r(0), body.k(EventDescriptor{"review_completed", "review", std::nullopt}.toValue())});
  body(Opcode::Path,
       {r(0), inputs, body.k(path("$.inputs.deadline", {Value("deadline")})), Reg{0}});
  body(Opcode::TimerUntil, {r(1), r(0), body.k(TimerDescriptor{"deadline"}.toValue())});
  body.at(170, 5);
  body(Opcode::NewArray, {r(0), refunds, imm(1)});
  body(Opcode::NewObject, {r(1), r(0), imm(1), body.k(keys({"refunds"}))});
  body(Opcode::Child,
       {r(2), r(1), body.k(ChildDescriptor{"order_processing", "audit", 3600000}.toValue())});
  // continue_as_new when a cursor is present and not null
  body.at(180, 5);
  body(Opcode::PathHas, {r(0), inputs, body.k(path("$.inputs.cursor", {Value("cursor")})), Reg{0}});
  CodeIndex noCursor = body(Opcode::JmpIfNot, {r(0), Operand::unresolvedJump()});
  body(Opcode::PathOpt, {r(0), inputs, body.k(path("$.inputs.cursor", {Value("cursor")})), Reg{0}});
  CodeIndex cursorSet = body(Opcode::JmpNotNull, {r(0), Operand::unresolvedJump()});
  CodeIndex nullCursor = body(Opcode::Jmp, {Operand::unresolvedJump()});
  body.patch(cursorSet, body.next());
  body(Opcode::NewObject, {r(1), r(0), imm(1), body.k(keys({"cursor"}))});
  body(Opcode::ContinueAsNew, {r(1)});
  body.patch(noCursor, body.next());
  body.patch(nullCursor, body.next());
  body.at(190, 5);
  body(Opcode::NewObject, {r(0), refunds, imm(1), body.k(keys({"results"}))});
  body(Opcode::Complete, {r(0)});

  // Per item: a price from $.inputs.items[$.index].price, a little arithmetic, a check.
  Emitter each(builder, perItem, file);
  each.at(143, 9);
  each(Opcode::Path, {r(0), inputs,
                      each.k(path("$.inputs.items[$.index].price",
                                  {Value("items"), dynamicSegment(), Value("price")})),
                      index});
  each(Opcode::LoadK, {r(1), each.k(Value(int64_t{100}))});
  each(Opcode::Mul, {r(2), r(0), r(1)});
  each(Opcode::LoadK, {r(1), each.k(Value(1.5))});
  each(Opcode::Div, {r(2), r(2), r(1)});
  each(Opcode::Sub, {r(2), r(2), r(1)});
  each(Opcode::Neg, {r(3), r(2)});
  each(Opcode::LoadK, {r(1), each.k(Value(int64_t{7}))});
  each(Opcode::Mod, {r(4), index, r(1)});
  each.at(144, 9);
  each(Opcode::Eq, {r(5), r(4), r(1)});
  each(Opcode::Ne, {r(5), r(4), r(1)});
  each(Opcode::Lt, {r(5), r(4), r(1)});
  each(Opcode::Le, {r(5), r(4), r(1)});
  each(Opcode::Gt, {r(5), r(4), r(1)});
  each(Opcode::Ge, {r(5), r(4), r(1)});
  each(Opcode::Not, {r(5), r(5)});
  each(Opcode::ToBool, {r(5), r(5)});
  CodeIndex cheap = each(Opcode::JmpIf, {r(5), Operand::unresolvedJump()});
  each(Opcode::LoadK, {r(1), each.k(keys({"a", "b"}))});
  each(Opcode::LoadK, {r(0), each.k(Value("a"))});
  each(Opcode::In, {r(5), r(0), r(1)});
  each.patch(cheap, each.next());
  each.at(145, 9);
  each(Opcode::Path,
       {r(0), item, each.k(path("$.item.tags[*].name", {Value("tags"), Value(), Value("name")})),
        Reg{0}});
  each(Opcode::Call, {r(1), imm(1), r(0), imm(1)}); // len(tags)
  CodeIndex hasTags = each(Opcode::JmpNotNull, {r(1), Operand::unresolvedJump()});
  each(Opcode::LoadK, {r(1), each.k(Value(int64_t{0}))});
  each.patch(hasTags, each.next());
  each(Opcode::Ret, {r(3)});
  return std::move(builder).finish();
}

// Both workflows with their activity table: what kotobac would write for order.kotoba.
inline Module orderModule() {
  ModuleBuilder module;
  FileIndex file = module.addSourceFile("order.kotoba");
  Object http;
  http.set("type", Value("http"));
  http.set("method", Value("POST"));
  http.set("url", Value("http://127.0.0.1:8080/orders/${$.input.order_id}/validate"));
  module.addActivity({"validate_order", "Checks the order", 10000,
                      retryPolicy(1000, 1.5, 30000, 3, {"INVALID_CUSTOMER"}),
                      Value(std::move(http)), std::nullopt});
  module.addActivity({"process_payment", "", 30000, Value(), Value(), std::nullopt});
  for (const char *name : {"cancel_payment", "fraud_check", "process_payment", "release_inventory",
                           "reserve_inventory", "send_confirmation", "send_failure_notification"}) {
    module.addHostActivity(name);
  }
  module.addWorkflow(orderWorkflow(module, file));
  module.addWorkflow(refundWorkflow(module, file));
  return std::move(module).finish();
}

} // namespace kotoba::vm::samples
