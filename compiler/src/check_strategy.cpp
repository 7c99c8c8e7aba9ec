// Checking strategies: every op of language.md section 5 with its fields, step ids, saga
// nesting for `compensate`, foreach scopes, and the warnings about unreachable branches.
#include "checker.h"

#include "fold.h"

#include <fmt/format.h>

#include <algorithm>

namespace kotoba::compiler {

namespace {

const std::vector<std::string> &opNames() {
  static const std::vector<std::string> names = {
      "activity",     "seq", "parallel", "decision", "wait", "saga", "subworkflow",
      "sub_workflow", "set", "foreach",  "loop",     "try",  "fail", "continue_as_new"};
  return names;
}

std::optional<StrategyOp> opFromName(std::string_view name) {
  static const std::pair<std::string_view, StrategyOp> table[] = {
      {"activity", StrategyOp::Activity},
      {"seq", StrategyOp::Seq},
      {"parallel", StrategyOp::Parallel},
      {"decision", StrategyOp::Decision},
      {"wait", StrategyOp::Wait},
      {"saga", StrategyOp::Saga},
      {"subworkflow", StrategyOp::SubWorkflow},
      {"sub_workflow", StrategyOp::SubWorkflow},
      {"set", StrategyOp::Set},
      {"foreach", StrategyOp::Foreach},
      {"loop", StrategyOp::Loop},
      {"try", StrategyOp::Try},
      {"fail", StrategyOp::Fail},
      {"continue_as_new", StrategyOp::ContinueAsNew},
  };
  for (const auto &[text, op] : table) {
    if (text == name) {
      return op;
    }
  }
  return std::nullopt;
}

// The fields each op accepts besides op, id, name and description.
std::vector<std::string> fieldsOf(StrategyOp op) {
  std::vector<std::string> common = {"op", "id", "name", "description"};
  std::vector<std::string> own;
  switch (op) {
  case StrategyOp::Activity:
    own = {
        "activity_ref", "input_mapping", "output_mapping", "timeout", "schedule_to_close_timeout",
        "retry_policy", "compensate",    "compensate_on"};
    break;
  case StrategyOp::Seq:
    own = {"strategies"};
    break;
  case StrategyOp::Parallel:
    own = {"branches", "completion_condition", "count"};
    break;
  case StrategyOp::Decision:
    own = {"conditions", "default_branch"};
    break;
  case StrategyOp::Wait:
    own = {"condition", "timer", "signal", "event", "filter", "timeout"};
    break;
  case StrategyOp::Saga:
    own = {"main_flow", "compensation", "compensation_policy", "on_compensation_failure"};
    break;
  case StrategyOp::SubWorkflow:
    own = {"workflow_ref", "input_mapping", "timeout"};
    break;
  case StrategyOp::Set:
    own = {"vars"};
    break;
  case StrategyOp::Foreach:
    own = {"items", "as", "at", "max_concurrency", "completion_condition", "body"};
    break;
  case StrategyOp::Loop:
    own = {"while", "max_iterations", "body"};
    break;
  case StrategyOp::Try:
    own = {"body", "catch", "finally"};
    break;
  case StrategyOp::Fail:
    own = {"error", "message", "details"};
    break;
  case StrategyOp::ContinueAsNew:
    own = {"input_mapping"};
    break;
  }
  common.insert(common.end(), own.begin(), own.end());
  return common;
}

} // namespace

const char *strategyOpName(StrategyOp op) {
  switch (op) {
  case StrategyOp::Activity:
    return "activity";
  case StrategyOp::Seq:
    return "seq";
  case StrategyOp::Parallel:
    return "parallel";
  case StrategyOp::Decision:
    return "decision";
  case StrategyOp::Wait:
    return "wait";
  case StrategyOp::Saga:
    return "saga";
  case StrategyOp::SubWorkflow:
    return "subworkflow";
  case StrategyOp::Set:
    return "set";
  case StrategyOp::Foreach:
    return "foreach";
  case StrategyOp::Loop:
    return "loop";
  case StrategyOp::Try:
    return "try";
  case StrategyOp::Fail:
    return "fail";
  case StrategyOp::ContinueAsNew:
    return "continue_as_new";
  }
  return "unknown";
}

Strategy *Checker::strategy(const Node *node, WorkflowScope &scope, bool defaultActivity) {
  if (node->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("a strategy must be an object with an 'op' field, found {}",
                      nodeKindDescription(node->kind)));
    return nullptr;
  }
  const ObjectMember *opMember = node->member("op");
  StrategyOp op = StrategyOp::Activity;
  if (opMember == nullptr) {
    // A compensation may be written as a bare activity call: { activity_ref: ..., ... }.
    if (!defaultActivity) {
      error(DiagnosticKind::MissingField, node->range,
            "the strategy is missing the required field 'op'");
      return nullptr;
    }
  } else if (opMember->value->kind != NodeKind::String) {
    error(DiagnosticKind::WrongType, opMember->value->range,
          fmt::format("'op' must be a string naming the strategy, found {}",
                      nodeKindDescription(opMember->value->kind)));
    return nullptr;
  } else if (std::optional<StrategyOp> known = opFromName(opMember->value->text)) {
    op = *known;
  } else {
    error(DiagnosticKind::UnknownOp, opMember->value->range,
          fmt::format("unknown op '{}'{}", opMember->value->text,
                      didYouMean(opMember->value->text, opNames())));
    return nullptr;
  }
  std::string context = fmt::format("the '{}' strategy", strategyOpName(op));
  FieldReader fields(*this, node, context, fieldsOf(op));
  Strategy *step = newStrategy(node, fields, op, scope);

