#!/usr/bin/env python3
"""End-to-end tests of the kotoba-vm commands about histories: export, replay, verify,
state and resume --upgrade (docs/durability.md), and purge (docs/cli.md). Each test runs
the real binaries in a temporary directory, with process activities it writes, and asserts
the exit code and output of every command.

    durable_cli_tests.py --bin-dir BUILD --source-dir SOURCE [-k PATTERN] [--keep]

The sandbox, the activities and the result checks are those of run_cli_tests.py.
Registered with CTest as cli/durable.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run_cli_tests as cli  # noqa: E402  (the shared sandbox and checks)
from run_cli_tests import (EXIT_COMPLETED, EXIT_NON_DETERMINISM, EXIT_STORE,  # noqa: E402
                           EXIT_USAGE, check)

# Packs an item, cools down for an hour, then labels it.
SHIP = """\
{ workflow: { id: "ship", inputs: [{ name: "item", type: "string", required: true }],
  outputs: [{ name: "label" }], output_mapping: { label: $.results.label.text },
  strategy: { op: "seq", strategies: [
    { op: "activity", id: "pack", activity_ref: "pack", input_mapping: { item: $.inputs.item } },
    { op: "set", vars: { packed: true, item: $.inputs.item } },
    { op: "wait", id: "cool_down", timer: "PT1H" },
    { op: "activity", id: "label", activity_ref: "label",
      input_mapping: { item: $.vars.item } } ] } } }
"""

# The same workflow with an activity inserted before the timer.
SHIP_WEIGHED = SHIP.replace(
    '    { op: "wait", id: "cool_down"',
    '    { op: "activity", id: "weigh", activity_ref: "weigh" },\n'
    '    { op: "wait", id: "cool_down"')

# Prepares, then waits for an approval signal.
APPROVAL = """\
{ workflow: { id: "approval", outputs: [{ name: "by" }, { name: "notified" }],
  output_mapping: { by: $.signals.approve.by, notified: $.results.notify ?? false },
  strategy: { op: "seq", strategies: [
    { op: "activity", id: "prepare", activity_ref: "prepare" },
    { op: "wait", id: "approval", signal: "approve" } ] } } }
"""

# Compatible: a step added after the wait the run sits on.
APPROVAL_NOTIFYING = APPROVAL.replace(
    '{ op: "wait", id: "approval", signal: "approve" } ]',
    '{ op: "wait", id: "approval", signal: "approve" },\n'
    '    { op: "activity", id: "notify", activity_ref: "notify" } ]')

# Incompatible: a step added before it.
APPROVAL_CHECKED_FIRST = APPROVAL.replace(
    '    { op: "wait", id: "approval"',
    '    { op: "activity", id: "check", activity_ref: "check" },\n'
    '    { op: "wait", id: "approval"')


def ship_bindings(sandbox):
    return [sandbox.activity("pack", result="{'box': 'b-' + inp['item']}"),
            sandbox.activity("label", result="{'text': 'label for ' + inp['item']}"),
            sandbox.activity("weigh", result="{'kg': 2}")]


# The condition that picks event ? (seq) of run ? (id) in the store's events table.
EVENT_OF_RUN = "run_key = (SELECT run_key FROM runs WHERE id = ?) AND seq = ?"


def tampered_copy(sandbox, name):
    """A copy of the sandbox's store to damage, opened with sqlite3."""
    shutil.copy(os.path.join(sandbox.dir, "kotoba.db"), os.path.join(sandbox.dir, name))
    return sqlite3.connect(os.path.join(sandbox.dir, name))


def rehash(events, run_id):
    """Recomputes the hash chain of exported events after their payloads were changed, with
    the formula of runtime/schema/store.sql (events.hash)."""
    previous = bytes(32)
    for event in events:
        digest = hashlib.sha256()

        def text(value):
            data = value.encode()
            digest.update(len(data).to_bytes(8, "little") + data)

        def integer(value):
            digest.update((value % 2**64).to_bytes(8, "little"))

        text("kotoba.event.v1")
        digest.update(previous)
        text(run_id)
        for field in ("seq", "type_number", "time_ms", "tx"):
            integer(event[field])
        text(event["step_id"])
        text(event["location"])
        text(json.dumps(event["payload"], separators=(",", ":"), ensure_ascii=False))
        event["prev_hash"] = previous.hex()
        previous = digest.digest()
        event["hash"] = previous.hex()


