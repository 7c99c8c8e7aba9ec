// A host program that embeds Kotoba: it compiles a workflow, registers two activities and a
// predicate as C++ functions, runs the workflow durably on a SQLite store with a virtual
// clock (so the one-day timer takes no time), and prints the outputs and the history.
//
//   kotoba-embed-sample WORKFLOW.kotoba STORE.db NAME
#include "kotoba/compiler/compile.h"
#include "kotoba/runtime/engine.h"
#include "kotoba/vm/json.h"

#include <iostream>

using namespace kotoba;

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: kotoba-embed-sample WORKFLOW.kotoba STORE.db NAME\n";
    return 2;
  }
  // 1. Compile the workflow (a .kbc could be loaded with vm::loadModule instead).
  compiler::Compilation compilation;
  std::optional<vm::Module> module = compiler::compileFile(compilation, argv[1]);
  compilation.diagnostics.print(std::cerr);
  if (!module) {
    return 3;
  }

  // 2. Open the store: created on first use, WAL mode, survives crashes.
  auto store = runtime::Store::open(argv[2]);
  if (!store.ok()) {
    std::cerr << "cannot open the store: " << store.error().message << "\n";
    return 4;
  }

  // 3. Register the activities and the predicate the workflow needs.
  runtime::ActivityRegistry activities;
  using runtime::ActivityContext;
  (void)activities.bindFunction("lookup_customer", [](const Value &input, ActivityContext &) {
    bool vip = input.asObject().find("name")->asString().starts_with("A");
    Object result;
    result.set("vip", Value(vip));
    return Result<Value>(Value(std::move(result)));
  });
  (void)activities.bindFunction("compose", [](const Value &input, ActivityContext &context) {
    const Object &fields = input.asObject();
    std::string text = (fields.find("tone")->asString() == "relaxed" ? "Hey " : "Dear ") +
                       fields.find("name")->asString() +
                       (fields.find("vip")->asBool() ? ", our valued member" : "");
    context.log(runtime::LogLevel::Info, "composed a welcome");
    Object result;
    result.set("text", Value(text));
    return Result<Value>(Value(std::move(result)));
  });

  runtime::VirtualClock clock;
  runtime::Engine engine(*store.value(), activities, clock);
  engine.registerPredicate("is_weekend", [](const Value &) { return false; });

  // 4. Start a run and drive it to its end on this thread.
  auto hash = engine.addModule(*module);
  if (!hash.ok()) {
    std::cerr << hash.error().message << "\n";
    return 4;
  }
  Object inputs;
  inputs.set("name", Value(argv[3]));
  runtime::StartRequest request{hash.value(), "", Value(std::move(inputs)), {}, {}};
  auto runId = engine.start(request);
  if (!runId.ok()) {
    std::cerr << runId.error().type << ": " << runId.error().message << "\n";
    return 2;
  }
  auto outcome = engine.runToCompletion(runId.value());
  if (!outcome.ok()) {
    std::cerr << outcome.error().message << "\n";
    return 4;
  }
  if (outcome.value().status != runtime::RunStatus::Completed) {
    std::cerr << "run " << runId.value() << " ended "
              << runtime::runStatusName(outcome.value().status) << "\n";
    return 1;
  }
  std::cout << toJson(outcome.value().outputs) << "\n";

  // 5. Read the history back: every step, in order.
  auto events = store.value()->query(
      [&](const runtime::StoreReader &reader) { return reader.events(runId.value()); });
  if (events.ok()) {
    for (const runtime::EventRecord &event : events.value()) {
      std::cerr << event.seq << " " << runtime::eventTypeName(event.type)
                << (event.stepId.empty() ? "" : " " + event.stepId) << "\n";
    }
  }
  return 0;
}
