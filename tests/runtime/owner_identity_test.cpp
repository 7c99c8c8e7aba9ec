// Owner identities and liveness (owner_identity.h), and the engine's immediate takeover of a
// dead owner's run. The liveness checks run against real processes: this one, and children
// forked for the test that are alive, exited but unreaped, or gone.
#include "engine_support.h"

#include "kotoba/runtime/owner_identity.h"

#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace kotoba;
using namespace kotoba::runtime;
using namespace kotoba::testing;

namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int64_t kLongLeaseMs = 60 * 60 * 1000;

// A child process that waits until release() (or exits at once) and is reaped by reap().
class Child {
public:
  explicit Child(bool exitAtOnce) {
    REQUIRE(::pipe(pipe_) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls in the child of a possibly threaded process.
      ::close(pipe_[1]);
      char byte = 0;
      if (!exitAtOnce) {
        (void)::read(pipe_[0], &byte, 1); // returns when the parent closes its end
      }
      ::_exit(0);
    }
    ::close(pipe_[0]);
  }
  ~Child() {
    release();
    reap();
  }
  [[nodiscard]] pid_t pid() const { return pid_; }
  void release() {
    if (pipe_[1] >= 0) {
      ::close(pipe_[1]);
      pipe_[1] = -1;
    }
  }
  void reap() {
    if (pid_ > 0) {
      REQUIRE(::waitpid(pid_, nullptr, 0) == pid_);
      pid_ = -1;
    }
  }

private:
  int pipe_[2] = {-1, -1};
  pid_t pid_ = -1;
};

// Waits until the exited child shows as a zombie.
void awaitZombie(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG) == 0 &&
        info.si_pid == pid) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  FAIL("the child did not exit");
}

std::string ownerOf(const ProcessIdentity &identity) {
  return "kotoba-vm/testhost/" + std::to_string(identity.pid) + "/1/" +
         formatProcessToken(identity);
}

ProcessIdentity self() {
  const std::optional<ProcessIdentity> &identity = currentProcessIdentity();
  REQUIRE_MESSAGE(identity, "this test needs a readable /proc of its own pid namespace");
  return *identity;
}

} // namespace

TEST_CASE("an owner token round-trips through the owner name") {
  ProcessIdentity identity{"0b4c6f7e-1d2a-4e5f-8a9b-0c1d2e3f4a5b", 4026531836, 4242, 987654};
  std::string owner = ownerOf(identity);
  CHECK(owner.ends_with("/proc:0b4c6f7e-1d2a-4e5f-8a9b-0c1d2e3f4a5b:4026531836:4242:987654"));
  std::optional<ProcessIdentity> parsed = parseOwnerIdentity(owner);
  REQUIRE(parsed);
  CHECK(*parsed == identity);
}

TEST_CASE("this process's own owner name is alive") {
  ProcessIdentity me = self();
  CHECK(me.pid == ::getpid());
  std::string owner = ownerWithProcessToken("kotoba-vm/testhost/1/2");
  CHECK(owner.starts_with("kotoba-vm/testhost/1/2/proc:"));
  CHECK(ownerLiveness(owner) == OwnerLiveness::Alive);
}

TEST_CASE("a child process is alive while it runs and dead once it exited and was reaped") {
  Child child(/*exitAtOnce=*/false);
  std::optional<ProcessIdentity> identity = readProcessIdentity(child.pid());
  REQUIRE(identity);
  CHECK(identity->bootId == self().bootId);
  CHECK(identity->pidNamespace == self().pidNamespace);
  std::string owner = ownerOf(*identity);
  CHECK(ownerLiveness(owner) == OwnerLiveness::Alive);
  child.release();
  child.reap();
  CHECK(ownerLiveness(owner) == OwnerLiveness::Dead);
}

TEST_CASE("an exited child that is not reaped yet is unknown, not dead") {
  Child child(/*exitAtOnce=*/false);
  std::optional<ProcessIdentity> identity = readProcessIdentity(child.pid());
  REQUIRE(identity);
  child.release();
  awaitZombie(child.pid());
  CHECK(ownerLiveness(ownerOf(*identity)) == OwnerLiveness::Unknown);
  child.reap();
  CHECK(ownerLiveness(ownerOf(*identity)) == OwnerLiveness::Dead);
}

TEST_CASE("a pid now held by a process with another start time is dead") {
  // This process holds the pid, but the owner named started at another tick: the pid's
  // earlier holder, which must have died for the pid to be handed out again.
  ProcessIdentity earlier = self();
  earlier.startTicks = earlier.startTicks == 0 ? 1 : earlier.startTicks - 1;
  CHECK(ownerLiveness(ownerOf(earlier)) == OwnerLiveness::Dead);
}

TEST_CASE("an owner of another boot or pid namespace is unknown even when its pid is free") {
  Child child(/*exitAtOnce=*/true);
  std::optional<ProcessIdentity> identity = readProcessIdentity(child.pid());
  child.reap();
  if (!identity) {
    return; // exited before /proc was read; the other cases cover the read
  }
  ProcessIdentity otherBoot = *identity;
  otherBoot.bootId = "00000000-0000-0000-0000-000000000000";
  CHECK(ownerLiveness(ownerOf(otherBoot)) == OwnerLiveness::Unknown);
  ProcessIdentity otherNamespace = *identity;
  otherNamespace.pidNamespace += 1;
  CHECK(ownerLiveness(ownerOf(otherNamespace)) == OwnerLiveness::Unknown);
  CHECK(ownerLiveness(ownerOf(*identity)) == OwnerLiveness::Dead);
}