def run_ship(sandbox):
    """Runs the shipping workflow to its end under a virtual clock; returns the run id."""
    sandbox.write("ship.kotoba", SHIP)
    result = sandbox.vm("--json", "run", "ship.kotoba", "--clock", "virtual", "--input",
                        '{"item": "box"}', *ship_bindings(sandbox))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    body = result.json()
    check(body["outputs"] == {"label": "label for box"}, result.describe())
    return body["run_id"]


def seq_of(sandbox, run_id, event_type):
    for event in cli.history(sandbox, run_id):
        if event["type"] == event_type:
            return event["seq"], event["tx"]
    raise cli.TestFailure(f"run {run_id} has no {event_type}")


# --- the tests -------------------------------------------------------------------------


def test_export_and_replay_of_a_clean_run_pass(sandbox):
    run_id = run_ship(sandbox)
    sandbox.vm("export", run_id, "-o", "ship-export.json").expect(
        EXIT_COMPLETED, stdout_empty=True).expect_stderr(r"wrote run .* \(10 events\)")
    with open(os.path.join(sandbox.dir, "ship-export.json")) as exported:
        body = json.load(exported)
    check(body["kotoba_export"] == 1 and body["run"]["run_id"] == run_id and
          len(body["events"]) == 10 and body["events"][0]["type"] == "WorkflowStarted" and
          len(body["module_hash"]) == 64 and body["module_kbc_hex"], body.keys())
    # The run's directory and --bind bindings come along (runs.host).
    host = body["run"]["host"]
    check(host["base_directory"] == os.path.realpath(sandbox.dir) and
          sorted(binding["name"] for binding in host["bindings"]) == ["label", "pack", "weigh"],
          host)

    # Offline: the file alone is enough, even without the store.
    os.remove(os.path.join(sandbox.dir, "kotoba.db"))
    result = sandbox.vm("replay", "ship-export.json")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    result.expect_stdout(rf"^OK: run {run_id} \(ship\) replays on module [0-9a-f]{{64}}: "
                         r"10 events$")
    # An export written before `host` existed still replays.
    del body["run"]["host"]
    sandbox.write("old-export.json", json.dumps(body))
    sandbox.vm("replay", "old-export.json").expect(EXIT_COMPLETED, stderr_empty=True)
    # So does one written before schema version 3, whose ActivityStarted payloads carry the
    # idempotency key (and whose hashes cover it).
    for event in body["events"]:
        if event["type"] == "ActivityStarted":
            payload = event["payload"]
            payload["idempotency_key"] = (f"{run_id}/{event['step_id']}/c{payload['command_id']}"
                                          f"/{payload['attempt']}")
    rehash(body["events"], run_id)
    sandbox.write("version-2-export.json", json.dumps(body))
    sandbox.vm("replay", "version-2-export.json").expect(EXIT_COMPLETED, stderr_empty=True)
    # Against the same workflow compiled again: the same module, so the same answer.
    sandbox.write("ship.kotoba", SHIP)
    result = sandbox.vm("--json", "replay", "ship-export.json", "--module", "ship.kotoba")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json()["ok"] is True and result.json()["events"] == 10, result.describe())


def test_export_to_stdout_and_replay_of_a_run_in_the_store(sandbox):
    run_id = run_ship(sandbox)
    result = sandbox.vm("export", run_id).expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json()["run"]["status"] == "COMPLETED", result.describe())
    sandbox.vm("replay", run_id).expect(EXIT_COMPLETED, stderr_empty=True).expect_stdout(r"^OK:")
    sandbox.vm("export", "no-such-run").expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"no run has id 'no-such-run'")
    sandbox.vm("replay", "no-such-run").expect(EXIT_USAGE, stdout_empty=True)


