#!/usr/bin/env python3
"""The document-pipeline sample's activities: text extraction, two OCR engines, the review
queue and the archive.

Kotoba runs this as a process activity: `documents.py ACTION [ENGINE]`, the activity's input
as JSON on stdin, the result as JSON on stdout, a failure as a JSON error object on stderr
with a non-zero exit. The documents are pretend ones: their text comes with the input, and
the OCR engines only differ in speed and in what they can read.

- `extract_text`: a born-digital document's text, read at once (confidence 1.0).
- `ocr quick`: answers after DOCS_QUICK_OCR_S seconds (default 0.2) with confidence 0.93,
  and fails with `HandwritingNotSupported` on handwritten pages.
- `ocr careful`: answers after DOCS_CAREFUL_OCR_S seconds (default 2), reads everything,
  with confidence 0.98 (0.8 on handwriting).
- `request_review`: puts the document on the review queue, review-queue.jsonl.
- `archive`: files the document with its verdict as archive/DOC_ID.json.

Files land in DOCS_DIR, default the current directory. Every OCR call also appends
{engine, doc_id, outcome} to ocr.jsonl there when it ends (a cancelled engine is stopped
before it can write).
"""
import json
import os
import sys
import time

ENGINES = {
    # engine: (delay variable, default delay in seconds, reads handwriting, confidence)
    "quick": ("DOCS_QUICK_OCR_S", 0.2, False, 0.93),
    "careful": ("DOCS_CAREFUL_OCR_S", 2.0, True, 0.98),
}


def path(name):
    return os.path.join(os.environ.get("DOCS_DIR", "."), name)


def fail(error_type, message, retryable=False):
    json.dump({"type": error_type, "message": message, "retryable": retryable}, sys.stderr)
    sys.exit(1)


def append_line(name, entry):
    with open(path(name), "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def extract_text(data):
    return {"engine": "extract", "text": data["content"], "confidence": 1.0}


def ocr(data, engine):
    delay_variable, default_delay, reads_handwriting, confidence = ENGINES[engine]
    time.sleep(float(os.environ.get(delay_variable, default_delay)))
    if data.get("handwritten") and not reads_handwriting:
        append_line("ocr.jsonl", {"engine": engine, "doc_id": data["doc_id"], "outcome": "failed"})
        fail("HandwritingNotSupported", f"the {engine} engine cannot read handwriting")
    if data.get("handwritten"):
        confidence = 0.8
    append_line("ocr.jsonl", {"engine": engine, "doc_id": data["doc_id"], "outcome": "read"})
    return {"engine": engine, "text": data["content"], "confidence": confidence}


def request_review(data):
    append_line("review-queue.jsonl",
                {"doc_id": data["doc_id"], "reason": data["reason"], "text": data["text"]})
    return {"queued": data["doc_id"]}


def archive(data):
    os.makedirs(path("archive"), exist_ok=True)
    name = os.path.join("archive", f"{data['doc_id']}.json")
    with open(path(name), "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    return {"path": name}


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    data = json.load(sys.stdin)
    if action == "ocr" and len(sys.argv) == 3 and sys.argv[2] in ENGINES:
        result = ocr(data, sys.argv[2])
    elif len(sys.argv) == 2 and action in ("extract_text", "request_review", "archive"):
        result = globals()[action](data)
    else:
        fail("UnknownAction",
             "usage: documents.py extract_text|request_review|archive|ocr {quick|careful}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
