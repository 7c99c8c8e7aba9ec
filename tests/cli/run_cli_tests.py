#!/usr/bin/env python3
"""End-to-end tests of kotoba-vm: the real binaries, in temporary directories, against
process activities these tests write (small Python programs bound with
--bind NAME=process:PATH). Each test asserts stdout, stderr and the exit code of every
command it runs, and what the activities were called with.

    run_cli_tests.py --bin-dir BUILD --source-dir SOURCE [-k PATTERN] [--keep]

The workflows are in tests/cli/workflows; the order-processing sample comes from
samples/order_processing. Registered with CTest as cli/kotoba-vm.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

# Exit codes of runtime.md section 9.
EXIT_COMPLETED = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_COMPILE = 3
EXIT_STORE = 4
EXIT_NON_DETERMINISM = 5

# A command that takes longer than this is hung, not slow.
COMMAND_TIMEOUT_S = 60


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


class Result:
    def __init__(self, args, completed, elapsed):
        self.args = args
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.elapsed = elapsed

    def describe(self):
        return (f"command: kotoba-vm {' '.join(self.args)}\nexit: {self.code}\n"
                f"stdout:\n{textwrap.indent(self.stdout, '  ')}\n"
                f"stderr:\n{textwrap.indent(self.stderr, '  ')}")

    def expect(self, code, stdout_empty=None, stderr_empty=None):
        check(self.code == code, f"expected exit {code}\n{self.describe()}")
        if stdout_empty is not None:
            check((self.stdout == "") == stdout_empty,
                  f"expected {'no' if stdout_empty else 'some'} stdout\n{self.describe()}")
        if stderr_empty is not None:
            check((self.stderr == "") == stderr_empty,
                  f"expected {'no' if stderr_empty else 'some'} stderr\n{self.describe()}")
        return self

    def json(self):
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as error:
            raise TestFailure(f"stdout is not JSON ({error})\n{self.describe()}")

    def expect_stderr(self, *patterns):
        for pattern in patterns:
            check(re.search(pattern, self.stderr),
                  f"stderr does not match {pattern!r}\n{self.describe()}")
        return self

    def expect_stdout(self, *patterns):
        for pattern in patterns:
            check(re.search(pattern, self.stdout),
                  f"stdout does not match {pattern!r}\n{self.describe()}")
        return self


class Sandbox:
    """One test's temporary directory: the store, the workflows and the activities."""

    def __init__(self, config, name):
        self.config = config
        self.dir = tempfile.mkdtemp(prefix=f"kotoba-cli-{name}-")
        self.calls_log = os.path.join(self.dir, "calls.log")

    def cleanup(self):
        if not self.config.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def vm(self, *args, timeout=COMMAND_TIMEOUT_S, cwd=None):
        started = time.monotonic()
        completed = subprocess.run([self.config.kotoba_vm, *args], cwd=cwd or self.dir,
                                   capture_output=True, text=True, timeout=timeout)
        return Result(list(args), completed, time.monotonic() - started)

    def workflow(self, name):
        """Copies tests/cli/workflows/NAME into the sandbox; returns its file name."""
        shutil.copy(os.path.join(self.config.workflows, name), self.dir)
        return name

    def activity(self, name, result="inp", error=None, sleep=0.0):
        """Writes a process activity that logs its call to calls.log and then returns
        `result` (a Python expression over the input `inp`) or exits 1 with `error` (a
        dict, written to stderr as the error object). Returns the --bind option."""
        path = os.path.join(self.dir, f"{name}.py")
        body = f"""\
            #!{sys.executable}
            import json, os, sys, time
            inp = json.load(sys.stdin)
            with open({self.calls_log!r}, "a") as log:
                log.write(json.dumps({{"activity": {name!r}, "input": inp,
                                      "attempt": int(os.environ["KOTOBA_ATTEMPT"])}}) + "\\n")
            time.sleep({sleep!r})
            error = {error!r}
            if error is not None:
                sys.stderr.write(json.dumps(error) + "\\n")
                sys.exit(1)
            json.dump({result}, sys.stdout)
            """
        with open(path, "w") as out:
            out.write(textwrap.dedent(body))
        os.chmod(path, 0o755)
        return f"--bind={name}=process:{path}"

    def calls(self):
        if not os.path.exists(self.calls_log):
            return []
        with open(self.calls_log) as log:
            return [json.loads(line) for line in log if line.strip()]

    def called(self, activity):
        return [call["input"] for call in self.calls() if call["activity"] == activity]

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as out:
            out.write(text)
        return name


def show(sandbox, run_id):
    return sandbox.vm("show", run_id, "--json").expect(EXIT_COMPLETED).json()


def history(sandbox, run_id):
    return sandbox.vm("history", run_id, "--json").expect(EXIT_COMPLETED).json()


def event_types(sandbox, run_id):
    return [event["type"] for event in history(sandbox, run_id)]


def detach(sandbox, *args):
    result = sandbox.vm("run", "--detach", *args).expect(EXIT_COMPLETED, stderr_empty=True)
    run_id = result.stdout.strip()
    check(re.fullmatch(r"[0-9A-Za-z_.:-]+", run_id), f"not a run id\n{result.describe()}")
    return run_id


def greet_bindings(sandbox):
    return [sandbox.activity("make_greeting",
                             result="{'text': ('hello ' + inp['name'] + ' ') * inp['times']}"),
            sandbox.activity("upper", result="{'text': inp['text'].strip().upper()}")]


# --- the tests -------------------------------------------------------------------------


def test_sequence_completes_with_its_outputs(sandbox):
    file = sandbox.workflow("greet.kotoba")
    result = sandbox.vm("run", file, "--input", '{"name": "ada", "times": 2}',
                        *greet_bindings(sandbox))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"greeting": "hello ada hello ada ", "shout": "HELLO ADA HELLO ADA"},
          result.describe())
    check(sandbox.called("upper") == [{"text": "hello ada hello ada "}], sandbox.calls())

    runs = sandbox.vm("list", "--json").expect(EXIT_COMPLETED).json()
    check(len(runs) == 1 and runs[0]["status"] == "COMPLETED" and
          runs[0]["workflow_id"] == "greet", runs)


def test_inputs_from_a_file_and_the_json_result_shape(sandbox):
    file = sandbox.workflow("greet.kotoba")
    sandbox.write("inputs.json", '{"name": "grace"}')
    result = sandbox.vm("--json", "run", file, "--input", "@inputs.json",
                        *greet_bindings(sandbox))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    body = result.json()
    check(body["status"] == "COMPLETED" and body["outputs"]["shout"] == "HELLO GRACE" and
          body["run_id"], result.describe())