def test_a_changed_workflow_fails_replay_naming_the_step_and_event(sandbox):
    run_id = run_ship(sandbox)
    sandbox.vm("export", run_id, "-o", "ship-export.json").expect(EXIT_COMPLETED)
    timer_seq, _ = seq_of(sandbox, run_id, "TimerStarted")
    sandbox.write("ship-weighed.kotoba", SHIP_WEIGHED)

    result = sandbox.vm("replay", "ship-export.json", "--module", "ship-weighed.kotoba")
    result.expect(EXIT_NON_DETERMINISM, stdout_empty=True)
    result.expect_stderr(
        rf"run {run_id} does not replay at event {timer_seq}: the workflow now issues "
        r"ScheduleActivity for step 'weigh' where the history has TimerStarted for step "
        r"'cool_down'")

    # The same from a built .kbc, and machine-readable with --json.
    built = subprocess.run([sandbox.config.kotobac, "build", "ship-weighed.kotoba", "-o",
                                "ship-weighed.kbc"], cwd=sandbox.dir, capture_output=True,
                               text=True)
    check(built.returncode == 0, built.stderr)
    result = sandbox.vm("--json", "replay", "ship-export.json", "--module", "ship-weighed.kbc")
    result.expect(EXIT_NON_DETERMINISM).expect_stderr(r"step 'weigh'")
    body = result.json()
    check(body["ok"] is False and body["mismatch"]["seq"] == timer_seq and
          body["mismatch"]["step"] == "weigh", result.describe())


def test_a_changed_export_file_is_refused(sandbox):
    run_id = run_ship(sandbox)
    sandbox.vm("export", run_id, "-o", "ship-export.json").expect(EXIT_COMPLETED)
    path = os.path.join(sandbox.dir, "ship-export.json")
    with open(path) as exported:
        body = json.load(exported)
    body["events"][3]["payload"]["result"]["box"] = "b-other"
    with open(path, "w") as changed:
        json.dump(body, changed)
    sandbox.vm("replay", "ship-export.json").expect(EXIT_STORE, stdout_empty=True).expect_stderr(
        r"hash chain breaks: event 4 does not match its hash")

    sandbox.write("not-an-export.json", '{"kotoba_export": 1, "run": {}}')
    sandbox.vm("replay", "not-an-export.json").expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"not a kotoba-vm export: run\.run_id is missing")


def test_verify_detects_one_changed_byte_of_an_event_payload(sandbox):
    run_id = run_ship(sandbox)
    result = sandbox.vm("verify", run_id).expect(EXIT_COMPLETED, stderr_empty=True)
    result.expect_stdout(rf"^OK: run {run_id}: 10 events and \d+ checkpoints? verified")

    # On a copy of the store, one byte of one payload changes.
    database = tampered_copy(sandbox, "copy.db")
    with database:
        (payload,) = database.execute(f"SELECT payload FROM events WHERE {EVENT_OF_RUN}",
                                      (run_id, 4)).fetchone()
        at = payload.index("b-box") + 2
        changed = payload[:at] + "c" + payload[at + 1:]
        database.execute(f"UPDATE events SET payload = ? WHERE {EVENT_OF_RUN}",
                         (changed, run_id, 4))
    database.close()

    result = sandbox.vm("--db", "copy.db", "verify", run_id)
    result.expect(EXIT_STORE, stdout_empty=True)
    result.expect_stderr(rf"run {run_id}: the hash chain breaks at event 4: its content does "
                         r"not match its hash")
    body = sandbox.vm("--db", "copy.db", "--json", "verify", run_id).expect(EXIT_STORE).json()
    check(body["ok"] is False and body["broken"] == {
        "where": "event", "seq": 4, "reason": body["broken"]["reason"]}, body)
    # The original is untouched.
    sandbox.vm("verify", run_id).expect(EXIT_COMPLETED)
    sandbox.vm("verify", "no-such-run").expect(EXIT_USAGE, stdout_empty=True)


