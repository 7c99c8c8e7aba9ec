#!/usr/bin/env python3
"""End-to-end tests of the samples: each copies a sample folder (the workflow, its real
activities, its inputs) into a temporary directory and runs it with the real kotoba-vm, the
way the sample's README does, then checks the outputs, the history and what the activities
did. The order-processing tests kill kotoba-vm in the middle of a run and finish the run
with `resume` or `worker`.

    sample_tests.py --bin-dir BUILD --source-dir SOURCE [-k PATTERN] [--keep]

The sandbox and the runner are those of tests/cli/run_cli_tests.py. Registered with CTest
as sample/approval, sample/fan_out, sample/document_pipeline and
sample/order_processing_resume (each runs the tests whose name has that word).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))

import run_cli_tests as cli  # noqa: E402  (the shared sandbox, checks and runner)
from run_cli_tests import EXIT_COMPLETED, EXIT_RUN_FAILED, check  # noqa: E402


def copy_sample(sandbox, name):
    """Copies samples/NAME into the sandbox as `sample/`; returns the workflow's path."""
    shutil.copytree(os.path.join(sandbox.config.source_dir, "samples", name),
                    os.path.join(sandbox.dir, "sample"))
    return f"sample/{name}.kotoba"


def check_compiles_cleanly(sandbox, file):
    """A sample is read as an example: kotobac must have nothing to say about it."""
    completed = subprocess.run([sandbox.config.kotobac, "check", file], cwd=sandbox.dir,
                               capture_output=True, text=True, timeout=cli.COMMAND_TIMEOUT_S)
    check(completed.returncode == 0 and completed.stdout == "" and completed.stderr == "",
          f"kotobac check {file}: exit {completed.returncode}\n{completed.stdout}"
          f"{completed.stderr}")


def read_lines(sandbox, name):
    """The JSON lines an activity appended to NAME in the sandbox ([] if it wrote none)."""
    path = os.path.join(sandbox.dir, name)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def outputs_of(sandbox, run_id):
    details = cli.show(sandbox, run_id)
    check(details["status"] == "COMPLETED", details)
    return details["outputs"]


# --- approval --------------------------------------------------------------------------


def outbox_subjects(sandbox):
    return [(message["to"], message["subject"]) for message in
            read_lines(sandbox, "outbox.jsonl")]


def test_approval_approved_by_a_signal_sent_to_a_detached_run(sandbox):
    file = copy_sample(sandbox, "approval")
    check_compiles_cleanly(sandbox, file)
    run_id = cli.detach(sandbox, file, "--input", "@sample/inputs/request.json")
    sandbox.vm("signal", run_id, "approval",
               '{"decision": "approve", "by": "lin", "comment": "go ahead"}').expect(
        EXIT_COMPLETED, stdout_empty=True, stderr_empty=True)
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)

    check(outputs_of(sandbox, run_id) == {"outcome": "approved", "decided_by": "lin",
                                          "comment": "go ahead", "reminders_sent": 0,
                                          "escalated": False}, cli.show(sandbox, run_id))
    check(outbox_subjects(sandbox) == [("lin", "Approve PR-17: a standing desk"),
                                       ("ana", "PR-17 approved")], outbox_subjects(sandbox))
    types = cli.event_types(sandbox, run_id)
    check("SignalReceived" in types and "TimerFired" not in types and
          "WaitTimedOut" not in types, types)


def test_approval_rejected_with_a_comment(sandbox):
    file = copy_sample(sandbox, "approval")
    result = sandbox.vm("--json", "run", file, "--input", "@sample/inputs/request.json",
                        "--signal", 'approval={"decision": "reject", "by": "lin", '
                                    '"comment": "too pricey"}')
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json()["outputs"] == {"outcome": "rejected", "decided_by": "lin",
                                       "comment": "too pricey", "reminders_sent": 0,
                                       "escalated": False}, result.describe())
    messages = read_lines(sandbox, "outbox.jsonl")
    check(messages[-1]["to"] == "ana" and
          messages[-1]["body"] == "a standing desk was rejected by lin: too pricey", messages)


def test_approval_an_unknown_decision_fails_the_run_with_the_fix(sandbox):
    file = copy_sample(sandbox, "approval")
    result = sandbox.vm("run", file, "--input", "@sample/inputs/request.json",
                        "--signal", 'approval={"decision": "maybe"}')
    result.expect(EXIT_RUN_FAILED).expect_stderr(
        r'InvalidDecision: the approval signal\'s decision is "maybe"; send')


