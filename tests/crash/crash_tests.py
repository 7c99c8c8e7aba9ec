#!/usr/bin/env python3
"""Crash tests of kotoba-vm: real processes on a real store file, killed with SIGKILL.

    crash_tests.py --bin-dir BUILD --source-dir SOURCE --suite sigkill|two-workers
                   [--jobs N] [--keep] [--seed S]

sigkill: a workflow with a saga, a parallel, real timers, signals, a child workflow and a
  compensated failure is started, then driven by `resume` and `worker` processes that are
  killed again and again until the run ends: at the Nth write or sync SQLite makes (the
  store's test-only KOTOBA_TEST_KILL_AT_WRITE hook, docs/durability.md), N swept across the
  whole run so that kills land inside commits, and at random moments; in the durability
  modes normal, full and batch. After each run ends it checks that the outputs equal an
  uninterrupted run's, that every history holds the same events as the uninterrupted one,
  verifies and replays cleanly, and that no activity ran again after its completion was
  committed: each activity, when it starts, looks in the store (read-only) for its own
  ActivityCompleted event and records a violation if it is there. Registered with CTest as
  crash/sigkill.

two-workers: 500 runs started with `run --detach`, then two `worker --until-idle` processes
  on the same store at once. Every run must complete, every step must have run exactly once
  (each activity appends its idempotency key to a file), and no "database is locked" may
  reach stderr. Both workers must take part: an attempt where one did everything is
  repeated with a fresh store (up to 3). Registered with CTest as crash/two-workers.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

# The event type numbers of runtime/include/kotoba/runtime/event_types.def that the checks
# read straight from the store file.
ACTIVITY_COMPLETED = 22

# A command that takes longer than this is hung, not slow.
COMMAND_TIMEOUT_S = 60
# Leases short enough that a killed process's run is taken over quickly, long enough to be
# renewed on a loaded machine (the engine renews at half the lease).
LEASE_MS = 600
# A scenario whose run has not ended after this many processes is stuck.
MAX_PROCESSES = 40
# The suite fails unless at least this many processes were killed in all.
MIN_KILLS = 200

# The workflow under test: a saga holding a parallel (an activity, a timer then an
# activity, another activity), two signal waits (one signal sent with the start, one while
# the run is parked), a child workflow with its own timer, and a second saga whose charge is
# declined, so that its hold is compensated, caught by a try.
WORKFLOW = """\
{
  workflows: [
    {
      id: "crash",
      inputs: [{ name: "order", type: "string", required: true }],
      outputs: [{ name: "reserved" }, { name: "parts" }, { name: "approved_by" },
                { name: "more" }, { name: "tracking" }, { name: "declined" },
                { name: "notice" }],
      output_mapping: { reserved: $.results.reserve, parts: $.results.parts,
                        approved_by: $.signals.go.by, more: $.signals.more,
                        tracking: $.results.ship.tracking, declined: $.vars.declined,
                        notice: $.results.notify },
      strategy: { op: "seq", strategies: [
        { op: "saga", id: "booking", main_flow: { op: "seq", strategies: [
          { op: "activity", id: "reserve", activity_ref: "reserve",
            input_mapping: { order: $.inputs.order },
            compensate: { activity_ref: "release", input_mapping: { order: $.inputs.order } } },
          { op: "parallel", id: "parts", branches: [
            { op: "activity", id: "pack", activity_ref: "pack",
              input_mapping: { order: $.inputs.order } },
            { op: "seq", strategies: [
              { op: "wait", id: "cool_down", timer: "PT0.3S" },
              { op: "activity", id: "label", activity_ref: "label",
                input_mapping: { order: $.inputs.order } } ] },
            { op: "activity", id: "weigh", activity_ref: "weigh",
              input_mapping: { order: $.inputs.order } } ] },
          { op: "wait", id: "approval", signal: "go" },
          { op: "subworkflow", id: "ship", workflow_ref: "ship",
            input_mapping: { order: $.inputs.order } },
          { op: "wait", id: "second_signal", signal: "more" } ] } },
        { op: "try", id: "payment",
          body: { op: "saga", main_flow: { op: "seq", strategies: [
            { op: "activity", id: "hold", activity_ref: "hold",
              input_mapping: { order: $.inputs.order },
              compensate: { activity_ref: "unhold", input_mapping: { order: $.inputs.order } } },
            { op: "activity", id: "charge", activity_ref: "charge",
              input_mapping: { order: $.inputs.order } } ] } },
          catch: [{ errors: ["Declined"], do: { op: "set", vars: { declined: $.error.type } } }] },
        { op: "activity", id: "notify", activity_ref: "notify",
          input_mapping: { order: $.inputs.order, declined: $.vars.declined } } ] }
    },
    {
      id: "ship",
      inputs: [{ name: "order", type: "string", required: true }],
      outputs: [{ name: "tracking" }],
      output_mapping: { tracking: $.results.dispatch.code },
      strategy: { op: "seq", strategies: [
        { op: "wait", id: "pickup", timer: "PT0.2S" },
        { op: "activity", id: "dispatch", activity_ref: "dispatch",
          input_mapping: { order: $.inputs.order } } ] }
    }
  ]
}
"""

ACTIVITIES = ["reserve", "release", "pack", "label", "weigh", "dispatch", "hold", "unhold",
              "charge", "notify"]

# One process activity for every name: it appends its execution to executions.log, checks
# first that the store has not already committed its completion (a violation otherwise),
# and answers from its name and input alone, so that every run gives the same outputs.
ACTIVITY_SCRIPT = """\
#!{python}
import json, os, sqlite3, sys, time
DB = {db!r}
name = os.environ["KOTOBA_ACTIVITY"]
run_id = os.environ["KOTOBA_RUN_ID"]
key = os.environ["KOTOBA_IDEMPOTENCY_KEY"]
command = int(key.split("/")[-2].lstrip("c"))
inp = json.load(sys.stdin)
completed = None
for attempt in range(50):
    try:
        store = sqlite3.connect("file:" + DB + "?mode=ro", uri=True, timeout=10)
        completed = store.execute(
            "SELECT COUNT(*) FROM events "
            "WHERE run_key = (SELECT run_key FROM runs WHERE id = ?) AND type = ? "
            "AND coalesce(command_id, json_extract(payload, '$.command_id')) = ?",
            (run_id, {completed_type}, command)).fetchone()[0]
        store.close()
        break
    except sqlite3.Error as error:
        last = str(error)
        time.sleep(0.05)
