// The event type table, generated from event_types.def, and lookups over it. The table is
// small (under 40 entries) and looked up far less often than events are appended, so the
// lookups are plain linear scans.
#include "kotoba/runtime/event_types.h"

#include <cassert>

namespace kotoba::runtime {
namespace {

constexpr EventTypeInfo kEventTypes[] = {
#define EVENT_TYPE(Name, Number, Command, Meaning) {EventType::Name, #Name, Command, Meaning},
#include "kotoba/runtime/event_types.def"
};

} // namespace

llvm::ArrayRef<EventTypeInfo> allEventTypes() {
  return kEventTypes;
}

const EventTypeInfo &eventTypeInfo(EventType type) {
  for (const EventTypeInfo &info : kEventTypes) {
    if (info.type == type) {
      return info;
    }
  }
  assert(false && "an EventType value outside event_types.def; convert numbers with "
                  "eventTypeFromNumber");
  return kEventTypes[0];
}

std::string_view eventTypeName(EventType type) {
  return eventTypeInfo(type).name;
}

bool isCommandEvent(EventType type) {
  return eventTypeInfo(type).isCommand;
}

std::optional<EventType> eventTypeFromNumber(int64_t number) {
  for (const EventTypeInfo &info : kEventTypes) {
    if (eventTypeNumber(info.type) == number) {
      return info.type;
    }
  }
  return std::nullopt;
}

std::optional<EventType> eventTypeFromName(std::string_view name) {
  for (const EventTypeInfo &info : kEventTypes) {
    if (info.name == name) {
      return info.type;
    }
  }
  return std::nullopt;
}

} // namespace kotoba::runtime
