// Turning the FILE of `kotoba-vm run FILE` into a module the engine can store: a .kotoba
// file is compiled in memory (its diagnostics go to stderr), a .kbc file is read, checked
// against its hash and verified. Either way the module that comes back has passed the
// verifier, so the engine never sees bytes it has not checked.
#pragma once

#include "cli_support.h"

#include "kotoba/vm/module.h"

#include <optional>
#include <string>

namespace kotoba::cli {

struct LoadedWorkflowModule {
  vm::Module module;
  // Where relative paths in its activity implementations resolve from: the file's
  // directory, absolute.
  std::string baseDirectory;
};

// Loads FILE. A missing or unreadable file is a usage failure; compile errors and a .kbc
// that does not load are compile failures (exit 3).
[[nodiscard]] CliResult<LoadedWorkflowModule> loadWorkflowModule(const std::string &path);

// Checks that `workflowId` (empty: the entry workflow) names a workflow of the module; the
// failure lists the ones it has.
[[nodiscard]] CliResult<const vm::Workflow *> findWorkflow(const vm::Module &module,
                                                           const std::string &workflowId);

} // namespace kotoba::cli
