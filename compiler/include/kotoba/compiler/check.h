// Semantic analysis: turns the syntax trees of a root file and its imports into a checked
// Program, reporting every problem of language.md section 9 as a diagnostic.
#pragma once

#include "kotoba/compiler/diagnostics.h"
#include "kotoba/compiler/model.h"
#include "kotoba/compiler/source.h"
#include "kotoba/compiler/syntax.h"

#include <optional>
#include <string>

namespace kotoba::compiler {

struct CheckOptions {
  // Picks the entry workflow by id instead of the file's `workflow` / first of `workflows`.
  std::optional<std::string> entryWorkflow;
};

// Everything one compilation owns: its files, trees, diagnostics and the checked program.
struct Compilation {
  SourceManager sources;
  DiagnosticEngine diagnostics{sources};
  SyntaxArena syntax;
  ModelArena model;
  Program program;
};

// Loads `path` and everything it imports, and checks them. Returns true when no error was
// reported (warnings allowed); the Program is complete only then.
[[nodiscard]] bool checkProgram(Compilation &compilation, const std::string &path,
                                const CheckOptions &options = {});

// The same for text already in memory (tests, fuzzing); imports resolve against the
// directory of `path`.
[[nodiscard]] bool checkSource(Compilation &compilation, const std::string &path,
                               std::string text, const CheckOptions &options = {});

} // namespace kotoba::compiler