def test_approval_reminds_twice_then_escalates_then_expires_under_the_virtual_clock(sandbox):
    file = copy_sample(sandbox, "approval")
    run_id = cli.detach(sandbox, file, "--input", "@sample/inputs/request.json")
    started = time.monotonic()
    sandbox.vm("worker", "--until-idle", "--clock", "virtual").expect(EXIT_COMPLETED)
    elapsed = time.monotonic() - started

    check(outputs_of(sandbox, run_id) == {"outcome": "expired", "decided_by": None,
                                          "comment": None, "reminders_sent": 2,
                                          "escalated": True}, cli.show(sandbox, run_id))
    check(outbox_subjects(sandbox) == [
        ("lin", "Approve PR-17: a standing desk"),
        ("lin", "Reminder 1: PR-17 still waits"),
        ("lin", "Reminder 2: PR-17 still waits"),
        ("max", "Escalated: PR-17"),
        ("ana", "PR-17 expired"),
    ], outbox_subjects(sandbox))

    # The recorded (virtual) times, in hours after the start: reminders after 4 h and 8 h,
    # escalation after 12 h, expiry a day later; the real run took seconds. (A minute of
    # slack: the real time between the detach and the worker counts too.)
    events = cli.history(sandbox, run_id)
    start_ms = events[0]["time_ms"]
    scheduled = [(event["payload"]["name"], (event["time_ms"] - start_ms) / 3_600_000)
                 for event in events if event["type"] == "ActivityScheduled"]
    check([name for name, _ in scheduled] == ["request_approval", "send_reminder",
                                              "send_reminder", "escalate", "notify_requester"],
          scheduled)
    check(all(abs(at - expected) < 1 / 60
              for (_, at), expected in zip(scheduled, [0, 4, 8, 12, 36])), scheduled)
    check(elapsed < 30, f"the virtual clock took {elapsed:.1f}s")


# Stands in for `escalate` in the next test: says it has started, waits until the test
# lets it go, then sends the escalation with the sample's own activity.
ESCALATE_GATE = """\
#!{python}
import os, sys, time
open({started!r}, "w").close()
while not os.path.exists({go!r}):
    time.sleep(0.05)
os.execv(sys.executable, [sys.executable, {activity!r}, "escalate"])
"""


