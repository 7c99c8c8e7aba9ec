// The process activity against real child programs that each test writes into a temporary
// directory: results on stdout, errors on stderr and in exit codes, arguments and input
// passed verbatim, the environment, stopping with SIGTERM and SIGKILL, output caps, and no
// leaked descriptors or zombies.
#include "kotoba/runtime/activity_registry.h"
#include "kotoba/runtime/process.h"

#include "activity_test_support.h"
#include "kotoba/vm/json.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kotoba::runtime {
namespace {

using testing::Stopwatch;
using testing::TempDir;
using testing::testContext;

Value json(std::string_view text) {
  Result<Value> value = parseJson(text);
  REQUIRE_MESSAGE(value.ok(), text);
  return value.value();
}

// Runs `script` (a file in `dir`) as a process activity with `input`.
Result<Value> runScript(const TempDir &dir, const std::string &script, const Value &input,
                        std::vector<std::string> args = {}, ProcessOptions options = {},
                        size_t payloadLimit = kDefaultPayloadLimitBytes) {
  ProcessSpec spec;
  spec.command = dir.file(script);
  spec.args = std::move(args);
  auto context = testContext(nullptr, payloadLimit);
  return runProcess(spec, toJson(input), *context, options);
}

// Builds a process activity from an implementation object, as a declaration would.
std::shared_ptr<Activity> declared(const Value &implementation, const std::string &baseDirectory,
                                   std::map<std::string, std::string> env = {}) {
  ActivityRegistry registry;
  registry.setEnvironment(fixedEnvironment(std::move(env)));
  Result<std::shared_ptr<Activity>> activity =
      registry.create("proc", implementation, baseDirectory);
  REQUIRE_MESSAGE(activity.ok(), (activity.ok() ? "" : activity.error().message));
  return activity.value();
}

Result<Value> runDeclared(Activity &activity, const Value &input) {
  auto context = testContext();
  return runActivity(activity, input, *context);
}

bool processIsGone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// Whether `pid` is gone or a zombie that is not ours to reap (a grandchild reparented to an
// init that has not reaped it yet): either way it is no longer running.
bool processStopped(pid_t pid) {
  if (processIsGone(pid)) {
    return true;
  }
  std::string stat;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::getline(in, stat);
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

// Signals are delivered asynchronously: a process killed a moment ago may still be dying.
bool stopsSoon(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (processStopped(pid)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

pid_t readPid(const TempDir &dir, const std::string &name) {
  std::string text = dir.read(name);
  REQUIRE_MESSAGE(!text.empty(), name);
  return static_cast<pid_t>(std::stol(text));
}

} // namespace

TEST_CASE("a process that exits 0 returns its stdout parsed as JSON") {
  TempDir dir;
  dir.writeScript("ok.sh", "#!/bin/sh\necho '{\"id\": 42, \"tags\": [\"a\"]}'\n");
  Result<Value> result = runScript(dir, "ok.sh", Value(nullptr));
  REQUIRE(result.ok());
  CHECK(result.value() == json(R"({"id": 42, "tags": ["a"]})"));
}

TEST_CASE("the input arrives on stdin as compact JSON") {
  TempDir dir;
  dir.writeScript("cat.sh", "#!/bin/sh\nexec cat\n");
  Value input = json(R"({"order": "o-1", "amount": 12.5, "items": [1, 2]})");
  Result<Value> result = runScript(dir, "cat.sh", input);
  REQUIRE(result.ok());
  CHECK(result.value() == input);
}

TEST_CASE("plain text on stdout becomes a string and empty output is null") {
  TempDir dir;
  dir.writeScript("text.sh", "#!/bin/sh\nprintf 'hello world\\n\\n'\n");
  dir.writeScript("quiet.sh", "#!/bin/sh\nexit 0\n");
  dir.writeScript("number.sh", "#!/bin/sh\necho 17\n");
  CHECK(runScript(dir, "text.sh", Value(nullptr)).value() == Value("hello world"));
  CHECK(runScript(dir, "quiet.sh", Value(nullptr)).value() == Value(nullptr));
  CHECK(runScript(dir, "number.sh", Value(nullptr)).value() == Value(17));
}

TEST_CASE("stdout that is not UTF-8 is InvalidPayload") {
  TempDir dir;
  dir.writeScript("bytes.sh", "#!/bin/sh\nprintf 'ab\\377cd'\n");
  Result<Value> result = runScript(dir, "bytes.sh", Value(nullptr));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "InvalidPayload");
}

TEST_CASE("a non-zero exit with a JSON error object on stderr raises that error") {
  TempDir dir;
  dir.writeScript("declined.sh",
                  "#!/bin/sh\necho 'checking card' >&2\n"
                  "echo '{\"type\": \"PaymentDeclined\", \"message\": \"card expired\", "
                  "\"details\": {\"card\": \"visa\"}, \"retryable\": false}' >&2\nexit 3\n");
  Result<Value> result = runScript(dir, "declined.sh", Value(nullptr));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "PaymentDeclined");
  CHECK(result.error().message == "card expired");
  CHECK(result.error().details == json(R"({"card": "visa"})"));
  CHECK_FALSE(result.error().retryable);

  dir.writeScript("whole.sh", "#!/bin/sh\nprintf '{\\n  \"type\": \"Busy\"\\n}\\n' >&2\nexit 1\n");
  Result<Value> whole = runScript(dir, "whole.sh", Value(nullptr));
  REQUIRE_FALSE(whole.ok());
  CHECK(whole.error().type == "Busy");
  CHECK(whole.error().retryable);
}

TEST_CASE("a non-zero exit without an error object is ProcessFailed with the stderr tail") {
  TempDir dir;
  std::string script = "#!/bin/sh\n";
  for (int line = 1; line <= 30; ++line) {
    script += fmt::format("echo 'line {}' >&2\n", line);
  }
  script += "echo '{\"no\": \"type\"}' >&2\nexit 4\n";
  std::string path = dir.writeScript("fails.sh", script);
  Result<Value> result = runScript(dir, "fails.sh", Value(nullptr));
  REQUIRE_FALSE(result.ok());
  const WorkflowError &error = result.error();
  CHECK(error.type == "ProcessFailed");
  CHECK(error.retryable);
  CHECK(error.message == fmt::format("'{}' exited with status 4: {{\"no\": \"type\"}}", path));
  CHECK(*error.details.asObject().find("exit_code") == Value(4));
  std::string tail = error.details.asObject().find("stderr")->asString();
  CHECK(tail.find("line 12\n") == 0);
  CHECK(tail.find("line 11\n") == std::string::npos);
  CHECK(tail.find("line 30\n{\"no\": \"type\"}") != std::string::npos);
}

TEST_CASE("a process killed by a signal is ProcessFailed naming the signal") {
  TempDir dir;
  dir.writeScript("segv.sh", "#!/bin/sh\nkill -SEGV $$\n");
  Result<Value> result = runScript(dir, "segv.sh", Value(nullptr));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ProcessFailed");
  CHECK(*result.error().details.asObject().find("signal") == Value("SIGSEGV"));
  CHECK(result.error().message.find("was killed by SIGSEGV") != std::string::npos);
}

TEST_CASE("a program that cannot be started is ProcessStartFailed with a hint") {
  TempDir dir;
  Result<Value> missing = runScript(dir, "does-not-exist", Value(nullptr));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().type == "ProcessStartFailed");
  CHECK_FALSE(missing.error().retryable);
  CHECK(missing.error().message.find("No such file or directory; check the path") !=
        std::string::npos);

