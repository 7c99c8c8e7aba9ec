// Tests of the parser: every lexical form, every operator's precedence and associativity,
// every path form, the lexical and syntax diagnostics with their exact places, duplicate
// keys, quoted-string expressions, and robustness against deep nesting, huge inputs and
// garbage. Trees are compared through a compact S-expression dump.
#include "kotoba/compiler/parser.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

using namespace kotoba::compiler;

namespace {

// Compact, unambiguous text of a tree: literals as written in JSON, operators in prefix form.
std::string dump(const Node *node) {
  if (node == nullptr) {
    return "<null>";
  }
  auto list = [&](const char *head) {
    std::string out = std::string("(") + head;
    for (const Node *child : node->children) {
      out += " " + dump(child);
    }
    return out + ")";
  };
  switch (node->kind) {
  case NodeKind::Null:
    return "null";
  case NodeKind::Bool:
    return node->boolValue ? "true" : "false";
  case NodeKind::Integer:
    return std::to_string(node->intValue);
  case NodeKind::Double: {
    std::string text = std::to_string(node->doubleValue);
    return "d" + text.erase(text.find_last_not_of('0') + 1);
  }
  case NodeKind::String:
    return "\"" + node->text + "\"";
  case NodeKind::Array:
    return list("array");
  case NodeKind::Object: {
    std::string out = "{";
    for (const ObjectMember &member : node->members) {
      out += (out.size() > 1 ? ", " : "") + member.key + ": " + dump(member.value);
    }
    return out + "}";
  }
  case NodeKind::Root:
    return "$";
  case NodeKind::Member:
    return "(. " + dump(node->children[0]) + " " + node->text + ")";
  case NodeKind::Index:
    return list("[]");
  case NodeKind::Projection:
    return list("[*]");
  case NodeKind::Call:
    return list(("call " + node->text).c_str());
  case NodeKind::Identifier:
    return "id:" + node->text;
  case NodeKind::Unary:
    return list(unaryOpSpelling(node->unaryOp));
  case NodeKind::Binary:
    return list(binaryOpSpelling(node->binaryOp));
  case NodeKind::Conditional:
    return list("?:");
  }
  return "<?>";
}

// One parse of a whole file, with everything a test looks at.
struct Parsed {
  SourceManager sources;
  SyntaxArena arena;
  DiagnosticEngine diagnostics{sources};
  FileId file;
  Node *root = nullptr;

  explicit Parsed(std::string text, std::string path = "test.kotoba") {
    file = sources.addBuffer(std::move(path), std::move(text));
    root = parseFile(sources, file, arena, diagnostics);
  }

  [[nodiscard]] std::string tree() const { return dump(root); }
  [[nodiscard]] std::string rendered() const {
    std::string out;
    for (const Diagnostic &diagnostic : diagnostics.diagnostics()) {
      out += diagnostics.render(diagnostic);
    }
    return out;
  }
  // The printed kinds of all diagnostics, in order, separated by spaces.
  [[nodiscard]] std::string kinds() const {
    std::string out;
    for (const Diagnostic &diagnostic : diagnostics.diagnostics()) {
      out += (out.empty() ? "" : " ") + std::string(diagnosticKindName(diagnostic.kind));
    }
    return out;
  }
  // The text a range covers.
  [[nodiscard]] std::string_view textOf(SourceRange range) const {
    return sources.text(file).substr(range.begin.offset, range.length());
  }
};

// The tree of a file that must parse without any diagnostic.
std::string tree(std::string text) {
  Parsed parsed(std::move(text));
  INFO(parsed.rendered());
  CHECK(parsed.diagnostics.diagnostics().empty());
  return parsed.tree();
}

std::string repeat(std::string_view piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t index = 0; index < times; ++index) {
    out += piece;
  }
  return out;
}

} // namespace

// ---- Lexical forms ----

TEST_CASE("JSON literals parse to their values") {
  CHECK(tree("null") == "null");
  CHECK(tree("true") == "true");
  CHECK(tree("false") == "false");
  CHECK(tree("0") == "0");
  CHECK(tree("42") == "42");
  CHECK(tree("1.5") == "d1.5");
  CHECK(tree("2e3") == "d2000.");
  CHECK(tree("2E-1") == "d0.2");
  CHECK(tree("1.25e+2") == "d125.");
  CHECK(tree("\"text\"") == "\"text\"");
  CHECK(tree("[]") == "(array)");
  CHECK(tree("{}") == "{}");
}

TEST_CASE("numbers without fraction or exponent that fit int64 are integers, others doubles") {
  Parsed largest("9223372036854775807");
  REQUIRE(largest.root != nullptr);
  CHECK(largest.root->kind == NodeKind::Integer);
  CHECK(largest.root->intValue == INT64_MAX);

  Parsed tooLarge("9223372036854775808");
  REQUIRE(tooLarge.root != nullptr);
  CHECK(tooLarge.root->kind == NodeKind::Double);
  CHECK(tooLarge.root->doubleValue == 9223372036854775808.0);

  Parsed wholeDouble("3.0");
  CHECK(wholeDouble.root->kind == NodeKind::Double);
  CHECK(wholeDouble.root->doubleValue == 3.0);

  Parsed tiny("1e-400");
  CHECK(tiny.diagnostics.diagnostics().empty());
  CHECK(tiny.root->kind == NodeKind::Double);
  CHECK(tiny.root->doubleValue == 0.0);
}

