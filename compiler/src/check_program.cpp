// Checking a whole program: the root file and its imports, activity declarations, workflows
// with their params, and the checks that need every file (references across workflows).
#include "checker.h"

#include "kotoba/compiler/parser.h"
#include "kotoba/vm/type_check.h"

#include <fmt/format.h>

#include <algorithm>

#include <filesystem>

namespace kotoba::compiler {

namespace {

std::string resolveImport(const std::string &importingFile, const std::string &importPath) {
  std::filesystem::path path(importPath);
  if (path.is_relative()) {
    path = std::filesystem::path(importingFile).parent_path() / path;
  }
  return path.lexically_normal().string();
}

} // namespace

bool checkProgram(Compilation &compilation, const std::string &path, const CheckOptions &options) {
  std::string message;
  std::optional<FileId> file = compilation.sources.loadFile(path, message);
  if (!file) {
    // loadFile's message already names the file and the reason.
    compilation.diagnostics.report(DiagnosticKind::UnreadableFile, SourceRange{}, message);
    return false;
  }
  Checker checker(compilation, options);
  return checker.run(*file);
}

bool checkSource(Compilation &compilation, const std::string &path, std::string text,
                 const CheckOptions &options) {
  FileId file = compilation.sources.addBuffer(path, std::move(text));
  Checker checker(compilation, options);
  return checker.run(file);
}

bool Checker::run(FileId root) {
  // Parse the root and every import first (each file once, cycles allowed), then check the
  // files in the order they were found so diagnostics follow the reading order.
  // A file with lexical or syntax errors is not checked further: what its broken parts
  // mean is a guess, and diagnostics built on a guess are noise.
  std::vector<std::pair<FileId, const Node *>> parsed;
  files_.push_back(root);
  for (size_t i = 0; i < files_.size(); ++i) {
    size_t errorsBefore = diagnostics().errorCount();
    const Node *tree = parseFile(sources(), files_[i], syntax(), diagnostics());
    bool clean = tree != nullptr && diagnostics().errorCount() == errorsBefore;
    if (i == 0) {
      rootParsed_ = clean;
    }
    parsed.emplace_back(files_[i], clean ? tree : nullptr);
    compilation_.program.sourceFiles.push_back(sources().path(files_[i]));
    if (tree != nullptr) {
      loadImports(files_[i], tree);
    }
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (parsed[i].second != nullptr) {
      checkFile(parsed[i].first, parsed[i].second, i == 0);
    }
  }
  crossCheck();
  return !diagnostics().hasErrors();
}

void Checker::loadImports(FileId file, const Node *root) {
  if (root->kind != NodeKind::Object) {
    return;
  }
  const ObjectMember *imports = root->member("imports");
  if (imports == nullptr || imports->value->kind != NodeKind::Array) {
    return; // checkFile reports the wrong type
  }
  for (const Node *entry : imports->value->children) {
    if (entry->kind != NodeKind::String) {
      continue;
    }
    std::string path = resolveImport(sources().path(file), entry->text);
    if (sources().findByPath(path)) {
      continue;
    }
    std::string message;
    std::optional<FileId> imported = compilation_.sources.loadFile(path, message);
    if (!imported) {
      error(DiagnosticKind::ImportNotFound, entry->range,
            fmt::format("cannot import '{}': {}", entry->text, message));
      continue;
    }
    files_.push_back(*imported);
  }
}

void Checker::checkFile(FileId file, const Node *root, bool isRoot) {
  if (root->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, root->range,
          fmt::format("a .kotoba file holds one object with 'workflow' or 'workflows', "
                      "found {}",
                      nodeKindDescription(root->kind)));
    return;
  }
  FieldReader fields(*this, root, "the file", {"imports", "activities", "workflow", "workflows"});
  if (const ObjectMember *imports = fields.find("imports")) {
    if (imports->value->kind != NodeKind::Array) {
      error(DiagnosticKind::WrongType, imports->value->range,
            "'imports' must be an array of file paths");
    } else {
      for (const Node *entry : imports->value->children) {
        if (entry->kind != NodeKind::String) {
          error(DiagnosticKind::WrongType, entry->range,
                fmt::format("an import must be a file path string, found {}",
                            nodeKindDescription(entry->kind)));
        }
      }
    }
  }
  if (const ObjectMember *activities = fields.find("activities")) {
    if (activities->value->kind != NodeKind::Array) {
      error(DiagnosticKind::WrongType, activities->value->range,
            "'activities' must be an array of activity declarations");
    } else {
      for (const Node *entry : activities->value->children) {
        activityDeclaration(entry);
      }
    }
  }
  std::vector<Workflow *> found;
  if (const ObjectMember *single = fields.find("workflow")) {
    if (Workflow *checked = workflow(single->value)) {
      found.push_back(checked);
    }
  }
  if (const ObjectMember *several = fields.find("workflows")) {
    if (several->value->kind != NodeKind::Array) {
      error(DiagnosticKind::WrongType, several->value->range,
            "'workflows' must be an array of workflows");
    } else {
      for (const Node *entry : several->value->children) {
        if (Workflow *checked = workflow(entry)) {
          found.push_back(checked);
        }
      }
    }
  }
  fields.reportUnknown();
  if (isRoot) {
    rootRange_ = SourceRange{root->range.begin, root->range.begin.offset + 1};
    rootHasWorkflow_ =
        fields.has("workflow") ||
        (fields.has("workflows") && fields.find("workflows")->value->kind == NodeKind::Array &&
         !fields.find("workflows")->value->children.empty());
    if (!found.empty()) {
      rootEntry_ = found.front()->id;
    }
  }
  for (Workflow *checked : found) {
    compilation_.program.workflows.push_back(checked);
  }
}