  dir.writeFile("plain.txt", "not a program");
  Result<Value> notExecutable = runScript(dir, "plain.txt", Value(nullptr));
  REQUIRE_FALSE(notExecutable.ok());
  CHECK(notExecutable.error().message.find("chmod +x") != std::string::npos);

  ProcessSpec spec;
  spec.command = "kotoba-no-such-program-on-path";
  auto context = testContext();
  Result<Value> unknown = runProcess(spec, "", *context);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("not in PATH") != std::string::npos);
}

TEST_CASE("arguments and input reach the program verbatim, never through a shell") {
  TempDir dir;
  // Prints each argument on its own line, then its stdin.
  dir.writeScript("show.sh", "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
                             "printf 'stdin=%s' \"$(cat)\"\n");
  std::string canary = dir.file("pwned");
  std::vector<std::string> args = {"$(touch " + canary + ")",
                                   "`touch " + canary + "`",
                                   "'; DROP TABLE x; --",
                                   "a b\tc",
                                   "*",
                                   "$HOME",
                                   ""};
  Value input = json(R"json({"name": "'; DROP TABLE x; --", "cmd": "$(rm -rf /)"})json");
  Result<Value> result = runScript(dir, "show.sh", input, args);
  REQUIRE(result.ok());
  std::string expected;
  for (const std::string &arg : args) {
    expected += arg + "\n";
  }
  expected += "stdin=" + toJson(input);
  CHECK(result.value() == Value(expected));
  CHECK_FALSE(std::filesystem::exists(canary));
}

TEST_CASE("templates in a declared implementation fill arguments and the environment") {
  TempDir dir;
  dir.writeScript("env.sh", "#!/bin/sh\nprintf '%s|%s|%s|%s' \"$1\" \"$ORDER\" \"$TOKEN\" "
                            "\"${REMOVED-unset}\"\n");
  std::shared_ptr<Activity> activity =
      declared(json(R"({"type": "process", "command": "./env.sh", "args": ["${$.input.id}"],
               "env": {"ORDER": "order-${$.input.id}", "TOKEN": "${$.env.SECRET}",
                       "REMOVED": null}})"),
               dir.path().string(), {{"SECRET", "hunter22"}});
  ::setenv("REMOVED", "present", 1);
  Result<Value> result = runDeclared(*activity, json(R"json({"id": "$(id)"})json"));
  ::unsetenv("REMOVED");
  REQUIRE(result.ok());
  CHECK(result.value() == Value("$(id)|order-$(id)|hunter22|unset"));
}

