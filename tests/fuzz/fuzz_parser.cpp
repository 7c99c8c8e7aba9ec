// libFuzzer target for the parser: any bytes go through parseFile, every diagnostic is
// rendered, and every string that the checker would re-parse as an expression goes through
// parseExpression. Besides crashes and sanitizer reports, it traps when an invariant the
// rest of the compiler relies on breaks: a null tree comes with an error, every range lies
// inside its file, and no tree is deeper than the nesting limit.
#include "kotoba/compiler/parser.h"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace kotoba::compiler;

namespace {

void require(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

void checkRange(const SourceManager &sources, SourceRange range) {
  if (!range.valid()) {
    return;
  }
  size_t size = sources.text(range.begin.file).size();
  require(range.begin.offset <= size);
  require(range.end <= size);
  require(range.begin.offset <= range.end);
}

void walk(const SourceManager &sources, const Node *node, unsigned depth, SyntaxArena &arena,
          DiagnosticEngine &diagnostics) {
  require(node != nullptr);
  // A few levels over the limit: parseExpression trees hang below string nodes.
  require(depth <= maxNestingDepth + 1);
  checkRange(sources, node->range);
  checkRange(sources, node->nameRange);
  for (const Node *child : node->children) {
    walk(sources, child, depth + 1, arena, diagnostics);
  }
  for (const ObjectMember &member : node->members) {
    checkRange(sources, member.keyRange);
    walk(sources, member.value, depth + 1, arena, diagnostics);
  }
  if (node->kind == NodeKind::String && !node->text.empty() && node->text[0] == '$') {
    Node *expression =
        parseExpression(node->text, node->range, node->verbatim, arena, diagnostics);
    if (expression != nullptr) {
      walk(sources, expression, 0, arena, diagnostics);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  SourceManager sources;
  FileId file =
      sources.addBuffer("fuzz.kotoba", std::string(reinterpret_cast<const char *>(data), size));
  SyntaxArena arena;
  DiagnosticEngine diagnostics(sources);
  Node *root = parseFile(sources, file, arena, diagnostics);
  require(root != nullptr || diagnostics.hasErrors());
  if (root != nullptr) {
    walk(sources, root, 0, arena, diagnostics);
  }
  for (const Diagnostic &diagnostic : diagnostics.diagnostics()) {
    checkRange(sources, diagnostic.range);
    require(!diagnostics.render(diagnostic).empty());
  }
  return 0;
}
