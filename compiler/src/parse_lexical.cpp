// UTF-8 validation, string decoding and number decoding for the parser (see
// parse_lexical.h). Everything here is a linear scan over bytes; none of it allocates per
// character except to append to the decoded value.
#include "parse_lexical.h"

#include <cassert>
#include <algorithm>
#include <charconv>

namespace kotoba::compiler::lexical {
namespace {

bool isContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence at `at`, or 0 when the bytes there are not one. The
// ranges exclude overlong forms, surrogates and code points past U+10FFFF.
size_t validSequenceLength(std::string_view text, size_t at) {
  auto byte = [&](size_t index) -> unsigned char {
    return index < text.size() ? static_cast<unsigned char>(text[index]) : 0;
  };
  unsigned char lead = byte(at);
  if (lead < 0x80) {
    return 1;
  }
  unsigned char second = byte(at + 1);
  if (lead >= 0xC2 && lead <= 0xDF) {
    return isContinuation(second) ? 2 : 0;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    unsigned char low = lead == 0xE0 ? 0xA0 : 0x80;
    unsigned char high = lead == 0xED ? 0x9F : 0xBF;
    bool ok = second >= low && second <= high && isContinuation(byte(at + 2));
    return ok ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    unsigned char low = lead == 0xF0 ? 0x90 : 0x80;
    unsigned char high = lead == 0xF4 ? 0x8F : 0xBF;
    bool ok = second >= low && second <= high && isContinuation(byte(at + 2)) &&
              isContinuation(byte(at + 3));
    return ok ? 4 : 0;
  }
  return 0;
}

void appendUtf8(std::string &out, uint32_t codePoint) {
  if (codePoint < 0x80) {
    out += static_cast<char>(codePoint);
  } else if (codePoint < 0x800) {
    out += static_cast<char>(0xC0 | (codePoint >> 6));
    out += static_cast<char>(0x80 | (codePoint & 0x3F));
  } else if (codePoint < 0x10000) {
    out += static_cast<char>(0xE0 | (codePoint >> 12));
    out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codePoint & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (codePoint >> 18));
    out += static_cast<char>(0x80 | ((codePoint >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((codePoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codePoint & 0x3F));
  }
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// The four hex digits after `\u` at `at` (the backslash), or -1 when there are not four.
int32_t readUnicodeEscape(std::string_view body, size_t at) {
  if (at + 6 > body.size() || body[at + 1] != 'u') {
    return -1;
  }
  int32_t value = 0;
  for (size_t digit = at + 2; digit < at + 6; ++digit) {
    int nibble = hexDigit(body[digit]);
    if (nibble < 0) {
      return -1;
    }
    value = value * 16 + nibble;
  }
  return value;
}

std::string hex4(int32_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) {
    out += digits[(value >> shift) & 0xF];
  }
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Checks `text` against the JSON number grammar. Returns an empty string when it matches,
// else what is wrong with it, in words that name the fix.
std::string jsonNumberProblem(std::string_view text) {
  std::string quoted = "'" + std::string(text) + "'";
  size_t at = 0;
  if (text.empty() || text[0] == '.') {
    return quoted + " needs a digit before the '.'; write 0" + std::string(text);
  }
  size_t intBegin = at;
  while (at < text.size() && isDigit(text[at])) {
    ++at;
  }
  if (at - intBegin > 1 && text[intBegin] == '0') {
    size_t firstNonZero = std::min(text.find_first_not_of('0'), text.size());
    std::string fixed(text.substr(firstNonZero));
    if (fixed.empty() || !isDigit(fixed[0])) {
      fixed = "0" + fixed;
    }
    return quoted + " has a leading zero; write " + fixed;
  }
  if (at < text.size() && text[at] == '.') {
    ++at;
    size_t fractionBegin = at;
    while (at < text.size() && isDigit(text[at])) {
      ++at;
    }
    if (at == fractionBegin) {
      return quoted + " needs a digit after the '.'";
    }
  }
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
      ++at;
    }
    size_t exponentBegin = at;
    while (at < text.size() && isDigit(text[at])) {
      ++at;
    }
    if (at == exponentBegin) {
      return quoted + " has an exponent without digits; write e.g. 1e3, or remove the 'e'";
    }
  }
  if (at < text.size()) {
    if (text.size() > 1 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
      return quoted + " is not a number: hexadecimal is not supported; write it in decimal";
    }
    return quoted + " is not a number; put an operator or a comma between '" +
           std::string(text.substr(0, at)) + "' and '" + std::string(text.substr(at)) + "'";
  }
  return {};
}

// Decimal exponent of the leading significant digit of a JSON number, e.g. 2 for 123.4,
// -3 for 0.001, 401 for 1e401; tells an overflow from an underflow.
long magnitude(std::string_view text) {
  size_t exponentAt = text.find_first_of("eE");
  std::string_view mantissa = text.substr(0, exponentAt);
  long exponent = 0;
  if (exponentAt != std::string_view::npos) {
    std::string_view digits = text.substr(exponentAt + 1);
    bool negative = !digits.empty() && digits[0] == '-';
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
      digits.remove_prefix(1);
    }
    for (char c : digits) {
      exponent = std::min(exponent * 10 + (c - '0'), 1000000L);
    }
    exponent = negative ? -exponent : exponent;
  }
  size_t dot = mantissa.find('.');
  std::string_view whole = mantissa.substr(0, dot);
  size_t firstNonZero = whole.find_first_not_of('0');
  if (firstNonZero != std::string_view::npos) {
    return exponent + static_cast<long>(whole.size() - firstNonZero) - 1;
  }
  if (dot == std::string_view::npos) {
    return exponent;
  }
  std::string_view fraction = mantissa.substr(dot + 1);
  size_t firstFractionDigit = fraction.find_first_not_of('0');
  return exponent - static_cast<long>(firstFractionDigit == std::string_view::npos
                                          ? fraction.size()
                                          : firstFractionDigit + 1);
}

} // namespace

std::vector<uint32_t> findInvalidUtf8(std::string_view text, size_t limit) {
  std::vector<uint32_t> offsets;
  size_t at = 0;
  while (at < text.size() && offsets.size() < limit) {
    if (static_cast<unsigned char>(text[at]) < 0x80) {
      ++at;
      continue;
    }
    size_t length = validSequenceLength(text, at);
    if (length > 0) {
      at += length;
      continue;
    }
    offsets.push_back(static_cast<uint32_t>(at));
    // One report per line: a binary file would otherwise give one per byte.
    size_t lineEnd = text.find('\n', at);
    at = lineEnd == std::string_view::npos ? text.size() : lineEnd + 1;
  }
  return offsets;
}

std::string invalidUtf8Message(std::string_view text, uint32_t offset) {
  assert(offset < text.size() && "offset of an invalid byte must be inside the text");
  static const char digits[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[offset]);
  std::string hex = {'0', 'x', digits[byte >> 4], digits[byte & 0xF]};
  return "invalid UTF-8 byte " + hex + "; a .kotoba file must be saved as UTF-8";
}

DecodedString decodeString(std::string_view quoted, bool terminated,
                           std::vector<Problem> &problems) {
  assert(!quoted.empty() && "a string token starts with its quote");
  std::string_view body = quoted.substr(1, quoted.size() - (terminated ? 2 : 1));
  DecodedString decoded;
  decoded.verbatim = terminated && body.find('\\') == std::string_view::npos;
  if (decoded.verbatim) {
    decoded.value = body;
    return decoded;
  }
  decoded.value.reserve(body.size());
  // Offsets in problems are relative to `quoted`, hence the +1 for the opening quote.
  auto report = [&](DiagnosticKind kind, size_t begin, size_t end, std::string message) {
    problems.push_back(Problem{kind, static_cast<uint32_t>(begin + 1),
                               static_cast<uint32_t>(end + 1), std::move(message)});
  };
  size_t at = 0;
  while (at < body.size()) {
    char c = body[at];
    if (c != '\\') {
      decoded.value += c;
      ++at;
      continue;
    }
    if (at + 1 >= body.size()) {
      // A backslash right before the missing closing quote; unterminated-string says it.
      decoded.value += c;
      break;
    }
    char escaped = body[at + 1];
    switch (escaped) {
    case '"':
    case '\'':
    case '\\':
    case '/':
      decoded.value += escaped;
      at += 2;
      continue;
    case 'b':
      decoded.value += '\b';
      at += 2;
      continue;
    case 'f':
      decoded.value += '\f';
      at += 2;
      continue;
    case 'n':
      decoded.value += '\n';
      at += 2;
      continue;
    case 'r':
      decoded.value += '\r';
      at += 2;
      continue;
    case 't':
      decoded.value += '\t';
      at += 2;
      continue;
    case 'u':
      break;
    default: {
      // Underline the whole escaped character, which may be several bytes of UTF-8.
      size_t end = at + 2;
      while (end < body.size() && isContinuation(static_cast<unsigned char>(body[end]))) {
        ++end;
      }
      std::string written(body.substr(at, end - at));
      report(DiagnosticKind::InvalidEscape, at, end,
             "invalid escape '" + written + "'; write '\\\\' for a backslash");
      decoded.value += written;
      at = end;
      continue;
    }
    }
    int32_t unit = readUnicodeEscape(body, at);
    if (unit < 0) {
      size_t end = at + 2;
      while (end < body.size() && end < at + 6 && hexDigit(body[end]) >= 0) {
        ++end;
      }
      report(DiagnosticKind::InvalidEscape, at, end,
             "'\\u' needs exactly four hex digits, as in '\\u00e9'");
      decoded.value += body.substr(at, end - at);
      at = end;
      continue;
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      int32_t low = readUnicodeEscape(body, at + 6);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        appendUtf8(decoded.value,
                   0x10000 + ((static_cast<uint32_t>(unit) - 0xD800) << 10) +
                       (static_cast<uint32_t>(low) - 0xDC00));
        at += 12;
        continue;
      }
      report(DiagnosticKind::LoneSurrogate, at, at + 6,
             "lone surrogate '" + hex4(unit) +
                 "'; a high surrogate must be followed by a low one (\\udc00-\\udfff)");
      decoded.value += body.substr(at, 6);
      at += 6;
      continue;
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      report(DiagnosticKind::LoneSurrogate, at, at + 6,
             "lone surrogate '" + hex4(unit) +
                 "'; a low surrogate must follow a high one (\\ud800-\\udbff)");
      decoded.value += body.substr(at, 6);
      at += 6;
      continue;
    }
    appendUtf8(decoded.value, static_cast<uint32_t>(unit));
    at += 6;
  }
  return decoded;
}

