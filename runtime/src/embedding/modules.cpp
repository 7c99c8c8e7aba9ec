// The module half of the embedding API (kotoba/kotoba.h): compiling a .kotoba file and
// loading or saving a .kbc, with every failure as a WorkflowError a host can show.
#include "kotoba/kotoba.h"

#include "kotoba/compiler/compile.h"
#include "kotoba/vm/module_format.h"
#include "kotoba/vm/verifier.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace kotoba {

namespace {

// UnreadableFile unless `path` names a regular file.
std::optional<WorkflowError> checkReadable(const std::string &path) {
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) {
    return std::nullopt;
  }
  bool exists = std::filesystem::exists(path, error);
  return makeError(host_errors::UnreadableFile,
                   exists ? fmt::format("'{}' is not a file", path)
                          : fmt::format("cannot read '{}': no such file", path));
}

Value moduleErrorList(const std::vector<vm::ModuleError> &errors) {
  Array list;
  for (const vm::ModuleError &error : errors) {
    list.push_back(Value(error.describe()));
  }
  return Value(std::move(list));
}

} // namespace

Result<vm::Module> compileFile(const std::string &path, std::ostream *diagnostics) {
  if (std::optional<WorkflowError> unreadable = checkReadable(path)) {
    return *unreadable;
  }
  compiler::Compilation compilation;
  std::optional<vm::Module> module = compiler::compileFile(compilation, path);
  std::ostringstream rendered;
  compilation.diagnostics.print(rendered);
  if (diagnostics != nullptr) {
    *diagnostics << rendered.str();
  }
  if (!module) {
    size_t errors = compilation.diagnostics.errorCount();
    Object details;
    details.set("errors", static_cast<int64_t>(errors));
    return makeError(host_errors::CompileError,
                     fmt::format("'{}' does not compile: {} {}\n{}", path, errors,
                                 errors == 1 ? "error" : "errors", rendered.str()),
                     Value(std::move(details)));
  }
  std::vector<vm::ModuleError> problems = vm::verifyModule(*module);
  // The code generator made a module its own verifier rejects: a compiler bug, reported
  // rather than run.
  if (!problems.empty()) {
    return makeError(host_errors::InvalidModule,
                     fmt::format("internal error: the module compiled from '{}' does not "
                                 "verify: {}",
                                 path, problems.front().describe()),
                     moduleErrorList(problems));
  }
  return std::move(*module);
}

Result<vm::Module> loadModuleFile(const std::string &path) {
  if (std::optional<WorkflowError> unreadable = checkReadable(path)) {
    return *unreadable;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(host_errors::UnreadableFile, fmt::format("cannot read '{}'", path));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  vm::ModuleResult<vm::LoadedModule> loaded = vm::loadModule(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
  if (!loaded.ok()) {
    return makeError(host_errors::InvalidModule,
                     fmt::format("'{}' is not a valid module: {}; rebuild it with `kotobac "
                                 "build`",
                                 path, loaded.errors().front().describe()),
                     moduleErrorList(loaded.errors()));
  }
  return std::move(loaded).value().module;
}

Result<std::string> saveModuleFile(const vm::Module &module, const std::string &path) {
  std::vector<uint8_t> bytes = vm::writeModule(module);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    return makeError(
        host_errors::UnwritableFile,
        fmt::format("cannot write '{}'; check that its folder exists and is writable", path));
  }
  return vm::hashToHex(vm::computeContentHash(bytes));
}

Result<vm::Module> loadWorkflowFile(const std::string &path, std::ostream *diagnostics) {
  if (std::filesystem::path(path).extension() == ".kbc") {
    return loadModuleFile(path);
  }
  return compileFile(path, diagnostics);
}

} // namespace kotoba
