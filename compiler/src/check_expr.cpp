// Checking values in evaluated positions: re-parsing "$..." strings, splitting templates,
// validating roots, declared inputs, functions and arity, and folding constant expressions
// so that type errors are reported at compile time.
#include "checker.h"

#include "fold.h"
#include "kotoba/compiler/parser.h"
#include "kotoba/vm/builtins.h"

#include <fmt/format.h>

#include <algorithm>

namespace kotoba::compiler {

namespace {

const std::vector<std::string> &rootNames() {
  static const std::vector<std::string> names = {"inputs", "vars",  "results", "signals",
                                                 "events", "error", "result",  "run"};
  return names;
}

const std::vector<std::string> &runFields() {
  static const std::vector<std::string> names = {"id",      "workflow_id", "workflow_version",
                                                 "attempt", "started_at",  "parent_run_id"};
  return names;
}

bool isExpressionString(std::string_view text) {
  return text == "$" || text.starts_with("$.") || text.starts_with("$[");
}

// The name a path segment selects when it is a constant key: `.name` or `['name']`.
const std::string *segmentName(const Node *segment) {
  if (segment->kind == NodeKind::Member) {
    return &segment->text;
  }
  if (segment->kind == NodeKind::Index && segment->children[1]->kind == NodeKind::String) {
    return &segment->children[1]->text;
  }
  return nullptr;
}

} // namespace

Expr *Checker::evaluated(const Node *node, WorkflowScope &scope) {
  Expr *expr = model().expr();
  expr->range = node->range;
  switch (node->kind) {
  case NodeKind::String:
    if (isExpressionString(node->text)) {
      const Node *parsed =
          parseExpression(node->text, node->range, node->verbatim, syntax(), diagnostics());
      expr->syntax = parsed != nullptr ? parsed : node;
      if (parsed != nullptr) {
        checkExpression(parsed, scope);
        foldConstant(parsed);
      }
      return expr;
    }
    if (node->text.find("${") != std::string::npos) {
      return templateString(node, scope);
    }
    expr->syntax = node;
    return expr;
  case NodeKind::Array:
    expr->kind = Expr::Kind::Array;
    for (const Node *element : node->children) {
      expr->elements.push_back(evaluated(element, scope));
    }
    return expr;
  case NodeKind::Object:
    expr->kind = Expr::Kind::Object;
    for (const ObjectMember &member : node->members) {
      expr->members.emplace_back(member.key, evaluated(member.value, scope));
    }
    return expr;
  case NodeKind::Null:
  case NodeKind::Bool:
  case NodeKind::Integer:
  case NodeKind::Double:
  case NodeKind::Root:
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection:
  case NodeKind::Call:
  case NodeKind::Identifier:
  case NodeKind::Unary:
  case NodeKind::Binary:
  case NodeKind::Conditional:
    expr->syntax = node;
    checkExpression(node, scope);
    foldConstant(node);
    return expr;
  }
  return expr;
}

Expr *Checker::mappingObject(const Node *node, WorkflowScope &scope, std::string_view context) {
  if (node->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("{} must be an object mapping names to values, found {}", context,
                      nodeKindDescription(node->kind)));
    return nullptr;
  }
  return evaluated(node, scope);
}

std::vector<Binding> Checker::bindings(const Node *node, WorkflowScope &scope,
                                       std::string_view context) {
  std::vector<Binding> result;
  if (node->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("{} must be an object mapping names to values, found {}", context,
                      nodeKindDescription(node->kind)));
    return result;
  }
  for (const ObjectMember &member : node->members) {
    result.push_back(Binding{member.key, member.keyRange, evaluated(member.value, scope)});
  }
  return result;
}