TEST_CASE("malformed, old-format and foreign owner names are unknown") {
  const std::string boot = self().bootId;
  const std::string ns = std::to_string(self().pidNamespace);
  for (const std::string &owner : {
           std::string("engine-a"),
           std::string("kotoba-vm/host/123/1700000000000"), // before process tokens
           std::string(""),
           "proc:" + boot,
           "proc:" + boot + ":" + ns + ":123",
           "proc:" + boot + ":" + ns + ":123:45:6",
           "proc::" + ns + ":123:45",
           "proc:" + boot + ":x" + ns + ":123:45",
           "proc:" + boot + ":" + ns + ":0:45",
           "proc:" + boot + ":" + ns + ":-1:45",
           "proc:" + boot + ":" + ns + ":99999999999:45",
           "proc:" + boot + ":" + ns + ":123:45 ",
           "kotoba-vm/host/proc:" + boot + ":" + ns + ":1:2/extra",
       }) {
    CAPTURE(owner);
    CHECK_FALSE(parseOwnerIdentity(owner));
    CHECK(ownerLiveness(owner) == OwnerLiveness::Unknown);
  }
}

TEST_CASE("an engine takes over at once the run and task claims of an owner that died") {
  // The dead owner: a reaped child's identity, with a lease and claims far from expiring.
  std::string deadOwner;
  {
    Child child(/*exitAtOnce=*/false);
    std::optional<ProcessIdentity> identity = readProcessIdentity(child.pid());
    REQUIRE(identity);
    deadOwner = ownerOf(*identity);
  }
  REQUIRE(ownerLiveness(deadOwner) == OwnerLiveness::Dead);

  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  int calls = 0;
  REQUIRE_FALSE(registry.bindFunction("prepare", [&](const Value &input, ActivityContext &) {
    ++calls;
    return Result<Value>(input);
  }));
  const char *const source = R"({ workflow: { id: "prepared",
    strategy: { op: "activity", id: "prepare", activity_ref: "prepare" } } })";
  std::string runId;
  {
    EngineOptions options;
    options.owner = "engine-a";
    Engine creator(*temp.store, registry, clock, options);
    auto hash = creator.addModule(compileWorkflow(source));
    REQUIRE(hash.ok());
    StartRequest request;
    request.moduleHash = hash.value();
    request.inputs = Value(Object());
    auto started = creator.start(request);
    REQUIRE(started.ok());
    runId = started.value();
  }
  int64_t at = clock.nowMs();
  size_t claimed = 0;
  StoreStatus seized = temp.store->write([&](Transaction &tx) -> StoreStatus {
    claimed = 0;
    auto leased = tx.acquireLease(runId, deadOwner, at, at + kLongLeaseMs);
    if (!leased.ok() || !leased.value()) {
      return leased.ok() ? StoreStatus() : StoreStatus(std::move(leased).error());
    }
    auto tasks = tx.tasksOf(runId);
    if (!tasks.ok()) {
      return std::move(tasks).error();
    }
    for (const TaskRecord &task : tasks.value()) {
      auto got = tx.claimTask(runId, task.commandId, deadOwner, at, at + kLongLeaseMs);
      if (!got.ok()) {
        return std::move(got).error();
      }
      claimed += got.value() ? 1 : 0;
    }
    return {};
  });
  REQUIRE(seized.ok());
  REQUIRE(claimed == 1); // the run's first task, added by start()
  auto owners =
      temp.store->query([&](const StoreReader &reader) { return reader.leaseOwners(at); });
  REQUIRE(owners.ok());
  CHECK(owners.value() == std::vector<std::string>{deadOwner});

  EngineOptions options;
  options.owner = ownerWithProcessToken("engine-b");
  Engine taker(*temp.store, registry, clock, options);
  auto done = taker.runToCompletion(runId);
  REQUIRE(done.ok());
  CHECK(done.value().status == RunStatus::Completed);
  CHECK(calls == 1);
  CHECK(clock.nowMs() < at + kLongLeaseMs); // nothing waited for the dead owner's expiry
}

TEST_CASE("an engine leaves the lease of an owner it cannot prove dead until it expires") {
  TemporaryStore temp;
  VirtualClock clock(kStartMs);
  ActivityRegistry registry;
  REQUIRE_FALSE(registry.bindFunction(
      "prepare", [](const Value &input, ActivityContext &) { return Result<Value>(input); }));
  const char *const source = R"({ workflow: { id: "prepared",
    strategy: { op: "activity", id: "prepare", activity_ref: "prepare" } } })";
  EngineOptions creatorOptions;
  creatorOptions.owner = "engine-a";
  std::string runId;
  {
    Engine creator(*temp.store, registry, clock, creatorOptions);
    auto hash = creator.addModule(compileWorkflow(source));
    REQUIRE(hash.ok());
    StartRequest request;
    request.moduleHash = hash.value();
    request.inputs = Value(Object());
    auto started = creator.start(request);
    REQUIRE(started.ok());
    runId = started.value();
  }
  int64_t at = clock.nowMs();
  StoreStatus seized = temp.store->write([&](Transaction &tx) -> StoreStatus {
    auto leased = tx.acquireLease(runId, "host-program-owner", at, at + kLongLeaseMs);
    return leased.ok() ? StoreStatus() : StoreStatus(std::move(leased).error());
  });
  REQUIRE(seized.ok());

  EngineOptions options;
  options.owner = ownerWithProcessToken("engine-b");
  Engine taker(*temp.store, registry, clock, options);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(taker.step().ok());
  }
  auto lease = temp.store->query([&](const StoreReader &reader) { return reader.lease(runId); });
  REQUIRE(lease.ok());
  REQUIRE(lease.value());
  CHECK(lease.value()->owner == "host-program-owner");
  auto outcome = taker.outcome(runId);
  REQUIRE(outcome.ok());
  CHECK(outcome.value().status == RunStatus::Running);
}
