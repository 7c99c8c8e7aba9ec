// Loading the module of `kotoba-vm run`: compiling a .kotoba file in memory or loading a .kbc.
#include "cli_module.h"

#include "kotoba/compiler/compile.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/verifier.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

namespace kotoba::cli {

namespace {

bool isModuleFile(const std::string &path) {
  return std::filesystem::path(path).extension() == ".kbc";
}

CliResult<vm::Module> compileSource(const std::string &path) {
  compiler::Compilation compilation;
  std::optional<vm::Module> module = compiler::compileFile(compilation, path);
  compilation.diagnostics.print(std::cerr);
  if (!module) {
    for (const auto &diagnostic : compilation.diagnostics.diagnostics()) {
      if (diagnostic.kind == compiler::DiagnosticKind::UnreadableFile) {
        return usageFailure("cannot read '" + path + "'");
      }
    }
    size_t errors = compilation.diagnostics.errorCount();
    return Failure{ExitCode::CompileError,
                   "'" + path + "' does not compile: " + std::to_string(errors) +
                       (errors == 1 ? " error" : " errors"),
                   {}};
  }
  std::vector<vm::ModuleError> problems = vm::verifyModule(*module);
  if (!problems.empty()) {
    // The code generator made a module its own verifier rejects: a compiler bug, reported
    // rather than run.
    return Failure{ExitCode::CompileError,
                   "internal error: the module compiled from '" + path +
                       "' does not verify: " + problems.front().describe(),
                   {}};
  }
  return std::move(*module);
}

CliResult<vm::Module> readModuleFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return usageFailure("cannot read '" + path + "'");
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  vm::ModuleResult<vm::LoadedModule> loaded = vm::loadModule(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
  if (!loaded.ok()) {
    Failure failure{ExitCode::CompileError, "'" + path + "' is not a valid module", {}};
    for (const vm::ModuleError &error : loaded.errors()) {
      failure.notes.push_back(error.describe());
    }
    failure.notes.push_back("rebuild it with `kotobac build`, or run the .kotoba file");
    return failure;
  }
  return std::move(loaded).value().module;
}

} // namespace

CliResult<LoadedWorkflowModule> loadWorkflowModule(const std::string &path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return usageFailure(std::filesystem::exists(path, error)
                            ? "'" + path + "' is not a file"
                            : "cannot read '" + path + "': no such file");
  }
  CliResult<vm::Module> module = isModuleFile(path) ? readModuleFile(path) : compileSource(path);
  if (!module.ok()) {
    return module.failure();
  }
  return LoadedWorkflowModule{std::move(module).value(), directoryOf(path)};
}

CliResult<const vm::Workflow *> findWorkflow(const vm::Module &module,
                                             const std::string &workflowId) {
  if (module.workflows.empty()) {
    return usageFailure("the module has no workflow");
  }
  if (workflowId.empty()) {
    return &module.workflows.front();
  }
  if (const vm::Workflow *workflow = module.findWorkflow(workflowId)) {
    return workflow;
  }
  std::string known;
  for (const vm::Workflow &workflow : module.workflows) {
    known += (known.empty() ? "" : ", ") + workflow.id;
  }
  return usageFailure("the module has no workflow '" + workflowId + "'; it has " + known);
}

} // namespace kotoba::cli
