// Handing runs from one engine to another: an engine that goes away gives back the leases of
// every run it holds, including runs it created (a child, a continuation) and never loaded,
// so the next engine finishes them at once instead of after the lease runs out. This is what
// `kotoba-vm run --detach` followed by `kotoba-vm worker --until-idle` relies on.
#include "engine_support.h"

#include <chrono>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

// Starts the entry workflow of `source` on an engine that is then destroyed.
std::string startAndLeave(Store &store, const std::string &source) {
  ActivityRegistry registry;
  VirtualClock clock{1'700'000'000'000};
  Engine engine(store, registry, clock);
  auto hash = engine.addModule(compileWorkflow(source));
  REQUIRE(hash.ok());
  auto started = engine.start(StartRequest{hash.value(), "", Value(Object()), {}, {}, {}});
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  return started.value();
}

} // namespace

TEST_CASE("a child created by an engine that went away is driven by the next one at once") {
  TemporaryStore temp;
  // Starting the parent issues StartChild: the child run exists, leased to its creator.
  std::string runId = startAndLeave(*temp.store, R"({ workflows: [
    { id: "parent", outputs: [{ name: "n" }], output_mapping: { n: $.results.child.n },
      strategy: { op: "subworkflow", workflow_ref: "child" } },
    { id: "child", outputs: [{ name: "n" }], output_mapping: { n: 7 },
      strategy: { op: "seq", strategies: [] } } ] })");
  auto leases =
      temp.store->query([&](const StoreReader &reader) { return reader.lease(runId + ".1"); });
  REQUIRE(leases.ok());
  CHECK_FALSE(leases.value().has_value());

  ActivityRegistry registry;
  VirtualClock clock{1'700'000'000'000};
  Engine engine(*temp.store, registry, clock);
  auto began = std::chrono::steady_clock::now();
  auto outcome = engine.runToCompletion(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Completed);
  CHECK(toJson(outcome.value().outputs) == R"({"n":7})");
  // Not after a lease expiry (30 s of real time for the child's creator to be presumed dead).
  CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(10));
}
