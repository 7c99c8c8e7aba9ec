// A host program that embeds Kotoba through its public header: it compiles a workflow,
// registers two activities and a predicate as C++ lambdas, runs the workflow durably on a
// SQLite store with the engine on a thread of its own and a virtual clock (so the one-day
// timer takes no time), prints the outputs, then reads the history back, rebuilds the state
// before the timer fired and replays the run.
//
//   kotoba-embed-sample WORKFLOW.kotoba|WORKFLOW.kbc STORE.db NAME
#include <kotoba/kotoba.h>

#include <chrono>
#include <iostream>

namespace {

// An activity: a callable from the input object to a result (or a WorkflowError).
kotoba::Result<kotoba::Value> lookupCustomer(const kotoba::Value &input,
                                             kotoba::ActivityContext &) {
  const kotoba::Value *name = input.isObject() ? input.asObject().find("name") : nullptr;
  if (name == nullptr || !name->isString()) {
    return kotoba::makeError("InvalidInput", "lookup_customer needs {name: string}");
  }
  kotoba::Object result;
  result.set("vip", kotoba::Value(name->asString().starts_with("A")));
  return kotoba::Value(std::move(result));
}

kotoba::Result<kotoba::Value> compose(const kotoba::Value &input,
                                      kotoba::ActivityContext &context) {
  const kotoba::Object &fields = input.asObject();
  std::string text = (fields.find("tone")->asString() == "relaxed" ? "Hey " : "Dear ") +
                     fields.find("name")->asString() +
                     (fields.find("vip")->asBool() ? ", our valued member" : "");
  context.log(kotoba::LogLevel::Info, "composed a welcome");
  kotoba::Object result;
  result.set("text", kotoba::Value(text));
  return kotoba::Value(std::move(result));
}

int fail(const kotoba::WorkflowError &error, int exitCode) {
  std::cerr << "embed: " << error.type << ": " << error.message << "\n";
  return exitCode;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: kotoba-embed-sample WORKFLOW.kotoba|WORKFLOW.kbc STORE.db NAME\n";
    return 2;
  }

  // 1. The module: compile the source (diagnostics go to stderr) or load a .kbc.
  kotoba::Result<kotoba::vm::Module> module = kotoba::loadWorkflowFile(argv[1], &std::cerr);
  if (!module.ok()) {
    return fail(module.error(), 3);
  }

  // 2. The store (created on first use, WAL mode, survives crashes) and the engine over it.
  kotoba::HostOptions options;
  options.storePath = argv[2];
  options.clock = kotoba::ClockKind::Virtual;
  kotoba::Result<std::unique_ptr<kotoba::Host>> opened = kotoba::Host::open(options);
  if (!opened.ok()) {
    return fail(opened.error(), 4);
  }
  kotoba::Host &host = *opened.value();

  // 3. The host's code: the activities and the predicate the workflow calls by name.
  for (auto registered :
       {host.registerActivity("lookup_customer", lookupCustomer),
        host.registerActivity("compose", compose),
        host.registerPredicate("is_weekend", [](const kotoba::Value &) { return false; })}) {
    if (!registered.ok()) {
      return fail(registered.error(), 4);
    }
  }

  // 4. Drive the engine on a thread the Host owns; start a run and wait for its result.
  if (auto driving = host.startThread(); !driving.ok()) {
    return fail(driving.error(), 4);
  }
  kotoba::Result<std::string> hash = host.addModule(module.value());
  if (!hash.ok()) {
    return fail(hash.error(), 4);
  }
  kotoba::Object inputs;
  inputs.set("name", kotoba::Value(argv[3]));
  kotoba::Result<std::string> runId = host.start(hash.value(), kotoba::Value(std::move(inputs)));
  if (!runId.ok()) {
    return fail(runId.error(), 2);
  }
  kotoba::Result<kotoba::RunOutcome> outcome = host.wait(runId.value(), std::chrono::seconds(30));
  host.stop();
  if (!outcome.ok()) {
    return fail(outcome.error(), 4);
  }
  if (outcome.value().status != kotoba::RunStatus::Completed) {
    std::cerr << "embed: run " << runId.value() << " ended "
              << kotoba::runStatusName(outcome.value().status);
    if (const std::optional<kotoba::WorkflowError> &error = outcome.value().error) {
      std::cerr << ": " << error->type << ": " << error->message;
    }
    std::cerr << "\n";
    return 1;
  }
  std::cout << kotoba::toJson(outcome.value().outputs) << "\n";

  // 5. The history: every step, in order.
  kotoba::Result<std::vector<kotoba::EventRecord>> events = host.events(runId.value());
  if (!events.ok()) {
    return fail(events.error(), 4);
  }
  int64_t timerFired = 0;
  for (const kotoba::EventRecord &event : events.value()) {
    std::cerr << event.seq << " " << kotoba::eventTypeName(event.type)
              << (event.stepId.empty() ? "" : " " + event.stepId) << "\n";
    if (event.type == kotoba::EventType::TimerFired) {
      timerFired = event.seq;
    }
  }

  // 6. The state just before the timer fired, and a replay of the whole history.
  if (timerFired > 1) {
    kotoba::Result<kotoba::RunState> before = host.stateAt(runId.value(), timerFired - 1);
    if (!before.ok()) {
      return fail(before.error(), 4);
    }
    std::cerr << "before the timer: " << before.value().status << ", vars "
              << kotoba::toJson(before.value().vars) << "\n";
  }
  kotoba::Result<kotoba::ReplayReport> replay = host.replay(runId.value());
  if (!replay.ok()) {
    return fail(replay.error(), 4);
  }
  std::cerr << "replay: " << replay.value().events << " events, "
            << (replay.value().ok() ? "deterministic" : replay.value().mismatch->message) << "\n";
  return replay.value().ok() ? 0 : 1;
}