def test_verify_detects_a_removed_event_and_a_swapped_pair(sandbox):
    run_id = run_ship(sandbox)
    database = tampered_copy(sandbox, "removed.db")
    with database:
        database.execute(f"DELETE FROM events WHERE {EVENT_OF_RUN}", (run_id, 5))
    database.close()
    sandbox.vm("--db", "removed.db", "verify", run_id).expect(
        EXIT_STORE, stdout_empty=True).expect_stderr(
        rf"run {run_id}: the hash chain breaks at event 6: event 6 follows event 4")

    # Events 5 and 6 trade places: each keeps its own content and hash.
    database = tampered_copy(sandbox, "swapped.db")
    with database:
        columns = "type, time_ms, tx, site, command_id, payload, hash"
        rows = {seq: database.execute(f"SELECT {columns} FROM events WHERE {EVENT_OF_RUN}",
                                      (run_id, seq)).fetchone() for seq in (5, 6)}
        for seq, other in ((5, 6), (6, 5)):
            database.execute(f"UPDATE events SET ({columns}) = (?, ?, ?, ?, ?, ?, ?) "
                             f"WHERE {EVENT_OF_RUN}", (*rows[other], run_id, seq))
    database.close()
    sandbox.vm("--db", "swapped.db", "verify", run_id).expect(
        EXIT_STORE, stdout_empty=True).expect_stderr(
        rf"run {run_id}: the hash chain breaks at event 5: its content does not match its hash")
    sandbox.vm("verify", run_id).expect(EXIT_COMPLETED)


def test_state_at_an_earlier_event_shows_the_vars_as_they_were(sandbox):
    run_id = run_ship(sandbox)
    packed_seq, _ = seq_of(sandbox, run_id, "ActivityScheduled")
    timer_seq, timer_tx = seq_of(sandbox, run_id, "TimerStarted")

    before = sandbox.vm("--json", "state", run_id, "--at", str(packed_seq))
    before = before.expect(EXIT_COMPLETED, stderr_empty=True).json()
    check(before["seq"] == packed_seq and before["status"] == "RUNNING" and
          before["vars"] == {} and before["results"] == {}, before)
    check([(p["kind"], p["step_id"], p["name"]) for p in before["pending"]] ==
          [("ScheduleActivity", "pack", "pack")], before)

    waiting = sandbox.vm("--json", "state", run_id, "--at", str(timer_seq))
    waiting = waiting.expect(EXIT_COMPLETED, stderr_empty=True).json()
    check(waiting["vars"] == {"packed": True, "item": "box"} and
          waiting["results"] == {"pack": {"box": "b-box"}}, waiting)
    check([p["kind"] for p in waiting["pending"]] == ["StartTimer"] and
          waiting["pending"][0]["fires"], waiting)
    # The run waited on its timer there, so a checkpoint covers that event.
    check(waiting["checkpoint_seq"] == timer_seq and waiting["events_replayed"] == 0, waiting)

    # --at-tx cuts at the last event of that transaction.
    by_tx = sandbox.vm("--json", "state", run_id, "--at-tx", str(timer_tx)).expect(
        EXIT_COMPLETED).json()
    check(by_tx["seq"] == timer_seq and by_tx["vars"] == waiting["vars"], by_tx)

    text = sandbox.vm("state", run_id).expect(EXIT_COMPLETED, stderr_empty=True)
    text.expect_stdout(r"status\s+COMPLETED", r'results\s+\{"pack":\{"box":"b-box"\}.*"label"')
    sandbox.vm("state", run_id, "--at", "99").expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"run .* has events 1 to 10; there is no event 99")
    sandbox.vm("state", run_id, "--at", "1", "--at-tx", "1").expect(EXIT_USAGE)


