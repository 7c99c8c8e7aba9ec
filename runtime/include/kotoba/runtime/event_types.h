// The history event types: the enum generated from event_types.def, their names as the
// store, exports and `kotoba-vm history` spell them, and which ones are command events.
// Event numbers are persisted, so code that reads a number from a file goes through
// eventTypeFromNumber and handles an unknown number (a newer binary wrote it).
#pragma once

#include <llvm/ADT/ArrayRef.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace kotoba::runtime {

enum class EventType : uint16_t {
#define EVENT_TYPE(Name, Number, Command, Meaning) Name = Number,
#include "kotoba/runtime/event_types.def"
};

struct EventTypeInfo {
  EventType type;
  std::string_view name;
  // Written because the machine issued a command; replay matches these against commands.
  bool isCommand;
  std::string_view meaning;
};

// Every event type, in the order of event_types.def (which is ascending number order).
[[nodiscard]] llvm::ArrayRef<EventTypeInfo> allEventTypes();
[[nodiscard]] const EventTypeInfo &eventTypeInfo(EventType type);

[[nodiscard]] inline uint16_t eventTypeNumber(EventType type) {
  return static_cast<uint16_t>(type);
}
[[nodiscard]] std::string_view eventTypeName(EventType type);
[[nodiscard]] bool isCommandEvent(EventType type);

// nullopt for a number or name no event type has.
[[nodiscard]] std::optional<EventType> eventTypeFromNumber(int64_t number);
[[nodiscard]] std::optional<EventType> eventTypeFromName(std::string_view name);

} // namespace kotoba::runtime