  switch (op) {
  case StrategyOp::Activity:
    activity(*step, fields, scope);
    break;
  case StrategyOp::Seq:
    if (fields.require("strategies")) {
      step->children = strategyList(fields, "strategies", scope);
    }
    break;
  case StrategyOp::Parallel:
    parallel(*step, fields, scope);
    break;
  case StrategyOp::Decision:
    decision(*step, fields, scope);
    break;
  case StrategyOp::Wait:
    wait(*step, fields, scope);
    break;
  case StrategyOp::Saga:
    saga(*step, fields, scope);
    break;
  case StrategyOp::SubWorkflow:
    if (std::optional<std::string> ref = fields.string("workflow_ref", /*required=*/true)) {
      step->workflowRef = *ref;
      step->workflowRefRange = fields.find("workflow_ref")->value->range;
      subWorkflowReferences_.push_back({*ref, step->workflowRefRange});
      if (!step->explicitStepId) {
        step->stepId = *ref;
      }
    }
    if (const ObjectMember *input = fields.find("input_mapping")) {
      step->input = mappingObject(input->value, scope, "'input_mapping'");
    }
    step->timeoutMs = fields.duration("timeout");
    break;
  case StrategyOp::Set:
    if (const ObjectMember *vars = fields.require("vars")) {
      step->vars = bindings(vars->value, scope, "'vars'");
      for (const Binding &binding : step->vars) {
        scope.assignedVars.insert(binding.name);
      }
    }
    break;
  case StrategyOp::Foreach:
    foreach (*step, fields, scope)
      ;
    break;
  case StrategyOp::Loop:
    if (const ObjectMember *condition = fields.require("while")) {
      step->whileCondition = evaluated(condition->value, scope);
    }
    if (std::optional<int64_t> limit = fields.integer("max_iterations")) {
      if (*limit < 1) {
        error(DiagnosticKind::InvalidValue, fields.find("max_iterations")->value->range,
              "'max_iterations' must be at least 1");
      } else {
        step->maxIterations = *limit;
      }
    }
    step->body = childStrategy(fields, "body", scope, /*required=*/true);
    break;
  case StrategyOp::Try:
    tryCatch(*step, fields, scope);
    break;
  case StrategyOp::Fail:
    if (std::optional<std::string> type = fields.string("error", /*required=*/true)) {
      step->errorType = *type;
      if (!isIdentifierLike(*type)) {
        error(DiagnosticKind::InvalidId, fields.find("error")->value->range,
              fmt::format("invalid error type '{}': use a name like 'OutOfStock'", *type));
      }
    }
    if (const ObjectMember *message = fields.find("message")) {
      step->message = evaluated(message->value, scope);
    }
    if (const ObjectMember *details = fields.find("details")) {
      step->details = evaluated(details->value, scope);
    }
    break;
  case StrategyOp::ContinueAsNew:
    if (const ObjectMember *input = fields.find("input_mapping")) {
      step->input = mappingObject(input->value, scope, "'input_mapping'");
    }
    break;
  }
  fields.reportUnknown();
  if (!step->stepId.empty()) {
    recordStepId(*step, fields.has("id") ? fields.find("id")->value->range : step->range, scope);
  }
  return step;
}

