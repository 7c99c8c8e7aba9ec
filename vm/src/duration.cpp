// Duration parsing and formatting. Amounts are read as decimal digits and converted with
// exact integer arithmetic, so `PT0.1S` is exactly 100 ms and never 99.99999 rounded.
#include "kotoba/vm/duration.h"

#include <fmt/format.h>

#include <array>
#include <cassert>
#include <limits>
#include <numeric>
#include <optional>

namespace kotoba {

namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerMinute = 60 * kMillisPerSecond;
constexpr int64_t kMillisPerHour = 60 * kMillisPerMinute;
constexpr int64_t kMillisPerDay = 24 * kMillisPerHour;
constexpr int64_t kMillisPerWeek = 7 * kMillisPerDay;

// A fraction with more significant digits than this cannot be a whole number of
// milliseconds for any unit (the largest, a week, has only 10^5 among its factors of ten).
constexpr size_t kMaxFractionDigits = 18;

// One `<digits>[.<digits>]` amount, as written.
struct Amount {
  std::string_view whole;
  std::string_view fraction; // without the dot; empty when there is none
};

class DurationParser {
public:
  explicit DurationParser(std::string_view text) : text_(text) {}

  Result<int64_t> parse() {
    if (text_.empty()) {
      return expressionError("empty duration; write one such as PT30S or 30s");
    }
    if (text_.front() == '-' || text_.front() == '+') {
      return fail("durations cannot have a sign; a duration is a length of time, >= 0");
    }
    if (text_.front() == 'P') {
      return parseIso();
    }
    if (text_.front() == 'p') {
      return fail("ISO 8601 durations are written in upper case, such as PT30S");
    }
    if (isDigit(text_.front())) {
      return parseShort();
    }
    return fail("a duration starts with 'P' (ISO 8601, such as PT30S) or a number with a "
                "unit (such as 30s)");
  }

private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t total_ = 0;

  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  WorkflowError fail(std::string_view problem) const {
    return expressionError(fmt::format("invalid duration '{}': {}", text_, problem));
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  std::optional<Amount> readAmount() {
    size_t start = pos_;
    while (!atEnd() && isDigit(peek())) {
      ++pos_;
    }
    if (pos_ == start) {
      return std::nullopt;
    }
    Amount amount{text_.substr(start, pos_ - start), {}};
    if (peek() == '.' || peek() == ',') {
      ++pos_;
      size_t fractionStart = pos_;
      while (!atEnd() && isDigit(peek())) {
        ++pos_;
      }
      amount.fraction = text_.substr(fractionStart, pos_ - fractionStart);
      // A dot without digits after it is caught by the caller as a missing unit.
      if (amount.fraction.empty()) {
        pos_ = fractionStart - 1;
      }
    }
    return amount;
  }

  // Adds amount * unit to the total, exactly, or explains why it cannot.
  std::optional<WorkflowError> accumulate(const Amount &amount, int64_t unitMs) {
    int64_t whole = 0;
    for (char digit : amount.whole) {
      if (__builtin_mul_overflow(whole, 10, &whole) ||
          __builtin_add_overflow(whole, digit - '0', &whole)) {
        return tooLong();
      }
    }
    std::string_view fraction = amount.fraction;
    while (!fraction.empty() && fraction.back() == '0') {
      fraction.remove_suffix(1);
    }
    int64_t fractionMs = 0;
    if (!fraction.empty()) {
      if (fraction.size() > kMaxFractionDigits) {
        return finerThanMillis();
      }
      int64_t numerator = 0;
      int64_t denominator = 1;
      for (char digit : fraction) {
        numerator = numerator * 10 + (digit - '0');
        denominator *= 10;
      }
      // numerator / denominator * unitMs must be whole. Cancelling the common factor first
      // keeps every intermediate below the final product, which is below unitMs.
      int64_t common = std::gcd(denominator, unitMs);
      int64_t reducedDenominator = denominator / common;
      if (numerator % reducedDenominator != 0) {
        return finerThanMillis();
      }
      fractionMs = numerator / reducedDenominator * (unitMs / common);
    }
    int64_t sum = 0;
    if (__builtin_mul_overflow(whole, unitMs, &sum) ||
        __builtin_add_overflow(sum, fractionMs, &sum) ||
        __builtin_add_overflow(sum, total_, &sum)) {
      return tooLong();
    }
    total_ = sum;
    return std::nullopt;
  }

  WorkflowError tooLong() const {
    return fail("too long; the longest duration is 9223372036854775807 ms, about 292 million "
                "years");
  }
  WorkflowError finerThanMillis() const {
    return fail("durations have millisecond precision; this is not a whole number of "
                "milliseconds");
  }

  Result<int64_t> parseIso() {
    ++pos_; // 'P'
    if (atEnd()) {
      return fail("no amount after 'P'; write one such as PT30S or P1D");
    }
    // Designators in the order they must appear; an index into this list enforces it.
    struct Designator {
      char letter;
      bool timePart;
      int64_t unitMs;
    };
    static constexpr std::array<Designator, 5> kOrder = {{
        {'W', false, kMillisPerWeek},
        {'D', false, kMillisPerDay},
        {'H', true, kMillisPerHour},
        {'M', true, kMillisPerMinute},
        {'S', true, kMillisPerSecond},
    }};
    bool inTimePart = false;
    bool sawWeeks = false;
    size_t amounts = 0;
    size_t next = 0; // the first designator still allowed
    while (!atEnd()) {
      if (peek() == 'T') {
        if (inTimePart) {
          return fail("'T' appears twice");
        }
        inTimePart = true;
        ++pos_;
        if (atEnd()) {
          return fail("no amount after 'T'; write one such as PT30S");
        }
        continue;
      }
      std::optional<Amount> amount = readAmount();
      if (!amount) {
        return fail(fmt::format("expected a number at '{}'", text_.substr(pos_)));
      }
      if (atEnd()) {
        return fail(fmt::format("the number {} has no unit; end it with W, D, H, M or S",
                                amount->whole));
      }
      char letter = peek();
      ++pos_;
      if (letter == 'Y' || (letter == 'M' && !inTimePart)) {
        return fail("months and years have no fixed length; use days instead, such as P30D");
      }
      size_t index = 0;
      while (index < kOrder.size() && kOrder[index].letter != letter) {
        ++index;
      }
      if (index == kOrder.size()) {
        return fail(fmt::format("unknown unit '{}'; ISO 8601 durations use W, D, H, M and S",
                                std::string_view(&text_[pos_ - 1], 1)));
      }
      const Designator &designator = kOrder[index];
      if (designator.timePart && !inTimePart) {
        return fail(fmt::format("'{}' belongs after 'T', as in PT{}{}", letter, amount->whole,
                                letter));
      }
      if (!designator.timePart && inTimePart) {
        return fail(fmt::format("'{}' belongs before 'T', as in P{}{}", letter, amount->whole,
                                letter));
      }
      if (sawWeeks || (letter == 'W' && amounts > 0)) {
        return fail("weeks cannot be combined with other units; write the total in days, "
                    "such as P9D");
      }
      if (index < next) {
        return fail("units must go from largest to smallest, each at most once");
      }
      sawWeeks = letter == 'W';
      next = index + 1;
      ++amounts;
      if (auto error = accumulate(*amount, designator.unitMs)) {
        return std::move(*error);
      }
    }
    if (amounts == 0) {
      return fail("no amount after 'T'; write one such as PT30S");
    }
    return total_;
  }

  Result<int64_t> parseShort() {
    struct Unit {
      std::string_view name;
      int64_t unitMs;
    };
    // Largest first; "ms" is matched before "m" by trying the longer spelling first below.
    static constexpr std::array<Unit, 5> kOrder = {{
        {"d", kMillisPerDay},
        {"h", kMillisPerHour},
        {"m", kMillisPerMinute},
        {"s", kMillisPerSecond},
        {"ms", 1},
    }};
    size_t next = 0;
    while (!atEnd()) {
      std::optional<Amount> amount = readAmount();
      if (!amount) {
        return fail(fmt::format("expected a number at '{}'", text_.substr(pos_)));
      }
      size_t unitStart = pos_;
      while (!atEnd() && !isDigit(peek())) {
        ++pos_;
      }
      std::string_view unitText = text_.substr(unitStart, pos_ - unitStart);
      if (unitText.empty()) {
        return fail(fmt::format("the number {} has no unit; add one, such as {}s or PT{}S",
                                amount->whole, amount->whole, amount->whole));
      }
      size_t index = 0;
      while (index < kOrder.size() && kOrder[index].name != unitText) {
        ++index;
      }
      if (index == kOrder.size()) {
        return fail(fmt::format("unknown unit '{}'; use ms, s, m, h or d", unitText));
      }
      if (index < next) {
        return fail("units must go from largest to smallest, each at most once, as in 1h30m");
      }
      next = index + 1;
      if (auto error = accumulate(*amount, kOrder[index].unitMs)) {
        return std::move(*error);
      }
    }
    return total_;
  }
};

} // namespace

Result<int64_t> parseDurationMs(std::string_view text) { return DurationParser(text).parse(); }

std::string formatDurationMs(int64_t milliseconds) {
  if (milliseconds == 0) {
    return "0s";
  }
  std::string out;
  // The magnitude as unsigned, so INT64_MIN does not overflow when negated.
  uint64_t remaining = static_cast<uint64_t>(milliseconds);
  if (milliseconds < 0) {
    out += '-';
    remaining = ~remaining + 1;
  }
  struct Unit {
    const char *name;
    uint64_t unitMs;
  };
  static constexpr std::array<Unit, 5> kUnits = {{
      {"d", kMillisPerDay},
      {"h", kMillisPerHour},
      {"m", kMillisPerMinute},
      {"s", kMillisPerSecond},
      {"ms", 1},
  }};
  for (const Unit &unit : kUnits) {
    uint64_t count = remaining / unit.unitMs;
    remaining %= unit.unitMs;
    if (count > 0) {
      out += fmt::format("{}{}", count, unit.name);
    }
  }
  return out;
}

} // namespace kotoba
