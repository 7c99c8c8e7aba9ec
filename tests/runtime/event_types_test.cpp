// The history event types: every persisted number pinned, names and numbers that convert
// both ways, and which types are command events (the ones replay matches against commands).
#include "kotoba/runtime/event_types.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

using namespace kotoba::runtime;

TEST_CASE("every event type keeps its persisted number") {
  // Stores and exported histories hold these numbers: changing one corrupts every history
  // written before. Add new types here with a new number; never edit a line.
  const std::map<std::string, int> pinned = {
      {"WorkflowStarted", 1},
      {"WorkflowCompleted", 2},
      {"WorkflowFailed", 3},
      {"WorkflowCancelRequested", 4},
      {"WorkflowCancelled", 5},
      {"WorkflowTimedOut", 6},
      {"WorkflowTerminated", 7},
      {"WorkflowContinuedAsNew", 8},
      {"WorkflowTimeoutReached", 9},
      {"ActivityScheduled", 20},
      {"ActivityStarted", 21},
      {"ActivityCompleted", 22},
      {"ActivityFailed", 23},
      {"ActivityTimedOut", 24},
      {"ActivityCancelRequested", 25},
      {"ActivityCancelled", 26},
      {"TimerStarted", 40},
      {"TimerFired", 41},
      {"TimerCancelled", 42},
      {"SignalReceived", 50},
      {"EventReceived", 51},
      {"WaitStarted", 52},
      {"WaitTimedOut", 53},
      {"WaitCancelled", 54},
      {"DecisionMade", 60},
      {"PredicateEvaluated", 61},
      {"ChildWorkflowStarted", 70},
      {"ChildWorkflowCompleted", 71},
      {"ChildWorkflowFailed", 72},
      {"ChildWorkflowCancelRequested", 73},
      {"CompensationStarted", 80},
      {"CompensationCompleted", 81},
      {"CompensationFailed", 82},
  };
  CHECK(allEventTypes().size() == pinned.size());
  for (const EventTypeInfo &info : allEventTypes()) {
    INFO("event type ", std::string(info.name));
    auto found = pinned.find(std::string(info.name));
    REQUIRE(found != pinned.end());
    CHECK(eventTypeNumber(info.type) == found->second);
  }
}

TEST_CASE("event type numbers and names are unique, ascending and convert both ways") {
  std::set<int> numbers;
  std::set<std::string> names;
  int previous = 0;
  for (const EventTypeInfo &info : allEventTypes()) {
    int number = eventTypeNumber(info.type);
    CHECK(number > previous);
    previous = number;
    CHECK(numbers.insert(number).second);
    CHECK(names.insert(std::string(info.name)).second);
    CHECK(eventTypeFromNumber(number) == info.type);
    CHECK(eventTypeFromName(info.name) == info.type);
    CHECK(eventTypeName(info.type) == info.name);
    CHECK_FALSE(info.meaning.empty());
  }
}

TEST_CASE("numbers and names no event type has convert to nothing") {
  for (int64_t number : {0, 10, 19, 27, 100, -1, 65536 + 1}) {
    CHECK_FALSE(eventTypeFromNumber(number).has_value());
  }
  CHECK_FALSE(eventTypeFromName("").has_value());
  CHECK_FALSE(eventTypeFromName("workflowstarted").has_value());
  CHECK_FALSE(eventTypeFromName("ActivityRetried").has_value());
}

TEST_CASE("command events are exactly those the engine writes for a machine command") {
  const std::set<std::string> commands = {
      "WorkflowCompleted",
      "WorkflowFailed",
      "WorkflowCancelled",
      "WorkflowTimedOut",
      "WorkflowContinuedAsNew",
      "ActivityScheduled",
      "ActivityCancelRequested",
      "TimerStarted",
      "TimerCancelled",
      "WaitStarted",
      "DecisionMade",
      "PredicateEvaluated",
      "ChildWorkflowStarted",
      "CompensationStarted",
      "CompensationCompleted",
      "CompensationFailed",
      "WaitCancelled",
      "ChildWorkflowCancelRequested",
  };
  for (const EventTypeInfo &info : allEventTypes()) {
    INFO("event type ", std::string(info.name));
    CHECK(isCommandEvent(info.type) == (commands.count(std::string(info.name)) > 0));
  }
}