Strategy *Checker::newStrategy(const Node *node, FieldReader &fields, StrategyOp op,
                               WorkflowScope &scope) {
  Strategy *step = model().strategy();
  step->op = op;
  step->range = node->range;
  const ObjectMember *opMember = node->member("op");
  step->opRange = opMember != nullptr ? opMember->value->range : node->range;
  if (std::optional<std::string> id = fields.string("id")) {
    step->stepId = *id;
    step->explicitStepId = true;
    if (!isIdentifierLike(*id)) {
      error(DiagnosticKind::InvalidId, fields.find("id")->value->range,
            fmt::format("invalid step id '{}': use letters, digits, '_', '.' and '-', "
                        "starting with a letter or '_'",
                        *id));
    }
  }
  step->name = fields.string("name").value_or("");
  step->description = fields.string("description").value_or("");
  return step;
}

void Checker::recordStepId(Strategy &step, SourceRange range, WorkflowScope &scope) {
  if (step.explicitStepId) {
    auto [previous, inserted] = scope.explicitStepIds.emplace(step.stepId, range);
    if (!inserted) {
      error(DiagnosticKind::DuplicateId, range,
            fmt::format("step id '{}' is used twice in this workflow; step ids must be unique",
                        step.stepId));
      diagnostics().note(previous->second, "first used here");
      return;
    }
  }
  auto [previous, inserted] = scope.stepIds.emplace(step.stepId, range);
  if (!inserted) {
    warning(DiagnosticKind::SharedStepId, range,
            fmt::format("step id '{}' is shared with an earlier step, so $.results.{} holds "
                        "whichever completes last; give each step its own 'id'",
                        step.stepId, step.stepId));
    diagnostics().note(previous->second, "the earlier step is here");
  }
}

Strategy *Checker::childStrategy(const FieldReader &fields, std::string_view key,
                                 WorkflowScope &scope, bool required) {
  const ObjectMember *member = fields.find(key);
  if (member == nullptr) {
    if (required) {
      error(DiagnosticKind::MissingField, fields.node()->range,
            fmt::format("the strategy is missing the required field '{}'", key));
    }
    return nullptr;
  }
  return strategy(member->value, scope);
}

std::vector<Strategy *> Checker::strategyList(const FieldReader &fields, std::string_view key,
                                              WorkflowScope &scope) {
  std::vector<Strategy *> result;
  const ObjectMember *member = fields.find(key);
  if (member->value->kind != NodeKind::Array) {
    error(DiagnosticKind::WrongType, member->value->range,
          fmt::format("'{}' must be an array of strategies, found {}", key,
                      nodeKindDescription(member->value->kind)));
    return result;
  }
  for (const Node *entry : member->value->children) {
    if (Strategy *child = strategy(entry, scope)) {
      result.push_back(child);
    }
  }
  return result;
}

void Checker::activity(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  if (std::optional<std::string> ref = fields.string("activity_ref", /*required=*/true)) {
    step.activityRef = *ref;
    step.activityRefRange = fields.find("activity_ref")->value->range;
    activityReferences_.push_back({*ref, step.activityRefRange});
    if (!step.explicitStepId) {
      step.stepId = *ref;
    }
  }
  if (const ObjectMember *input = fields.find("input_mapping")) {
    step.input = mappingObject(input->value, scope, "'input_mapping'");
  }
  if (const ObjectMember *output = fields.find("output_mapping")) {
    bool wasVisible = scope.resultVisible;
    scope.resultVisible = true;
    step.outputMapping = bindings(output->value, scope, "'output_mapping'");
    scope.resultVisible = wasVisible;
    for (const Binding &binding : step.outputMapping) {
      scope.assignedVars.insert(binding.name);
    }
  }
  step.timeoutMs = fields.duration("timeout");
  step.scheduleToCloseMs = fields.duration("schedule_to_close_timeout");
  if (const ObjectMember *policy = fields.find("retry_policy")) {
    step.retryPolicy = retryPolicy(policy->value);
  }
  if (std::optional<std::string> on = fields.choice("compensate_on", {"completed", "attempted"})) {
    step.compensateOnAttempted = *on == "attempted";
  }
  if (const ObjectMember *compensate = fields.find("compensate")) {
    if (scope.sagaDepth == 0) {
      error(DiagnosticKind::CompensateOutsideSaga, compensate->keyRange,
            "'compensate' is only meaningful inside a saga; wrap the steps in "
            "{ op: \"saga\", main_flow: ... }");
      return;
    }
    // The compensation's input is evaluated when it is registered, with $.result bound to
    // this step's result.
    bool wasVisible = scope.resultVisible;
    scope.resultVisible = true;
    step.compensate = strategy(compensate->value, scope, /*defaultActivity=*/true);
    scope.resultVisible = wasVisible;
  }
}