DecodedNumber decodeNumber(std::string_view text, bool negative,
                           std::vector<Problem> &problems) {
  DecodedNumber number;
  std::string problem = jsonNumberProblem(text);
  if (!problem.empty()) {
    problems.push_back(Problem{DiagnosticKind::InvalidNumber, 0,
                               static_cast<uint32_t>(text.size()), std::move(problem)});
    number.isInteger = true;
    return number;
  }
  std::string signedText = negative ? "-" + std::string(text) : std::string(text);
  const char *first = signedText.data();
  const char *last = first + signedText.size();
  if (text.find_first_of(".eE") == std::string_view::npos) {
    auto [end, error] = std::from_chars(first, last, number.integer);
    if (error == std::errc() && end == last) {
      number.isInteger = true;
      return number;
    }
    // Too large for int64: the language makes it a double.
  }
  auto [end, error] = std::from_chars(first, last, number.real);
  if (error == std::errc::result_out_of_range) {
    if (magnitude(text) > 0) {
      problems.push_back(Problem{DiagnosticKind::InvalidNumber, 0,
                                 static_cast<uint32_t>(text.size()),
                                 "'" + std::string(text) +
                                     "' is too large for a number (the largest is about "
                                     "1.8e308)"});
      number.real = 0;
    } else {
      number.real = negative ? -0.0 : 0.0; // underflow: closer to zero than any double
    }
    return number;
  }
  assert(error == std::errc() && end == last && "a JSON number must convert to a double");
  return number;
}

} // namespace kotoba::compiler::lexical