def test_resume_upgrade_moves_a_run_only_when_its_history_replays(sandbox):
    sandbox.write("approval.kotoba", APPROVAL)
    sandbox.write("approval-checked.kotoba", APPROVAL_CHECKED_FIRST)
    sandbox.write("approval-notifying.kotoba", APPROVAL_NOTIFYING)
    bindings = [sandbox.activity("prepare", result="{'ready': True}"),
                sandbox.activity("check", result="True"),
                sandbox.activity("notify", result="{'sent': True}")]
    result = sandbox.vm("--json", "run", "approval.kotoba", "--clock", "virtual", *bindings)
    result.expect(EXIT_COMPLETED).expect_stderr(r"waiting for a signal")
    run_id = result.json()["run_id"]
    module_before = cli.show(sandbox, run_id)["module_hash"]

    result = sandbox.vm("resume", run_id, "--upgrade", "approval-checked.kotoba", *bindings)
    result.expect(EXIT_NON_DETERMINISM, stdout_empty=True)
    result.expect_stderr(r"does not replay at event 5: the workflow now issues ScheduleActivity "
                         r"for step 'check' where the history has WaitStarted for step "
                         r"'approval'", r"nothing was changed")
    details = cli.show(sandbox, run_id)
    check(details["module_hash"] == module_before and details["status"] == "RUNNING", details)

    sandbox.vm("signal", run_id, "approve", '{"by": "ann"}').expect(EXIT_COMPLETED)
    result = sandbox.vm("resume", run_id, "--upgrade", "approval-notifying.kotoba",
                        "--clock", "virtual", *bindings)
    result.expect(EXIT_COMPLETED).expect_stderr(r"now runs module [0-9a-f]{64}")
    check(result.json() == {"by": "ann", "notified": {"sent": True}}, result.describe())
    details = cli.show(sandbox, run_id)
    check(details["module_hash"] != module_before and details["status"] == "COMPLETED", details)
    check(len(sandbox.called("prepare")) == 1 and len(sandbox.called("notify")) == 1,
          sandbox.calls())
    sandbox.vm("verify", run_id).expect(EXIT_COMPLETED)
    sandbox.vm("replay", run_id).expect(EXIT_COMPLETED)

    result = sandbox.vm("resume", run_id, "--upgrade", "approval.kotoba", *bindings)
    result.expect(EXIT_USAGE, stdout_empty=True).expect_stderr(r"has already finished")


def test_resume_upgrade_waits_for_a_live_owner_but_not_for_a_killed_one(sandbox):
    # While the process that started the run works on it, the run cannot change modules; once
    # that process is killed its lease is provably stale (docs/durability.md, Leases) and the
    # upgrade goes ahead without waiting out the 30 s lease.
    file = sandbox.workflow("greet.kotoba")
    with open(os.path.join(sandbox.dir, file)) as original:
        sandbox.write("greet-marked.kotoba", original.read().replace(
            "strategies: [", 'strategies: [\n        { op: "set", vars: { marked: true } },', 1))
    bindings = [sandbox.activity("make_greeting", sleep=2.0,
                                 result="{'text': 'hello ' + inp['name']}"),
                sandbox.activity("upper", result="{'text': inp['text'].upper()}")]
    with cli.running_until_killed(sandbox, ["run", file, "--input", '{"name": "ada"}', *bindings],
                                  first_activity="make_greeting"):
        run_id = sandbox.vm("list", "--json").expect(EXIT_COMPLETED).json()[0]["run_id"]
        result = sandbox.vm("resume", run_id, "--upgrade", "greet-marked.kotoba", *bindings)
        result.expect(EXIT_USAGE, stdout_empty=True).expect_stderr(
            rf"run {run_id} is being worked on by .*/proc:")

    result = sandbox.vm("resume", run_id, "--upgrade", "greet-marked.kotoba", *bindings)
    result.expect(EXIT_COMPLETED).expect_stderr(r"now runs module [0-9a-f]{64}")
    check(result.json() == {"greeting": "hello ada", "shout": "HELLO ADA"}, result.describe())
    check(result.elapsed < 10, f"the upgrade took {result.elapsed:.1f}s\n{result.describe()}")
    check(cli.show(sandbox, run_id)["status"] == "COMPLETED", cli.show(sandbox, run_id))


