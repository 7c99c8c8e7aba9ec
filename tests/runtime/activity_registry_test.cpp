// The activity registry: which implementation a module's activity name resolves to, what
// stays unbound, which declarations are refused, and the `--bind` parser that feeds it.
#include "kotoba/runtime/activity_binding.h"
#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/function.h"

#include "activity_test_support.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>

namespace kotoba::runtime {
namespace {

using testing::testContext;

Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

vm::ActivityDecl declaration(std::string name, Value implementation) {
  vm::ActivityDecl decl;
  decl.name = std::move(name);
  decl.implementation = std::move(implementation);
  return decl;
}

Result<Value> runOnce(Activity &activity, const Value &input) {
  auto context = testContext();
  return runActivity(activity, input, *context);
}

ActivityFunction constant(Value value) {
  return [value](const Value &, ActivityContext &) -> Result<Value> { return value; };
}

} // namespace

TEST_CASE("a module's declarations become activities and undeclared names stay unbound") {
  ActivityRegistry registry;
  registry.registerFunction("score", constant(Value(7)));
  vm::Module module;
  module.activities.push_back(
      declaration("fraud", json(R"({"type": "function", "function_name": "score"})")));
  module.activities.push_back(declaration("policy_only", Value()));
  module.hostActivities = {"policy_only", "zeta", "alpha"};

  ModuleActivities resolved = registry.resolve(module);
  CHECK(resolved.unbound == std::vector<std::string>{"alpha", "policy_only", "zeta"});
  CHECK(resolved.problems.empty());
  CHECK_FALSE(resolved.ready());
  REQUIRE(resolved.find("fraud"));
  Result<Value> score = runOnce(*resolved.find("fraud"), Value(nullptr));
  REQUIRE(score.ok());
  CHECK(score.value() == Value(7));
  CHECK(resolved.find("alpha") == nullptr);
}

TEST_CASE("a host binding wins over the module's declaration of the same name") {
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction("charge", constant(Value("stubbed"))));
  REQUIRE_FALSE(registry.bindFunction("notify", constant(Value("notified"))));
  vm::Module module;
  module.activities.push_back(
      declaration("charge", json(R"({"type": "process", "command": "/bin/false"})")));
  module.hostActivities = {"notify"};
  ModuleActivities resolved = registry.resolve(module);
  CHECK(resolved.ready());
  Result<Value> charged = runOnce(*resolved.find("charge"), Value(nullptr));
  REQUIRE(charged.ok());
  CHECK(charged.value() == Value("stubbed"));
  CHECK(runOnce(*resolved.find("notify"), Value(nullptr)).value() == Value("notified"));
}

TEST_CASE("binding one name twice is refused and the first binding stays") {
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction("x", constant(Value(1))));
  std::optional<WorkflowError> again = registry.bindFunction("x", constant(Value(2)));
  REQUIRE(again);
  CHECK(again->message == "activity 'x' is bound twice; give each activity one binding");
  CHECK(runOnce(*registry.findBound("x"), Value(nullptr)).value() == Value(1));
}