void Checker::parallel(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  if (fields.require("branches")) {
    step.children = strategyList(fields, "branches", scope);
  }
  if (std::optional<std::string> mode =
          fields.choice("completion_condition", {"all", "any", "at_least", "all_settled"})) {
    step.completion = *mode == "any"           ? CompletionMode::Any
                      : *mode == "at_least"    ? CompletionMode::AtLeast
                      : *mode == "all_settled" ? CompletionMode::AllSettled
                                               : CompletionMode::All;
  }
  if (std::optional<int64_t> count = fields.integer("count")) {
    if (step.completion != CompletionMode::AtLeast) {
      error(DiagnosticKind::InvalidValue, fields.find("count")->keyRange,
            "'count' applies only to completion_condition \"at_least\"");
    } else if (*count < 1 || *count > static_cast<int64_t>(step.children.size())) {
      error(DiagnosticKind::InvalidValue, fields.find("count")->value->range,
            fmt::format("'count' must be between 1 and the number of branches ({})",
                        step.children.size()));
    } else {
      step.count = *count;
    }
  }
}

void Checker::decision(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  const ObjectMember *conditions = fields.require("conditions");
  bool alwaysTaken = false; // a constant-true condition makes everything after it dead
  if (conditions != nullptr && conditions->value->kind != NodeKind::Array) {
    error(DiagnosticKind::WrongType, conditions->value->range,
          "'conditions' must be an array of { condition, branch } objects");
  } else if (conditions != nullptr) {
    for (const Node *entry : conditions->value->children) {
      if (entry->kind != NodeKind::Object) {
        error(DiagnosticKind::WrongType, entry->range,
              "a decision case must be an object with 'condition' and 'branch'");
        continue;
      }
      FieldReader caseFields(*this, entry, "the decision case", {"condition", "branch"});
      DecisionCase decisionCase;
      // Known only when the condition folds to a constant.
      std::optional<Value> constantCondition;
      if (const ObjectMember *condition = caseFields.require("condition")) {
        const Node *value = condition->value;
        decisionCase.conditionRange = value->range;
        if (value->kind == NodeKind::String && isIdentifierLike(value->text)) {
          predicateCase(decisionCase, value->text, scope);
        } else {
          decisionCase.condition = evaluated(value, scope);
          if (decisionCase.condition->kind == Expr::Kind::Syntax) {
            std::optional<Result<Value>> folded = foldExpression(decisionCase.condition->syntax);
            if (folded && folded->ok()) {
              constantCondition = folded->value();
            }
          }
        }
        if (constantCondition && !constantCondition->isBool()) {
          error(
              DiagnosticKind::WrongType, value->range,
              fmt::format("a condition must be boolean, found {}", constantCondition->kindName()));
          constantCondition.reset();
        } else if (constantCondition && !alwaysTaken && !constantCondition->asBool()) {
          warning(DiagnosticKind::UnreachableBranch, value->range,
                  "this branch is never taken: its condition is always false");
        }
      }
      if (alwaysTaken) {
        warning(DiagnosticKind::UnreachableBranch, entry->range,
                "this case is unreachable: an earlier condition is always true");
      }
      alwaysTaken = alwaysTaken || (constantCondition && constantCondition->asBool());
      decisionCase.branch = childStrategy(caseFields, "branch", scope, /*required=*/true);
      caseFields.reportUnknown();
      step.cases.push_back(std::move(decisionCase));
    }
  }
  if (const ObjectMember *fallback = fields.find("default_branch")) {
    if (alwaysTaken) {
      warning(DiagnosticKind::UnreachableBranch, fallback->keyRange,
              "the default branch is unreachable: an earlier condition is always true");
    }
    step.defaultBranch = strategy(fallback->value, scope);
  }
}

void Checker::predicateCase(DecisionCase &decisionCase, const std::string &name,
                            WorkflowScope &scope) {
  decisionCase.predicate = name;
  if (scope.predicateNames.contains(name)) {
    return;
  }
  // No `predicates` entry defines it: the host program must register it.
  decisionCase.hostPredicate = true;
  std::vector<std::string> &host = scope.workflow->hostPredicates;
  if (std::find(host.begin(), host.end(), name) == host.end()) {
    host.push_back(name);
  }
}