void Checker::activityDeclaration(const Node *node) {
  if (node->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("an activity declaration must be an object, found {}",
                      nodeKindDescription(node->kind)));
    return;
  }
  FieldReader fields(*this, node, "the activity declaration",
                     {"name", "description", "timeout", "retry_policy", "implementation"});
  ActivityDecl declaration;
  declaration.range = node->range;
  std::optional<std::string> name = fields.string("name", /*required=*/true);
  if (name) {
    declaration.name = *name;
    declaration.nameRange = fields.find("name")->value->range;
  }
  declaration.description = fields.string("description").value_or("");
  declaration.timeoutMs = fields.duration("timeout");
  if (const ObjectMember *policy = fields.find("retry_policy")) {
    declaration.retryPolicy = retryPolicy(policy->value);
  }
  if (const ObjectMember *implementation = fields.find("implementation")) {
    // Templates in an implementation are evaluated by the engine when the activity runs,
    // so the whole object is kept as a constant here and checked by the activity library.
    std::optional<Value> value = constant(implementation->value, "'implementation'");
    if (value && !value->isObject()) {
      error(DiagnosticKind::WrongType, implementation->value->range,
            "'implementation' must be an object with a 'type' field");
    } else if (value) {
      const Value *type = value->asObject().find("type");
      if (type == nullptr || !type->isString()) {
        error(DiagnosticKind::MissingField, implementation->value->range,
              "the implementation is missing the required string field 'type'");
      }
      declaration.implementation = std::move(value);
    }
  }
  fields.reportUnknown();
  if (!name) {
    return;
  }
  auto [previous, inserted] = activityNames_.emplace(declaration.name, declaration.nameRange);
  if (!inserted) {
    error(DiagnosticKind::DuplicateId, declaration.nameRange,
          fmt::format("activity '{}' is declared twice", declaration.name));
    diagnostics().note(previous->second, "first declared here");
    return;
  }
  compilation_.program.activities.push_back(std::move(declaration));
}

