#!/usr/bin/env python3
"""The order-processing sample's activities, against a small SQLite shop database.

Kotoba runs this as a process activity: `shop.py ACTION`, the activity's input as JSON on
stdin, the result as JSON on stdout, and a failure as a JSON error object on stderr with a
non-zero exit. The database (SHOP_DB, default shop.db in the current directory) is created
and stocked on first use. Every write is keyed by the order id, so running an action again
for the same order (a retried attempt) changes nothing twice.
"""
import json
import os
import sqlite3
import sys
import uuid

STOCK = {"tea": 20, "mug": 5, "kettle": 2}


def connect():
    db = sqlite3.connect(os.environ.get("SHOP_DB", "shop.db"), timeout=30)
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS payments (order_id TEXT PRIMARY KEY, payment_id TEXT,
            amount REAL, status TEXT);
        CREATE TABLE IF NOT EXISTS reservations (order_id TEXT PRIMARY KEY,
            reservation_id TEXT, items TEXT, status TEXT);
        CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, status TEXT);
        """
    )
    for sku, quantity in STOCK.items():
        db.execute("INSERT OR IGNORE INTO stock VALUES (?, ?)", (sku, quantity))
    db.commit()
    return db


def fail(error_type, message, retryable=False):
    json.dump({"type": error_type, "message": message, "retryable": retryable}, sys.stderr)
    sys.exit(1)


def validate_order(db, data):
    if not data.get("customer_id"):
        fail("INVALID_CUSTOMER", "the order has no customer")
    db.execute("INSERT OR IGNORE INTO orders VALUES (?, 'validated')", (data["order_id"],))
    return {"valid": True}


def process_payment(db, data):
    row = db.execute("SELECT payment_id FROM payments WHERE order_id = ? AND status = 'paid'",
                     (data["order_id"],)).fetchone()
    if row:
        return {"payment_id": row[0]}
    if data["amount"] > 1000:
        fail("PaymentDeclined", f"card declined for {data['amount']}")
    payment_id = "pay_" + uuid.uuid4().hex[:8]
    db.execute("INSERT OR REPLACE INTO payments VALUES (?, ?, ?, 'paid')",
               (data["order_id"], payment_id, data["amount"]))
    return {"payment_id": payment_id}


def reserve_inventory(db, data):
    row = db.execute("SELECT reservation_id FROM reservations WHERE order_id = ? "
                     "AND status = 'held'", (data["order_id"],)).fetchone()
    if row:
        return {"reservation_id": row[0]}
    for item in data.get("items") or []:
        (quantity,) = db.execute("SELECT quantity FROM stock WHERE sku = ?",
                                 (item["sku"],)).fetchone() or (0,)
        if quantity < item["qty"]:
            db.rollback()
            fail("OutOfStock", f"only {quantity} of {item['sku']} left")
        db.execute("UPDATE stock SET quantity = quantity - ? WHERE sku = ?",
                   (item["qty"], item["sku"]))
    reservation_id = "res_" + data["order_id"]
    db.execute("INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, 'held')",
               (data["order_id"], reservation_id, json.dumps(data.get("items") or [])))
    return {"reservation_id": reservation_id}


def fraud_check(db, data):
    return {"score": 0.02 if data["amount"] < 500 else 0.4}


def send_confirmation(db, data):
    db.execute("UPDATE orders SET status = 'confirmed' WHERE order_id = ?", (data["order_id"],))
    with open(f"receipt-{data['order_id']}.txt", "w", encoding="utf-8") as receipt:
        receipt.write(data["message"] + "\n")
    return {"confirmation_id": "conf_" + data["order_id"]}


def cancel_payment(db, data):
    db.execute("UPDATE payments SET status = 'refunded' WHERE payment_id = ?",
               (data["payment_id"],))
    return {"refunded": data["payment_id"]}


def release_inventory(db, data):
    row = db.execute("SELECT order_id, items FROM reservations WHERE reservation_id = ? "
                     "AND status = 'held'", (data["reservation"],)).fetchone()
    if row:
        for item in json.loads(row[1]):
            db.execute("UPDATE stock SET quantity = quantity + ? WHERE sku = ?",
                       (item["qty"], item["sku"]))
        db.execute("UPDATE reservations SET status = 'released' WHERE reservation_id = ?",
                   (data["reservation"],))
    return {"released": data["reservation"]}


def send_failure_notification(db, data):
    db.execute("UPDATE orders SET status = 'failed' WHERE order_id = ?", (data["order_id"],))
    with open(f"failure-{data['order_id']}.txt", "w", encoding="utf-8") as notice:
        notice.write(f"order {data['order_id']} failed: {data['reason']}\n")
    return {"notified": True}


ACTIONS = {name: function for name, function in globals().items()
           if callable(function) and name in (
               "validate_order", "process_payment", "reserve_inventory", "fraud_check",
               "send_confirmation", "cancel_payment", "release_inventory",
               "send_failure_notification")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ACTIONS:
        fail("UnknownAction", f"usage: shop.py {{{'|'.join(sorted(ACTIONS))}}}")
    data = json.load(sys.stdin)
    db = connect()
    result = ACTIONS[sys.argv[1]](db, data)
    db.commit()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