def test_a_kbc_module_runs_like_its_source(sandbox):
    file = sandbox.workflow("greet.kotoba")
    built = subprocess.run([sandbox.config.kotobac, "build", file, "-o", "greet.kbc"],
                           cwd=sandbox.dir, capture_output=True, text=True)
    check(built.returncode == 0, built.stderr)
    result = sandbox.vm("run", "greet.kbc", "--input", '{"name": "kbc"}',
                        *greet_bindings(sandbox))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json()["shout"] == "HELLO KBC", result.describe())


def test_failing_activity_exits_1_with_the_error_on_stderr(sandbox):
    file = sandbox.workflow("greet.kotoba")
    error = {"type": "ShoutFailed", "message": "too loud", "details": {"level": 11},
             "retryable": False}
    bindings = [sandbox.activity("make_greeting", result="{'text': 'hi'}"),
                sandbox.activity("upper", error=error)]
    result = sandbox.vm("run", file, "--input", '{"name": "ada"}', *bindings)
    result.expect(EXIT_RUN_FAILED, stdout_empty=True)
    result.expect_stderr(r"FAILED", r"ShoutFailed: too loud", r'details: \{"level":11\}')
    check(len(sandbox.called("upper")) == 1, "a non-retryable error was retried")

    # With --json the same end is on stdout as {"status", "error"}.
    result = sandbox.vm("--json", "run", file, "--input", '{"name": "ada"}', *bindings)
    result.expect(EXIT_RUN_FAILED).expect_stderr(r"ShoutFailed")
    body = result.json()
    check(body["status"] == "FAILED", result.describe())
    check(body["error"]["type"] == "ShoutFailed" and body["error"]["message"] == "too loud" and
          body["error"]["details"] == {"level": 11} and body["error"]["chain"] == [],
          result.describe())


def test_a_child_failure_carries_the_child_in_its_chain(sandbox):
    file = sandbox.workflow("nested.kotoba")
    result = sandbox.vm("run", file, "--input", '{"sku": "tea"}')
    result.expect(EXIT_RUN_FAILED, stdout_empty=True)
    result.expect_stderr(r"OutOfStock: no tea left", r'details: \{"sku":"tea"\}',
                         r"chain: check_stock")
    result = sandbox.vm("--json", "run", file, "--input", '{"sku": "mug"}')
    result.expect(EXIT_RUN_FAILED)
    body = result.json()
    check(body["error"]["chain"] == ["check_stock"], result.describe())
    parent = show(sandbox, body["run_id"])
    check([(c["workflow_id"], c["status"]) for c in parent["children"]] ==
          [("check_stock", "FAILED")], parent)


def test_retryable_failures_are_retried_before_the_run_fails(sandbox):
    file = sandbox.workflow("greet.kotoba")
    bindings = [sandbox.activity("make_greeting", result="{'text': 'hi'}"),
                sandbox.activity("upper", error={"type": "Flaky", "message": "try again"})]
    result = sandbox.vm("run", file, "--input", '{"name": "ada"}', *bindings)
    result.expect(EXIT_RUN_FAILED, stdout_empty=True).expect_stderr(r"Flaky: try again")
    attempts = [call["attempt"] for call in sandbox.calls() if call["activity"] == "upper"]
    check(attempts == [1, 2], f"maximum_attempts is 2, attempts were {attempts}")


def test_invalid_inputs_list_every_problem_and_create_no_run(sandbox):
    file = sandbox.workflow("greet.kotoba")
    result = sandbox.vm("run", file, "--input", '{"times": "many", "colour": "red"}',
                        *greet_bindings(sandbox))
    result.expect(EXIT_USAGE, stdout_empty=True)
    result.expect_stderr(r"'name' is required", r"'times'.*integer", r"unknown input 'colour'")
    check(sandbox.calls() == [], "an activity ran for a run that was refused")
    sandbox.vm("list").expect(EXIT_COMPLETED, stdout_empty=True)
    check(sandbox.vm("list", "--json").expect(EXIT_COMPLETED).json() == [], "a run was created")


def test_input_that_is_not_json_or_not_an_object_is_refused(sandbox):
    file = sandbox.workflow("greet.kotoba")
    sandbox.vm("run", file, "--input", '{"name": ').expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(r"--input: invalid JSON at byte")
    sandbox.vm("run", file, "--input", '["ada"]').expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(r"must be a JSON object")
    sandbox.vm("run", file, "--input", "@missing.json").expect(
        EXIT_USAGE).expect_stderr(r"cannot read 'missing.json': No such file or directory")
    sandbox.write("inputs.json", '{"name": "ada"}')
    sandbox.vm("run", file, "--input", "inputs.json").expect(
        EXIT_USAGE).expect_stderr(r"to read the file 'inputs.json', write '@inputs.json'")
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")),
          "a refused command created the store")


def test_unbound_activities_are_refused_before_start_with_their_names(sandbox):
    file = sandbox.workflow("greet.kotoba")
    result = sandbox.vm("run", file, "--input", '{"name": "ada"}')
    result.expect(EXIT_USAGE, stdout_empty=True)
    result.expect_stderr(r"make_greeting", r"upper", r"--bind")
    only_one = [sandbox.activity("make_greeting", result="{'text': 'hi'}")]
    result = sandbox.vm("run", file, "--input", '{"name": "ada"}', *only_one)
    result.expect(EXIT_USAGE, stdout_empty=True).expect_stderr(r"upper")
    check("make_greeting" not in result.stderr,
          f"a bound activity is listed as unbound\n{result.describe()}")
    check(sandbox.calls() == [], "an activity ran for a refused run")
    check(sandbox.vm("list", "--json").json() == [], "a refused run was created")


def test_a_malformed_bind_is_a_usage_error(sandbox):
    file = sandbox.workflow("greet.kotoba")
    sandbox.vm("run", file, "--bind", "no-equals-sign").expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(r"--bind")


def test_command_line_mistakes_are_reported_like_every_other_error(sandbox):
    result = sandbox.vm("bogus").expect(EXIT_USAGE, stdout_empty=True)
    result.expect_stderr(r"^kotoba-vm: error: unknown command 'bogus'; the commands are run, "
                         r"worker, resume, ", r"run `kotoba-vm --help`")
    result = sandbox.vm("list", "--limit", "0").expect(EXIT_USAGE, stdout_empty=True)
    result.expect_stderr(r"^kotoba-vm: error: --limit: Value 0 not in range 1 to ")
    sandbox.vm("--durability", "sometimes", "list").expect(EXIT_USAGE).expect_stderr(
        r"^kotoba-vm: error: --durability: ")
    compiled = subprocess.run([sandbox.config.kotobac, "frobnicate"], cwd=sandbox.dir,
                              capture_output=True, text=True)
    check(compiled.returncode == EXIT_USAGE and compiled.stderr.startswith(
        "kotobac: error: unknown command 'frobnicate'; the commands are check, build, dis"),
          f"kotobac exited {compiled.returncode}: {compiled.stderr}")
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")), "a usage error made a store")


