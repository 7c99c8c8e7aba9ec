// Diagnostics: collects every problem found in a compilation and prints each one as
// `file:line:col: error: message [kind]`, followed by the source line and a caret that
// underlines the whole offending token.
#pragma once

#include "kotoba/compiler/source.h"

#include <iosfwd>
#include <string>
#include <vector>

namespace kotoba::compiler {

enum class Severity { Error, Warning, Note };

enum class DiagnosticKind {
#define DIAGNOSTIC(Identifier, name, severity) Identifier,
#include "kotoba/compiler/diagnostic_kinds.def"
};

[[nodiscard]] const char *diagnosticKindName(DiagnosticKind kind);
[[nodiscard]] Severity diagnosticKindSeverity(DiagnosticKind kind);
// Every kind, in the order of diagnostic_kinds.def (for the coverage test).
[[nodiscard]] std::vector<DiagnosticKind> allDiagnosticKinds();

struct Diagnostic {
  DiagnosticKind kind;
  Severity severity;
  SourceRange range; // may be invalid for problems with no place (a missing file)
  std::string message; // lowercase, no trailing period; names the fix where one exists
  std::vector<Diagnostic> notes;
};

class DiagnosticEngine {
public:
  explicit DiagnosticEngine(const SourceManager &sources) : sources_(sources) {}

  Diagnostic &report(DiagnosticKind kind, SourceRange range, std::string message);
  // Attaches a note (e.g. "previous definition is here") to the last diagnostic reported.
  void note(SourceRange range, std::string message);

  [[nodiscard]] const std::vector<Diagnostic> &diagnostics() const { return diagnostics_; }
  [[nodiscard]] size_t errorCount() const { return errorCount_; }
  [[nodiscard]] size_t warningCount() const { return warningCount_; }
  [[nodiscard]] bool hasErrors() const { return errorCount_ > 0; }

  // Prints all diagnostics in the order they were reported.
  void print(std::ostream &out) const;
  [[nodiscard]] std::string render(const Diagnostic &diagnostic) const;

private:
  const SourceManager &sources_;
  std::vector<Diagnostic> diagnostics_;
  size_t errorCount_ = 0;
  size_t warningCount_ = 0;
};

} // namespace kotoba::compiler