void Checker::wait(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  int forms = int(fields.has("condition")) + int(fields.has("timer")) + int(fields.has("signal")) +
              int(fields.has("event"));
  if (forms == 0) {
    error(DiagnosticKind::MissingField, step.range,
          "the wait needs what to wait for: 'condition', or the shorthand 'timer', 'signal' or "
          "'event'");
    return;
  }
  if (forms > 1) {
    error(DiagnosticKind::InvalidValue, step.range,
          "give exactly one of 'condition', 'timer', 'signal' and 'event'");
    return;
  }
  const Node *filter = nullptr;
  if (fields.has("timer")) {
    step.waitKind = WaitKind::Timer;
    step.duration = evaluated(fields.find("timer")->value, scope);
    if (fields.find("timer")->value->kind == NodeKind::String &&
        step.duration->kind == Expr::Kind::Syntax &&
        step.duration->syntax->kind == NodeKind::String) {
      (void)durationOf(fields.find("timer")->value, "timer");
    }
  } else if (fields.has("signal")) {
    step.waitKind = WaitKind::Signal;
    step.signalName = fields.string("signal").value_or("");
  } else if (fields.has("event")) {
    step.waitKind = WaitKind::Event;
    step.eventType = fields.string("event").value_or("");
    if (const ObjectMember *member = fields.find("filter")) {
      filter = member->value;
    }
  } else {
    const Node *condition = fields.find("condition")->value;
    if (condition->kind != NodeKind::Object) {
      error(DiagnosticKind::WrongType, condition->range,
            "'condition' must be an object such as { type: \"timer\", duration: \"PT10S\" }");
      return;
    }
    FieldReader conditionFields(
        *this, condition, "the wait condition",
        {"type", "duration", "until", "signal_name", "event_type", "filter"});
    std::optional<std::string> type = conditionFields.choice("type", {"timer", "signal", "event"});
    if (!conditionFields.has("type")) {
      conditionFields.require("type");
    }
    if (type == "timer") {
      step.waitKind = WaitKind::Timer;
      const ObjectMember *duration = conditionFields.find("duration");
      const ObjectMember *until = conditionFields.find("until");
      if ((duration == nullptr) == (until == nullptr)) {
        error(DiagnosticKind::MissingField, condition->range,
              "a timer needs exactly one of 'duration' and 'until'");
      } else if (duration != nullptr) {
        step.duration = evaluated(duration->value, scope);
        if (duration->value->kind == NodeKind::String &&
            step.duration->kind == Expr::Kind::Syntax &&
            step.duration->syntax->kind == NodeKind::String) {
          (void)durationOf(duration->value, "duration");
        }
      } else {
        step.until = evaluated(until->value, scope);
      }
    } else if (type == "signal") {
      step.waitKind = WaitKind::Signal;
      step.signalName = conditionFields.string("signal_name", /*required=*/true).value_or("");
    } else if (type == "event") {
      step.waitKind = WaitKind::Event;
      step.eventType = conditionFields.string("event_type", /*required=*/true).value_or("");
      if (const ObjectMember *member = conditionFields.find("filter")) {
        filter = member->value;
      }
    }
    conditionFields.reportUnknown();
  }
  if (fields.has("filter") && step.waitKind != WaitKind::Event) {
    error(DiagnosticKind::InvalidValue, fields.find("filter")->keyRange,
          "'filter' applies only to event waits");
  } else if (fields.has("filter") && filter != fields.find("filter")->value) {
    error(DiagnosticKind::InvalidValue, fields.find("filter")->keyRange,
          "give the filter once, inside 'condition'");
  }
  if (filter != nullptr) {
    step.filter = bindings(filter, scope, "'filter'");
  }
  if (fields.has("timeout")) {
    if (step.waitKind == WaitKind::Timer) {
      error(DiagnosticKind::InvalidValue, fields.find("timeout")->keyRange,
            "'timeout' applies to signal and event waits; a timer ends by itself");
    } else {
      step.timeoutMs = fields.duration("timeout");
    }
  }
}

void Checker::saga(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  ++scope.sagaDepth;
  step.mainFlow = childStrategy(fields, "main_flow", scope, /*required=*/true);
  --scope.sagaDepth;
  // The saga's own compensation runs after the main flow failed, with $.error bound; it is
  // outside the saga for `compensate` purposes.
  step.compensation = childStrategy(fields, "compensation", scope, /*required=*/false);
  if (std::optional<std::string> policy =
          fields.choice("compensation_policy", {"reverse", "parallel"})) {
    step.parallelCompensation = *policy == "parallel";
  }
  if (std::optional<std::string> onFailure =
          fields.choice("on_compensation_failure", {"continue", "stop"})) {
    step.stopOnCompensationFailure = *onFailure == "stop";
  }
}

