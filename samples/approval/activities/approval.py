#!/usr/bin/env python3
"""The approval sample's activities: every one sends a message by appending it to an outbox.

Kotoba runs this as a process activity: `approval.py ACTION`, the activity's input as JSON
on stdin, the result as JSON on stdout, a failure as a JSON error object on stderr with a
non-zero exit. The outbox (APPROVAL_OUTBOX, default outbox.jsonl in the current directory)
stands in for a mail server: one JSON message a line, {key, to, subject, body}. The key is
the attempt's idempotency key without its attempt number, so a retried attempt of the same
step does not send its message twice.
"""
import json
import os
import sys


def outbox_path():
    return os.environ.get("APPROVAL_OUTBOX", "outbox.jsonl")


def fail(error_type, message, retryable=False):
    json.dump({"type": error_type, "message": message, "retryable": retryable}, sys.stderr)
    sys.exit(1)


def send(to, subject, body):
    # KOTOBA_IDEMPOTENCY_KEY is run/step/cN/attempt; every attempt of one call shares the rest.
    key = os.environ.get("KOTOBA_IDEMPOTENCY_KEY", "").rsplit("/", 1)[0]
    path = outbox_path()
    if key and os.path.exists(path):
        with open(path, encoding="utf-8") as outbox:
            for line in outbox:
                if line.strip() and json.loads(line)["key"] == key:
                    return {"sent_to": to, "duplicate": True}
    with open(path, "a", encoding="utf-8") as outbox:
        outbox.write(json.dumps({"key": key, "to": to, "subject": subject, "body": body}) + "\n")
    return {"sent_to": to, "duplicate": False}


def request_approval(data):
    return send(data["to"], f"Approve {data['request_id']}: {data['title']}",
                f"{data['requester']} asks for {data['amount']}. Answer with the approval "
                f"signal: {{\"decision\": \"approve\" | \"reject\", \"by\": \"{data['to']}\"}}")


def send_reminder(data):
    return send(data["to"], f"Reminder {data['reminder']}: {data['request_id']} still waits",
                f"{data['title']} still waits for your approval")


def escalate(data):
    return send(data["to"], f"Escalated: {data['request_id']}",
                f"{data['approver']} has not answered about {data['title']} "
                f"({data['amount']}); please decide")


def notify_requester(data):
    if data["outcome"] == "expired":
        body = f"no one answered about {data['title']} in time; the request expired"
    else:
        who = f" by {data['by']}" if data.get("by") else ""
        comment = f": {data['comment']}" if data.get("comment") else ""
        body = f"{data['title']} was {data['outcome']}{who}{comment}"
    return send(data["to"], f"{data['request_id']} {data['outcome']}", body)


ACTIONS = {
    "request_approval": request_approval,
    "send_reminder": send_reminder,
    "escalate": escalate,
    "notify_requester": notify_requester,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ACTIONS:
        fail("UnknownAction", f"usage: approval.py {{{'|'.join(sorted(ACTIONS))}}}")
    json.dump(ACTIONS[sys.argv[1]](json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