def test_compile_errors_exit_3_with_the_diagnostics(sandbox):
    file = sandbox.workflow("broken.kotoba")
    result = sandbox.vm("run", file)
    result.expect(EXIT_COMPILE, stdout_empty=True)
    result.expect_stderr(r"broken\.kotoba:5:\d+: error: unknown op 'sequence'")
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")),
          "a file that does not compile created the store")


def test_a_missing_workflow_file_is_a_usage_error(sandbox):
    sandbox.vm("run", "nowhere.kotoba").expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"cannot read 'nowhere\.kotoba'")
    sandbox.write("garbage.kbc", "not a module")
    sandbox.vm("run", "garbage.kbc").expect(EXIT_COMPILE, stdout_empty=True).expect_stderr(
        r"not a valid module")


def test_unknown_workflow_id_lists_the_modules_workflows(sandbox):
    file = sandbox.workflow("greet.kotoba")
    sandbox.vm("run", file, "--workflow", "gret").expect(EXIT_USAGE).expect_stderr(
        r"no workflow 'gret'.*greet")


def test_virtual_clock_finishes_a_30_day_timer_at_once(sandbox):
    file = sandbox.workflow("month.kotoba")
    result = sandbox.vm("run", file, "--clock", "virtual")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"done": True}, result.describe())
    check(result.elapsed < 1.0, f"took {result.elapsed:.2f}s")
    run_id = sandbox.vm("list", "--json").json()[0]["run_id"]
    events = history(sandbox, run_id)
    started = next(e for e in events if e["type"] == "TimerStarted")
    fired = next(e for e in events if e["type"] == "TimerFired")
    days = (fired["time_ms"] - started["time_ms"]) / 86_400_000
    check(29.99 < days < 30.01, f"the timer fired after {days} virtual days")


def test_a_workflow_timeout_exits_1_with_timed_out(sandbox):
    file = sandbox.workflow("deadline.kotoba")
    result = sandbox.vm("--json", "run", file, "--clock", "virtual")
    result.expect(EXIT_RUN_FAILED).expect_stderr(r"TIMED_OUT")
    check(result.json()["status"] == "TIMED_OUT", result.describe())
    check(result.elapsed < 1.0, f"a one-hour virtual timeout took {result.elapsed:.2f}s")


def test_detached_run_is_completed_by_signal_and_worker(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    run_id = detach(sandbox, file, "--input", '{"doc": "d-1"}', prepare)
    check(show(sandbox, run_id)["status"] == "RUNNING", "a detached run is not RUNNING")

    sandbox.vm("signal", run_id, "approve", '{"by": "lin"}').expect(
        EXIT_COMPLETED, stdout_empty=True, stderr_empty=True)
    sandbox.vm("worker", "--until-idle", prepare).expect(EXIT_COMPLETED)
    details = show(sandbox, run_id)
    check(details["status"] == "COMPLETED", details)
    check(details["outputs"] == {"approved_by": "lin", "prepared": True}, details)
    check(sandbox.called("prepare") == [{"doc": "d-1"}], sandbox.calls())

    text = sandbox.vm("show", run_id).expect(EXIT_COMPLETED).stdout
    check(re.search(r"status\s+COMPLETED", text) and run_id in text, text)


def test_a_detached_run_whose_child_started_at_once_is_finished_by_one_worker(sandbox):
    # `run --detach` starts the child itself; it must hand the child back when it exits, or
    # the worker below finds it leased and stops with both runs RUNNING.
    file = sandbox.workflow("nested.kotoba")
    run_id = detach(sandbox, file, "--input", '{"sku": "x"}')
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED, stderr_empty=True)
    details = show(sandbox, run_id)
    check(details["status"] == "FAILED" and details["error"]["type"] == "OutOfStock", details)
    check(details["children"][0]["status"] == "FAILED", details)


def test_worker_until_idle_leaves_runs_that_wait_for_a_signal(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    run_id = detach(sandbox, file, "--input", '{"doc": "d-2"}', prepare)
    result = sandbox.vm("worker", "--until-idle", prepare).expect(EXIT_COMPLETED)
    result.expect_stderr(r"1 run\(s\) still running")
    details = show(sandbox, run_id)
    check(details["status"] == "RUNNING", details)
    check(sandbox.called("prepare") == [{"doc": "d-2"}], "the worker did not run the activity")
    check("WaitStarted" in event_types(sandbox, run_id), "the run is not waiting")
    waits = [(w["kind"], w["name"], w["step_id"]) for w in details["waits"]]
    check(waits == [("signal", "approve", "approval")], details)
    text = sandbox.vm("show", run_id).expect(EXIT_COMPLETED).stdout
    check(re.search(r"waits for\s+signal approve \(step approval\)", text), text)


def test_worker_until_idle_where_there_is_no_store_says_so_and_creates_none(sandbox):
    sandbox.vm("worker", "--until-idle").expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"there is no store at 'kotoba.db': run the worker where the runs were started")
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")),
          "worker --until-idle created an empty store")


def test_signals_given_with_the_start_are_consumed(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': False}")
    result = sandbox.vm("run", file, "--input", '{"doc": "d-3"}', "--signal",
                        'approve={"by": "max"}', prepare)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"approved_by": "max", "prepared": False}, result.describe())


def test_signal_to_a_finished_run_is_refused(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    sandbox.vm("run", file, "--input", '{"doc": "d-4"}', "--signal", 'approve={"by": "a"}',
               prepare).expect(EXIT_COMPLETED)
    run_id = sandbox.vm("list", "--json").json()[0]["run_id"]
    before = history(sandbox, run_id)
    result = sandbox.vm("signal", run_id, "approve", '{"by": "b"}')
    result.expect(EXIT_USAGE, stdout_empty=True).expect_stderr(r"finished|COMPLETED")
    check(len(result.stderr.strip().splitlines()) == 1, f"not one line\n{result.describe()}")
    check(history(sandbox, run_id) == before, "a refused signal changed the history")


def test_commands_about_an_unknown_run_exit_2(sandbox):
    for args in (["signal", "no-such-run", "approve"], ["cancel", "no-such-run"],
                 ["terminate", "no-such-run"], ["show", "no-such-run"],
                 ["history", "no-such-run"], ["resume", "no-such-run"]):
        result = sandbox.vm(*args)
        result.expect(EXIT_USAGE, stdout_empty=True).expect_stderr(r"no-such-run")
        check(len(result.stderr.strip().splitlines()) == 1, f"not one line\n{result.describe()}")
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")),
          "asking about a run created a store")
    # The same once a store exists.
    sandbox.vm("run", sandbox.workflow("month.kotoba"), "--clock", "virtual").expect(
        EXIT_COMPLETED)
    sandbox.vm("signal", "no-such-run", "approve", "1").expect(EXIT_USAGE).expect_stderr(
        r"no-such-run")
    sandbox.vm("history", "no-such-run").expect(EXIT_USAGE).expect_stderr(r"no-such-run")