def test_resume_upgrade_unblocks_a_blocked_run_with_a_module_its_history_replays_on(sandbox):
    sandbox.write("approval.kotoba", APPROVAL)
    sandbox.write("approval-checked.kotoba", APPROVAL_CHECKED_FIRST)
    bindings = [sandbox.activity("prepare", result="{'ready': True}"),
                sandbox.activity("check", result="True")]
    result = sandbox.vm("--json", "run", "approval.kotoba", "--clock", "virtual", *bindings)
    run_id = result.expect(EXIT_COMPLETED).json()["run_id"]
    original = cli.show(sandbox, run_id)["module_hash"]
    result = sandbox.vm("--json", "run", "approval-checked.kotoba", "--clock", "virtual",
                        *bindings)
    changed = cli.show(sandbox, result.expect(EXIT_COMPLETED).json()["run_id"])["module_hash"]

    # The changed module is put under the run by hand, as a bad deployment would: the run
    # blocks on its next resume.
    database = sqlite3.connect(os.path.join(sandbox.dir, "kotoba.db"))
    with database:
        database.execute("UPDATE runs SET module_hash = ? WHERE id = ?", (changed, run_id))
    database.close()
    sandbox.vm("signal", run_id, "approve", '{"by": "bo"}').expect(EXIT_COMPLETED)
    sandbox.vm("resume", run_id, "--clock", "virtual", *bindings).expect(
        EXIT_NON_DETERMINISM).expect_stderr(r"BLOCKED", r"step 'check'")
    check(cli.show(sandbox, run_id)["status"] == "BLOCKED", "the run did not block")

    result = sandbox.vm("resume", run_id, "--upgrade", "approval.kotoba", "--clock", "virtual",
                        *bindings)
    result.expect(EXIT_COMPLETED).expect_stderr(rf"now runs module {original}")
    check(result.json() == {"by": "bo", "notified": False}, result.describe())
    details = cli.show(sandbox, run_id)
    check(details["status"] == "COMPLETED" and details["module_hash"] == original and
          details["error"] is None, details)
    check(len(sandbox.called("prepare")) == 2 and sandbox.called("check") == [{}],
          sandbox.calls())


def count_rows(sandbox, sql, *args):
    database = sqlite3.connect(os.path.join(sandbox.dir, "kotoba.db"))
    (count,) = database.execute(sql, args).fetchone()
    database.close()
    return count


