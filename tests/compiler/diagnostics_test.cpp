// Tests of diagnostics: the exact text every tool prints (location, severity, kind, source
// line, caret and tildes), notes, counts, and the table of kinds.
#include "kotoba/compiler/diagnostics.h"

#include <doctest/doctest.h>

#include <set>
#include <sstream>

using namespace kotoba::compiler;

namespace {

SourceRange rangeOf(FileId file, uint32_t begin, uint32_t end) {
  return SourceRange{SourceLoc{file, begin}, end};
}

// The range of the first occurrence of `needle` in the file's text.
SourceRange find(const SourceManager &sources, FileId file, std::string_view needle) {
  size_t at = sources.text(file).find(needle);
  REQUIRE(at != std::string_view::npos);
  return rangeOf(file, static_cast<uint32_t>(at), static_cast<uint32_t>(at + needle.size()));
}

} // namespace

TEST_CASE("an error renders as file:line:col, message, kind, source line and caret") {
  SourceManager sources;
  std::string text = "{\n  workflow: {\n    strategy: {\n      op: \"paralel\",\n    },\n  },\n}\n";
  FileId file = sources.addBuffer("order.kotoba", text);
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic =
      diagnostics.report(DiagnosticKind::UnknownOp, find(sources, file, "\"paralel\""),
                         "unknown op 'paralel'; did you mean 'parallel'?");
  CHECK(diagnostics.render(diagnostic) ==
        "order.kotoba:4:11: error: unknown op 'paralel'; did you mean 'parallel'? [unknown-op]\n"
        "      op: \"paralel\",\n"
        "          ^~~~~~~~~\n");
}

TEST_CASE("tabs before the range are copied into the caret line and count as one column") {
  SourceManager sources;
  FileId file = sources.addBuffer("tabs.kotoba", "{\n\t\top:\t\"seq\"\n}");
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic =
      diagnostics.report(DiagnosticKind::InvalidValue, find(sources, file, "\"seq\""), "bad");
  CHECK(diagnostics.render(diagnostic) == "tabs.kotoba:2:7: error: bad [invalid-value]\n"
                                          "\t\top:\t\"seq\"\n"
                                          "\t\t   \t^~~~~\n");
}

TEST_CASE("multi-byte characters count as one column before and inside the range") {
  SourceManager sources;
  FileId file = sources.addBuffer("utf8.kotoba", "{ é: \"言葉😀\" }");
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic = diagnostics.report(
      DiagnosticKind::InvalidValue, find(sources, file, "\"言葉😀\""), "not a duration");
  CHECK(diagnostics.render(diagnostic) == "utf8.kotoba:1:6: error: not a duration [invalid-value]\n"
                                          "{ é: \"言葉😀\" }\n"
                                          "     ^~~~~\n");
}

TEST_CASE("an empty range gets a caret and no tildes") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "[1, 2");
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic =
      diagnostics.report(DiagnosticKind::Syntax, rangeOf(file, 5, 5), "expected ']'");
  CHECK(diagnostics.render(diagnostic) == "a.kotoba:1:6: error: expected ']' [syntax]\n"
                                          "[1, 2\n"
                                          "     ^\n");
}

TEST_CASE("a range over several lines is underlined to the end of its first line") {
  SourceManager sources;
  FileId file = sources.addBuffer("a.kotoba", "x: {\r\n  a: 1\r\n}");
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic =
      diagnostics.report(DiagnosticKind::WrongType, rangeOf(file, 3, 15), "expected a string");
  CHECK(diagnostics.render(diagnostic) == "a.kotoba:1:4: error: expected a string [wrong-type]\n"
                                          "x: {\n"
                                          "   ^\n");
}

TEST_CASE("notes print with their own location, source line and caret, and no kind") {
  SourceManager sources;
  FileId file = sources.addBuffer("dup.kotoba", "{\n  id: 1,\n  id: 2,\n}");
  DiagnosticEngine diagnostics(sources);
  diagnostics.report(DiagnosticKind::DuplicateKey, rangeOf(file, 13, 15),
                     "duplicate key 'id'; remove one of the two");
  diagnostics.note(rangeOf(file, 4, 6), "'id' is first set here");
  std::ostringstream out;
  diagnostics.print(out);
  CHECK(out.str() == "dup.kotoba:3:3: error: duplicate key 'id'; remove one of the two "
                     "[duplicate-key]\n"
                     "  id: 2,\n"
                     "  ^~\n"
                     "dup.kotoba:2:3: note: 'id' is first set here\n"
                     "  id: 1,\n"
                     "  ^~\n");
}

TEST_CASE("a diagnostic with no place names the tool instead of a file") {
  SourceManager sources;
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &diagnostic = diagnostics.report(
      DiagnosticKind::UnreadableFile, SourceRange{}, "cannot read 'x.kotoba': no such file");
  CHECK(diagnostics.render(diagnostic) ==
        "kotobac: error: cannot read 'x.kotoba': no such file [unreadable-file]\n");
}

TEST_CASE("warnings say warning and are counted apart from errors") {
  SourceManager sources;
  FileId file = sources.addBuffer("w.kotoba", "{ a: 1 }");
  DiagnosticEngine diagnostics(sources);
  const Diagnostic &warning =
      diagnostics.report(DiagnosticKind::UnmappedOutput, rangeOf(file, 2, 3), "nothing maps 'a'");
  CHECK(warning.severity == Severity::Warning);
  CHECK(diagnostics.render(warning) == "w.kotoba:1:3: warning: nothing maps 'a' [unmapped-output]\n"
                                       "{ a: 1 }\n"
                                       "  ^\n");
  CHECK(diagnostics.warningCount() == 1);
  CHECK(diagnostics.errorCount() == 0);
  CHECK_FALSE(diagnostics.hasErrors());
  diagnostics.report(DiagnosticKind::Syntax, rangeOf(file, 0, 1), "bad");
  CHECK(diagnostics.errorCount() == 1);
  CHECK(diagnostics.hasErrors());
  CHECK(diagnostics.diagnostics().size() == 2);
}

TEST_CASE("every kind has a distinct kebab-case name and the severity of its list entry") {
  std::set<std::string> names;
  for (DiagnosticKind kind : allDiagnosticKinds()) {
    std::string name = diagnosticKindName(kind);
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos);
    CHECK(names.insert(name).second);
  }
  CHECK(names.size() == allDiagnosticKinds().size());
  CHECK(std::string(diagnosticKindName(DiagnosticKind::NestingTooDeep)) == "nesting-too-deep");
  CHECK(diagnosticKindSeverity(DiagnosticKind::DuplicateKey) == Severity::Error);
  CHECK(diagnosticKindSeverity(DiagnosticKind::SharedStepId) == Severity::Warning);
}
