// The front door of the front end: turns .kotoba text into a syntax tree, reporting every
// lexical and syntax problem it finds. This is the only place that knows about ANTLR.
//
// Parsing on several threads at once is untested and best avoided: the generated ANTLR
// parser keeps one prediction cache, in static storage, for all its instances.
#pragma once

#include "kotoba/compiler/diagnostics.h"
#include "kotoba/compiler/syntax.h"

#include <string_view>

namespace kotoba::compiler {

// Deeper nesting than this (objects, arrays, parentheses, operators) is reported as
// nesting-too-deep instead of exhausting the stack. A tree the parser returns is never
// deeper than this, so later passes may walk it recursively.
inline constexpr unsigned maxNestingDepth = 256;

// Parses a whole file (one value). Returns nullptr only when nothing usable was parsed;
// otherwise the tree may be partial and the diagnostics say what was wrong: members and
// elements that a syntax error broke are left out. Diagnostics come in source order, at
// most 100 per file.
[[nodiscard]] Node *parseFile(const SourceManager &sources, FileId file, SyntaxArena &arena,
                              DiagnosticEngine &diagnostics);

// Parses the text of a quoted string as one expression (the "$.inputs.x" form), placing the
// nodes at `origin` + offset when `exactPositions` (the string was verbatim), or all at
// `origin`'s range otherwise. Returns nullptr after reporting a diagnostic.
[[nodiscard]] Node *parseExpression(std::string_view text, SourceRange origin, bool exactPositions,
                                    SyntaxArena &arena, DiagnosticEngine &diagnostics);

} // namespace kotoba::compiler
