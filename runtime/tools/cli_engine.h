// One engine for one kotoba-vm command: the store, the activity registry with the built-in
// helpers and the --bind entries, the clock, and the Engine over them, built in that order
// and torn down in reverse (the engine first, so nothing it runs outlives what it uses).
#pragma once

#include "cli_commands.h"
#include "cli_support.h"

#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/clock.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/runtime/store.h"

#include <memory>
#include <string>
#include <vector>

namespace kotoba::cli {

struct EngineSession {
  std::unique_ptr<runtime::Store> store;
  std::unique_ptr<runtime::ActivityRegistry> activities;
  std::unique_ptr<runtime::Clock> clock;
  std::unique_ptr<runtime::Engine> engine;

  EngineSession() = default;
  EngineSession(EngineSession &&) = default;
  EngineSession &operator=(EngineSession &&) = delete;
  ~EngineSession();
};

// Binds the built-ins and every --bind entry. Relative program paths in a --bind resolve
// against the current directory: they were typed in a shell that sits there.
[[nodiscard]] CliResult<std::unique_ptr<runtime::ActivityRegistry>>
makeActivities(const EngineSetup &setup);

// The --bind entries as the run keeps them (runs.host): each with the current directory,
// where its relative paths resolve. Call after makeActivities accepted them.
[[nodiscard]] std::vector<runtime::RunBinding> runBindings(const EngineSetup &setup);

// Builds the session over an open store and the activities makeActivities made.
// `baseDirectory` is where relative paths in the modules' activity declarations resolve from
// for runs that did not record their own (runs started before the store kept it).
[[nodiscard]] EngineSession startEngine(std::unique_ptr<runtime::Store> store,
                                        std::unique_ptr<runtime::ActivityRegistry> activities,
                                        const EngineSetup &setup, const std::string &baseDirectory);

// The engine for commands that only hand it an outside input (signal, cancel, emit, ...):
// no bindings, a real clock.
[[nodiscard]] EngineSession startControlEngine(std::unique_ptr<runtime::Store> store);

} // namespace kotoba::cli