TEST_CASE("a minus directly before a number makes a negative literal") {
  Parsed smallest("-9223372036854775808");
  REQUIRE(smallest.root != nullptr);
  CHECK(smallest.root->kind == NodeKind::Integer);
  CHECK(smallest.root->intValue == INT64_MIN);
  CHECK(smallest.textOf(smallest.root->range) == "-9223372036854775808");

  CHECK(tree("-5") == "-5");
  CHECK(tree("- 5") == "-5");
  CHECK(tree("-2.5") == "d-2.5");
  CHECK(tree("-9223372036854775809") == "d-9223372036854775808.");
  CHECK(tree("--5") == "(- -5)");
  CHECK(tree("-(5)") == "(- 5)");
  CHECK(tree("-$.x") == "(- (. $ x))");
  CHECK(tree("[-1, - 2]") == "(array -1 -2)");
  CHECK(tree("3 - -1") == "(- 3 -1)");
}

TEST_CASE("strings decode JSON escapes and \\' in both quote styles") {
  CHECK(tree(R"("a\"b\\c\/d\be\ff\ng\rh\ti")") == "\"a\"b\\c/d\be\ff\ng\rh\ti\"");
  CHECK(tree(R"('it\'s')") == "\"it's\"");
  CHECK(tree(R"('say "hi"')") == "\"say \"hi\"\"");
  CHECK(tree(R"("\'")") == "\"'\"");
  CHECK(tree(R"("\u00e9\u8A00")") == "\"\u00e9\u8a00\"");
  CHECK(tree(R"("\u0000")") == std::string("\"") + '\0' + "\"");
}

TEST_CASE("a surrogate pair decodes to one code point in UTF-8") {
  Parsed parsed(R"("\ud83d\ude00")");
  REQUIRE(parsed.root != nullptr);
  CHECK(parsed.diagnostics.diagnostics().empty());
  CHECK(parsed.root->text == "\xF0\x9F\x98\x80");
  CHECK(parsed.root->text.size() == 4);
}

TEST_CASE("a string is verbatim exactly when it has no escapes") {
  Parsed plain(R"(["$.inputs.x", "a\nb", 'plain'])");
  REQUIRE(plain.root != nullptr);
  CHECK(plain.root->children[0]->verbatim);
  CHECK_FALSE(plain.root->children[1]->verbatim);
  CHECK(plain.root->children[2]->verbatim);
  CHECK(plain.textOf(plain.root->children[0]->range) == "\"$.inputs.x\"");
}

TEST_CASE("raw UTF-8 in strings and comments passes through unchanged") {
  CHECK(tree("// コメント\n\"言葉 😀\" /* é */") == "\"言葉 😀\"");
}

TEST_CASE("all three comment styles are skipped") {
  CHECK(tree("// line\n# hash\n/* block\n spanning */ { a: /* inline */ 1 } // end") ==
        "{a: 1}");
  CHECK(tree("/**/1/***/") == "1");
  CHECK(tree("[1, # after a hash, a comma is a comment too\n2]") == "(array 1 2)");
  CHECK(tree("4 /* a / b * c */ / 2") == "(/ 4 2)");
}

TEST_CASE("object keys may be bare identifiers, keywords or quoted strings") {
  CHECK(tree("{ a: 1, _b2: 2, 'c d': 3, \"e\\u0066\": 4 }") == "{a: 1, _b2: 2, c d: 3, ef: 4}");
  CHECK(tree("{ in: 1, true: 2, false: 3, null: 4 }") == "{in: 1, true: 2, false: 3, null: 4}");
}

TEST_CASE("trailing commas are allowed in objects and arrays") {
  CHECK(tree("{ a: 1, }") == "{a: 1}");
  CHECK(tree("[1, 2,]") == "(array 1 2)");
  CHECK(tree("[[],]") == "(array (array))");
}

TEST_CASE("objects keep insertion order and record where each key is") {
  Parsed parsed("{ zeta: 1, 'alpha': 2 }");
  REQUIRE(parsed.root != nullptr);
  REQUIRE(parsed.root->members.size() == 2);
  CHECK(parsed.root->members[0].key == "zeta");
  CHECK(parsed.textOf(parsed.root->members[0].keyRange) == "zeta");
  CHECK(parsed.textOf(parsed.root->members[1].keyRange) == "'alpha'");
  CHECK(parsed.root->member("alpha")->value->intValue == 2);
  CHECK(parsed.root->member("beta") == nullptr);
  CHECK(parsed.textOf(parsed.root->range) == "{ zeta: 1, 'alpha': 2 }");
}

TEST_CASE("a byte order mark at the start is ignored") {
  Parsed parsed("\xEF\xBB\xBF{ a: 1 }");
  CHECK(parsed.diagnostics.diagnostics().empty());
  CHECK(parsed.tree() == "{a: 1}");
  CHECK(parsed.root->range.begin.offset == 3);
}

// ---- Expressions ----

TEST_CASE("paths of every form") {
  CHECK(tree("$") == "$");
  CHECK(tree("$.inputs.amount") == "(. (. $ inputs) amount)");
  CHECK(tree("$['key with spaces']") == "(. $ key with spaces)");
  CHECK(tree("$[\"k\"].x") == "(. (. $ k) x)");
  CHECK(tree("$.list[0]") == "([] (. $ list) 0)");
  CHECK(tree("$.list[-1]") == "([] (. $ list) -1)");
  CHECK(tree("$.list[$.vars.i + 1]") == "([] (. $ list) (+ (. (. $ vars) i) 1))");
  CHECK(tree("$.list[*].sku") == "(. ([*] (. $ list)) sku)");
  CHECK(tree("$.a[*][*]") == "([*] ([*] (. $ a)))");
  CHECK(tree("$.m[0][1]") == "([] ([] (. $ m) 0) 1)");
}

TEST_CASE("any identifier-like word may follow a dot, keywords included") {
  CHECK(tree("$.result.in") == "(. (. $ result) in)");
  CHECK(tree("$.a.true.false.null") == "(. (. (. (. $ a) true) false) null)");
}

TEST_CASE("postfix applies to any primary") {
  CHECK(tree("f(x).y") == "(. (call f id:x) y)");
  CHECK(tree("[1, 2][0]") == "([] (array 1 2) 0)");
  CHECK(tree("{a: 1}.a") == "(. {a: 1} a)");
  CHECK(tree("($.a).b") == "(. (. $ a) b)");
}

TEST_CASE("calls take any number of arguments and bare names are identifiers") {
  CHECK(tree("now()") == "(call now)");
  CHECK(tree("len($.items)") == "(call len (. $ items))");
  CHECK(tree("pick($.x, 'a', 'b')") == "(call pick (. $ x) \"a\" \"b\")");
  CHECK(tree("max(1, min(2, 3))") == "(call max 1 (call min 2 3))");
  CHECK(tree("item") == "id:item");
}

TEST_CASE("call and member names keep their own range") {
  Parsed parsed("{ a: len($.inputs.amout) }");
  REQUIRE(parsed.root != nullptr);
  const Node *call = parsed.root->members[0].value;
  CHECK(parsed.textOf(call->range) == "len($.inputs.amout)");
  CHECK(parsed.textOf(call->nameRange) == "len");
  const Node *member = call->children[0];
  CHECK(parsed.textOf(member->range) == "$.inputs.amout");
  CHECK(parsed.textOf(member->nameRange) == "amout");

  Parsed quoted("$['a b']");
  CHECK(quoted.textOf(quoted.root->nameRange) == "'a b'");
  CHECK(quoted.textOf(quoted.root->range) == "$['a b']");
}

TEST_CASE("binary operators bind from ?: (loosest) to * / % (tightest)") {
  CHECK(tree("a ? b : c ?? d") == "(?: id:a id:b (?? id:c id:d))");
  CHECK(tree("a ?? b || c") == "(?? id:a (|| id:b id:c))");
  CHECK(tree("a || b && c") == "(|| id:a (&& id:b id:c))");
  CHECK(tree("a && b == c") == "(&& id:a (== id:b id:c))");
  CHECK(tree("a == b < c") == "(== id:a (< id:b id:c))");
  CHECK(tree("a != b >= c") == "(!= id:a (>= id:b id:c))");
  CHECK(tree("a <= b in c") == "(<= id:a (in id:b id:c))");
  CHECK(tree("a > b in c") == "(> id:a (in id:b id:c))");
  CHECK(tree("a in b + c") == "(in id:a (+ id:b id:c))");
  CHECK(tree("a + b * c") == "(+ id:a (* id:b id:c))");
  CHECK(tree("a - b / c") == "(- id:a (/ id:b id:c))");
  CHECK(tree("a - b % c") == "(- id:a (% id:b id:c))");
  CHECK(tree("a * b + c") == "(+ (* id:a id:b) id:c)");
  CHECK(tree("a && b || c") == "(|| (&& id:a id:b) id:c)");
}

TEST_CASE("binary operators of one level associate to the left") {
  CHECK(tree("a - b - c") == "(- (- id:a id:b) id:c)");
  CHECK(tree("a + b - c") == "(- (+ id:a id:b) id:c)");
  CHECK(tree("a / b * c % d") == "(% (* (/ id:a id:b) id:c) id:d)");
  CHECK(tree("a < b > c") == "(> (< id:a id:b) id:c)");
  CHECK(tree("a == b != c") == "(!= (== id:a id:b) id:c)");
  CHECK(tree("a in b in c") == "(in (in id:a id:b) id:c)");
  CHECK(tree("a && b && c") == "(&& (&& id:a id:b) id:c)");
  CHECK(tree("a || b || c") == "(|| (|| id:a id:b) id:c)");
  CHECK(tree("a ?? b ?? c") == "(?? (?? id:a id:b) id:c)");
}

TEST_CASE("the conditional associates to the right and takes any middle") {
  CHECK(tree("a ? b : c ? d : e") == "(?: id:a id:b (?: id:c id:d id:e))");
  CHECK(tree("a ? b ? c : d : e") == "(?: id:a (?: id:b id:c id:d) id:e)");
  CHECK(tree("a || b ? c + 1 : d") == "(?: (|| id:a id:b) (+ id:c 1) id:d)");
  CHECK(tree("{ k: a ? 1 : 2 }") == "{k: (?: id:a 1 2)}");
}

TEST_CASE("unary operators bind tighter than binary ones and looser than postfix") {
  CHECK(tree("!a && b") == "(&& (! id:a) id:b)");
  CHECK(tree("-a * b") == "(* (- id:a) id:b)");
  CHECK(tree("!$.a.b") == "(! (. (. $ a) b))");
  CHECK(tree("-$.list[0]") == "(- ([] (. $ list) 0))");
  CHECK(tree("!!a") == "(! (! id:a))");
  CHECK(tree("!a in b") == "(in (! id:a) id:b)");
}

TEST_CASE("parentheses override precedence and leave no node behind") {
  CHECK(tree("(a + b) * c") == "(* (+ id:a id:b) id:c)");
  CHECK(tree("a - (b - c)") == "(- id:a (- id:b id:c))");
  CHECK(tree("((((1))))") == "1");
  CHECK(tree("(a ? b : c) ? d : e") == "(?: (?: id:a id:b id:c) id:d id:e)");
}

TEST_CASE("operators need no spaces and ?? is not two ?") {
  CHECK(tree("$.a??$.b") == "(?? (. $ a) (. $ b))");
  CHECK(tree("1+2*3-4/5%6") == "(- (+ 1 (* 2 3)) (% (/ 4 5) 6))");
  CHECK(tree("a<=b") == "(<= id:a id:b)");
  CHECK(tree("a?b:c") == "(?: id:a id:b id:c)");
}

TEST_CASE("expression ranges cover their operands") {
  Parsed parsed("{ x: $.a + f(2) * 3 }");
  REQUIRE(parsed.root != nullptr);
  const Node *sum = parsed.root->members[0].value;
  CHECK(parsed.textOf(sum->range) == "$.a + f(2) * 3");
  CHECK(parsed.textOf(sum->children[1]->range) == "f(2) * 3");
  Parsed unary("!$.ok");
  CHECK(unary.textOf(unary.root->range) == "!$.ok");
}

// ---- Lexical diagnostics ----

TEST_CASE("invalid UTF-8 is reported at the first bad byte of each line, and parsing goes on") {
  Parsed parsed("{ a: \"x\xFFy\xFE\",\n  b: \"\xC3\" }");
  CHECK(parsed.rendered() ==
        "test.kotoba:1:8: error: invalid UTF-8 byte 0xff; a .kotoba file must be saved as UTF-8 "
        "[invalid-utf8]\n"
        "{ a: \"x\xFFy\xFE\",\n"
        "       ^\n"
        "test.kotoba:2:7: error: invalid UTF-8 byte 0xc3; a .kotoba file must be saved as UTF-8 "
        "[invalid-utf8]\n"
        "  b: \"\xC3\" }\n"
        "      ^\n");
  REQUIRE(parsed.root != nullptr);
  CHECK(parsed.root->members.size() == 2);
}

TEST_CASE("overlong forms, surrogates and code points past U+10FFFF are invalid UTF-8") {
  CHECK(Parsed("\"\xC0\xAF\"").kinds() == "invalid-utf8");
  CHECK(Parsed("\"\xED\xA0\x80\"").kinds() == "invalid-utf8");
  CHECK(Parsed("\"\xF4\x90\x80\x80\"").kinds() == "invalid-utf8");
  CHECK(Parsed("\"\xE2\x82\"").kinds() == "invalid-utf8");
  CHECK(Parsed("\"\xF0\x9F\x98\x80\"").kinds().empty());
}

TEST_CASE("an unterminated string is reported from its quote to the end of the line") {
  Parsed parsed("{\n  a: \"abc\n}");
  CHECK(parsed.rendered() == "test.kotoba:2:6: error: unterminated string; add the closing \" "
                             "before the end of the line [unterminated-string]\n"
                             "  a: \"abc\n"
                             "     ^~~~\n");
  REQUIRE(parsed.root != nullptr);
  CHECK(parsed.tree() == "{a: \"abc\"}");
  CHECK(Parsed("'it").kinds() == "unterminated-string");
  CHECK(Parsed("\"ends in a backslash\\").kinds() == "unterminated-string");
}

TEST_CASE("an unterminated block comment is reported at its opening") {
  Parsed parsed("{ a: 1 } /* no end\n more");
  CHECK(parsed.rendered() == "test.kotoba:1:10: error: unterminated block comment; close it "
                             "with */ [unterminated-comment]\n"
                             "{ a: 1 } /* no end\n"
                             "         ^~\n");
  CHECK(Parsed("{ a: /* 1 }").kinds() == "unterminated-comment");
  CHECK(Parsed("/*/").kinds() == "unterminated-comment");
  CHECK(Parsed("1 /* a **/").kinds().empty());
}

TEST_CASE("invalid escapes are underlined and name the fix") {
  Parsed parsed(R"({ path: "C:\temp\x" })"); // \t is a tab; \x is the mistake
  CHECK(parsed.rendered() == "test.kotoba:1:17: error: invalid escape '\\x'; write '\\\\' for a "
                             "backslash [invalid-escape]\n"
                             "{ path: \"C:\\temp\\x\" }\n"
                             "                ^~\n");
  CHECK(Parsed(R"("\u12")").kinds() == "invalid-escape");
  CHECK(Parsed(R"("\u12G4")").kinds() == "invalid-escape");
  CHECK(Parsed("\"\\é\"").rendered().find("^~\n") != std::string::npos);
}

TEST_CASE("\\u escapes that are not a valid surrogate pair are lone surrogates") {
  Parsed high(R"({ s: "x\ud83dy" })");
  CHECK(high.rendered() ==
        "test.kotoba:1:8: error: lone surrogate '\\ud83d'; a high surrogate must be followed by "
        "a low one (\\udc00-\\udfff) [lone-surrogate]\n"
        "{ s: \"x\\ud83dy\" }\n"
        "       ^~~~~~\n");
  CHECK(Parsed(R"("\ude00")").kinds() == "lone-surrogate");
  CHECK(Parsed(R"("\ud83d\u0041")").kinds() == "lone-surrogate");
  CHECK(Parsed(R"("\ud83d\ud83d\ude00")").kinds() == "lone-surrogate");
}

TEST_CASE("malformed numbers are reported whole, with the fix") {
  auto message = [](std::string text) {
    Parsed parsed("{ n: " + text + " }");
    REQUIRE(parsed.diagnostics.diagnostics().size() == 1);
    const Diagnostic &diagnostic = parsed.diagnostics.diagnostics()[0];
    CHECK(diagnostic.kind == DiagnosticKind::InvalidNumber);
    CHECK(parsed.textOf(diagnostic.range) == text);
    return diagnostic.message;
  };
  CHECK(message("007") == "'007' has a leading zero; write 7");
  CHECK(message("00.5") == "'00.5' has a leading zero; write 0.5");
  CHECK(message(".5") == "'.5' needs a digit before the '.'; write 0.5");
  CHECK(message("1e") == "'1e' has an exponent without digits; write e.g. 1e3, or remove the 'e'");
  CHECK(message("2E+") ==
        "'2E+' has an exponent without digits; write e.g. 1e3, or remove the 'e'");
  CHECK(message("0x1F") ==
        "'0x1F' is not a number: hexadecimal is not supported; write it in decimal");
  CHECK(message("12abc") ==
        "'12abc' is not a number; put an operator or a comma between '12' and 'abc'");
  CHECK(message("1e999") == "'1e999' is too large for a number (the largest is about 1.8e308)");
}

TEST_CASE("a malformed number still stands in the tree, so nothing else is reported") {
  Parsed parsed("{ a: 007, b: 1 }");
  CHECK(parsed.kinds() == "invalid-number");
  CHECK(parsed.tree() == "{a: 0, b: 1}");
}

// ---- Syntax diagnostics ----

TEST_CASE("a syntax error underlines the offending token and says what was expected") {
  Parsed parsed("{\n  a: [1, 2 + ],\n}");
  CHECK(parsed.rendered() == "test.kotoba:2:14: error: expected a value, found ']' [syntax]\n"
                             "  a: [1, 2 + ],\n"
                             "             ^\n");
}

TEST_CASE("a missing comma is reported and the parse goes on as if it were there") {
  Parsed parsed("{\n  a: 1\n  b: [1 2 3],\n}");
  CHECK(parsed.rendered() == "test.kotoba:3:3: error: missing ',' before 'b' [syntax]\n"
                             "  b: [1 2 3],\n"
                             "  ^\n"
                             "test.kotoba:3:9: error: missing ',' before '2' [syntax]\n"
                             "  b: [1 2 3],\n"
                             "        ^\n"
                             "test.kotoba:3:11: error: missing ',' before '3' [syntax]\n"
                             "  b: [1 2 3],\n"
                             "          ^\n");
  CHECK(parsed.tree() == "{a: 1, b: (array 1 2 3)}");
  // Where the next element could continue the one before, it does.
  CHECK(tree("[1 -2]") == "(array (- 1 2))");
}

TEST_CASE("syntax messages name values, keys and names in plain words") {
  auto message = [](std::string text) {
    Parsed parsed(std::move(text));
    REQUIRE_FALSE(parsed.diagnostics.diagnostics().empty());
    CHECK(parsed.diagnostics.diagnostics()[0].kind == DiagnosticKind::Syntax);
    return parsed.diagnostics.diagnostics()[0].message;
  };
  CHECK(message("{ a: }") == "expected a value, found '}'");
  CHECK(message("{ 1: 2 }") == "expected a key or '}', found '1'");
  CHECK(message("$.") == "expected a name, found the end of the file");
  CHECK(message("{ a = 1 }") == "unexpected character '='; expected ':'");
  CHECK(message("[1, 2") == "expected ',' or ']', found the end of the file");
  CHECK(message("(1 + 2") == "expected ')', found the end of the file");
  CHECK(message("{ a: 1 } x") == "expected the end of the file, found 'x'");
  CHECK(message("[1, 2}") == "expected ',' or ']', found '}'");
  CHECK(message("{ a: \x01 }") == "unexpected character U+0001; expected a value");
  CHECK(message("{ a:\u00a01 }") == "unexpected character '\u00a0' (U+00A0); expected a value");
  CHECK(message("{ a: €}") == "unexpected character '€' (U+20AC); expected a value");
  Parsed badByte("{ a: \xFF }");
  CHECK(badByte.kinds() == "invalid-utf8 syntax");
  CHECK(badByte.diagnostics.diagnostics()[1].message == "unexpected byte 0xff; expected a value");
}

TEST_CASE("an error at the end of input points right after the last token") {
  Parsed parsed("{\n  a: [1, 2\n\n");
  REQUIRE_FALSE(parsed.diagnostics.diagnostics().empty());
  const Diagnostic &diagnostic = parsed.diagnostics.diagnostics()[0];
  CHECK(diagnostic.range.begin.offset == 12);
  CHECK(diagnostic.range.length() == 0);
  CHECK(parsed.rendered().find("test.kotoba:2:11:") == 0);
}

TEST_CASE("parsing recovers so that several syntax errors are reported in one run") {
  Parsed parsed("{\n  a: 1\n  b: [1 2],\n  c: (3,\n  d: 4,\n}");
  CHECK(parsed.diagnostics.errorCount() >= 3);
  for (const Diagnostic &diagnostic : parsed.diagnostics.diagnostics()) {
    CHECK(diagnostic.kind == DiagnosticKind::Syntax);
  }
  // Parts that parsed are still in the tree.
  REQUIRE(parsed.root != nullptr);
  CHECK(parsed.root->member("a") != nullptr);
  CHECK(parsed.root->member("d") != nullptr);
}

TEST_CASE("diagnostics of one file come in source order") {
  Parsed parsed("{ a: \"\\q\", b: 007, c: \"\xFF\", a: 1 }");
  CHECK(parsed.kinds() == "invalid-escape invalid-number invalid-utf8 duplicate-key");
}

TEST_CASE("an empty file, or one with only comments, is a syntax error") {
  Parsed empty("");
  CHECK(empty.root == nullptr);
  CHECK(empty.rendered() == "test.kotoba:1:1: error: the file is empty; a .kotoba file holds "
                            "one object, as in { workflow: { ... } } [syntax]\n"
                            "\n"
                            "^\n");
  Parsed comments("// nothing here\n/* really */\n");
  CHECK(comments.root == nullptr);
  CHECK(comments.kinds() == "syntax");
}

// ---- Duplicate keys ----

TEST_CASE("a duplicate key is reported on the second one with a note at the first") {
  Parsed parsed("{\n  id: 1,\n  name: 2,\n  'id': 3,\n}");
  CHECK(parsed.rendered() == "test.kotoba:4:3: error: duplicate key 'id'; remove one of the two "
                             "[duplicate-key]\n"
                             "  'id': 3,\n"
                             "  ^~~~\n"
                             "test.kotoba:2:3: note: 'id' is first set here\n"
                             "  id: 1,\n"
                             "  ^~\n");
}

TEST_CASE("duplicate keys are found in large objects and compared after decoding") {
  std::string text = "{";
  for (int index = 0; index < 100; ++index) {
    text += "k" + std::to_string(index) + ": " + std::to_string(index) + ", ";
  }
  text += "'k\\u0037': 0 }";
  Parsed parsed(text);
  CHECK(parsed.kinds() == "duplicate-key");
  REQUIRE(parsed.diagnostics.diagnostics().size() == 1);
  CHECK(parsed.diagnostics.diagnostics()[0].message == "duplicate key 'k7'; remove one of the two");
  CHECK(parsed.diagnostics.diagnostics()[0].notes.size() == 1);
}

TEST_CASE("the same key in different objects is no duplicate") {
  CHECK(tree("{ a: { a: 1 }, b: { a: 2 } }") == "{a: {a: 1}, b: {a: 2}}");
}

// ---- Quoted-string expressions ----

TEST_CASE("parseExpression maps exact positions past the opening quote") {
  Parsed file("{ x: \"$.inputs.amount * 2\" }");
  const Node *string = file.root->members[0].value;
  REQUIRE(string->verbatim);
  Node *expression = parseExpression(string->text, string->range, true, file.arena,
                                     file.diagnostics);
  REQUIRE(expression != nullptr);
  CHECK(dump(expression) == "(* (. (. $ inputs) amount) 2)");
  CHECK(file.textOf(expression->range) == "$.inputs.amount * 2");
  CHECK(file.textOf(expression->children[0]->nameRange) == "amount");
}

TEST_CASE("parseExpression reports syntax errors at the mapped position") {
  Parsed file("{ x: \"$.inputs.(\" }");
  const Node *string = file.root->members[0].value;
  CHECK(parseExpression(string->text, string->range, true, file.arena, file.diagnostics) ==
        nullptr);
  CHECK(file.rendered() == "test.kotoba:1:16: error: expected a name, found '(' [syntax]\n"
                           "{ x: \"$.inputs.(\" }\n"
                           "               ^\n");
}

TEST_CASE("without exact positions every node and diagnostic is placed at the origin") {
  Parsed file(R"({ x: "$.a\u0020+ 1", y: "$.b +" })");
  const Node *string = file.root->members[0].value;
  REQUIRE_FALSE(string->verbatim);
  Node *expression = parseExpression(string->text, string->range, false, file.arena,
                                     file.diagnostics);
  REQUIRE(expression != nullptr);
  CHECK(dump(expression) == "(+ (. $ a) 1)");
  CHECK(file.textOf(expression->range) == R"("$.a\u0020+ 1")");
  CHECK(file.textOf(expression->children[0]->range) == R"("$.a\u0020+ 1")");

  const Node *broken = file.root->members[1].value;
  CHECK(parseExpression(broken->text, broken->range, false, file.arena, file.diagnostics) ==
        nullptr);
  REQUIRE(file.diagnostics.diagnostics().size() == 1);
  CHECK(file.textOf(file.diagnostics.diagnostics()[0].range) == "\"$.b +\"");
  CHECK(file.diagnostics.diagnostics()[0].message ==
        "expected a value, found the end of the expression");
}

TEST_CASE("parseExpression accepts one expression and nothing after it") {
  Parsed file("{ x: \"$.a $.b\", y: \"\" }");
  const Node *two = file.root->members[0].value;
  CHECK(parseExpression(two->text, two->range, true, file.arena, file.diagnostics) == nullptr);
  CHECK(file.diagnostics.diagnostics()[0].message ==
        "expected the end of the expression, found '$'");
  const Node *empty = file.root->members[1].value;
  CHECK(parseExpression(empty->text, empty->range, true, file.arena, file.diagnostics) ==
        nullptr);
  CHECK(file.diagnostics.diagnostics()[1].message ==
        "empty expression; write one after '$', as in $.inputs.x");
}

// ---- The sample ----

TEST_CASE("the order processing sample parses into its structure") {
  // The shared sample, as copied into the check tests.
  std::string path = KOTOBA_SOURCE_DIR "/tests/compiler/check/order-processing-sample.kotoba";
  SourceManager sources;
  std::string error;
  std::optional<FileId> file = sources.loadFile(path, error);
  REQUIRE_MESSAGE(file.has_value(), error);
  SyntaxArena arena;
  DiagnosticEngine diagnostics(sources);
  Node *root = parseFile(sources, *file, arena, diagnostics);
  CHECK(diagnostics.diagnostics().empty());
  REQUIRE(root != nullptr);
  REQUIRE(root->kind == NodeKind::Object);

  const Node *activities = root->member("activities")->value;
  REQUIRE(activities->kind == NodeKind::Array);
  CHECK(activities->children.size() == 8);
  CHECK(activities->children[0]->member("name")->value->text == "validate_order");

  const Node *workflow = root->member("workflow")->value;
  CHECK(workflow->member("id")->value->text == "order_processing");
  CHECK(workflow->member("inputs")->value->children.size() == 4);
  const Node *items = workflow->member("inputs")->value->children[3];
  CHECK(items->member("required")->value->kind == NodeKind::Bool);
  CHECK(items->member("default_value")->value->kind == NodeKind::Array);

  const Node *strategy = workflow->member("strategy")->value;
  CHECK(strategy->member("op")->value->text == "saga");
  const Node *steps = strategy->member("main_flow")->value->member("strategies")->value;
  REQUIRE(steps->children.size() == 3);
  const Node *retry = steps->children[0]->member("retry_policy")->value;
  CHECK(retry->member("backoff_coefficient")->value->kind == NodeKind::Double);
  CHECK(retry->member("backoff_coefficient")->value->doubleValue == 1.5);
  CHECK(retry->member("maximum_attempts")->value->intValue == 3);

  const Node *payment = steps->children[1]->member("branches")->value->children[0];
  const Node *mapping = payment->member("compensate")->value->member("input_mapping")->value;
  CHECK(dump(mapping->member("payment_id")->value) == "(. (. $ result) payment_id)");

  const Node *reason = strategy->member("compensation")->value->member("input_mapping")->value;
  const Node *message = reason->member("reason")->value;
  CHECK(dump(message) == "(. (. $ error) message)");
  CHECK(sources.lineColumn(message->range.begin).line == 112);
}

// ---- Robustness ----

TEST_CASE("nesting up to the limit parses") {
  size_t depth = maxNestingDepth - 1;
  Parsed arrays(repeat("[", depth) + repeat("]", depth));
  CHECK(arrays.diagnostics.diagnostics().empty());
  CHECK(arrays.root != nullptr);
  Parsed objects(repeat("{a:", depth) + "1" + repeat("}", depth));
  CHECK(objects.diagnostics.diagnostics().empty());
  CHECK(objects.root != nullptr);
}

TEST_CASE("10,000 levels of nesting give nesting-too-deep, not a stack overflow") {
  const size_t depth = 10000;
  auto check = [](std::string text) {
    Parsed parsed(std::move(text));
    CHECK(parsed.kinds() == "nesting-too-deep");
    CHECK(parsed.root == nullptr);
  };
  check(repeat("[", depth) + repeat("]", depth));
  check(repeat("[", depth));
  check(repeat("{a:", depth) + "1" + repeat("}", depth));
  check(repeat("(", depth) + "1" + repeat(")", depth));
  check(repeat("!", depth) + "true");
  check(repeat("-", depth) + "1");
  check(repeat("- ", depth) + "$.x");
  check(repeat("a ? b : ", depth) + "c");
  check(repeat("a ? ", depth) + "b" + repeat(" : c", depth));
  check("{ x: [" + repeat("f(", depth) + repeat(")", depth) + "] }");
}

TEST_CASE("the nesting diagnostic points at the token that goes too deep") {
  Parsed parsed(repeat("[", 300) + repeat("]", 300));
  REQUIRE(parsed.diagnostics.diagnostics().size() == 1);
  const Diagnostic &diagnostic = parsed.diagnostics.diagnostics()[0];
  CHECK(diagnostic.range.begin.offset == maxNestingDepth);
  CHECK(diagnostic.message ==
        "nesting deeper than 256 levels is not supported; flatten this value or expression");
}

TEST_CASE("long flat chains of left-associative operators do not overflow the stack") {
  const size_t terms = 100000;
  for (std::string_view op : {"+", "*", "&&", "??", "=="}) {
    Parsed parsed("1" + repeat(std::string(" ") + std::string(op) + " 1", terms - 1));
    CHECK(parsed.kinds() == "nesting-too-deep");
  }
  Parsed members("$" + repeat(".a", terms));
  CHECK(members.kinds() == "nesting-too-deep");
  Parsed indexes("$" + repeat("[0]", terms));
  CHECK(indexes.kinds() == "nesting-too-deep");
  // Flat lists of any length are not nesting.
  Parsed list("[" + repeat("1, ", terms) + "]");
  CHECK(list.diagnostics.diagnostics().empty());
  REQUIRE(list.root != nullptr);
  CHECK(list.root->children.size() == terms);
}

TEST_CASE("a chain within the limit builds a left-deep tree") {
  Parsed parsed("1" + repeat(" + 1", 200));
  CHECK(parsed.diagnostics.diagnostics().empty());
  REQUIRE(parsed.root != nullptr);
  size_t depth = 0;
  for (const Node *node = parsed.root; node->kind == NodeKind::Binary;
       node = node->children[0]) {
    ++depth;
  }
  CHECK(depth == 200);
}

TEST_CASE("a large file with many values parses completely") {
  std::string text = "{ items: [\n";
  const size_t count = 50000;
  for (size_t index = 0; index < count; ++index) {
    text += "  { id: " + std::to_string(index) + ", name: \"item " + std::to_string(index) +
            "\", price: " + std::to_string(index) + ".5, tags: ['a', 'b'], ok: true },\n";
  }
  text += "] }";
  Parsed parsed(text);
  CHECK(parsed.diagnostics.diagnostics().empty());
  REQUIRE(parsed.root != nullptr);
  const Node *items = parsed.root->member("items")->value;
  REQUIRE(items->children.size() == count);
  CHECK(items->children[count - 1]->member("id")->value->intValue == count - 1);
}

TEST_CASE("binary garbage gets diagnostics, a bounded number of them, and no crash") {
  std::mt19937 random(12345);
  std::string garbage(1 << 20, '\0');
  for (char &byte : garbage) {
    byte = static_cast<char>(random() & 0xFF);
  }
  Parsed parsed(garbage);
  CHECK(parsed.diagnostics.hasErrors());
  CHECK(parsed.diagnostics.diagnostics().size() <= 100);
  CHECK(parsed.kinds().find("invalid-utf8") == 0);
}

TEST_CASE("past 100 diagnostics in one file, the rest are only counted") {
  Parsed parsed("[" + repeat("\"\\q\",\n", 300) + "]");
  REQUIRE(parsed.diagnostics.diagnostics().size() == 100);
  CHECK(parsed.diagnostics.errorCount() == 100);
  const Diagnostic &last = parsed.diagnostics.diagnostics().back();
  CHECK(parsed.sources.lineColumn(last.range.begin).line == 100);
  REQUIRE(last.notes.size() == 1);
  CHECK(parsed.diagnostics.render(last).find(
            "kotobac: note: 200 more problems in this file are not shown; fix the ones above "
            "first\n") != std::string::npos);
}

TEST_CASE("random mixes of the language's own tokens never crash the parser") {
  const char *pieces[] = {"{", "}", "[", "]", "(", ")", ",", ":", ".", "$", "?", "??", "!",
                          "-", "+", "*", "a", "in", "true", "1", "'s'", "\"", "/*", "//",
                          "\n", "[*]", "f(", "1e", "\\u"};
  std::mt19937 random(42);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    size_t length = random() % 60;
    for (size_t index = 0; index < length; ++index) {
      text += pieces[random() % std::size(pieces)];
      text += ' ';
    }
    Parsed parsed(text);
    CHECK((parsed.root != nullptr || parsed.diagnostics.hasErrors()));
  }
}