def test_bad_signal_payload_is_refused_before_anything_is_sent(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    run_id = detach(sandbox, file, "--input", '{"doc": "d-5"}', prepare)
    sandbox.vm("signal", run_id, "approve", "{by: lin}").expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(r"invalid JSON")
    check(show(sandbox, run_id)["inbox"] == [], "a refused signal reached the inbox")


def test_non_determinism_blocks_the_run_until_it_is_fixed_and_resumed(sandbox):
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    run_id = detach(sandbox, file, "--input", '{"doc": "d-6"}', prepare)

    # The history says the first step was another one than the workflow runs: event 2 names
    # the site (step id, location) with the other step id at the same location.
    def set_first_step(step_id):
        database = sqlite3.connect(os.path.join(sandbox.dir, "kotoba.db"))
        event = "run_key = (SELECT run_key FROM runs WHERE id = ?) AND seq = 2"
        with database:
            (location,) = database.execute(
                f"SELECT s.location FROM events e JOIN sites s ON s.id = e.site WHERE {event}",
                (run_id,)).fetchone()
            database.execute("INSERT OR IGNORE INTO sites (step_id, location) VALUES (?, ?)",
                             (step_id, location))
            database.execute(f"UPDATE events SET site = (SELECT id FROM sites WHERE step_id = ? "
                             f"AND location = ?) WHERE {event}", (step_id, location, run_id))
        database.close()

    set_first_step("something_else")
    result = sandbox.vm("resume", run_id, prepare)
    result.expect(EXIT_NON_DETERMINISM, stdout_empty=True)
    result.expect_stderr(r"BLOCKED", r"'prepare'.*'something_else'|'something_else'.*'prepare'",
                         rf"kotoba-vm resume {run_id}")
    details = show(sandbox, run_id)
    check(details["status"] == "BLOCKED" and details["error"]["type"] == "NonDeterminism",
          details)
    check(details["events"] == 2, "a blocked run's history grew")
    check(sandbox.calls() == [], "an activity ran for a run that does not replay")

    set_first_step("prepare")
    sandbox.vm("signal", run_id, "approve", '{"by": "fixer"}').expect(EXIT_COMPLETED)
    result = sandbox.vm("resume", run_id, prepare)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"approved_by": "fixer", "prepared": True}, result.describe())
    sandbox.vm("resume", run_id, prepare).expect(EXIT_USAGE).expect_stderr(r"already finished")


def test_store_options_db_path_durability_and_memory(sandbox):
    file = sandbox.workflow("month.kotoba")
    for durability in ("full", "normal", "batch"):
        db = f"store-{durability}.db"
        sandbox.vm("--db", db, "--durability", durability, "run", file, "--clock",
                   "virtual").expect(EXIT_COMPLETED, stderr_empty=True)
        runs = sandbox.vm("list", "--db", db, "--json").expect(EXIT_COMPLETED).json()
        check(len(runs) == 1 and runs[0]["status"] == "COMPLETED", (durability, runs))
    check(not os.path.exists(os.path.join(sandbox.dir, "kotoba.db")), "--db was ignored")
    result = sandbox.vm("--db", ":memory:", "run", file, "--clock", "virtual")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"done": True}, result.describe())
    sandbox.vm("--durability", "sometimes", "list").expect(EXIT_USAGE, stdout_empty=True)
    sandbox.write("not-a-store.db", "just text, long enough to be a header " * 40)
    sandbox.vm("--db", "not-a-store.db", "run", file, "--clock", "virtual").expect(
        EXIT_STORE, stdout_empty=True).expect_stderr(r"not-a-store\.db")


def test_cancel_of_a_waiting_saga_runs_its_compensation(sandbox):
    file = sandbox.workflow("booking.kotoba")
    bindings = [sandbox.activity("book", result="{'booking': 'b-' + inp['trip']}"),
                sandbox.activity("unbook", result="{'undone': inp['booking']}"),
                sandbox.activity("notify", result="None")]
    run_id = detach(sandbox, file, "--input", '{"trip": "kyoto"}', *bindings)
    sandbox.vm("worker", "--until-idle", *bindings).expect(EXIT_COMPLETED)
    check(show(sandbox, run_id)["status"] == "RUNNING", "the saga is not waiting")

    sandbox.vm("cancel", run_id).expect(EXIT_COMPLETED, stdout_empty=True, stderr_empty=True)
    sandbox.vm("worker", "--until-idle", *bindings).expect(EXIT_COMPLETED)
    details = show(sandbox, run_id)
    check(details["status"] == "CANCELLED", details)
    check(sandbox.called("unbook") == [{"booking": "b-kyoto"}], sandbox.calls())
    notices = sandbox.called("notify")
    check(len(notices) == 1 and notices[0]["trip"] == "kyoto", sandbox.calls())
    order = [call["activity"] for call in sandbox.calls()]
    check(order == ["book", "unbook", "notify"], f"calls in order {order}")
    types = event_types(sandbox, run_id)
    for expected in ("WorkflowCancelRequested", "CompensationStarted", "WorkflowCancelled"):
        check(expected in types, f"{expected} missing from {types}")
    check(types[-1] == "WorkflowCancelled", types)

    # A finished run cannot be cancelled again.
    sandbox.vm("cancel", run_id).expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"finished|CANCELLED")


def test_terminate_stops_a_run_without_compensation(sandbox):
    file = sandbox.workflow("booking.kotoba")
    bindings = [sandbox.activity("book", result="{'booking': 'b-' + inp['trip']}"),
                sandbox.activity("unbook", result="None"),
                sandbox.activity("notify", result="None")]
    run_id = detach(sandbox, file, "--input", '{"trip": "nara"}', *bindings)
    sandbox.vm("worker", "--until-idle", *bindings).expect(EXIT_COMPLETED)
    sandbox.vm("terminate", run_id, "--reason", "customer vanished").expect(
        EXIT_COMPLETED, stdout_empty=True, stderr_empty=True)
    sandbox.vm("worker", "--until-idle", *bindings).expect(EXIT_COMPLETED)
    details = show(sandbox, run_id)
    check(details["status"] == "TERMINATED", details)
    check(sandbox.called("unbook") == [] and sandbox.called("notify") == [],
          f"termination compensated: {sandbox.calls()}")
    events = history(sandbox, run_id)
    check(events[-1]["type"] == "WorkflowTerminated", [e["type"] for e in events])
    check("customer vanished" in json.dumps(events[-1]["payload"]), events[-1])
    sandbox.vm("terminate", run_id).expect(EXIT_USAGE).expect_stderr(r"finished|TERMINATED")


