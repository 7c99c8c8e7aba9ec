// Diagnostics: the table of kinds, collection, and the one rendering every tool prints:
//
//   order.kotoba:42:19: error: unknown op 'paralel'; did you mean 'parallel'? [unknown-op]
//         op: "paralel",
//             ^~~~~~~~~
//
// The source line is printed as it is. The caret line copies each tab in front of the range
// (so the caret stays under its character whatever the terminal's tab width) and writes one
// space per other code point, then `^` under the range's first code point and `~` under the
// rest of the range on that line.
#include "kotoba/compiler/diagnostics.h"

#include <cassert>
#include <ostream>

namespace kotoba::compiler {
namespace {

struct KindInfo {
  const char *name;
  Severity severity;
};

constexpr KindInfo kindTable[] = {
#define DIAGNOSTIC(Identifier, name, severity) {name, Severity::severity},
#include "kotoba/compiler/diagnostic_kinds.def"
};

const KindInfo &info(DiagnosticKind kind) {
  auto index = static_cast<size_t>(kind);
  assert(index < std::size(kindTable) && "DiagnosticKind out of range");
  return kindTable[index];
}

const char *severityWord(Severity severity) {
  switch (severity) {
  case Severity::Error:
    return "error";
  case Severity::Warning:
    return "warning";
  case Severity::Note:
    return "note";
  }
  return "error";
}

bool isContinuationByte(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

// Appends the quoted source line and its caret line for `range` (which must be valid).
void renderSnippet(const SourceManager &sources, SourceRange range, std::string &out) {
  std::string_view text = sources.text(range.begin.file);
  std::string_view line = sources.lineText(range.begin);
  size_t lineBegin = static_cast<size_t>(line.data() - text.data());
  size_t begin = std::min<size_t>(range.begin.offset, text.size()) - lineBegin;
  begin = std::min(begin, line.size());
  size_t end = std::min<size_t>(range.end, lineBegin + line.size());
  end = end > lineBegin ? end - lineBegin : 0;

  out.append(line);
  out += '\n';
  for (size_t at = 0; at < begin; ++at) {
    if (line[at] == '\t') {
      out += '\t';
    } else if (!isContinuationByte(line[at])) {
      out += ' ';
    }
  }
  out += '^';
  // The first code point of the range is the caret; every later one gets a tilde.
  for (size_t at = begin + 1; at < end; ++at) {
    if (!isContinuationByte(line[at])) {
      out += '~';
    }
  }
  out += '\n';
}

void renderOne(const SourceManager &sources, const Diagnostic &diagnostic, DiagnosticKind kind,
               bool withKind, std::string &out) {
  if (diagnostic.range.valid()) {
    LineColumn where = sources.lineColumn(diagnostic.range.begin);
    out += sources.path(diagnostic.range.begin.file);
    out += ':' + std::to_string(where.line) + ':' + std::to_string(where.column) + ": ";
  } else {
    out += "kotobac: ";
  }
  out += severityWord(diagnostic.severity);
  out += ": ";
  out += diagnostic.message;
  if (withKind) {
    out += " [";
    out += diagnosticKindName(kind);
    out += ']';
  }
  out += '\n';
  if (diagnostic.range.valid()) {
    renderSnippet(sources, diagnostic.range, out);
  }
}

} // namespace

const char *diagnosticKindName(DiagnosticKind kind) { return info(kind).name; }

Severity diagnosticKindSeverity(DiagnosticKind kind) { return info(kind).severity; }

std::vector<DiagnosticKind> allDiagnosticKinds() {
  std::vector<DiagnosticKind> kinds;
  for (size_t index = 0; index < std::size(kindTable); ++index) {
    kinds.push_back(static_cast<DiagnosticKind>(index));
  }
  return kinds;
}

Diagnostic &DiagnosticEngine::report(DiagnosticKind kind, SourceRange range,
                                     std::string message) {
  Severity severity = diagnosticKindSeverity(kind);
  if (severity == Severity::Error) {
    ++errorCount_;
  } else if (severity == Severity::Warning) {
    ++warningCount_;
  }
  return diagnostics_.emplace_back(Diagnostic{kind, severity, range, std::move(message), {}});
}

void DiagnosticEngine::note(SourceRange range, std::string message) {
  assert(!diagnostics_.empty() && "a note needs a diagnostic to attach to");
  Diagnostic &last = diagnostics_.back();
  last.notes.push_back(Diagnostic{last.kind, Severity::Note, range, std::move(message), {}});
}

void DiagnosticEngine::print(std::ostream &out) const {
  for (const Diagnostic &diagnostic : diagnostics_) {
    out << render(diagnostic);
  }
}

std::string DiagnosticEngine::render(const Diagnostic &diagnostic) const {
  std::string out;
  renderOne(sources_, diagnostic, diagnostic.kind, true, out);
  for (const Diagnostic &note : diagnostic.notes) {
    renderOne(sources_, note, diagnostic.kind, false, out);
  }
  return out;
}

} // namespace kotoba::compiler
