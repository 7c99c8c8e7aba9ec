// Durations (language.md section 8): timeouts, timers and retry intervals are written as
// ISO 8601 durations or a short form and stored as int64 milliseconds.
//
// Accepted:
// - ISO 8601: `PnW` alone, or `PnD` and/or `T` followed by `nH`, `nM`, `nS` in that order
//   (`P1D`, `PT30S`, `P1DT12H`, `PT1H30M`). Upper case only, as the standard writes it.
// - Short form: one or more `<number><unit>` with units `d`, `h`, `m`, `s`, `ms`, largest
//   first, each at most once (`250ms`, `10s`, `5m`, `2h`, `1d`, `1h30m`, `1s500ms`).
// - Any amount may have a decimal fraction (`PT0.25S`, `1.5h`; ISO 8601's comma, `PT0,25S`,
//   works too) as long as the total is a whole number of milliseconds: `PT0.0005S` is
//   rejected rather than rounded.
//
// Rejected, each with a message that names the fix: empty text, a sign, months and years
// (their length varies: use days), weeks mixed with other units, a number without a unit,
// units out of order or repeated, lower-case ISO or upper-case short units, whitespace,
// anything that does not fit in int64 milliseconds.
#pragma once

#include "kotoba/vm/error.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace kotoba {

// The duration in milliseconds, or an ExpressionError such as "invalid duration 'P1M':
// months and years have no fixed length; use days instead, such as P30D". The compiler shows
// the message as a diagnostic; at run time (a timer duration computed by an expression) it
// fails the step.
[[nodiscard]] Result<int64_t> parseDurationMs(std::string_view text);

// A short-form spelling for people and logs that parseDurationMs reads back to the same
// number: 0 -> "0s", 90000 -> "1m30s", 1500 -> "1s500ms", 86400000 -> "1d". A negative
// amount (an overdue deadline in a log line) gets a leading "-", which parsing rejects.
[[nodiscard]] std::string formatDurationMs(int64_t milliseconds);

} // namespace kotoba
