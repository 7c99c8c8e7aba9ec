// The events table's row layout (store_event_rows.h): payloads split at their command_id
// member and joined back, and the one query that reads a run's history.
#include "store_event_rows.h"

#include <fmt/format.h>

#include <charconv>

namespace kotoba::runtime::detail {
namespace {

constexpr std::string_view kCommandIdPrefix = R"({"command_id":)";

} // namespace

std::string joinPayload(std::optional<int64_t> commandId, std::string_view text) {
  if (!commandId) {
    return std::string(text);
  }
  std::string whole = fmt::format("{}{}", kCommandIdPrefix, *commandId);
  if (text == "{}") {
    whole += '}';
  } else {
    whole += ',';
    whole.append(text.substr(1));
  }
  return whole;
}

StoredPayload splitPayload(std::string_view wholeText) {
  if (!wholeText.starts_with(kCommandIdPrefix)) {
    return {std::nullopt, std::string(wholeText)};
  }
  std::string_view rest = wholeText.substr(kCommandIdPrefix.size());
  int64_t commandId = 0;
  auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), commandId);
  if (error != std::errc() || end == rest.data() + rest.size()) {
    return {std::nullopt, std::string(wholeText)};
  }
  rest = rest.substr(static_cast<size_t>(end - rest.data()));
  StoredPayload stored;
  stored.commandId = commandId;
  stored.text = rest == "}" ? "{}" : "{" + std::string(rest.substr(1));
  // "007" or "1.5" would not come back alike; such a payload is stored whole.
  if ((rest[0] != ',' && rest != "}") || joinPayload(stored.commandId, stored.text) != wholeText) {
    return {std::nullopt, std::string(wholeText)};
  }
  return stored;
}

// Events first, by their own key range; sites by their key for each event.
const char *const kRunEventsSql =
    "SELECT e.id & 4294967295, e.type, e.time_ms, e.tx, s.step_id, s.location, e.command_id, "
    "e.payload, e.hash "
    "FROM runs r CROSS JOIN events e CROSS JOIN sites s "
    "WHERE r.id = ?1 AND e.id BETWEEN (r.run_key << 32) + ?2 AND (r.run_key << 32) + ?3 "
    "AND e.tx <= ?4 AND s.id = e.site ORDER BY e.id";

EventRow readEventRow(const Statement &row) {
  EventRow event;
  event.seq = row.integer(0);
  event.typeNumber = row.integer(1);
  event.timeMs = row.integer(2);
  event.tx = row.integer(3);
  event.stepId = row.text(4);
  event.location = row.text(5);
  event.payload = joinPayload(row.optionalInteger(6), row.bytes(7));
  event.hash = row.bytes(8);
  return event;
}

} // namespace kotoba::runtime::detail