def test_emit_delivers_an_event_to_the_run_whose_filter_matches(sandbox):
    file = sandbox.workflow("review.kotoba")
    first = detach(sandbox, file, "--input", '{"doc": "doc-1"}')
    second = detach(sandbox, file, "--input", '{"doc": "doc-2"}')
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)

    result = sandbox.vm("--json", "emit", "review_done", '{"doc": "doc-2", "verdict": "ok"}')
    result.expect(EXIT_COMPLETED)
    check(result.json()["type"] == "review_done" and isinstance(result.json()["event_id"], int),
          result.describe())
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    check(show(sandbox, first)["status"] == "RUNNING", "the filter let another doc through")
    second_details = show(sandbox, second)
    check(second_details["status"] == "COMPLETED", second_details)
    check(second_details["outputs"] == {"verdict": "ok"}, second_details)
    check("EventReceived" in event_types(sandbox, second), "no EventReceived")

    sandbox.vm("emit", "review_done", '{"doc": "doc-1", "verdict": "no"}').expect(
        EXIT_COMPLETED, stdout_empty=True)
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    check(show(sandbox, first)["outputs"] == {"verdict": "no"}, show(sandbox, first))


def test_history_shows_events_in_order_with_steps_and_locations(sandbox):
    file = sandbox.workflow("greet.kotoba")
    sandbox.vm("run", file, "--input", '{"name": "ada"}', *greet_bindings(sandbox)).expect(
        EXIT_COMPLETED)
    run_id = sandbox.vm("list", "--json").json()[0]["run_id"]

    events = history(sandbox, run_id)
    check([e["seq"] for e in events] == list(range(1, len(events) + 1)),
          "seqs are not 1..n in order")
    check(events[0]["type"] == "WorkflowStarted" and events[-1]["type"] == "WorkflowCompleted",
          [e["type"] for e in events])
    scheduled = [e for e in events if e["type"] == "ActivityScheduled"]
    check([e["step_id"] for e in scheduled] == ["hello", "shout"], scheduled)
    for event in scheduled:
        check(re.fullmatch(r".*greet\.kotoba:\d+", event["location"]), event)
    check(scheduled[0]["location"] != scheduled[1]["location"], "both steps on one line")
    times = [e["time_ms"] for e in events]
    check(times == sorted(times), "event times go backwards")
    for event in events:
        check(set(event) >= {"seq", "type", "time", "step_id", "location", "payload"}, event)

    text = sandbox.vm("history", run_id).expect(EXIT_COMPLETED, stderr_empty=True).stdout
    lines = text.strip().splitlines()
    check(lines[0].split()[:3] == ["SEQ", "TIME", "TYPE"], lines[0])
    check(len(lines) == len(events) + 1, f"{len(lines) - 1} lines for {len(events)} events")
    for line, event in zip(lines[1:], events):
        fields = line.split()
        check(fields[0] == str(event["seq"]) and fields[2] == event["type"], line)
        if event["step_id"]:
            check(event["step_id"] in fields and event["location"] in line, line)
    check(re.search(r"ActivityScheduled\s+shout\s+\S*greet\.kotoba:\d+\s+\{", text), text)


def test_list_filters_by_status_and_workflow(sandbox):
    sandbox.vm("run", sandbox.workflow("month.kotoba"), "--clock", "virtual").expect(
        EXIT_COMPLETED)
    file = sandbox.workflow("approval.kotoba")
    prepare = sandbox.activity("prepare", result="{'ok': True}")
    waiting = detach(sandbox, file, "--input", '{"doc": "x"}', prepare)

    running = sandbox.vm("list", "--status", "running", "--json").expect(EXIT_COMPLETED).json()
    check([run["run_id"] for run in running] == [waiting], running)
    months = sandbox.vm("list", "--workflow", "month", "--json").json()
    check(len(months) == 1 and months[0]["status"] == "COMPLETED", months)
    text = sandbox.vm("list").expect(EXIT_COMPLETED).stdout
    check(text.splitlines()[0].split() == ["RUN", "WORKFLOW", "STATUS", "CREATED", "FINISHED"],
          text)
    check(len(text.strip().splitlines()) == 3, text)
    sandbox.vm("list", "--status", "DONE").expect(EXIT_USAGE).expect_stderr(
        r"no such status.*COMPLETED")


def test_continue_as_new_is_followed_to_the_last_run(sandbox):
    file = sandbox.workflow("countdown.kotoba")
    result = sandbox.vm("--json", "run", file, "--input", '{"n": 3}')
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    body = result.json()
    check(body["outputs"] == {"final_n": 0}, result.describe())
    runs = sandbox.vm("list", "--json").json()
    statuses = sorted(run["status"] for run in runs)
    check(statuses == ["COMPLETED"] + ["CONTINUED_AS_NEW"] * 3, statuses)
    last = next(run for run in runs if run["status"] == "COMPLETED")
    check(body["run_id"] == last["run_id"], "the result names another run than the last")
    check(len({run["chain_id"] for run in runs}) == 1, "the chain has several ids")


def test_help_describes_the_commands(sandbox):
    result = sandbox.vm("--help").expect(EXIT_COMPLETED, stderr_empty=True)
    for command in ("run", "worker", "resume", "signal", "emit", "cancel", "terminate", "list",
                    "show", "history"):
        result.expect_stdout(rf"\b{command}\b")
    sandbox.vm("run", "--help").expect(EXIT_COMPLETED).expect_stdout(
        r"--input", r"--bind", r"--detach", r"--clock", r"--signal")
    sandbox.vm("frobnicate").expect(EXIT_USAGE, stdout_empty=True)
    sandbox.vm("run").expect(EXIT_USAGE, stdout_empty=True)


