// Durations: every accepted form converts to exact milliseconds, every rejection explains
// itself, and formatting reads back to the same number.
#include "kotoba/vm/duration.h"

#include "vm/value_testing.h"

#include <doctest/doctest.h>

#include <limits>

using namespace kotoba;
using kotoba::testing::failMessage;
using kotoba::testing::okValue;

static int64_t ms(std::string_view text) {
  INFO("duration: ", std::string(text));
  return okValue(parseDurationMs(text));
}

static std::string rejection(std::string_view text) {
  INFO("duration: ", std::string(text));
  return failMessage(parseDurationMs(text));
}

TEST_CASE("ISO 8601 durations convert to milliseconds") {
  CHECK(ms("PT0S") == 0);
  CHECK(ms("PT30S") == 30'000);
  CHECK(ms("PT5M") == 300'000);
  CHECK(ms("PT2H") == 7'200'000);
  CHECK(ms("P1D") == 86'400'000);
  CHECK(ms("P2W") == 1'209'600'000);
  CHECK(ms("PT1H30M") == 5'400'000);
  CHECK(ms("P1DT12H") == 129'600'000);
  CHECK(ms("P1DT1H1M1S") == 90'061'000);
  CHECK(ms("PT90M") == 5'400'000);
  CHECK(ms("PT86400S") == 86'400'000);
  CHECK(ms("P365D") == 31'536'000'000);
}

TEST_CASE("fractional amounts are exact and must come to whole milliseconds") {
  CHECK(ms("PT0.25S") == 250);
  CHECK(ms("PT0.001S") == 1);
  CHECK(ms("PT1.5S") == 1500);
  CHECK(ms("PT0.1S") == 100);
  CHECK(ms("PT0,5S") == 500);
  CHECK(ms("PT0.2500S") == 250);
  CHECK(ms("PT0.5H") == 1'800'000);
  CHECK(ms("P0.5D") == 43'200'000);
  CHECK(ms("PT1.000000000000000000000000S") == 1000); // trailing zeros do not count
}

TEST_CASE("short durations convert to milliseconds") {
  CHECK(ms("250ms") == 250);
  CHECK(ms("10s") == 10'000);
  CHECK(ms("5m") == 300'000);
  CHECK(ms("2h") == 7'200'000);
  CHECK(ms("1d") == 86'400'000);
  CHECK(ms("1h30m") == 5'400'000);
  CHECK(ms("1d2h3m4s5ms") == 93'784'005);
  CHECK(ms("1s500ms") == 1500);
  CHECK(ms("1.5h") == 5'400'000);
  CHECK(ms("0.25s") == 250);
  CHECK(ms("0s") == 0);
  CHECK(ms("90m") == 5'400'000);
}

TEST_CASE("the largest duration fits and one more millisecond does not") {
  CHECK(ms("9223372036854775807ms") == std::numeric_limits<int64_t>::max());
  std::string tooLong = "invalid duration '9223372036854775808ms': too long; the longest "
                        "duration is 9223372036854775807 ms, about 292 million years";
  CHECK(rejection("9223372036854775808ms") == tooLong);
  CHECK(ms("9223372036854775s807ms") == std::numeric_limits<int64_t>::max());
  CHECK(rejection("9223372036854775s808ms").find("too long") != std::string::npos);
  CHECK(rejection("106751991167301d").find("too long") != std::string::npos);
  CHECK(rejection("P999999999999999999999D").find("too long") != std::string::npos);
  CHECK(rejection("PT9223372036854775.808S").find("too long") != std::string::npos);
  CHECK(ms("PT9223372036854775.807S") == std::numeric_limits<int64_t>::max());
  CHECK(rejection("106751991167d7h12m55s808ms").find("too long") != std::string::npos);
}

TEST_CASE("each rejected duration says what is wrong and how to fix it") {
  CHECK(rejection("") == "empty duration; write one such as PT30S or 30s");
  CHECK(rejection("P1M") == "invalid duration 'P1M': months and years have no fixed length; "
                            "use days instead, such as P30D");
  CHECK(rejection("P1Y") == "invalid duration 'P1Y': months and years have no fixed length; "
                            "use days instead, such as P30D");
  CHECK(rejection("P1Y2M3D").find("months and years") != std::string::npos);
  CHECK(rejection("-PT5S") == "invalid duration '-PT5S': durations cannot have a sign; a "
                              "duration is a length of time, >= 0");
  CHECK(rejection("-5s").find("cannot have a sign") != std::string::npos);
  CHECK(rejection("+5s").find("cannot have a sign") != std::string::npos);
  CHECK(rejection("10") ==
        "invalid duration '10': the number 10 has no unit; add one, such as 10s or PT10S");
  CHECK(rejection("P") == "invalid duration 'P': no amount after 'P'; write one such as PT30S "
                          "or P1D");
  CHECK(rejection("PT") ==
        "invalid duration 'PT': no amount after 'T'; write one such as PT30S");
  CHECK(rejection("P1DT") ==
        "invalid duration 'P1DT': no amount after 'T'; write one such as PT30S");
  CHECK(rejection("PT5") ==
        "invalid duration 'PT5': the number 5 has no unit; end it with W, D, H, M or S");
  CHECK(rejection("P5H") == "invalid duration 'P5H': 'H' belongs after 'T', as in PT5H");
  CHECK(rejection("PT5D") == "invalid duration 'PT5D': 'D' belongs before 'T', as in P5D");
  CHECK(rejection("PT5X") ==
        "invalid duration 'PT5X': unknown unit 'X'; ISO 8601 durations use W, D, H, M and S");
  CHECK(rejection("PT5S10M") == "invalid duration 'PT5S10M': units must go from largest to "
                                "smallest, each at most once");
  CHECK(rejection("PT1S2S").find("largest to smallest") != std::string::npos);
  CHECK(rejection("P1W2D") == "invalid duration 'P1W2D': weeks cannot be combined with other "
                              "units; write the total in days, such as P9D");
  CHECK(rejection("P1D1W").find("weeks cannot be combined") != std::string::npos);
  CHECK(rejection("P1WT1H").find("weeks cannot be combined") != std::string::npos);
  CHECK(rejection("PT1HT1M").find("'T' appears twice") != std::string::npos);
  CHECK(rejection("PTS") == "invalid duration 'PTS': expected a number at 'S'");
  CHECK(rejection("pt5s") == "invalid duration 'pt5s': ISO 8601 durations are written in upper "
                             "case, such as PT30S");
  CHECK(rejection("PT0.0005S") ==
        "invalid duration 'PT0.0005S': durations have millisecond precision; this is not a "
        "whole number of milliseconds");
  CHECK(rejection("0.5ms").find("millisecond precision") != std::string::npos);
  CHECK(rejection("PT0.1234567890123456789S").find("millisecond precision") !=
        std::string::npos);
  CHECK(rejection("5min") == "invalid duration '5min': unknown unit 'min'; use ms, s, m, h or d");
  CHECK(rejection("10S").find("unknown unit 'S'") != std::string::npos);
  CHECK(rejection("5 s").find("unknown unit ' s'") != std::string::npos);
  CHECK(rejection("30m1h") == "invalid duration '30m1h': units must go from largest to "
                              "smallest, each at most once, as in 1h30m");
  CHECK(rejection("1s1s").find("largest to smallest") != std::string::npos);
  CHECK(rejection("1h30").find("the number 30 has no unit") != std::string::npos);
  CHECK(rejection("ten seconds") == "invalid duration 'ten seconds': a duration starts with "
                                    "'P' (ISO 8601, such as PT30S) or a number with a unit "
                                    "(such as 30s)");
  CHECK(rejection(" 5s").find("a duration starts with") != std::string::npos);
  CHECK(rejection("5s ").find("unknown unit 's '") != std::string::npos);
  CHECK(rejection("1.s").find("unknown unit '.s'") != std::string::npos);
}

TEST_CASE("durations format to a short form that parses back to the same length") {
  CHECK(formatDurationMs(0) == "0s");
  CHECK(formatDurationMs(250) == "250ms");
  CHECK(formatDurationMs(1500) == "1s500ms");
  CHECK(formatDurationMs(90'000) == "1m30s");
  CHECK(formatDurationMs(5'400'000) == "1h30m");
  CHECK(formatDurationMs(86'400'000) == "1d");
  CHECK(formatDurationMs(93'784'005) == "1d2h3m4s5ms");
  CHECK(formatDurationMs(-1500) == "-1s500ms");
  CHECK(formatDurationMs(std::numeric_limits<int64_t>::min()) ==
        "-106751991167d7h12m55s808ms");
  for (int64_t length : {int64_t{1}, int64_t{999}, int64_t{60'001}, int64_t{3'599'999},
                         int64_t{1'209'600'000}, std::numeric_limits<int64_t>::max()}) {
    CHECK(ms(formatDurationMs(length)) == length);
  }
}
