// Building the engine a kotoba-vm command works with.
#include "cli_engine.h"

#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/owner_identity.h"
#include "kotoba/stdlib/standard_activities.h"

#include <fmt/format.h>

#include <cassert>
#include <chrono>
#include <unistd.h>

namespace kotoba::cli {

namespace {

// Unique per process, and readable in `show` when a lease is held: host, pid and start time
// (a pid alone is reused), then the process token by which another kotoba-vm on this machine
// proves this one dead after a crash and takes its runs over at once (owner_identity.h).
std::string ownerName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    host[0] = '\0';
  }
  auto startedMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return runtime::ownerWithProcessToken(
      fmt::format("kotoba-vm/{}/{}/{}", host, ::getpid(), startedMs));
}

} // namespace

EngineSession::~EngineSession() {
  // The engine first: it stops its activity threads and gives back its run leases, so that
  // another process can take the runs over at once, while the store is still open.
  engine.reset();
  clock.reset();
  activities.reset();
  store.reset();
}

CliResult<std::unique_ptr<runtime::ActivityRegistry>> makeActivities(const EngineSetup &setup) {
  auto activities = std::make_unique<runtime::ActivityRegistry>();
  stdlib::registerStandardActivities(*activities);
  activities->bindBuiltins();
  std::string here = currentDirectory();
  for (const std::string &option : setup.bindings) {
    Result<runtime::ActivityBinding> binding = runtime::parseBinding(option);
    if (!binding.ok()) {
      return usageFailure(binding.error().message);
    }
    std::optional<WorkflowError> problem =
        activities->bindImplementation(binding.value().name, binding.value().implementation, here);
    if (problem) {
      return usageFailure("--bind " + option + ": " + problem->message);
    }
  }
  return activities;
}

std::vector<runtime::RunBinding> runBindings(const EngineSetup &setup) {
  std::vector<runtime::RunBinding> bindings;
  std::string here = currentDirectory();
  for (const std::string &option : setup.bindings) {
    Result<runtime::ActivityBinding> binding = runtime::parseBinding(option);
    assert(binding.ok() && "makeActivities refuses a malformed --bind first");
    bindings.push_back(
        runtime::RunBinding{binding.value().name, binding.value().implementation, here});
  }
  return bindings;
}

EngineSession startEngine(std::unique_ptr<runtime::Store> store,
                          std::unique_ptr<runtime::ActivityRegistry> activities,
                          const EngineSetup &setup, const std::string &baseDirectory) {
  EngineSession session;
  session.store = std::move(store);
  session.activities = std::move(activities);
  if (setup.clock == "virtual") {
    session.clock = std::make_unique<runtime::VirtualClock>();
  } else {
    session.clock = std::make_unique<runtime::RealClock>();
  }
  runtime::EngineOptions options;
  options.owner = ownerName();
  options.leaseMs = setup.leaseMs;
  options.baseDirectory = baseDirectory;
  session.engine = std::make_unique<runtime::Engine>(*session.store, *session.activities,
                                                     *session.clock, options);
  return session;
}

EngineSession startControlEngine(std::unique_ptr<runtime::Store> store) {
  auto activities = std::make_unique<runtime::ActivityRegistry>();
  return startEngine(std::move(store), std::move(activities), EngineSetup{}, currentDirectory());
}

} // namespace kotoba::cli