def order_bindings(sandbox, payment_error=None):
    return [
        sandbox.activity("validate_order", result="{'valid': True}"),
        # The payment is slower than the reservation, so that when it fails the
        # reservation has completed and registered its compensation.
        sandbox.activity("process_payment", sleep=0.3, error=payment_error,
                         result="{'payment_id': 'pay-' + inp['order_id']}"),
        sandbox.activity("reserve_inventory",
                         result="{'reservation_id': 'res-' + inp['order_id']}"),
        sandbox.activity("fraud_check", result="{'score': 0.1}"),
        sandbox.activity("send_confirmation",
                         result="{'confirmation_id': 'conf-' + inp['order_id']}"),
        sandbox.activity("cancel_payment", result="{'cancelled': inp['payment_id']}"),
        sandbox.activity("release_inventory", result="{'released': inp['reservation']}"),
        sandbox.activity("send_failure_notification", result="None"),
    ]


ORDER_INPUT = '{"orderId": "o-7", "customerId": "c-1", "amount": 42.5, "items": [{"sku": "s"}]}'


def copy_sample(sandbox):
    source = os.path.join(sandbox.config.source_dir, "samples", "order_processing",
                          "order_processing.kotoba")
    shutil.copy(source, sandbox.dir)
    os.chmod(os.path.join(sandbox.dir, "order_processing.kotoba"), 0o644)
    return "order_processing.kotoba"


def test_order_processing_sample_completes(sandbox):
    file = copy_sample(sandbox)
    result = sandbox.vm("run", file, "--clock", "virtual", "--input", ORDER_INPUT,
                        *order_bindings(sandbox))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"processed": True, "confirmationId": "conf-o-7"}, result.describe())
    called = [call["activity"] for call in sandbox.calls()]
    check(called[0] == "validate_order" and called[-1] == "send_confirmation", called)
    check(sorted(called[1:4]) == ["fraud_check", "process_payment", "reserve_inventory"],
          called)
    check(sandbox.called("send_confirmation") ==
          [{"order_id": "o-7", "message": "Order o-7 confirmed for 42.5"}], sandbox.calls())
    for compensation in ("cancel_payment", "release_inventory", "send_failure_notification"):
        check(sandbox.called(compensation) == [], f"{compensation} ran for a completed order")


def test_order_processing_sample_fails_and_compensates_when_payment_fails(sandbox):
    file = copy_sample(sandbox)
    declined = {"type": "PaymentDeclined", "message": "card declined", "retryable": False}
    result = sandbox.vm("--json", "run", file, "--clock", "virtual", "--input", ORDER_INPUT,
                        *order_bindings(sandbox, payment_error=declined))
    result.expect(EXIT_RUN_FAILED).expect_stderr(r"FAILED", r"PaymentDeclined: card declined")
    body = result.json()
    check(body["status"] == "FAILED" and body["error"]["type"] == "PaymentDeclined",
          result.describe())
    check(body["error"].get("compensation") == "completed", result.describe())

    check(sandbox.called("release_inventory") == [{"reservation": "res-o-7"}], sandbox.calls())
    check(sandbox.called("cancel_payment") == [], "a payment that never completed was undone")
    check(sandbox.called("send_failure_notification") ==
          [{"order_id": "o-7", "reason": "card declined"}], sandbox.calls())
    check(sandbox.called("send_confirmation") == [], "a failed order was confirmed")
    order = [call["activity"] for call in sandbox.calls()]
    check(order.index("release_inventory") < order.index("send_failure_notification"), order)

    run_id = body["run_id"]
    types = event_types(sandbox, run_id)
    check("CompensationStarted" in types and types[-1] == "WorkflowFailed", types)


def copy_sample_directory(sandbox):
    """The sample as shipped, with its own process activities (activities/shop.py), in a
    subdirectory: its relative paths resolve against the workflow file's directory, not
    the directory kotoba-vm runs in."""
    source = os.path.join(sandbox.config.source_dir, "samples", "order_processing")
    target = os.path.join(sandbox.dir, "sample")
    shutil.copytree(source, target)
    return "sample/order_processing.kotoba"


def test_shipped_order_sample_runs_with_its_own_activities(sandbox):
    file = copy_sample_directory(sandbox)
    result = sandbox.vm("run", file, "--clock", "virtual", "--input",
                        "@sample/inputs/order.json")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"processed": True, "confirmationId": "conf_A-1001"},
          result.describe())
    # shop.py writes into the engine's working directory, where the activity runs.
    with open(os.path.join(sandbox.dir, "receipt-A-1001.txt")) as receipt:
        check(receipt.read() == "Order A-1001 confirmed for 42.5\n", "wrong receipt")

    result = sandbox.vm("--json", "run", file, "--clock", "virtual", "--input",
                        "@sample/inputs/declined.json")
    result.expect(EXIT_RUN_FAILED).expect_stderr(r"PaymentDeclined: card declined")
    check(result.json()["error"]["type"] == "PaymentDeclined", result.describe())
    check(os.path.exists(os.path.join(sandbox.dir, "failure-A-1002.txt")),
          "the saga's compensation did not notify")
    check(not os.path.exists(os.path.join(sandbox.dir, "receipt-A-1002.txt")),
          "a declined order was confirmed")


# A workflow whose declared activity has a relative command, and which calls one activity
# it does not declare (bound with --bind).
LOCATED_WORKFLOW = """\
{
  activities: [{ name: "where", implementation: { type: "process", command: "./where.py" } }],
  workflow: {
    id: "located",
    outputs: [{ name: "from", type: "string" }, { name: "stamp", type: "string" }],
    output_mapping: { from: $.results.where.from, stamp: $.results.stamp.by },
    strategy: { op: "seq", strategies: [
      { op: "activity", activity_ref: "where" },
      { op: "activity", activity_ref: "stamp" } ] },
  },
}
"""


def located_project(sandbox, name):
    """A directory NAME holding located.kotoba and its where.py, which answers NAME."""
    directory = os.path.join(sandbox.dir, name)
    os.makedirs(directory)
    with open(os.path.join(directory, "located.kotoba"), "w") as out:
        out.write(LOCATED_WORKFLOW)
    script = os.path.join(directory, "where.py")
    with open(script, "w") as out:
        out.write(f"#!{sys.executable}\nimport json, sys\njson.load(sys.stdin)\n"
                  f"json.dump({{'from': {name!r}}}, sys.stdout)\n")
    os.chmod(script, 0o755)
    return os.path.join(name, "located.kotoba")


def stamp_script(sandbox, name, by):
    """A process activity in the sandbox that answers {by: BY}; its path relative to it."""
    with open(os.path.join(sandbox.dir, name), "w") as out:
        out.write(f"#!{sys.executable}\nimport json, sys\njson.load(sys.stdin)\n"
                  f"json.dump({{'by': {by!r}}}, sys.stdout)\n")
    os.chmod(os.path.join(sandbox.dir, name), 0o755)
    return f"./{name}"