std::vector<Param> Checker::params(const Node *node, std::string_view context, bool inputs) {
  std::vector<Param> result;
  if (node->kind != NodeKind::Array) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("'{}' must be an array of parameters", context));
    return result;
  }
  std::map<std::string, SourceRange> seen;
  for (const Node *entry : node->children) {
    if (entry->kind != NodeKind::Object) {
      error(DiagnosticKind::WrongType, entry->range,
            fmt::format("a parameter must be an object with 'name' and 'type', found {}",
                        nodeKindDescription(entry->kind)));
      continue;
    }
    FieldReader fields(*this, entry, "the parameter",
                       {"name", "type", "required", "default_value", "default", "description"});
    Param param;
    param.range = entry->range;
    std::optional<std::string> name = fields.string("name", /*required=*/true);
    param.type = "any";
    std::optional<ParamType> type;
    if (std::optional<std::string> text = fields.string("type")) {
      Result<ParamType> parsed = parseParamType(*text);
      if (!parsed.ok()) {
        error(DiagnosticKind::InvalidType, fields.find("type")->value->range,
              parsed.error().message);
      } else {
        param.type = parsed.value().toString();
        type = parsed.value();
      }
    }
    param.required = fields.boolean("required").value_or(false);
    param.description = fields.string("description").value_or("");
    const ObjectMember *defaultValue = fields.find("default_value");
    if (const ObjectMember *shortDefault = fields.find("default")) {
      if (defaultValue != nullptr) {
        error(DiagnosticKind::InvalidValue, shortDefault->keyRange,
              "give either 'default_value' or 'default', not both");
      }
      defaultValue = shortDefault;
    }
    if (defaultValue != nullptr) {
      param.defaultValue = constant(defaultValue->value, "a default value");
      if (param.defaultValue && !param.defaultValue->isNull() && type) {
        if (std::optional<std::string> mismatch = checkParamType(*param.defaultValue, *type)) {
          error(
              DiagnosticKind::WrongType, defaultValue->value->range,
              fmt::format("the default value does not match type '{}': {}", param.type, *mismatch));
        }
      }
    }
    fields.reportUnknown();
    if (!name) {
      continue;
    }
    param.name = *name;
    auto [previous, inserted] = seen.emplace(param.name, fields.find("name")->value->range);
    if (!inserted) {
      error(DiagnosticKind::DuplicateId, fields.find("name")->value->range,
            fmt::format("{} '{}' is declared twice", inputs ? "input" : "output", param.name));
      diagnostics().note(previous->second, "first declared here");
      continue;
    }
    result.push_back(std::move(param));
  }
  return result;
}

Workflow *Checker::workflow(const Node *node) {
  if (node->kind != NodeKind::Object) {
    error(DiagnosticKind::WrongType, node->range,
          fmt::format("a workflow must be an object, found {}", nodeKindDescription(node->kind)));
    return nullptr;
  }
  FieldReader fields(*this, node, "the workflow",
                     {"id", "name", "description", "version", "inputs", "outputs", "strategy",
                      "output_mapping", "timeout", "retry_policy", "predicates", "metadata"});
  Workflow *result = model().workflow();
  result->range = node->range;
  WorkflowScope scope;
  scope.workflow = result;

  if (std::optional<std::string> id = fields.string("id", /*required=*/true)) {
    result->id = *id;
    result->idRange = fields.find("id")->value->range;
    if (!isIdentifierLike(*id)) {
      error(DiagnosticKind::InvalidId, result->idRange,
            fmt::format("invalid workflow id '{}': use letters, digits, '_', '.' and '-', "
                        "starting with a letter or '_'",
                        *id));
    }
  }
  result->name = fields.string("name").value_or("");
  result->description = fields.string("description").value_or("");
  result->version = fields.string("version").value_or("");
  if (const ObjectMember *inputs = fields.find("inputs")) {
    result->inputs = params(inputs->value, "inputs", /*inputs=*/true);
  }
  if (const ObjectMember *outputs = fields.find("outputs")) {
    result->outputs = params(outputs->value, "outputs", /*inputs=*/false);
  }
  for (const Param &input : result->inputs) {
    scope.inputNames.insert(input.name);
    scope.inputList.push_back(input.name);
  }
  result->timeoutMs = fields.duration("timeout");
  if (const ObjectMember *policy = fields.find("retry_policy")) {
    if (std::optional<RetryPolicySpec> spec = retryPolicy(policy->value)) {
      result->retryPolicy = spec;
    }
  }
  if (const ObjectMember *metadata = fields.find("metadata")) {
    result->metadata = constant(metadata->value, "'metadata'").value_or(Value());
  }
  if (const ObjectMember *predicates = fields.find("predicates")) {
    for (const ObjectMember &member : predicates->value->members) {
      scope.predicateNames.insert(member.key);
    }
    result->predicates = bindings(predicates->value, scope, "'predicates'");
  }
  if (const ObjectMember *strategy = fields.require("strategy")) {
    result->strategy = this->strategy(strategy->value, scope);
  }
  if (const ObjectMember *mapping = fields.find("output_mapping")) {
    result->outputMapping = bindings(mapping->value, scope, "'output_mapping'");
    std::vector<std::string> outputNames;
    for (const Param &output : result->outputs) {
      outputNames.push_back(output.name);
    }
    for (const Binding &binding : result->outputMapping) {
      bool declared = false;
      for (const std::string &name : outputNames) {
        declared = declared || name == binding.name;
      }
      if (!declared && !result->outputs.empty()) {
        error(DiagnosticKind::UnknownField, binding.nameRange,
              fmt::format("'output_mapping' maps '{}', which is not a declared output{}",
                          binding.name, didYouMean(binding.name, outputNames)));
      }
    }
  }
  fields.reportUnknown();
  warnUnmappedOutputs(*result, scope);

  if (result->id.empty()) {
    return nullptr;
  }
  auto [previous, inserted] = workflowIds_.emplace(result->id, result->idRange);
  if (!inserted) {
    error(DiagnosticKind::DuplicateId, result->idRange,
          fmt::format("workflow '{}' is defined twice", result->id));
    diagnostics().note(previous->second, "first defined here");
    return nullptr;
  }
  return result;
}