void Checker::foreach (Strategy &step, FieldReader & fields, WorkflowScope & scope) {
  if (const ObjectMember *items = fields.require("items")) {
    step.items = evaluated(items->value, scope);
  }
  for (const char *key : {"as", "at"}) {
    if (std::optional<std::string> name = fields.string(key)) {
      bool valid = isIdentifierLike(*name) && name->find_first_of(".-") == std::string::npos;
      static const std::vector<std::string> roots = {"inputs", "vars",  "results", "signals",
                                                     "events", "error", "result",  "run"};
      if (!valid) {
        error(DiagnosticKind::InvalidId, fields.find(key)->value->range,
              fmt::format("'{}' must be a plain name such as 'item'", key));
      } else if (std::find(roots.begin(), roots.end(), *name) != roots.end()) {
        error(DiagnosticKind::InvalidId, fields.find(key)->value->range,
              fmt::format("'{}' cannot be '{}': that name is a root ($.{})", key, *name, *name));
      } else {
        (std::string_view(key) == "as" ? step.itemName : step.indexName) = *name;
      }
    }
  }
  if (std::optional<int64_t> limit = fields.integer("max_concurrency")) {
    if (*limit < 1) {
      error(DiagnosticKind::InvalidValue, fields.find("max_concurrency")->value->range,
            "'max_concurrency' must be at least 1");
    } else {
      step.maxConcurrency = *limit;
    }
  }
  if (std::optional<std::string> mode =
          fields.choice("completion_condition", {"all", "all_settled"})) {
    step.completion = *mode == "all_settled" ? CompletionMode::AllSettled : CompletionMode::All;
  }
  scope.localNames.push_back(step.itemName);
  scope.localNames.push_back(step.indexName);
  step.body = childStrategy(fields, "body", scope, /*required=*/true);
  scope.localNames.pop_back();
  scope.localNames.pop_back();
}

void Checker::tryCatch(Strategy &step, FieldReader &fields, WorkflowScope &scope) {
  step.body = childStrategy(fields, "body", scope, /*required=*/true);
  if (const ObjectMember *catches = fields.find("catch")) {
    if (catches->value->kind != NodeKind::Array) {
      error(DiagnosticKind::WrongType, catches->value->range,
            "'catch' must be an array of { errors, do } objects");
    } else {
      for (const Node *entry : catches->value->children) {
        if (entry->kind != NodeKind::Object) {
          error(DiagnosticKind::WrongType, entry->range,
                "a catch clause must be an object with 'errors' and 'do'");
          continue;
        }
        FieldReader clauseFields(*this, entry, "the catch clause", {"errors", "do"});
        CatchClause clause;
        clause.range = entry->range;
        if (const ObjectMember *errors = clauseFields.require("errors")) {
          std::optional<Value> list = constant(errors->value, "'errors'");
          bool valid = list && list->isArray() && !list->asArray().empty();
          if (valid) {
            for (const Value &type : list->asArray()) {
              valid = valid && type.isString();
              if (type.isString() && type.asString().starts_with('!')) {
                // '!' names are the compiler's own region markers (vm/descriptors.h).
                error(DiagnosticKind::InvalidValue, errors->value->range,
                      "error type '" + type.asString() +
                          "' is reserved: names starting with '!' belong to kotoba; rename it");
              } else if (type.isString()) {
                clause.errors.push_back(type.asString());
              }
            }
          }
          if (list && !valid) {
            error(DiagnosticKind::WrongType, errors->value->range,
                  "'errors' must be a non-empty array of error types, or [\"*\"] for any");
          }
        }
        clause.handler = childStrategy(clauseFields, "do", scope, /*required=*/true);
        clauseFields.reportUnknown();
        step.catches.push_back(std::move(clause));
      }
    }
  }
  step.finally = childStrategy(fields, "finally", scope, /*required=*/false);
  if (step.catches.empty() && step.finally == nullptr &&
      fields.node()->member("catch") == nullptr) {
    error(DiagnosticKind::MissingField, step.range, "a try needs 'catch' or 'finally' (or both)");
  }
}

} // namespace kotoba::compiler
