// The checker's internal state and helpers, shared by the check_*.cpp files: one Checker
// walks a whole compilation; a WorkflowScope holds what is known while inside one workflow.
#pragma once

#include "kotoba/compiler/check.h"

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kotoba::compiler {

// The closest candidate to `name` by edit distance, when it is close enough to be a likely
// misspelling; empty otherwise.
[[nodiscard]] std::string closestMatch(std::string_view name,
                                       const std::vector<std::string> &candidates);
// "; did you mean 'x'?" or "".
[[nodiscard]] std::string didYouMean(std::string_view name,
                                     const std::vector<std::string> &candidates);
[[nodiscard]] const char *nodeKindDescription(NodeKind kind);
[[nodiscard]] bool isIdentifierLike(std::string_view text);

class Checker;

// Reads the fields of one object node, remembering which were used, so that every other
// field is reported as unknown (with a suggestion from the allowed names).
class FieldReader {
public:
  FieldReader(Checker &checker, const Node *object, std::string context,
              std::vector<std::string> allowed);

  [[nodiscard]] const ObjectMember *find(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const { return find(key) != nullptr; }
  // Reports missing-field when absent.
  const ObjectMember *require(std::string_view key);
  // Typed constant readers: report wrong-type or expression-in-constant and return nullopt.
  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<int64_t> integer(std::string_view key);
  std::optional<double> number(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<int64_t> duration(std::string_view key);
  // One of `choices`, reported with a suggestion otherwise.
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string> &choices);
  // Reports the fields no reader asked about (call once, at the end).
  void reportUnknown();

  [[nodiscard]] const Node *node() const { return object_; }

private:
  void reportKind(std::string_view key, const Node *value, std::string_view expected);

  Checker &checker_;
  const Node *object_;
  std::string context_;
  std::vector<std::string> allowed_;
};

struct WorkflowScope {
  Workflow *workflow = nullptr;
  std::set<std::string> inputNames;
  std::vector<std::string> inputList;
  std::set<std::string> predicateNames;
  // Step ids given with `id`, and every step id (explicit or defaulted) with its first place.
  std::map<std::string, SourceRange> explicitStepIds;
  std::map<std::string, SourceRange> stepIds;
  std::set<std::string> assignedVars;
  int sagaDepth = 0;
  // foreach `as`/`at` names visible here, innermost last.
  std::vector<std::string> localNames;
  bool resultVisible = false; // inside an activity's output_mapping or compensation input
};

struct SubWorkflowReference {
  std::string workflowRef;
  SourceRange range;
};

struct ActivityReference {
  std::string name;
  SourceRange range;
};

class Checker {
public:
  Checker(Compilation &compilation, const CheckOptions &options)
      : compilation_(compilation), options_(options) {}

  bool run(FileId root);

  DiagnosticEngine &diagnostics() { return compilation_.diagnostics; }
  ModelArena &model() { return compilation_.model; }
  SyntaxArena &syntax() { return compilation_.syntax; }
  const SourceManager &sources() const { return compilation_.sources; }

  void error(DiagnosticKind kind, SourceRange range, std::string message);
  void warning(DiagnosticKind kind, SourceRange range, std::string message);

  // Constants: a literal, or an object/array of constants. Reports expression-in-constant
  // (naming `context`) for anything evaluated.
  std::optional<Value> constant(const Node *node, std::string_view context);
  [[nodiscard]] bool isConstant(const Node *node) const;

  // Durations as strings ("PT30S", "10s"): milliseconds, or a diagnostic.
  std::optional<int64_t> durationOf(const Node *node, std::string_view context);
  std::optional<RetryPolicySpec> retryPolicy(const Node *node);

  // Evaluated positions.
  Expr *evaluated(const Node *node, WorkflowScope &scope);
  Expr *mappingObject(const Node *node, WorkflowScope &scope, std::string_view context);
  std::vector<Binding> bindings(const Node *node, WorkflowScope &scope, std::string_view context);
  void checkExpression(const Node *node, WorkflowScope &scope);

  Strategy *strategy(const Node *node, WorkflowScope &scope, bool defaultActivity = false);

private:
  void loadImports(FileId file, const Node *root);
  void checkFile(FileId file, const Node *root, bool isRoot);
  void activityDeclaration(const Node *node);
  Workflow *workflow(const Node *node);
  std::vector<Param> params(const Node *node, std::string_view context, bool inputs);
  void crossCheck();
  void warnUnmappedOutputs(const Workflow &workflow, const WorkflowScope &scope);

  Strategy *newStrategy(const Node *node, FieldReader &fields, StrategyOp op, WorkflowScope &scope);
  void activity(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void parallel(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void decision(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void predicateCase(DecisionCase &decisionCase, const std::string &name, WorkflowScope &scope);
  void wait(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void saga(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void foreach (Strategy &step, FieldReader & fields, WorkflowScope & scope);
  void tryCatch(Strategy &step, FieldReader &fields, WorkflowScope &scope);
  void recordStepId(Strategy &step, SourceRange range, WorkflowScope &scope);
  Strategy *childStrategy(const FieldReader &fields, std::string_view key, WorkflowScope &scope,
                          bool required);
  std::vector<Strategy *> strategyList(const FieldReader &fields, std::string_view key,
                                       WorkflowScope &scope);

  Expr *templateString(const Node *node, WorkflowScope &scope);
  void checkPathRoot(const Node *node, WorkflowScope &scope);
  void foldConstant(const Node *node);

  Compilation &compilation_;
  const CheckOptions &options_;
  std::vector<FileId> files_;
  std::map<std::string, SourceRange> workflowIds_;
  std::map<std::string, SourceRange> activityNames_;
  std::vector<SubWorkflowReference> subWorkflowReferences_;
  std::vector<ActivityReference> activityReferences_;
  std::optional<std::string> rootEntry_;
  SourceRange rootRange_;
  bool rootHasWorkflow_ = false;
  bool rootParsed_ = false;
};

} // namespace kotoba::compiler