def test_a_worker_elsewhere_resolves_each_modules_paths_and_the_runs_bindings(sandbox):
    # Two projects with the same relative activity path, started from the sandbox with a
    # relative --bind; one worker in a third directory, with no --bind, drives both.
    db = os.path.join(sandbox.dir, "kotoba.db")
    stamp = stamp_script(sandbox, "stamp.py", "started")
    runs = {}
    for name in ("alpha", "beta"):
        runs[name] = detach(sandbox, "--db", db, located_project(sandbox, name),
                            f"--bind=stamp=process:{stamp}")
    elsewhere = os.path.join(sandbox.dir, "elsewhere")
    os.makedirs(elsewhere)
    sandbox.vm("--db", db, "worker", "--until-idle", cwd=elsewhere).expect(
        EXIT_COMPLETED, stderr_empty=True)
    for name, run_id in runs.items():
        details = sandbox.vm("--db", db, "show", run_id, "--json").expect(EXIT_COMPLETED).json()
        check(details["status"] == "COMPLETED", details)
        check(details["outputs"] == {"from": name, "stamp": "started"}, details)
        check(details["host"]["base_directory"] == os.path.join(sandbox.dir, name), details)
        check(details["host"]["bindings"] == [{
            "name": "stamp", "implementation": {"type": "process", "command": stamp, "args": []},
            "base_directory": sandbox.dir}], details)
    text = sandbox.vm("--db", db, "show", runs["alpha"]).expect(EXIT_COMPLETED).stdout
    check(re.search(r"base dir\s+" + re.escape(os.path.join(sandbox.dir, "alpha")), text) and
          re.search(r"bound\s+stamp .*\(typed in " + re.escape(sandbox.dir) + r"\)", text), text)

    # resume, from yet another directory, finds them too.
    run_id = detach(sandbox, "--db", db, located_project(sandbox, "gamma"),
                    f"--bind=stamp=process:{stamp}")
    result = sandbox.vm("--db", db, "resume", run_id, cwd=elsewhere)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"from": "gamma", "stamp": "started"}, result.describe())


def test_a_bind_given_to_the_worker_overrides_the_one_stored_with_the_run(sandbox):
    db = os.path.join(sandbox.dir, "kotoba.db")
    started = stamp_script(sandbox, "stamp.py", "started")
    run_id = detach(sandbox, "--db", db, located_project(sandbox, "alpha"),
                    f"--bind=stamp=process:{started}")
    elsewhere = os.path.join(sandbox.dir, "elsewhere")
    os.makedirs(elsewhere)
    override = os.path.join(elsewhere, "other.py")
    with open(override, "w") as out:
        out.write(f"#!{sys.executable}\nimport json, sys\njson.load(sys.stdin)\n"
                  f"json.dump({{'by': 'worker'}}, sys.stdout)\n")
    os.chmod(override, 0o755)
    # Relative to where the worker was started, like any --bind.
    sandbox.vm("--db", db, "worker", "--until-idle", "--bind=stamp=process:./other.py",
               cwd=elsewhere).expect(EXIT_COMPLETED, stderr_empty=True)
    details = sandbox.vm("--db", db, "show", run_id, "--json").expect(EXIT_COMPLETED).json()
    check(details["outputs"] == {"from": "alpha", "stamp": "worker"}, details)


def test_resume_upgrade_moves_the_runs_activity_directory_to_the_new_module(sandbox):
    db = os.path.join(sandbox.dir, "kotoba.db")
    stamp = stamp_script(sandbox, "stamp.py", "started")
    run_id = detach(sandbox, "--db", db, located_project(sandbox, "alpha"),
                    f"--bind=stamp=process:{stamp}")
    newer = located_project(sandbox, "beta")
    with open(os.path.join(sandbox.dir, newer), "a") as out:
        out.write("// the next version\n")  # another module, whose history replays the same
    elsewhere = os.path.join(sandbox.dir, "elsewhere")
    os.makedirs(elsewhere)
    result = sandbox.vm("--db", db, "resume", run_id, "--upgrade",
                        os.path.join(sandbox.dir, newer), cwd=elsewhere)
    result.expect(EXIT_COMPLETED)
    check(result.json() == {"from": "beta", "stamp": "started"}, result.describe())


def test_a_kbc_resolves_relative_paths_against_its_own_directory(sandbox):
    source = located_project(sandbox, "alpha")
    built = subprocess.run([sandbox.config.kotobac, "build", source, "-o",
                            os.path.join("alpha", "located.kbc")],
                           cwd=sandbox.dir, capture_output=True, text=True)
    check(built.returncode == 0, built.stderr)
    db = os.path.join(sandbox.dir, "kotoba.db")
    stamp = stamp_script(sandbox, "stamp.py", "kbc")
    run_id = detach(sandbox, "--db", db, os.path.join("alpha", "located.kbc"),
                    f"--bind=stamp=process:{stamp}")
    elsewhere = os.path.join(sandbox.dir, "elsewhere")
    os.makedirs(elsewhere)
    result = sandbox.vm("--db", db, "resume", run_id, cwd=elsewhere)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"from": "alpha", "stamp": "kbc"}, result.describe())



def answering_script(path, answer):
    """A process activity at PATH that answers {from: ANSWER}."""
    with open(path, "w") as out:
        out.write(f"#!{sys.executable}\nimport json, sys\njson.load(sys.stdin)\n"
                  f"json.dump({{'from': {answer!r}}}, sys.stdout)\n")
    os.chmod(path, 0o755)