TEST_CASE("the program sees the attempt in KOTOBA_ variables and inherits the environment") {
  TempDir dir;
  dir.writeScript("ids.sh", "#!/bin/sh\nprintf '%s %s %s %s %s %s' \"$KOTOBA_RUN_ID\" "
                            "\"$KOTOBA_STEP_ID\" \"$KOTOBA_ACTIVITY\" \"$KOTOBA_ATTEMPT\" "
                            "\"$KOTOBA_IDEMPOTENCY_KEY\" \"${KOTOBA_TEST_INHERITED-none}\"\n");
  ::setenv("KOTOBA_TEST_INHERITED", "yes", 1);
  Result<Value> inherited = runScript(dir, "ids.sh", Value(nullptr));
  std::shared_ptr<Activity> isolated =
      declared(json(R"({"type": "process", "command": "./ids.sh", "inherit_env": false})"),
               dir.path().string());
  Result<Value> clean = runDeclared(*isolated, Value(nullptr));
  ::unsetenv("KOTOBA_TEST_INHERITED");
  REQUIRE(inherited.ok());
  CHECK(inherited.value() == Value("run-1 step_a test_activity 1 run-1/step_a/c7/1 yes"));
  REQUIRE(clean.ok());
  CHECK(clean.value() == Value("run-1 step_a test_activity 1 run-1/step_a/c7/1 none"));
}