def test_purge_deletes_old_finished_runs_with_their_history_and_unused_modules(sandbox):
    # Old: a completed ship run, a failed ship run and a completed run of a workflow only it
    # used. Kept: a recent completed ship run and a run still waiting for a signal.
    old_completed = run_ship(sandbox)
    failing = [sandbox.activity("pack", error={"type": "OutOfBoxes", "message": "none left",
                                               "retryable": False}),
               sandbox.activity("label", result="{'text': 'x'}")]
    result = sandbox.vm("--json", "run", "ship.kotoba", "--clock", "virtual", "--input",
                        '{"item": "box"}', *failing)
    old_failed = result.expect(cli.EXIT_RUN_FAILED).json()["run_id"]
    sandbox.write("approval.kotoba", APPROVAL)
    approval = [sandbox.activity("prepare", result="{'ready': True}")]
    result = sandbox.vm("--json", "run", "approval.kotoba", "--clock", "virtual", *approval)
    running = result.expect(EXIT_COMPLETED).json()["run_id"]
    sandbox.write("once.kotoba", SHIP.replace('id: "ship"', 'id: "once"'))
    result = sandbox.vm("--json", "run", "once.kotoba", "--clock", "virtual", "--input",
                        '{"item": "box"}', *ship_bindings(sandbox))
    old_once = result.expect(EXIT_COMPLETED).json()["run_id"]
    recent = run_ship(sandbox)
    once_module = cli.show(sandbox, old_once)["module_hash"]
    ship_module = cli.show(sandbox, recent)["module_hash"]

    # Forty days ago, for the old ones and for the running run's start.
    forty_days_ms = 40 * 86_400_000
    database = sqlite3.connect(os.path.join(sandbox.dir, "kotoba.db"))
    with database:
        for run_id in (old_completed, old_failed, old_once):
            database.execute("UPDATE runs SET finished_ms = finished_ms - ? WHERE id = ?",
                             (forty_days_ms, run_id))
        database.execute("UPDATE runs SET created_ms = created_ms - ? WHERE id = ?",
                         (forty_days_ms, running))
    database.close()
    old_keys = {run_id: count_rows(sandbox, "SELECT run_key FROM runs WHERE id = ?", run_id)
                for run_id in (old_completed, old_once)}
    old_events = count_rows(sandbox, "SELECT count(*) FROM events WHERE run_key IN (?, ?)",
                            *old_keys.values())
    old_checkpoints = count_rows(
        sandbox, "SELECT count(*) FROM checkpoints WHERE run_id IN (?, ?)", old_completed,
        old_once)

    # Mistakes change nothing and exit 2.
    sandbox.vm("purge", "--status", "running", "--older-than", "P30D").expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"--status running: RUNNING runs have not finished and are never purged; name a final "
        r"status")
    unknown = sandbox.vm("purge", "--status", "done", "--older-than", "P30D").expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"--status done: no such status; use one of COMPLETED, FAILED, CANCELLED, TIMED_OUT, "
        r"TERMINATED, CONTINUED_AS_NEW$")
    check("RUNNING" not in unknown.stderr, unknown.describe())
    sandbox.vm("purge", "--status", "completed", "--older-than", "P1M").expect(
        EXIT_USAGE, stdout_empty=True).expect_stderr(r"--older-than: .*P1M.*use days")
    sandbox.vm("purge", "--status", "completed").expect(EXIT_USAGE, stdout_empty=True)
    check(count_rows(sandbox, "SELECT count(*) FROM runs") == 5, "a refused purge deleted runs")

    # A limit older than every run purges nothing.
    body = sandbox.vm("--json", "purge", "--status", "completed", "--older-than", "P60D").expect(
        EXIT_COMPLETED, stderr_empty=True).json()
    check((body["runs"], body["events"], body["modules"]) == (0, 0, 0), body)

    body = sandbox.vm("--json", "purge", "--status", "COMPLETED", "--older-than", "P30D").expect(
        EXIT_COMPLETED, stderr_empty=True).json()
    check(body["statuses"] == ["COMPLETED"] and body["runs"] == 2 and
          body["events"] == old_events and body["checkpoints"] == old_checkpoints and
          body["modules"] == 1, body)
    for run_id in (old_completed, old_once):
        sandbox.vm("show", run_id).expect(EXIT_USAGE).expect_stderr(r"no run has id")
        check(count_rows(sandbox, "SELECT count(*) FROM events WHERE run_key = ?",
                         old_keys[run_id]) == 0, f"events of {run_id} were left")
    modules = count_rows(sandbox, "SELECT count(*) FROM modules WHERE hash = ?", once_module)
    check(modules == 0, "the module no run refers to was left")
    check(count_rows(sandbox, "SELECT count(*) FROM modules WHERE hash = ?", ship_module) == 1,
          "a module that runs still use was deleted")

    # The failed one goes with its own status; the rest stay, whole.
    check(cli.show(sandbox, old_failed)["status"] == "FAILED", "the failed run went too early")
    result = sandbox.vm("purge", "--status", "failed", "--status", "cancelled",
                        "--older-than", "PT1H")
    result.expect(EXIT_COMPLETED, stderr_empty=True).expect_stdout(
        r"^purged 1 run \(\d+ events, \d+ checkpoints?\) and 0 unused modules that finished "
        r"before \d{4}-")
    listed = sandbox.vm("--json", "list").expect(EXIT_COMPLETED).json()
    check(sorted(run["run_id"] for run in listed) == sorted([running, recent]), listed)
    for run_id in (running, recent):
        sandbox.vm("verify", run_id).expect(EXIT_COMPLETED, stderr_empty=True)
    sandbox.vm("signal", running, "approve", '{"by": "ann"}').expect(EXIT_COMPLETED)
    result = sandbox.vm("resume", running, "--clock", "virtual", *approval)
    check(result.expect(EXIT_COMPLETED).json()["by"] == "ann", result.describe())

    # Without a store there is nothing to purge, and none is created.
    body = sandbox.vm("--db", "none.db", "--json", "purge", "--status", "completed",
                      "--older-than", "P1D").expect(EXIT_COMPLETED).json()
    check(body["runs"] == 0 and not os.path.exists(os.path.join(sandbox.dir, "none.db")), body)


# --- the runner (shared with run_cli_tests.py) -------------------------------------


if __name__ == "__main__":
    sys.exit(cli.run(globals(), "durable_cli_tests.py"))