def test_approval_the_manager_decides_after_the_escalation(sandbox):
    # The virtual clock stands still while an activity runs, so a signal sent while
    # `escalate` is running arrives after the approver's last wait and before the
    # manager's: the manager's wait takes it.
    file = copy_sample(sandbox, "approval")
    started, go = (os.path.join(sandbox.dir, name) for name in ("escalating", "go"))
    gate = sandbox.write("escalate_gate.py", ESCALATE_GATE.format(
        python=sys.executable, started=started, go=go,
        activity=os.path.join(sandbox.dir, "sample", "activities", "approval.py")))
    os.chmod(os.path.join(sandbox.dir, gate), 0o755)
    run_id = cli.detach(sandbox, file, "--input", "@sample/inputs/request.json")
    worker = subprocess.Popen(
        [sandbox.config.kotoba_vm, "worker", "--until-idle", "--clock", "virtual",
         f"--bind=escalate=process:{os.path.join(sandbox.dir, gate)}"],
        cwd=sandbox.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + cli.COMMAND_TIMEOUT_S
        while not os.path.exists(started):
            check(worker.poll() is None and time.monotonic() < deadline,
                  "the worker ended or took too long before escalating")
            time.sleep(0.05)
        sandbox.vm("signal", run_id, "approval",
                   '{"decision": "approve", "by": "max", "comment": "fine"}').expect(
            EXIT_COMPLETED)
        open(go, "w").close()
        worker.communicate(timeout=cli.COMMAND_TIMEOUT_S)
        check(worker.returncode == EXIT_COMPLETED, f"the worker exited {worker.returncode}")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    check(outputs_of(sandbox, run_id) == {"outcome": "approved", "decided_by": "max",
                                          "comment": "fine", "reminders_sent": 2,
                                          "escalated": True}, cli.show(sandbox, run_id))
    check(outbox_subjects(sandbox)[-2:] == [("max", "Escalated: PR-17"),
                                            ("ana", "PR-17 approved")], outbox_subjects(sandbox))
    waits = [event["step_id"] for event in cli.history(sandbox, run_id)
             if event["type"] in ("WaitStarted", "WaitTimedOut")]
    check(waits == ["approver_answer"] * 6 + ["manager_answer"], waits)

# --- fan_out ---------------------------------------------------------------------------


def most_at_once(intervals):
    """The largest number of (start, end) intervals that overlap at one moment."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                     key=lambda moment: (moment[0], moment[1]))
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


def test_fan_out_prices_the_good_lines_reports_the_bad_and_keeps_the_limit(sandbox):
    file = copy_sample(sandbox, "fan_out")
    check_compiles_cleanly(sandbox, file)
    result = sandbox.vm("--json", "run", file, "--input", "@sample/inputs/cart.json")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    body = result.json()
    outputs = body["outputs"]
    check([line["sku"] for line in outputs["priced"]] ==
          ["tea", "mug", "kettle", "filter", "teapot", "tray"], outputs)
    check(outputs["priced"][0] == {"sku": "tea", "qty": 4, "unit_price": 4.5, "amount": 18.0},
          outputs)
    check(outputs["failed"] == [
        {"sku": "samovar", "error": "UnknownProduct",
         "message": "no product 'samovar' in the catalog"},
        {"sku": "spoon", "error": "InvalidQuantity",
         "message": "quantity 0 of 'spoon' is not a positive integer"},
    ], outputs)
    check(outputs["total"] == 149.0 and outputs["cart_id"] == "cart-42", outputs)

    # Every line was looked up once: the failures are not retryable.
    calls = read_lines(sandbox, "lookups.jsonl")
    check(sorted(call["sku"] for call in calls) ==
          sorted(["tea", "mug", "samovar", "kettle", "filter", "spoon", "teapot", "tray"]), calls)

    # The limit as the engine saw it: no more than three lookups scheduled and unfinished.
    in_flight = peak = 0
    for event in cli.history(sandbox, body["run_id"]):
        if event["type"] == "ActivityScheduled":
            in_flight += 1
        elif event["type"] in ("ActivityCompleted", "ActivityFailed"):
            in_flight -= 1
        peak = max(peak, in_flight)
    check(peak == 3, f"at most {peak} lookups were in flight at once, expected 3")
    # And as the processes lived it: never more than three lookups alive at a time. (How
    # many did overlap depends on how fast the machine starts Python, so only the limit is
    # checked here.)
    overlap = most_at_once([(call["start"], call["end"]) for call in calls])
    check(overlap <= 3, f"{overlap} lookups ran at once: {calls}")


def test_fan_out_a_cart_whose_lines_all_fail_still_completes(sandbox):
    file = copy_sample(sandbox, "fan_out")
    result = sandbox.vm("run", file, "--input", json.dumps(
        {"cart_id": "cart-0", "lines": [{"sku": "samovar", "qty": 1}, {"sku": "tea", "qty": -2}]}))
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    outputs = result.json()
    check(outputs["priced"] == [] and outputs["total"] == 0 and
          [line["error"] for line in outputs["failed"]] == ["UnknownProduct", "InvalidQuantity"],
          outputs)


# --- document_pipeline -----------------------------------------------------------------


def test_document_pipeline_waits_for_the_review_of_its_own_document(sandbox):
    file = copy_sample(sandbox, "document_pipeline")
    check_compiles_cleanly(sandbox, file)
    # A review published before the run started is not for this run.
    sandbox.vm("emit", "document.reviewed", '{"doc_id": "D-7", "approved": false}').expect(
        EXIT_COMPLETED, stdout_empty=True)
    run_id = cli.detach(sandbox, file, "--input", "@sample/inputs/contract.json")
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED).expect_stderr(
        r"1 run\(s\) still running, waiting for a signal or an event")
    details = cli.show(sandbox, run_id)
    check(details["status"] == "RUNNING" and
          [(wait["kind"], wait["name"]) for wait in details["waits"]] ==
          [("event", "document.reviewed")], details)
    check(read_lines(sandbox, "review-queue.jsonl") == [
        {"doc_id": "D-7", "reason": "a contract",
         "text": "Lease of the tea room, 12 months from January"}],
        read_lines(sandbox, "review-queue.jsonl"))

    # The review of another document does not wake it.
    sandbox.vm("emit", "document.reviewed",
               '{"doc_id": "D-8", "approved": false, "reviewer": "kim"}').expect(EXIT_COMPLETED)
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    check(cli.show(sandbox, run_id)["status"] == "RUNNING", cli.show(sandbox, run_id))
    check("EventReceived" not in cli.event_types(sandbox, run_id), "a foreign review woke it")

    sandbox.vm("emit", "document.reviewed",
               '{"doc_id": "D-7", "approved": true, "reviewer": "kim"}').expect(EXIT_COMPLETED)
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    check(outputs_of(sandbox, run_id) == {
        "doc_id": "D-7", "read_by": "quick", "reviewed": True, "verdict": "accepted",
        "reviewer": "kim", "archived_as": "archive/D-7.json"}, cli.show(sandbox, run_id))
    received = [event for event in cli.history(sandbox, run_id)
                if event["type"] == "EventReceived"]
    check(len(received) == 1 and received[0]["payload"]["payload"]["doc_id"] == "D-7", received)
    with open(os.path.join(sandbox.dir, "archive", "D-7.json"), encoding="utf-8") as filed:
        check(json.load(filed)["verdict"] == "accepted", "the archive has another verdict")

    # The two OCR engines raced: the quick one won and the careful one was cancelled.
    events = cli.history(sandbox, run_id)
    cancelled = [event["step_id"] for event in events
                 if event["type"] == "ActivityCancelRequested"]
    check(cancelled == ["ocr_careful"], [(event["type"], event["step_id"]) for event in events])


def test_document_pipeline_takes_a_digital_letter_straight_to_the_archive(sandbox):
    file = copy_sample(sandbox, "document_pipeline")
    result = sandbox.vm("run", file, "--input", "@sample/inputs/letter.json")
    result.expect(EXIT_COMPLETED, stderr_empty=True)
    check(result.json() == {"doc_id": "D-8", "read_by": "extract", "reviewed": False,
                            "verdict": "accepted", "reviewer": None,
                            "archived_as": "archive/D-8.json"}, result.describe())
    check(read_lines(sandbox, "ocr.jsonl") == [] and
          read_lines(sandbox, "review-queue.jsonl") == [], "a digital letter was read or queued")


def test_document_pipeline_reads_handwriting_with_the_engine_that_can(sandbox):
    file = copy_sample(sandbox, "document_pipeline")
    run_id = cli.detach(sandbox, file, "--input", "@sample/inputs/note.json")
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    # The quick engine failed; `any` waited for the careful one, whose reading is uncertain
    # enough (0.8) for the is_uncertain predicate to send the note to review.
    check(read_lines(sandbox, "ocr.jsonl") == [
        {"engine": "quick", "doc_id": "D-9", "outcome": "failed"},
        {"engine": "careful", "doc_id": "D-9", "outcome": "read"}],
        read_lines(sandbox, "ocr.jsonl"))
    check([entry["reason"] for entry in read_lines(sandbox, "review-queue.jsonl")] ==
          ["an uncertain reading"], read_lines(sandbox, "review-queue.jsonl"))
    sandbox.vm("emit", "document.reviewed",
               '{"doc_id": "D-9", "approved": false, "reviewer": "kim"}').expect(EXIT_COMPLETED)
    sandbox.vm("worker", "--until-idle").expect(EXIT_COMPLETED)
    outputs = outputs_of(sandbox, run_id)
    check(outputs["read_by"] == "careful" and outputs["verdict"] == "rejected", outputs)


def test_document_pipeline_without_a_predicate_is_refused_with_the_fix(sandbox):
    # Without its entry in `predicates`, "is_contract" names a host predicate, which only a
    # program embedding the engine can register: kotoba-vm refuses the run and says so.
    file = copy_sample(sandbox, "document_pipeline")
    path = os.path.join(sandbox.dir, file)
    with open(path, encoding="utf-8") as source:
        text = source.read()
    definition = '      is_contract: $.inputs.kind == "contract",\n'
    check(definition in text, "the sample no longer defines is_contract")
    with open(path, "w", encoding="utf-8") as source:
        source.write(text.replace(definition, ""))
    result = sandbox.vm("run", file, "--input", "@sample/inputs/contract.json")
    result.expect(cli.EXIT_USAGE, stdout_empty=True).expect_stderr(
        r"\n  - predicate is_contract\n",
        r"a predicate cannot be bound on the command line: define it in the workflow's "
        r"predicates, or run the module from a program that registers it")
    check("--bind" not in result.stderr, result.describe())
    check(sandbox.vm("list", "--json").expect(EXIT_COMPLETED).json() == [], "a run was created")

# --- order_processing: kill the main job, then finish it --------------------------------

# Stands in for the sample's activities/shop.py in the test's copy: it records every
# execution (action, idempotency key, process id) in executions.jsonl, sleeps first when
# its action is $SAMPLE_SLOW_ACTION (so that the test can kill kotoba-vm while that step
# is in flight), then becomes the real shop.py.
SHOP_WRAPPER = """\
#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open({log!r}, "a") as log:
    log.write(json.dumps({{"action": sys.argv[1], "pid": os.getpid(),
                          "key": os.environ["KOTOBA_IDEMPOTENCY_KEY"]}}) + "\\n")
if sys.argv[1] == os.environ.get("SAMPLE_SLOW_ACTION"):
    time.sleep(float(os.environ["SAMPLE_SLOW_S"]))
os.execv(sys.executable, [sys.executable, os.path.join(here, "shop_real.py")] + sys.argv[1:])
"""

ORDER_RUN = ["--db", "kotoba.db", "run", "sample/order_processing.kotoba",
             "--input", "@sample/inputs/order.json"]


def order_sample_in(sandbox, directory):
    """The order-processing sample as scripts/main-job runs it, in sandbox/DIRECTORY, with
    its shop.py wrapped to count executions; returns the directory's path."""
    work = os.path.join(sandbox.dir, directory)
    shutil.copytree(os.path.join(sandbox.config.source_dir, "samples", "order_processing"),
                    os.path.join(work, "sample"))
    activities = os.path.join(work, "sample", "activities")
    os.rename(os.path.join(activities, "shop.py"), os.path.join(activities, "shop_real.py"))
    with open(os.path.join(activities, "shop.py"), "w") as wrapper:
        wrapper.write(SHOP_WRAPPER.format(python=sys.executable,
                                          log=os.path.join(work, "executions.jsonl")))
    os.chmod(os.path.join(activities, "shop.py"), 0o755)
    return work


def vm_in(sandbox, work, *args):
    completed = subprocess.run([sandbox.config.kotoba_vm, *args], cwd=work, capture_output=True,
                               text=True, timeout=cli.COMMAND_TIMEOUT_S)
    return cli.Result(list(args), completed, 0.0)


def shop_state(work):
    """What the shop database and the receipt say, without the random payment id."""
    db = sqlite3.connect(os.path.join(work, "shop.db"))
    state = {
        "stock": db.execute("SELECT sku, quantity FROM stock ORDER BY sku").fetchall(),
        "payments": db.execute("SELECT order_id, amount, status FROM payments").fetchall(),
        "reservations": db.execute("SELECT * FROM reservations").fetchall(),
        "orders": db.execute("SELECT * FROM orders").fetchall(),
    }
    db.close()
    with open(os.path.join(work, "receipt-A-1001.txt"), encoding="utf-8") as receipt:
        state["receipt"] = receipt.read()
    return state


def uninterrupted_order(sandbox):
    """Outputs and shop state of the sample run from start to end without a crash."""
    work = order_sample_in(sandbox, "uninterrupted")
    result = vm_in(sandbox, work, *ORDER_RUN).expect(EXIT_COMPLETED, stderr_empty=True)
    return result.json(), shop_state(work)


# How long resume or a worker may take to finish a killed run: the rest of the run, well
# under the 30 s lease it would wait out if it could not prove the killed process dead.
TAKEOVER_LIMIT_S = 15


def kill_order_mid_run(sandbox):
    """Starts the sample in sandbox/crashed, SIGKILLs kotoba-vm once the payment has
    completed while the stock reservation is still running, and returns (directory, run
    id, the history at the kill)."""
    work = order_sample_in(sandbox, "crashed")
    environment = dict(os.environ, SAMPLE_SLOW_ACTION="reserve_inventory", SAMPLE_SLOW_S="8")
    engine = subprocess.Popen([sandbox.config.kotoba_vm, *ORDER_RUN], cwd=work, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            check(engine.poll() is None and time.monotonic() < deadline,
                  "the run ended or took too long before the payment completed")
            runs = vm_in(sandbox, work, "--db", "kotoba.db", "list", "--json").json()
            if runs:
                events = vm_in(sandbox, work, "--db", "kotoba.db", "history",
                               runs[0]["run_id"], "--json").json()
                done = {event["step_id"] for event in events
                        if event["type"] == "ActivityCompleted"}
                if "process_payment" in done:
                    break
            time.sleep(0.1)
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=10)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    run_id = runs[0]["run_id"]
    at_kill = vm_in(sandbox, work, "--db", "kotoba.db", "history", run_id, "--json").json()
    check("reserve_inventory" not in {event["step_id"] for event in at_kill
                                      if event["type"] == "ActivityCompleted"},
          "the reservation completed before the kill; the test killed nothing in flight")
    check(at_kill[-1]["type"] not in ("WorkflowCompleted", "WorkflowFailed"), at_kill)
    return work, run_id, at_kill


def check_finished_like_uninterrupted(sandbox, work, run_id, at_kill, expected):
    expected_outputs, expected_shop = expected
    final = vm_in(sandbox, work, "--db", "kotoba.db", "history", run_id, "--json").json()
    check(final[-1]["type"] == "WorkflowCompleted" and
          final[-1]["payload"]["outputs"] == expected_outputs, final[-1])
    # What was recorded before the crash stands: the finished history extends it.
    check([(event["seq"], event["type"], event["hash"]) for event in final[:len(at_kill)]] ==
          [(event["seq"], event["type"], event["hash"]) for event in at_kill],
          "the history before the kill was rewritten")
    check(shop_state(work) == expected_shop,
          f"the shop differs from an uninterrupted run:\n{shop_state(work)}\n{expected_shop}")

    executions = {}
    for execution in read_lines(sandbox, os.path.join(work, "executions.jsonl")):
        executions.setdefault(execution["action"], []).append(execution["key"])
    completed_at_kill = {event["step_id"] for event in at_kill
                         if event["type"] == "ActivityCompleted"}
    check({"validate_order", "process_payment"} <= completed_at_kill, completed_at_kill)
    for action in completed_at_kill:
        check(len(executions[action]) == 1, f"{action} ran again: {executions}")
    # The step in flight at the kill ran again: the crashed attempt's outcome was lost.
    check(len(executions["reserve_inventory"]) == 2, executions)
    check(len(executions["send_confirmation"]) == 1, executions)
    check(set(executions) == {"validate_order", "process_payment", "reserve_inventory",
                              "fraud_check", "send_confirmation"}, executions)


def test_order_processing_resume_finishes_a_killed_run_without_repeating_steps(sandbox):
    expected = uninterrupted_order(sandbox)
    work, run_id, at_kill = kill_order_mid_run(sandbox)
    # The killed process is provably dead (docs/durability.md, Leases): resume takes the run
    # over without waiting for its 30 s lease to expire.
    started = time.monotonic()
    result = vm_in(sandbox, work, "--db", "kotoba.db", "resume", run_id)
    elapsed = time.monotonic() - started
    result.expect(EXIT_COMPLETED)
    check(result.json() == expected[0], result.describe())
    check(elapsed < TAKEOVER_LIMIT_S, f"resume took {elapsed:.1f}s, as if it waited for the lease")
    check_finished_like_uninterrupted(sandbox, work, run_id, at_kill, expected)


def test_order_processing_resume_by_a_worker_finishes_a_killed_run(sandbox):
    expected = uninterrupted_order(sandbox)
    work, run_id, at_kill = kill_order_mid_run(sandbox)
    started = time.monotonic()
    vm_in(sandbox, work, "--db", "kotoba.db", "worker", "--until-idle").expect(
        EXIT_COMPLETED)
    elapsed = time.monotonic() - started
    check(elapsed < TAKEOVER_LIMIT_S,
          f"the worker took {elapsed:.1f}s, as if it waited for the lease")
    check_finished_like_uninterrupted(sandbox, work, run_id, at_kill, expected)


if __name__ == "__main__":
    sys.exit(cli.run(globals(), "sample_tests.py"))