TEST_CASE("relative commands and working directories start at the base directory") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "bin");
  std::filesystem::create_directories(dir.path() / "work");
  dir.writeScript("bin/where.sh", "#!/bin/sh\npwd\n");
  std::shared_ptr<Activity> activity =
      declared(json(R"({"type": "process", "command": "bin/where.sh", "cwd": "work"})"),
               dir.path().string());
  Result<Value> result = runDeclared(*activity, Value(nullptr));
  REQUIRE(result.ok());
  CHECK(std::filesystem::equivalent(result->asString(), dir.path() / "work"));
}

TEST_CASE("errors of a process never show the environment values its templates read") {
  TempDir dir;
  dir.writeScript("leak.sh", "#!/bin/sh\necho \"token is $1\" >&2\nexit 2\n");
  std::shared_ptr<Activity> activity = declared(
      json(R"({"type": "process", "command": "./leak.sh", "args": ["${$.env.API_TOKEN}"]})"),
      dir.path().string(), {{"API_TOKEN", "tk_live_0123456789"}});
  Result<Value> result = runDeclared(*activity, Value(nullptr));
  REQUIRE_FALSE(result.ok());
  std::string everything = toJson(result.error().toValue());
  CHECK(everything.find("tk_live_0123456789") == std::string::npos);
  CHECK(result.error().message.find("token is [redacted $.env.API_TOKEN]") != std::string::npos);
}

TEST_CASE("output that arrives slowly is collected whole") {
  TempDir dir;
  dir.writeScript("slow.sh", "#!/bin/sh\nprintf '{\"parts\": [' ; sleep 0.1\nprintf '1, '\n"
                             "sleep 0.1\nprintf '2]'; sleep 0.1\necho '}'\n");
  Result<Value> result = runScript(dir, "slow.sh", Value(nullptr));
  REQUIRE(result.ok());
  CHECK(result.value() == json(R"({"parts": [1, 2]})"));
}

TEST_CASE("large input and output pass through the pipes without deadlock") {
  TempDir dir;
  dir.writeScript("cat.sh", "#!/bin/sh\nexec cat\n");
  Value input(std::string(1024 * 1024, 'k'));
  Result<Value> result = runScript(dir, "cat.sh", input);
  REQUIRE(result.ok());
  CHECK(result.value() == input);
}

TEST_CASE("output over the payload limit stops the program with PayloadTooLarge") {
  TempDir dir;
  dir.writeScript("flood.sh", "#!/bin/sh\nexec yes 0123456789abcdef\n");
  dir.writeScript("big.sh", "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' 'a'\n");
  Stopwatch watch;
  Result<Value> flood = runScript(dir, "flood.sh", Value(nullptr), {}, {}, 64 * 1024);
  CHECK(watch.elapsedMs() < 5000);
  REQUIRE_FALSE(flood.ok());
  CHECK(flood.error().type == "PayloadTooLarge");
  CHECK_FALSE(flood.error().retryable);
  Result<Value> big = runScript(dir, "big.sh", Value(nullptr));
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().type == "PayloadTooLarge");
  CHECK(*big.error().details.asObject().find("limit_bytes") == Value(int64_t{2 * 1024 * 1024}));
}

TEST_CASE("a program that does not read its input still succeeds") {
  TempDir dir;
  dir.writeScript("ignore.sh", "#!/bin/sh\necho done\n");
  Value input(std::string(512 * 1024, 'z'));
  Result<Value> result = runScript(dir, "ignore.sh", input);
  REQUIRE(result.ok());
  CHECK(result.value() == Value("done"));
}