def test_an_imported_declaration_resolves_paths_against_its_own_file(sandbox):
    # proj/main.kotoba imports lib/acts.kotoba, whose `tool` runs ./tool.py: the one in
    # lib/, not the one next to main.kotoba, however the module is run.
    project = os.path.join(sandbox.dir, "proj")
    os.makedirs(os.path.join(project, "lib"))
    with open(os.path.join(project, "main.kotoba"), "w") as out:
        out.write("""{
  imports: ["lib/acts.kotoba"],
  activities: [{ name: "here", implementation: { type: "process", command: "./tool.py" } }],
  workflow: { id: "main",
    outputs: [{ name: "lib", type: "string" }, { name: "entry", type: "string" }],
    output_mapping: { lib: $.results.tool.from, entry: $.results.here.from },
    strategy: { op: "seq", strategies: [{ op: "activity", activity_ref: "tool" },
                                        { op: "activity", activity_ref: "here" }] } },
}
""")
    with open(os.path.join(project, "lib", "acts.kotoba"), "w") as out:
        out.write('{ activities: [{ name: "tool", implementation: { type: "process", '
                  'command: "./tool.py" } }] }\n')
    answering_script(os.path.join(project, "lib", "tool.py"), "lib")
    answering_script(os.path.join(project, "tool.py"), "entry")
    expected = {"lib": "lib", "entry": "entry"}

    result = sandbox.vm("run", os.path.join("proj", "main.kotoba"))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == expected, result.describe())

    # A .kbc next to the source, run from elsewhere and by a worker elsewhere, the same.
    built = subprocess.run([sandbox.config.kotobac, "build", os.path.join("proj", "main.kotoba"),
                            "-o", os.path.join("proj", "main.kbc")],
                           cwd=sandbox.dir, capture_output=True, text=True)
    check(built.returncode == 0, built.stderr)
    elsewhere = os.path.join(sandbox.dir, "elsewhere")
    os.makedirs(elsewhere)
    result = sandbox.vm("run", os.path.join(project, "main.kbc"), cwd=elsewhere)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == expected, result.describe())
    db = os.path.join(sandbox.dir, "kotoba.db")
    run_id = detach(sandbox, "--db", db, os.path.join("proj", "main.kbc"))
    sandbox.vm("--db", db, "worker", "--until-idle", cwd=elsewhere).expect(
        EXIT_COMPLETED, stderr_empty=True)
    details = sandbox.vm("--db", db, "show", run_id, "--json").expect(EXIT_COMPLETED).json()
    check(details["outputs"] == expected, details)

def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_until_killed(sandbox, args, first_activity):
    """Starts `kotoba-vm ARGS` in the background and waits until `first_activity` has been
    called; the body runs while the process lives, then the process is killed (SIGKILL)."""
    process = subprocess.Popen([sandbox.config.kotoba_vm, *args], cwd=sandbox.dir,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sandbox.called(first_activity), 30, f"{first_activity} to start")
        yield process
    finally:
        process.kill()
        process.communicate()


def test_resume_after_sigkill_takes_the_run_over_without_waiting_for_the_lease(sandbox):
    # The run's owner dies mid activity under the default 30 s lease; on the same machine
    # its death is provable (docs/durability.md, Leases), so resume starts at once.
    file = sandbox.workflow("greet.kotoba")
    bindings = [sandbox.activity("make_greeting", sleep=1.0,
                                 result="{'text': ('hello ' + inp['name'] + ' ') * inp['times']}"),
                sandbox.activity("upper", result="{'text': inp['text'].strip().upper()}")]
    with running_until_killed(sandbox, ["run", file, "--input", '{"name": "ada", "times": 2}',
                                        *bindings], first_activity="make_greeting") as process:
        pass
    runs = sandbox.vm("list", "--json").expect(EXIT_COMPLETED).json()
    check(len(runs) == 1 and runs[0]["status"] == "RUNNING", runs)
    run_id = runs[0]["run_id"]
    lease = show(sandbox, run_id).get("lease")
    check(lease and f"/{process.pid}/" in lease["owner"] and "/proc:" in lease["owner"],
          f"the dead process's lease is not in the store: {lease}")

    result = sandbox.vm("resume", run_id, *bindings)
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"greeting": "hello ada hello ada ", "shout": "HELLO ADA HELLO ADA"},
          result.describe())
    # The activity takes 1 s; waiting out the lease would take 30 s.
    check(result.elapsed < 10, f"resume took {result.elapsed:.1f}s\n{result.describe()}")
    check(sandbox.called("make_greeting") == [{"name": "ada", "times": 2}] * 2, sandbox.calls())
    check(sandbox.called("upper") == [{"text": "hello ada hello ada "}], sandbox.calls())


def test_a_worker_takes_over_the_runs_of_a_killed_worker_at_once(sandbox):
    file = sandbox.workflow("greet.kotoba")
    bindings = [sandbox.activity("make_greeting", sleep=1.0,
                                 result="{'text': ('hello ' + inp['name'] + ' ') * inp['times']}"),
                sandbox.activity("upper", result="{'text': inp['text'].strip().upper()}")]
    run_id = detach(sandbox, file, "--input", '{"name": "lin", "times": 1}', *bindings)
    with running_until_killed(sandbox, ["worker", *bindings], first_activity="make_greeting"):
        pass
    result = sandbox.vm("worker", "--until-idle", *bindings)
    result.expect(EXIT_COMPLETED)
    details = show(sandbox, run_id)
    check(details["status"] == "COMPLETED", details)
    check(details["outputs"] == {"greeting": "hello lin ", "shout": "HELLO LIN"}, details)
    check(result.elapsed < 10, f"the worker took {result.elapsed:.1f}s\n{result.describe()}")


# --- the runner ------------------------------------------------------------------------


def run(namespace, program):
    """Runs every test_* function of `namespace` (a module's globals) in its own sandbox and
    prints one line per test; the exit status for the script named `program`."""
    parser = argparse.ArgumentParser(description=namespace["__doc__"].splitlines()[0])
    parser.add_argument("--bin-dir", required=True, help="the CMake build directory")
    parser.add_argument("--source-dir", required=True, help="the source tree")
    parser.add_argument("-k", dest="pattern", default="", help="run tests whose name has this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    config = parser.parse_args()
    config.bin_dir = os.path.abspath(config.bin_dir)
    config.source_dir = os.path.abspath(config.source_dir)
    config.kotoba_vm = os.path.join(config.bin_dir, "runtime", "kotoba-vm")
    config.kotobac = os.path.join(config.bin_dir, "compiler", "kotobac")
    config.workflows = os.path.join(config.source_dir, "tests", "cli", "workflows")
    for binary in (config.kotoba_vm, config.kotobac):
        if not os.access(binary, os.X_OK):
            print(f"{program}: {binary} is not built", file=sys.stderr)
            return 2

    tests = [(name, function) for name, function in namespace.items()
             if name.startswith("test_") and config.pattern in name]
    failures = 0
    started = time.monotonic()
    for name, function in tests:
        sandbox = Sandbox(config, name[len("test_"):][:20])
        test_started = time.monotonic()
        try:
            function(sandbox)
            print(f"ok    {name} ({time.monotonic() - test_started:.2f}s)")
            sandbox.cleanup()
        except TestFailure as failure:
            failures += 1
            print(f"FAIL  {name}\n{textwrap.indent(str(failure), '      ')}\n"
                  f"      (sandbox kept: {sandbox.dir})")
        except Exception:  # a crash of the test itself, or a hung command
            failures += 1
            print(f"ERROR {name}\n{textwrap.indent(traceback.format_exc(), '      ')}\n"
                  f"      (sandbox kept: {sandbox.dir})")
    print(f"{len(tests) - failures}/{len(tests)} passed in {time.monotonic() - started:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run(globals(), "run_cli_tests.py"))