void Checker::warnUnmappedOutputs(const Workflow &workflow, const WorkflowScope &scope) {
  for (const Param &output : workflow.outputs) {
    bool mapped = false;
    for (const Binding &binding : workflow.outputMapping) {
      mapped = mapped || binding.name == output.name;
    }
    if (!mapped && !scope.assignedVars.contains(output.name) && !output.defaultValue) {
      warning(DiagnosticKind::UnmappedOutput, output.range,
              fmt::format("output '{}' is never set: map it in 'output_mapping' or assign "
                          "$.vars.{}; it will be null",
                          output.name, output.name));
    }
  }
}

void Checker::crossCheck() {
  Program &program = compilation_.program;
  std::vector<std::string> workflowNames;
  for (const Workflow *workflow : program.workflows) {
    workflowNames.push_back(workflow->id);
  }
  for (const SubWorkflowReference &reference : subWorkflowReferences_) {
    if (!workflowIds_.contains(reference.workflowRef)) {
      error(DiagnosticKind::UnknownWorkflow, reference.range,
            fmt::format("unknown workflow '{}'{}", reference.workflowRef,
                        didYouMean(reference.workflowRef, workflowNames)));
    }
  }

  std::vector<std::string> declared;
  for (const ActivityDecl &declaration : program.activities) {
    declared.push_back(declaration.name);
    if (!declaration.implementation) {
      program.hostActivities.push_back(declaration.name);
    }
  }
  for (const ActivityReference &reference : activityReferences_) {
    if (activityNames_.contains(reference.name)) {
      continue;
    }
    std::string match = closestMatch(reference.name, declared);
    if (!match.empty()) {
      warning(DiagnosticKind::SimilarActivityName, reference.range,
              fmt::format("activity '{}' is not declared, so the host must bind it; did you "
                          "mean '{}'?",
                          reference.name, match));
    }
    bool listed = false;
    for (const std::string &name : program.hostActivities) {
      listed = listed || name == reference.name;
    }
    if (!listed) {
      program.hostActivities.push_back(reference.name);
    }
  }

  if (!rootParsed_) {
    return;
  }
  if (!rootHasWorkflow_) {
    error(DiagnosticKind::NoWorkflow, rootRange_,
          "the file defines no workflow; add a 'workflow' object or a 'workflows' array");
    return;
  }
  std::optional<std::string> entry = options_.entryWorkflow ? options_.entryWorkflow : rootEntry_;
  if (!entry) {
    return;
  }
  for (size_t i = 0; i < program.workflows.size(); ++i) {
    if (program.workflows[i]->id == *entry) {
      program.entry = i;
      return;
    }
  }
  error(DiagnosticKind::UnknownWorkflow, SourceRange{},
        fmt::format("no workflow '{}' in the module{}", *entry, didYouMean(*entry, workflowNames)));
}

const Workflow *Program::findWorkflow(std::string_view id) const {
  for (const Workflow *workflow : workflows) {
    if (workflow->id == id) {
      return workflow;
    }
  }
  return nullptr;
}

const ActivityDecl *Program::findActivity(std::string_view name) const {
  for (const ActivityDecl &declaration : activities) {
    if (declaration.name == name) {
      return &declaration;
    }
  }
  return nullptr;
}

} // namespace kotoba::compiler
