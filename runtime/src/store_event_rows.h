// How a history's events sit in the events table (runtime/schema/store.sql): the integer key
// built from the run's key and the seq, the command_id member kept out of the payload text,
// and the one SELECT both the event reads and `verify` use. Private to runtime/src.
#pragma once

#include "store_connection.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kotoba::runtime::detail {

// A run's history holds at most this many events: seq is the low 32 bits of events.id.
inline constexpr int64_t kMaxEventSeq = 0xFFFFFFFF;

// events.id of event `seq` of the run whose runs.run_key is `runKey`.
[[nodiscard]] constexpr int64_t eventRowId(int64_t runKey, int64_t seq) {
  return runKey * (kMaxEventSeq + 1) + seq;
}

// A payload's text as stored: the value of its leading "command_id" member, when it has
// one, and the text without it; or no command id and the whole text.
struct StoredPayload {
  std::optional<int64_t> commandId;
  std::string text;
};

// Splits the leading command_id member off a payload's JSON text, but only when joining
// gives back exactly the same bytes (so the hash over the whole text still holds).
[[nodiscard]] StoredPayload splitPayload(std::string_view wholeText);
// The whole text of a stored payload.
[[nodiscard]] std::string joinPayload(std::optional<int64_t> commandId, std::string_view text);

// The events of the run whose runs.id is ?1, seq from ?2 to ?3 (at most kMaxEventSeq) and
// tx up to ?4, in seq order, read with readEventRow.
extern const char *const kRunEventsSql;

// One row of kRunEventsSql; `hash` is valid until the statement steps on.
struct EventRow {
  int64_t seq = 0;
  int64_t typeNumber = 0;
  int64_t timeMs = 0;
  int64_t tx = 0;
  std::string stepId;
  std::string location;
  std::string payload; // the whole text
  std::string_view hash;
};
[[nodiscard]] EventRow readEventRow(const Statement &row);

} // namespace kotoba::runtime::detail