Expr *Checker::templateString(const Node *node, WorkflowScope &scope) {
  Expr *expr = model().expr();
  expr->kind = Expr::Kind::Template;
  expr->range = node->range;
  const std::string &text = node->text;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      literal += text[i++];
      continue;
    }
    // Find the matching '}', skipping braces inside nested objects and quoted strings.
    size_t start = i + 2;
    size_t depth = 1;
    size_t j = start;
    char quote = 0;
    for (; j < text.size() && depth > 0; ++j) {
      char c = text[j];
      if (quote != 0) {
        if (c == '\\') {
          ++j;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}') {
        --depth;
      }
    }
    SourceRange partOrigin = node->range;
    if (node->verbatim) {
      // parseExpression skips one opening quote; the part starts `start` bytes into the text.
      partOrigin.begin.offset = node->range.begin.offset + static_cast<uint32_t>(start);
    }
    if (depth != 0) {
      SourceRange where = node->range;
      if (node->verbatim) {
        where.begin.offset = node->range.begin.offset + 1 + static_cast<uint32_t>(i);
        where.end = where.begin.offset + 2;
      }
      error(DiagnosticKind::InvalidTemplate, where,
            "'${' is never closed; end the expression with '}' or write '$${' for a literal");
      return expr;
    }
    std::string_view inner(text.data() + start, j - 1 - start);
    if (inner.find_first_not_of(" \t") == std::string_view::npos) {
      SourceRange where = node->range;
      if (node->verbatim) {
        where.begin.offset = node->range.begin.offset + 1 + static_cast<uint32_t>(i);
        where.end = node->range.begin.offset + 1 + static_cast<uint32_t>(j);
      }
      error(DiagnosticKind::InvalidTemplate, where,
            "empty '${}' in a template; put an "
            "expression inside or remove it");
      i = j;
      continue;
    }
    if (!literal.empty()) {
      expr->parts.push_back(TemplatePart{std::move(literal), nullptr});
      literal.clear();
    }
    const Node *parsed =
        parseExpression(inner, partOrigin, node->verbatim, syntax(), diagnostics());
    if (parsed != nullptr) {
      checkExpression(parsed, scope);
      foldConstant(parsed);
      expr->parts.push_back(TemplatePart{{}, parsed});
    }
    i = j;
  }
  if (!literal.empty()) {
    expr->parts.push_back(TemplatePart{std::move(literal), nullptr});
  }
  return expr;
}

void Checker::checkExpression(const Node *node, WorkflowScope &scope) {
  switch (node->kind) {
  case NodeKind::Null:
  case NodeKind::Bool:
  case NodeKind::Integer:
  case NodeKind::Double:
  case NodeKind::String:
  case NodeKind::Root:
    return;
  case NodeKind::Array:
    for (const Node *element : node->children) {
      checkExpression(element, scope);
    }
    return;
  case NodeKind::Object:
    for (const ObjectMember &member : node->members) {
      checkExpression(member.value, scope);
    }
    return;
  case NodeKind::Member:
  case NodeKind::Index:
  case NodeKind::Projection: {
    const Node *base = node;
    while (base->kind == NodeKind::Member || base->kind == NodeKind::Index ||
           base->kind == NodeKind::Projection) {
      if (base->kind == NodeKind::Index) {
        checkExpression(base->children[1], scope);
      }
      base = base->children[0];
    }
    if (base->kind == NodeKind::Root) {
      checkPathRoot(node, scope);
    } else {
      checkExpression(base, scope);
    }
    return;
  }
  case NodeKind::Call: {
    const BuiltinInfo *builtin = findBuiltin(node->text);
    if (builtin == nullptr) {
      std::optional<std::string_view> close = closestBuiltinName(node->text);
      error(DiagnosticKind::UnknownFunction, node->range,
            fmt::format("unknown function '{}'{}", node->text,
                        close ? fmt::format("; did you mean '{}'?", *close) : std::string()));
    } else if (!builtin->acceptsArgCount(node->children.size())) {
      error(DiagnosticKind::WrongArgumentCount, node->range,
            fmt::format("'{}' {}, found {}", node->text, describeArity(*builtin),
                        node->children.size()));
    }
    for (const Node *argument : node->children) {
      checkExpression(argument, scope);
    }
    return;
  }
  case NodeKind::Identifier:
    error(DiagnosticKind::UnknownRoot, node->range,
          fmt::format("'{}' is not a value; paths start at a root, as in '$.vars.{}'", node->text,
                      node->text));
    return;
  case NodeKind::Unary:
  case NodeKind::Binary:
  case NodeKind::Conditional:
    for (const Node *child : node->children) {
      checkExpression(child, scope);
    }
    return;
  }
}

