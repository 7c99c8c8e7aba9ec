// The checked program: what a .kotoba file means once every field has been validated. The
// checker builds it from the syntax tree; the code generator lowers it to bytecode. Every
// element keeps the source range it came from, for diagnostics and the line table.
#pragma once

#include "kotoba/compiler/source.h"
#include "kotoba/compiler/syntax.h"
#include "kotoba/vm/retry.h"
#include "kotoba/vm/value.h"

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kotoba::compiler {

struct Expr;

// One piece of a template string: literal text, or an expression to splice in.
struct TemplatePart {
  std::string text;          // used when expression is null
  const Node *expression = nullptr;
};

// A value in an evaluated position. Unquoted expressions, "$..." strings and literals are
// Syntax; other quoted strings with `${` are Templates; object and array literals in a
// mapping are evaluated element by element, so they are Objects and Arrays of Exprs.
struct Expr {
  enum class Kind { Syntax, Template, Array, Object };
  Kind kind = Kind::Syntax;
  SourceRange range;
  const Node *syntax = nullptr;
  std::vector<TemplatePart> parts;
  std::vector<Expr *> elements;
  std::vector<std::pair<std::string, Expr *>> members;
};

// A named expression in a mapping (`output_mapping`, `set.vars`, `filter`, ...).
struct Binding {
  std::string name;
  SourceRange nameRange;
  Expr *value = nullptr;
};

struct Param {
  std::string name;
  std::string type; // the type text as written: string, number, array<integer>, ...
  bool required = false;
  std::optional<Value> defaultValue;
  std::string description;
  SourceRange range;
};

struct RetryPolicySpec {
  RetryPolicy policy;
  SourceRange range;
};

enum class StrategyOp {
  Activity,
  Seq,
  Parallel,
  Decision,
  Wait,
  Saga,
  SubWorkflow,
  Set,
  Foreach,
  Loop,
  Try,
  Fail,
  ContinueAsNew
};
[[nodiscard]] const char *strategyOpName(StrategyOp op);

enum class CompletionMode { All, Any, AtLeast, AllSettled };
enum class WaitKind { Timer, Signal, Event };

struct Strategy;

struct DecisionCase {
  Expr *condition = nullptr;     // an expression, or
  std::string predicate;         // the name of a workflow predicate or a host predicate
  bool hostPredicate = false;    // named but not defined by the workflow: the host binds it
  SourceRange conditionRange;
  Strategy *branch = nullptr;
};

struct CatchClause {
  std::vector<std::string> errors; // "*" matches every catchable error
  Strategy *handler = nullptr;
  SourceRange range;
};

struct Strategy {
  StrategyOp op = StrategyOp::Seq;
  SourceRange range;   // the whole strategy object
  SourceRange opRange; // the `op` value
  std::string stepId;  // explicit `id`, or the default for activities and sub-workflows
  bool explicitStepId = false;
  std::string name;
  std::string description;

  // activity
  std::string activityRef;
  SourceRange activityRefRange;
  Expr *input = nullptr; // activity/subworkflow/continue_as_new input_mapping (an Object)
  std::vector<Binding> outputMapping;
  std::optional<int64_t> timeoutMs; // activity attempt, subworkflow, wait timeouts
  std::optional<int64_t> scheduleToCloseMs;
  std::optional<RetryPolicySpec> retryPolicy;
  Strategy *compensate = nullptr;
  bool compensateOnAttempted = false;

  // seq, parallel
  std::vector<Strategy *> children;
  CompletionMode completion = CompletionMode::All;
  int64_t count = 1;

  // decision
  std::vector<DecisionCase> cases;
  Strategy *defaultBranch = nullptr;

  // wait
  WaitKind waitKind = WaitKind::Timer;
  Expr *duration = nullptr; // timer: milliseconds, or a duration string at run time
  Expr *until = nullptr;    // timer: RFC 3339 time
  std::string signalName;
  std::string eventType;
  std::vector<Binding> filter;

  // saga
  Strategy *mainFlow = nullptr;
  Strategy *compensation = nullptr;
  bool parallelCompensation = false;
  bool stopOnCompensationFailure = false;

  // subworkflow
  std::string workflowRef;
  SourceRange workflowRefRange;

  // set
  std::vector<Binding> vars;

  // foreach, loop
  Expr *items = nullptr;
  std::string itemName = "item";
  std::string indexName = "index";
  int64_t maxConcurrency = 1;
  Expr *whileCondition = nullptr;
  int64_t maxIterations = 10000;
  Strategy *body = nullptr;

  // try
  std::vector<CatchClause> catches;
  Strategy *finally = nullptr;

  // fail
  std::string errorType;
  Expr *message = nullptr;
  Expr *details = nullptr;
};

struct Workflow {
  std::string id;
  std::string name;
  std::string description;
  std::string version;
  std::vector<Param> inputs;
  std::vector<Param> outputs;
  Strategy *strategy = nullptr;
  std::vector<Binding> outputMapping;
  std::optional<int64_t> timeoutMs;
  std::optional<RetryPolicySpec> retryPolicy;
  std::vector<Binding> predicates;
  std::vector<std::string> hostPredicates; // decision names no predicate entry defines
  Value metadata;
  SourceRange range;
  SourceRange idRange;
};

struct ActivityDecl {
  std::string name;
  std::string description;
  std::optional<int64_t> timeoutMs;
  std::optional<RetryPolicySpec> retryPolicy;
  std::optional<Value> implementation; // the implementation object, templates unevaluated
  SourceRange range;
  SourceRange nameRange;
};

struct Program {
  std::vector<Workflow *> workflows; // in file order, imports after the file importing them
  size_t entry = 0;                  // index of the entry workflow
  std::vector<ActivityDecl> activities;
  // Activities referenced or declared without an implementation: the host must bind them.
  std::vector<std::string> hostActivities;
  std::vector<std::string> sourceFiles; // paths of the root file and every import

  [[nodiscard]] const Workflow *findWorkflow(std::string_view id) const;
  [[nodiscard]] const ActivityDecl *findActivity(std::string_view name) const;
};

// Owns everything a Program points into.
class ModelArena {
public:
  Strategy *strategy() { return &strategies_.emplace_back(); }
  Expr *expr() { return &exprs_.emplace_back(); }
  Workflow *workflow() { return &workflows_.emplace_back(); }

private:
  std::deque<Strategy> strategies_;
  std::deque<Expr> exprs_;
  std::deque<Workflow> workflows_;
};

} // namespace kotoba::compiler