record = {{"activity": name, "run": run_id, "command": command, "key": key,
           "step": os.environ["KOTOBA_STEP_ID"], "pid": os.getpid()}}
if completed is None:
    record["check_error"] = last
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
if completed:
    with open({violations!r}, "a") as out:
        out.write(json.dumps(record) + "\\n")
time.sleep(0.02)
if name == "charge":
    sys.stderr.write(json.dumps({{"type": "Declined", "message": "card declined",
                                  "retryable": False}}) + "\\n")
    sys.exit(1)
json.dump({{"by": name, "order": inp.get("order"), "code": name + "-" + str(inp.get("order"))}},
          sys.stdout)
"""


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


class Store:
    """One store file in its own directory, with the activity script bound to it."""

    def __init__(self, config, directory):
        self.config = config
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.db = os.path.join(directory, "kotoba.db")
        self.log = os.path.join(directory, "executions.log")
        self.violations = os.path.join(directory, "violations.log")
        with open(os.path.join(directory, "crash.kotoba"), "w") as out:
            out.write(WORKFLOW)
        script = os.path.join(directory, "activity.py")
        with open(script, "w") as out:
            out.write(ACTIVITY_SCRIPT.format(python=sys.executable, db=self.db, log=self.log,
                                             violations=self.violations,
                                             completed_type=ACTIVITY_COMPLETED))
        os.chmod(script, 0o755)
        self.bindings = [f"--bind={name}=process:{script}" for name in ACTIVITIES]

    def vm(self, *args, durability="normal", timeout=COMMAND_TIMEOUT_S):
        """Runs a kotoba-vm command that is not meant to be killed."""
        return subprocess.run([self.config.kotoba_vm, "--db", self.db, "--durability",
                               durability, *args], cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout, env=clean_environment())

    def vm_ok(self, *args):
        result = self.vm(*args)
        check(result.returncode == 0,
              f"kotoba-vm {' '.join(args)} exited {result.returncode}\n{result.stderr}")
        return result

    def runs(self):
        return json.loads(self.vm_ok("list", "--json").stdout)

    def history(self, run_id):
        return json.loads(self.vm_ok("history", run_id, "--json").stdout)

    def executions(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as log:
            return [json.loads(line) for line in log if line.strip()]

    def violation_lines(self):
        if not os.path.exists(self.violations):
            return []
        with open(self.violations) as lines:
            return [line for line in lines if line.strip()]


def clean_environment(kill_at=None):
    environment = {key: value for key, value in os.environ.items()
                   if key != "KOTOBA_TEST_KILL_AT_WRITE"}
    if kill_at is not None:
        environment["KOTOBA_TEST_KILL_AT_WRITE"] = str(kill_at)
    return environment


def drive(store, args, kill, durability):
    """Runs one engine process, killed as `kill` says: ("write", N) raises SIGKILL in it at
    its Nth SQLite write or sync, ("time", S) sends SIGKILL after S seconds, None lets it
    end. Its process group (the activities it started) dies with it, as on a machine crash.
    Returns (killed, completed process)."""
    kill_at = kill[1] if kill and kill[0] == "write" else None
    process = subprocess.Popen([store.config.kotoba_vm, "--db", store.db, "--durability",
                                durability, *args, *store.bindings, "--lease-ms",
                                str(LEASE_MS)],
                               cwd=store.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=clean_environment(kill_at),
                               start_new_session=True)
    if kill and kill[0] == "time":
        try:
            process.wait(timeout=kill[1])
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    try:
        stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise TestFailure(f"kotoba-vm {' '.join(args)} hung\n{stderr}")
    try:
        os.killpg(process.pid, signal.SIGKILL)  # activities the dead engine left running
    except ProcessLookupError:
        pass
    killed = process.returncode == -signal.SIGKILL
    check(killed or process.returncode in (0, 1),
          f"kotoba-vm {' '.join(args)} exited {process.returncode}\n{stderr}")
    check("database is locked" not in stderr, f"a lock error reached the user:\n{stderr}")
    return killed, subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def start_run(store):
    """Starts the run (its `go` signal with it) and sends `more` while it is parked."""
    result = store.vm_ok("run", "--detach", "crash.kotoba", "--input", '{"order": "o-7"}',
                         "--signal", 'go={"by": "ops"}', *store.bindings)
    run_id = result.stdout.strip()
    store.vm_ok("signal", run_id, "more", '{"n": 2}')
    return run_id


def finished(store, run_id):
    runs = store.runs()
    return all(run["status"] not in ("RUNNING", "COMPENSATING") for run in runs), runs


def run_scenario(store, first_kill, later_kills, durability):
    """Drives a fresh run until it ends: the first process killed as `first_kill` says, the
    next ones as `later_kills` say in turn, the rest left alone. Returns (run id, kills)."""
    run_id = start_run(store)
    kills = 0
    schedule = [first_kill, *later_kills]
    for number in range(MAX_PROCESSES):
        done, runs = finished(store, run_id)
        if done:
            return run_id, kills
        kill = schedule[number] if number < len(schedule) else None
        # resume drives the run it names (and waits out a dead owner's lease); worker
        # --until-idle takes every run whose lease is free.
        args = ["resume", run_id] if number % 2 == 0 else ["worker", "--until-idle"]
        killed, _ = drive(store, args, kill, durability)
        kills += 1 if killed else 0
        if not killed and kill is None and number % 2 == 1:
            time.sleep(LEASE_MS / 1000 / 4)  # a worker that found the run still leased
    raise TestFailure(f"run {run_id} did not end after {MAX_PROCESSES} processes: "
                      f"{finished(store, run_id)[1]}")


def history_shape(events):
    """What a complete history holds, independent of the order in which parallel branches
    happened to finish: the multiset of (event type, step)."""
    return sorted((event["type"], event["step_id"]) for event in events)


def summary(store, run_id):
    shown = json.loads(store.vm_ok("show", run_id, "--json").stdout)
    runs = {run["workflow_id"]: run for run in store.runs()}
    return shown, runs


def check_scenario(store, run_id, baseline, label):
    shown, runs = summary(store, run_id)
    check(shown["status"] == "COMPLETED", f"{label}: the run ended {shown['status']}")
    check(shown["outputs"] == baseline["outputs"],
          f"{label}: outputs differ from the uninterrupted run's\n{shown['outputs']}\n"
          f"{baseline['outputs']}")
    check(sorted(runs) == sorted(baseline["shapes"]) and len(store.runs()) == len(runs),
          f"{label}: runs {[(r['workflow_id'], r['status']) for r in store.runs()]}")
    histories = {}
    for workflow, run in runs.items():
        check(run["status"] == "COMPLETED", f"{label}: {workflow} ended {run['status']}")
        events = store.history(run["run_id"])
        histories[workflow] = events
        shape = history_shape(events)
        if shape != baseline["shapes"][workflow]:
            missing = collections.Counter(baseline["shapes"][workflow]) - collections.Counter(shape)
            extra = collections.Counter(shape) - collections.Counter(baseline["shapes"][workflow])
            raise TestFailure(f"{label}: the history of {workflow} {run['run_id']} differs from "
                              f"the uninterrupted one: missing {dict(missing)}, extra "
                              f"{dict(extra)}")
        verified = store.vm("verify", run["run_id"])
        check(verified.returncode == 0 and verified.stdout.startswith("OK:"),
              f"{label}: verify {run['run_id']} exited {verified.returncode}\n"
              f"{verified.stdout}{verified.stderr}")
        replayed = store.vm("replay", run["run_id"])
        check(replayed.returncode == 0 and replayed.stderr == "",
              f"{label}: replay {run['run_id']} exited {replayed.returncode}\n"
              f"{replayed.stdout}{replayed.stderr}")
    violations = store.violation_lines()
    check(not violations, f"{label}: activities ran after their completion was committed:\n"
          + "".join(violations))
    executions = store.executions()
    check(all("check_error" not in line for line in executions),
          f"{label}: an activity could not read the store: {executions}")
    ran = {(line["run"], line["command"]) for line in executions}
    for workflow, run in runs.items():
        for event in histories[workflow]:
            if event["type"] == "ActivityCompleted":
                command = event["payload"]["command_id"]
                check((run["run_id"], command) in ran,
                      f"{label}: {workflow} step {event.get('step_id')} completed without "
                      f"running")


def baseline_run(config, directory):
    """The uninterrupted run every crashed one must match."""
    store = Store(config, directory)
    run_id = start_run(store)
    killed, result = drive(store, ["resume", run_id], None, "normal")
    check(not killed and result.returncode == 0, f"the uninterrupted run failed\n{result.stderr}")
    shown, runs = summary(store, run_id)
    check(shown["status"] == "COMPLETED", f"the uninterrupted run ended {shown['status']}")
    baseline = {"outputs": shown["outputs"],
                "shapes": {workflow: history_shape(store.history(run["run_id"]))
                           for workflow, run in runs.items()}}
    check(set(baseline["shapes"]) == {"crash", "ship"}, f"unexpected runs {list(runs)}")
    check(baseline["outputs"]["declined"] == "Declined" and
          baseline["outputs"]["tracking"] == "dispatch-o-7", baseline["outputs"])
    check_scenario(store, run_id, baseline, "uninterrupted run")
    return baseline


def writes_of_one_run(config, root):
    """How many SQLite writes and syncs the first driving process makes when nothing kills
    it: the smallest power of two at which the kill hook no longer fires."""
    limit = 64
    while limit < 1 << 16:
        store = Store(config, os.path.join(root, f"calibrate-{limit}"))
        start_run(store)
        killed, _ = drive(store, ["resume", store.runs()[0]["run_id"]], ("write", limit),
                          "normal")
        shutil.rmtree(store.dir, ignore_errors=True)
        if not killed:
            return limit
        limit *= 2
    raise TestFailure("the run never finished under the kill hook")


def suite_sigkill(config, root):
    started = time.monotonic()
    baseline = baseline_run(config, os.path.join(root, "baseline"))
    upper = writes_of_one_run(config, root)
    print(f"baseline: {baseline['outputs']}")
    print(f"the first driving process makes at most {upper} writes and syncs")
    rng = random.Random(config.seed)

    # Every kill point of the first driving process, inside and between commits, with a
    # stride that keeps the suite in time; each scenario then kills its next processes at
    # random writes or moments. `upper` rounds the run's writes up to a power of two, so up
    # to half the points lie past the run's end: 160 points keep MIN_KILLS within reach
    # when the run makes few writes (one commit per activity step).
    stride = max(1, upper // 160)
    scenarios = []
    for index, point in enumerate(range(1, upper + 1, stride)):
        later = [("write", rng.randint(1, 60)) if rng.random() < 0.6 else
                 ("time", rng.uniform(0.05, 0.8)) for _ in range(rng.randint(0, 2))]
        # Mostly the default mode; every fifth scenario fsyncs each commit, and every fifth
        # group-commits (each with kill points of its own: syncs, or one commit for several
        # transactions).
        durability = {4: "full", 2: "batch"}.get(index % 5, "normal")
        scenarios.append((f"write-{point}", ("write", point), later, durability))
    for index in range(20):
        later = [("time", rng.uniform(0.05, 0.8)) for _ in range(rng.randint(1, 3))]
        scenarios.append((f"timed-{index}", ("time", rng.uniform(0.05, 1.5)), later, "normal"))

    lock = threading.Lock()
    totals = {"kills": 0, "scenarios": 0}
    failures = []

    def one(scenario):
        label, first, later, durability = scenario
        store = Store(config, os.path.join(root, label))
        try:
            run_id, kills = run_scenario(store, first, later, durability)
            check_scenario(store, run_id, baseline, label)
        except TestFailure as failure:
            with lock:
                failures.append(f"{label} (kept: {store.dir}): {failure}")
            return
        with lock:
            totals["kills"] += kills
            totals["scenarios"] += 1
        if not config.keep:
            shutil.rmtree(store.dir, ignore_errors=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=config.jobs) as pool:
        for future in [pool.submit(one, scenario) for scenario in scenarios]:
            future.result()
    elapsed = time.monotonic() - started
    print(f"{totals['scenarios']}/{len(scenarios)} scenarios passed, {totals['kills']} processes "
          f"killed with SIGKILL, in {elapsed:.1f}s")
    for failure in failures[:10]:
        print(f"FAIL {failure}")
    if failures:
        return 1
    if totals["kills"] < MIN_KILLS:
        print(f"FAIL only {totals['kills']} kills, fewer than {MIN_KILLS}")
        return 1
    return 0


# --- two workers, one store -------------------------------------------------------------

PAIR_WORKFLOW = """\
{ workflow: { id: "pair", inputs: [{ name: "n", type: "number", required: true }],
  outputs: [{ name: "total" }], output_mapping: { total: $.results.second.n },
  strategy: { op: "seq", strategies: [
    { op: "activity", id: "first", activity_ref: "step", input_mapping: { n: $.inputs.n } },
    { op: "activity", id: "second", activity_ref: "step",
      input_mapping: { n: $.results.first.n + 1 } } ] } } }
