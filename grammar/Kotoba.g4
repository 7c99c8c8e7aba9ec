// The .kotoba language: lexical syntax and expressions (language.md sections 1 and 4).
//
// A file is one value, and every value is an expression: object and array literals are
// expressions of the language, so the checker, not the grammar, decides where only
// constants are allowed. The lexer runs over the file's bytes, not its code points
// (compiler/src/parser.cpp feeds it one symbol per byte), so token positions are byte
// offsets, and any byte at or above 0x80 can only appear inside strings and comments.
// Escapes, numbers and nesting depth are checked by the tree builder, which has better
// words for them than a lexer error; the lexer only needs to find where each token ends.
grammar Kotoba;

// ---- Parser ----

// A whole .kotoba file.
file
    : expression EOF
    ;

// One expression on its own: the text of a quoted string such as "$.inputs.orderId".
expressionOnly
    : expression EOF
    ;

// Alternatives listed first bind tightest (ANTLR's left-recursion rewrite). Binary chains
// are parsed by a loop, not by recursion, so `1+1+...` cannot exhaust the stack here.
// The commas between members and elements are optional here only so that a forgotten one,
// the most common slip, does not derail the parse: the builder reports each one missing.
// Where an element could continue the one before (`[a -1]`, `[a [0]]`), it does.
expression
    : expression DOT memberName                                     # memberExpr
    | expression LBRACKET STAR RBRACKET                             # projectionExpr
    | expression LBRACKET expression RBRACKET                       # indexExpr
    | op=(BANG | MINUS) expression                                  # unaryExpr
    | expression op=(STAR | SLASH | PERCENT) expression             # multiplicativeExpr
    | expression op=(PLUS | MINUS) expression                       # additiveExpr
    | expression KW_IN expression                                   # inExpr
    | expression op=(LT | LE | GT | GE) expression                  # comparisonExpr
    | expression op=(EQ | NE) expression                            # equalityExpr
    | expression AND expression                                     # andExpr
    | expression OR expression                                      # orExpr
    | expression COALESCE expression                                # coalesceExpr
    | <assoc=right> expression QUESTION expression COLON expression # conditionalExpr
    | DOLLAR                                                        # rootExpr
    | IDENT LPAREN (expression (COMMA expression)*)? RPAREN         # callExpr
    | IDENT                                                         # identifierExpr
    | LPAREN expression RPAREN                                      # parenExpr
    | LBRACE (objectMember (COMMA? objectMember)* COMMA?)? RBRACE    # objectExpr
    | LBRACKET (expression (COMMA? expression)* COMMA?)? RBRACKET   # arrayExpr
    | (STRING | UNTERMINATED_STRING)                                # stringExpr
    | NUMBER                                                        # numberExpr
    | (KW_TRUE | KW_FALSE)                                          # boolExpr
    | KW_NULL                                                       # nullExpr
    ;

objectMember
    : objectKey COLON expression
    ;

// Keys are bare identifier-like words (keywords included) or quoted strings.
objectKey
    : IDENT | KW_TRUE | KW_FALSE | KW_NULL | KW_IN | STRING | UNTERMINATED_STRING
    ;

// Any identifier-like word may follow a dot: `$.result.in` and `$.vars.true` are paths.
memberName
    : IDENT | KW_TRUE | KW_FALSE | KW_NULL | KW_IN
    ;

// ---- Lexer ----

KW_TRUE  : 'true';
KW_FALSE : 'false';
KW_NULL  : 'null';
KW_IN    : 'in';

IDENT : [A-Za-z_] [A-Za-z0-9_]*;

// Deliberately wider than JSON: a leading '.', leading zeros, an exponent without digits
// and letters glued to the end all lex as one NUMBER, so that the builder can report the
// whole malformed number at once instead of a confusing syntax error after its prefix.
// A fraction needs a digit after the '.', so that `$.list[0].name` keeps its member.
NUMBER
    : ( [0-9]+ ('.' [0-9]+)? | '.' [0-9]+ ) ([eE] [+-]? [0-9]*)? [A-Za-z0-9_]*
    ;

// Any escape is accepted here; the builder decodes them and reports the invalid ones.
// A string ends at the end of its line: a raw line break inside one is never intended.
STRING
    : '"' (~["\\\r\n] | '\\' ~[\r\n])* '"'
    | '\'' (~['\\\r\n] | '\\' ~[\r\n])* '\''
    ;

// A string with no closing quote on its line. Lexing wins the longest match, so a closed
// string is always a STRING. The parser accepts it where a string may stand, so that the
// one unterminated-string diagnostic is not followed by syntax errors about the same spot.
UNTERMINATED_STRING
    : '"' (~["\\\r\n] | '\\' ~[\r\n])* '\\'?
    | '\'' (~['\\\r\n] | '\\' ~[\r\n])* '\\'?
    ;

LBRACE    : '{';
RBRACE    : '}';
LBRACKET  : '[';
RBRACKET  : ']';
LPAREN    : '(';
RPAREN    : ')';
COMMA     : ',';
COLON     : ':';
DOT       : '.';
DOLLAR    : '$';
COALESCE  : '??';
QUESTION  : '?';
OR        : '||';
AND       : '&&';
EQ        : '==';
NE        : '!=';
LE        : '<=';
GE        : '>=';
LT        : '<';
GT        : '>';
PLUS      : '+';
MINUS     : '-';
STAR      : '*';
SLASH     : '/';
PERCENT   : '%';
BANG      : '!';

WHITESPACE    : [ \t\r\n]+ -> skip;
LINE_COMMENT  : ('//' | '#') ~[\r\n]* -> skip;
BLOCK_COMMENT : '/*' .*? '*/' -> skip;

// The longest text that starts a block comment and never closes it. A closed comment is
// one byte longer than this can match, so this only wins when there is no `*/` at all.
// It is hidden from the parser; the builder reports it.
UNTERMINATED_COMMENT
    : '/*' (~'*' | '*'+ ~[*/])* '*'* -> channel(HIDDEN)
    ;

// Anything else: one byte plus the UTF-8 continuation bytes after it, so that a stray
// non-ASCII character is one token. The parser reports it as an unexpected character.
UNEXPECTED_CHARACTER
    : . [\u0080-\u00BF]*
    ;