void Checker::checkPathRoot(const Node *node, WorkflowScope &scope) {
  // Collect the chain from the root outwards.
  std::vector<const Node *> chain;
  for (const Node *segment = node; segment->kind != NodeKind::Root;
       segment = segment->children[0]) {
    chain.push_back(segment);
  }
  std::reverse(chain.begin(), chain.end());
  const std::string *root = segmentName(chain.front());
  if (root == nullptr) {
    return; // $[expr] or $[*]: nothing to check statically
  }
  bool isLocal =
      std::find(scope.localNames.begin(), scope.localNames.end(), *root) != scope.localNames.end();
  std::vector<std::string> candidates = rootNames();
  candidates.insert(candidates.end(), scope.localNames.begin(), scope.localNames.end());
  bool isRoot = std::find(rootNames().begin(), rootNames().end(), *root) != rootNames().end();
  if (!isRoot && !isLocal) {
    error(DiagnosticKind::UnknownRoot, chain.front()->range,
          fmt::format("unknown root '$.{}'{}", *root, didYouMean(*root, candidates)));
    return;
  }
  if (isLocal) {
    return;
  }
  if (*root == "result" && !scope.resultVisible) {
    error(DiagnosticKind::UnknownRoot, chain.front()->range,
          "'$.result' is only available in an activity's 'output_mapping' and in its "
          "'compensate' input; use $.results.<step> elsewhere");
    return;
  }
  if (chain.size() < 2) {
    return;
  }
  const std::string *field = segmentName(chain[1]);
  if (field == nullptr) {
    return;
  }
  if (*root == "inputs" && !scope.inputNames.contains(*field)) {
    error(DiagnosticKind::UnknownInput, chain[1]->range,
          fmt::format("'$.inputs.{}' names no declared input{}", *field,
                      scope.inputList.empty() ? std::string("; declare it in 'inputs'")
                                              : didYouMean(*field, scope.inputList)));
  } else if (*root == "run" &&
             std::find(runFields().begin(), runFields().end(), *field) == runFields().end()) {
    error(DiagnosticKind::UnknownRoot, chain[1]->range,
          fmt::format("'$.run' has no field '{}'{}", *field, didYouMean(*field, runFields())));
  }
}

void Checker::foldConstant(const Node *node) {
  std::optional<Result<Value>> folded = foldExpression(node);
  if (!folded || folded->ok()) {
    return;
  }
  // Point at the smallest part of the expression that fails by itself.
  const Node *culprit = node;
  std::optional<Result<Value>> failure = std::move(folded);
  for (bool descended = true; descended;) {
    descended = false;
    std::vector<const Node *> parts(culprit->children.begin(), culprit->children.end());
    for (const ObjectMember &member : culprit->members) {
      parts.push_back(member.value);
    }
    for (const Node *part : parts) {
      std::optional<Result<Value>> inner = foldExpression(part);
      if (inner && !inner->ok()) {
        culprit = part;
        failure = std::move(inner);
        descended = true;
        break;
      }
    }
  }
  const WorkflowError &problem = failure->error();
  error(DiagnosticKind::ConstantExpressionError, culprit->range,
        fmt::format("this expression always fails: {}: {}", problem.type, problem.message));
}

} // namespace kotoba::compiler