"""

# A shell activity: appends its run, step, idempotency key and the worker that started it
# (its parent) to the counting file with one write, then echoes its input.
PAIR_ACTIVITY = """\
#!/bin/sh
input=$(cat)
printf '%s\\n' "$KOTOBA_RUN_ID $KOTOBA_STEP_ID $KOTOBA_IDEMPOTENCY_KEY $PPID" >> {count!r}
printf '%s' "$input"
"""

RUN_COUNT = 500


# Tries with a fresh store before concluding that the workers never share the runs.
SHARING_ATTEMPTS = 3


def suite_two_workers(config, root):
    # Every attempt must be correct; only who did the work may differ. A worker that starts
    # late (its process start-up on a loaded machine) can find every run already leased by
    # the other, which proves nothing either way, so that alone earns another attempt.
    for attempt in range(1, SHARING_ATTEMPTS + 1):
        started = time.monotonic()
        by_worker, executions, worked = two_workers_attempt(
            config, os.path.join(root, f"two-workers-{attempt}"))
        if len(by_worker) == 2:
            print(f"two workers completed {RUN_COUNT} runs ({len(executions)} step executions, "
                  f"each once; {sorted(by_worker.values())} per worker) in {worked:.1f}s; "
                  f"total {time.monotonic() - started:.1f}s")
            return 0
        print(f"attempt {attempt}: one worker did everything ({dict(by_worker)}); again")
    raise TestFailure(f"in {SHARING_ATTEMPTS} attempts one worker always did everything")


def two_workers_attempt(config, directory):
    """Runs RUN_COUNT runs with two workers on one store and checks each step ran once;
    returns the executions per worker pid, the executions and the workers' time."""
    os.makedirs(directory)
    db = os.path.join(directory, "kotoba.db")
    count = os.path.join(directory, "executions.log")
    with open(os.path.join(directory, "pair.kotoba"), "w") as out:
        out.write(PAIR_WORKFLOW)
    script = os.path.join(directory, "step.sh")
    with open(script, "w") as out:
        out.write(PAIR_ACTIVITY.replace("{count!r}", "'" + count + "'"))
    os.chmod(script, 0o755)
    binding = f"--bind=step=process:{script}"
    subprocess.run([config.kotobac, "build", os.path.join(directory, "pair.kotoba"), "-o",
                    os.path.join(directory, "pair.kbc")], check=True, capture_output=True)

    def start(n):
        result = subprocess.run([config.kotoba_vm, "--db", db, "run", "--detach", "pair.kbc",
                                 "--input", json.dumps({"n": n}), binding], cwd=directory,
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                                env=clean_environment())
        check(result.returncode == 0 and result.stderr == "",
              f"run --detach exited {result.returncode}\n{result.stderr}")
        return result.stdout.strip()

    with concurrent.futures.ThreadPoolExecutor(max_workers=config.jobs) as pool:
        run_ids = list(pool.map(start, range(RUN_COUNT)))
    check(len(set(run_ids)) == RUN_COUNT, "run ids repeat")
    started_all = time.monotonic()

    workers = [subprocess.Popen([config.kotoba_vm, "--db", db, "worker", "--until-idle",
                                 binding], cwd=directory, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=clean_environment())
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    worked = time.monotonic() - started_all
    for worker, (stdout, stderr) in zip(workers, outputs):
        check(worker.returncode == 0, f"a worker exited {worker.returncode}\n{stderr}")
        check("database is locked" not in stderr and "locked" not in stderr,
              f"a lock error reached the user:\n{stderr}")

    listed = subprocess.run([config.kotoba_vm, "--db", db, "list", "--json", "--limit", "10000"],
                            cwd=directory, capture_output=True, text=True, check=True)
    statuses = collections.Counter(run["status"] for run in json.loads(listed.stdout))
    check(statuses == {"COMPLETED": RUN_COUNT}, f"run statuses: {dict(statuses)}")
    with open(count) as lines:
        executions = [line.split() for line in lines if line.strip()]
    per_step = collections.Counter((run, step) for run, step, _, _ in executions)
    twice = {key: times for key, times in per_step.items() if times != 1}
    check(not twice, f"steps executed more than once: {list(twice.items())[:10]}")
    check(len(per_step) == 2 * RUN_COUNT,
          f"{len(per_step)} steps executed, expected {2 * RUN_COUNT}")
    store = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    wrong = store.execute("SELECT COUNT(*) FROM runs WHERE outputs IS NULL OR "
                          "json_extract(outputs, '$.total') != "
                          "json_extract(inputs, '$.n') + 1").fetchone()[0]
    store.close()
    check(wrong == 0, f"{wrong} runs have wrong outputs")
    # Which worker did what: both must have taken part for the test to mean anything.
    pids = {str(worker.pid) for worker in workers}
    by_worker = collections.Counter(pid for _, _, _, pid in executions)
    check(set(by_worker) <= pids, f"steps run by unknown processes: {dict(by_worker)}")
    return by_worker, executions, worked


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True, help="the CMake build directory")
    parser.add_argument("--source-dir", required=True, help="the source tree")
    parser.add_argument("--suite", required=True, choices=["sigkill", "two-workers"])
    parser.add_argument("--jobs", type=int, default=3, help="scenarios run at once")
    parser.add_argument("--seed", type=int, default=5, help="seeds the random kill points")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    config = parser.parse_args()
    config.kotoba_vm = os.path.join(os.path.abspath(config.bin_dir), "runtime", "kotoba-vm")
    config.kotobac = os.path.join(os.path.abspath(config.bin_dir), "compiler", "kotobac")
    for binary in (config.kotoba_vm, config.kotobac):
        if not os.access(binary, os.X_OK):
            print(f"crash_tests.py: {binary} is not built", file=sys.stderr)
            return 2
    root = tempfile.mkdtemp(prefix=f"kotoba-crash-{config.suite}-")
    try:
        code = (suite_sigkill if config.suite == "sigkill" else suite_two_workers)(config, root)
    except TestFailure as failure:
        print(f"FAIL {textwrap.indent(str(failure), '  ').strip()}\n(kept: {root})")
        return 1
    if code == 0 and not config.keep:
        shutil.rmtree(root, ignore_errors=True)
    elif code != 0:
        print(f"(kept: {root})")
    return code


if __name__ == "__main__":
    sys.exit(main())