TEST_CASE("a cancelled process group gets SIGTERM and the attempt returns at once") {
  TempDir dir;
  dir.writeScript("wait.sh", "#!/bin/sh\necho $$ > \"$0.pid\"\nsleep 30 &\necho $! > \"$0.child\"\n"
                             "wait\n");
  auto cancellation = std::make_shared<CancellationSignal>();
  std::thread canceller([cancellation, &dir] {
    for (int i = 0; i < 200 && dir.read("wait.sh.child").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    cancellation->request(StopReason::Cancelled);
  });
  ProcessSpec spec;
  spec.command = dir.file("wait.sh");
  auto context = testContext(cancellation);
  Stopwatch watch;
  Result<Value> result = runProcess(spec, "", *context);
  canceller.join();
  CHECK(watch.elapsedMs() < 3000);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ActivityCancelled");
  CHECK(processIsGone(readPid(dir, "wait.sh.pid")));
  CHECK(stopsSoon(readPid(dir, "wait.sh.child")));
}

TEST_CASE("a process that ignores SIGTERM is killed with SIGKILL after the grace period") {
  TempDir dir;
  dir.writeScript("stubborn.sh", "#!/bin/sh\ntrap '' TERM\necho $$ > \"$0.pid\"\n"
                                 "while true; do sleep 1; done\n");
  auto cancellation = std::make_shared<CancellationSignal>();
  std::thread timer([cancellation, &dir] {
    for (int i = 0; i < 200 && dir.read("stubborn.sh.pid").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    cancellation->request(StopReason::TimedOut);
  });
  ProcessSpec spec;
  spec.command = dir.file("stubborn.sh");
  ProcessOptions options;
  options.killGraceMs = 300;
  auto context = testContext(cancellation);
  Stopwatch watch;
  Result<Value> result = runProcess(spec, "", *context, options);
  timer.join();
  int64_t elapsed = watch.elapsedMs();
  CHECK(elapsed >= 300);
  CHECK(elapsed < 3000);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().type == "ActivityTimeout");
  CHECK(result.error().retryable);
  CHECK(processIsGone(readPid(dir, "stubborn.sh.pid")));
}

TEST_CASE("a background child holding stdout open does not hold up a finished program") {
  TempDir dir;
  dir.writeScript("daemon.sh", "#!/bin/sh\nsleep 30 &\necho $! > \"$0.child\"\necho '\"ok\"'\n");
  ProcessOptions options;
  options.orphanDrainMs = 100;
  Stopwatch watch;
  Result<Value> result = runScript(dir, "daemon.sh", Value(nullptr), {}, options);
  CHECK(watch.elapsedMs() < 3000);
  REQUIRE(result.ok());
  CHECK(result.value() == Value("ok"));
  CHECK(stopsSoon(readPid(dir, "daemon.sh.child")));
}

TEST_CASE("no descriptor of the engine leaks into the program") {
  TempDir dir;
  // An fd opened without O_CLOEXEC, as careless code in a host program might.
  int leaky = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaky > 2);
  dir.writeScript("fds.sh", fmt::format("#!/bin/sh\nif [ -e /proc/$$/fd/{} ]; then echo leaked; "
                                        "else echo clean; fi\n",
                                        leaky));
  Result<Value> result = runScript(dir, "fds.sh", Value(nullptr));
  ::close(leaky);
  REQUIRE(result.ok());
  CHECK(result.value() == Value("clean"));
}

TEST_CASE("running many processes leaves no descriptors open and no zombies") {
  TempDir dir;
  dir.writeScript("ok.sh", "#!/bin/sh\ncat >/dev/null\necho 1\n");
  dir.writeScript("bad.sh", "#!/bin/sh\necho oops >&2\nexit 1\n");
  auto countFds = [] {
    size_t count = 0;
    for ([[maybe_unused]] const auto &entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
      ++count;
    }
    return count;
  };
  size_t before = countFds();
  for (int i = 0; i < 20; ++i) {
    CHECK(runScript(dir, i % 2 == 0 ? "ok.sh" : "bad.sh", Value(i)).ok() == (i % 2 == 0));
  }
  CHECK(countFds() == before);
  int status = 0;
  pid_t zombie = ::waitpid(-1, &status, WNOHANG);
  CHECK(zombie <= 0);
}

} // namespace kotoba::runtime