TEST_CASE("invalid declarations are problems that name the activity") {
  ActivityRegistry registry;
  vm::Module module;
  module.activities.push_back(declaration("a", json(R"({"type": "ftp"})")));
  module.activities.push_back(
      declaration("b", json(R"({"type": "process", "command": "x", "shell": true})")));
  module.activities.push_back(declaration("c", json(R"({"type": "process", "args": []})")));
  module.activities.push_back(
      declaration("d", json(R"({"type": "function", "function_name": "nope"})")));
  module.activities.push_back(
      declaration("e", json(R"({"type": "process", "command": "x", "args": "a b"})")));
  module.activities.push_back(
      declaration("f", json(R"({"type": "process", "command": "x", "args": ["${oops"]})")));
  module.activities.push_back(
      declaration("g", json(R"({"type": "process", "command": "x", "args": ["a", null]})")));
  ModuleActivities resolved = registry.resolve(module);
  REQUIRE(resolved.problems.size() == 7);
  for (const WorkflowError &problem : resolved.problems) {
    CHECK(problem.type == "InvalidImplementation");
  }
  CHECK(resolved.problems[0].message ==
        "activity 'a': unknown implementation type 'ftp'; the known types are email, "
        "function, http, process, sql, webhook");
  CHECK(resolved.problems[1].message ==
        "activity 'b': unknown field 'shell' in a process implementation; it takes command, "
        "args, env, cwd and inherit_env");
  CHECK(resolved.problems[2].message.find("needs 'command'") != std::string::npos);
  CHECK(resolved.problems[3].message.find("no function named 'nope' is registered (known: "
                                          "echo, fail, log, sleep)") != std::string::npos);
  CHECK(resolved.problems[4].message.find("never run through a shell") != std::string::npos);
  CHECK(resolved.problems[5].message.find("invalid template in activity 'f' implementation "
                                          "args[0]") != std::string::npos);
  CHECK(resolved.problems[6].message ==
        "activity 'g': args[1] must be a string, number or boolean, found null");
  CHECK_FALSE(resolved.ready());
}

TEST_CASE("planned implementation types resolve and fail at run time as unavailable") {
  ActivityRegistry registry;
  vm::Module module;
  module.activities.push_back(
      declaration("validate", json(R"({"type": "http", "url": "http://127.0.0.1/x"})")));
  ModuleActivities resolved = registry.resolve(module);
  REQUIRE(resolved.ready());
  auto context = testContext();
  Result<Value> result = runActivity(*resolved.find("validate"), Value(nullptr), *context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ActivityUnavailable");
  CHECK_FALSE(result.error().retryable);
  CHECK(result.error().message.find("'http' implementation, which this build of kotoba cannot "
                                    "run yet") != std::string::npos);
}

TEST_CASE("a registered factory replaces the placeholder of its type") {
  ActivityRegistry registry;
  registry.registerFactory("http", [](const ImplementationRequest &request) {
    return Result<std::shared_ptr<Activity>>(
        std::make_shared<FunctionActivity>("http_stub", constant(request.implementation)));
  });
  Result<std::shared_ptr<Activity>> activity =
      registry.create("v", json(R"({"type": "http", "url": "u"})"));
  REQUIRE(activity.ok());
  CHECK(runOnce(*activity.value(), Value(nullptr)).value() ==
        json(R"({"type": "http", "url": "u"})"));
}

TEST_CASE("built-in helpers answer bare activity names only after bindBuiltins") {
  ActivityRegistry registry;
  vm::Module module;
  module.hostActivities = {"echo", "log"};
  CHECK(registry.resolve(module).unbound == std::vector<std::string>{"echo", "log"});
  registry.bindBuiltins();
  ModuleActivities resolved = registry.resolve(module);
  CHECK(resolved.ready());
  CHECK(runOnce(*resolved.find("echo"), Value("hi")).value() == Value("hi"));

  // Declarations and host bindings still come first.
  module.activities.push_back(
      declaration("echo", json(R"({"type": "function", "function_name": "fail"})")));
  Result<Value> declared =
      runOnce(*registry.resolve(module).find("echo"), json(R"({"type": "Declared"})"));
  REQUIRE_FALSE(declared.ok());
  CHECK(declared.error().type == "Declared");
}

TEST_CASE("a --bind process binding becomes a process activity") {
  testing::TempDir dir;
  std::string script = dir.writeScript("args.sh", "#!/bin/sh\nprintf '%s|' \"$@\"\n");
  Result<ActivityBinding> binding =
      parseBinding("lister=process:" + script + " --mode 'two words' ${$.input.id}");
  REQUIRE(binding.ok());
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindImplementation(binding->name, binding->implementation));
  Result<Value> result = runOnce(*registry.findBound("lister"), json(R"({"id": "o-1"})"));
  REQUIRE(result.ok());
  CHECK(result.value() == Value("--mode|two words|o-1|"));
}

TEST_CASE("--bind splits process command lines like a shell but never expands anything") {
  Result<ActivityBinding> binding = parseBinding(
      R"(charge=process:./bin/charge --mode "test run" 'a$(rm -rf /)b' c\ d "q\"x" '' $HOME)");
  REQUIRE(binding.ok());
  CHECK(binding->name == "charge");
  CHECK(binding->implementation == json(R"({"type": "process", "command": "./bin/charge",
      "args": ["--mode", "test run", "a$(rm -rf /)b", "c d", "q\"x", "", "$HOME"]})"));
}

TEST_CASE("--bind takes http:URL and a bare http URL") {
  Value expected = json(R"({"type": "http", "method": "POST",
                            "url": "http://127.0.0.1:8080/charge", "result": "body"})");
  Result<ActivityBinding> prefixed = parseBinding("charge=http:http://127.0.0.1:8080/charge");
  REQUIRE(prefixed.ok());
  CHECK(prefixed->implementation == expected);
  Result<ActivityBinding> bare = parseBinding("charge=http://127.0.0.1:8080/charge");
  REQUIRE(bare.ok());
  CHECK(bare->implementation == expected);
  CHECK(parseBinding("s=https://[::1]:9/x").ok());
}

TEST_CASE("malformed --bind options say what is wrong and how to write them") {
  auto message = [](std::string_view option) {
    Result<ActivityBinding> binding = parseBinding(option);
    REQUIRE_FALSE(binding.ok());
    CHECK(binding.error().type == "InvalidBinding");
    return binding.error().message;
  };
  CHECK(message("charge") == "--bind charge: expected NAME=SPEC, such as --bind "
                             "charge=process:./charge.sh or --bind "
                             "charge=http://127.0.0.1:8080/charge");
  CHECK(message("=process:x") == "--bind =process:x: the activity name before '=' is empty");
  CHECK(message("a b=process:x").find("contains whitespace") != std::string::npos);
  CHECK(message("c=process:") == "--bind c=process:: 'process:' needs a program, as "
                                 "process:./charge.sh");
  CHECK(message("c=process:'x") == "--bind c=process:'x: unterminated ' quote at offset 0");
  CHECK(message("c=process:\"x") == "--bind c=process:\"x: unterminated \" quote at offset 0");
  CHECK(message("c=./charge.sh") == "--bind c=./charge.sh: unknown binding './charge.sh'; "
                                    "expected process:PATH [ARGS...] or http:URL; to run a "
                                    "program write c=process:./charge.sh");
  CHECK(message("c=proces:./x").find("did you mean 'process:'?") != std::string::npos);
  CHECK(message("c=http:ftp://x").find("needs a URL starting with http://") != std::string::npos);
  CHECK(message("c=http://") == "--bind c=http://: the URL 'http://' has no host");
}

} // namespace kotoba::runtime
