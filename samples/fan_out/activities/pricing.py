#!/usr/bin/env python3
"""The fan-out sample's activity: looks up the price of one cart line in a small catalog.

Kotoba runs this as a process activity: `pricing.py lookup_price`, the line {sku, qty} as
JSON on stdin, {sku, qty, unit_price, amount} as JSON on stdout, and a failure as a JSON
error object on stderr with a non-zero exit: `UnknownProduct` for a sku the catalog does not
have, `InvalidQuantity` for a quantity that is not a positive integer. Each lookup takes
PRICING_DELAY_S seconds (default 0.3), standing in for a slow price service, so that the
workflow's concurrency limit can be seen at work: every call appends {sku, pid, start, end}
(wall-clock seconds) to the call log, PRICING_LOG or lookups.jsonl in the current directory.
"""
import json
import os
import sys
import time

CATALOG = {"tea": 4.5, "mug": 9.0, "kettle": 35.0, "filter": 1.25, "spoon": 2.0,
           "teapot": 28.0, "tray": 12.5}


def fail(error_type, message, retryable=False):
    json.dump({"type": error_type, "message": message, "retryable": retryable}, sys.stderr)
    sys.exit(1)


def record_call(sku, start):
    entry = {"sku": sku, "pid": os.getpid(), "start": start, "end": time.time()}
    with open(os.environ.get("PRICING_LOG", "lookups.jsonl"), "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def lookup_price(data):
    start = time.time()
    time.sleep(float(os.environ.get("PRICING_DELAY_S", "0.3")))
    sku, qty = data.get("sku"), data.get("qty")
    record_call(sku, start)
    if sku not in CATALOG:
        fail("UnknownProduct", f"no product '{sku}' in the catalog")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
        fail("InvalidQuantity", f"quantity {json.dumps(qty)} of '{sku}' is not a positive integer")
    return {"sku": sku, "qty": qty, "unit_price": CATALOG[sku],
            "amount": round(CATALOG[sku] * qty, 2)}


def main():
    if sys.argv[1:] != ["lookup_price"]:
        fail("UnknownAction", "usage: pricing.py lookup_price")
    json.dump(lookup_price(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
