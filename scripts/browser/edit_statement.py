"""A bank statement (the CSV export, as `salur bank-sim statement --format csv` writes it) with
two things wrong that reconciliation must find, its balances still adding up: the first debit
that is not returned removed (a `missing` exception), the next one 50.000 more (an
`amount_mismatch`). Prints what it changed as JSON (end-to-end references).

Usage: edit_statement.py IN.csv OUT.csv"""
import csv
import json
import sys
from decimal import Decimal

src, dst = sys.argv[1], sys.argv[2]
with open(src, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
    header = list(rows[0].keys()) if rows else []
returned = {r["end_to_end_id"] for r in rows if r["type"] == "credit"}
debits = [i for i, r in enumerate(rows) if r["type"] == "debit" and r["end_to_end_id"] not in returned]
if len(debits) < 2:
    sys.exit("edit_statement: fewer than two debits that were not returned")
removed, changed = rows[debits[0]], rows[debits[1]]
changed["amount"] = f"{Decimal(changed['amount']) + 50000:.2f}"
rows.pop(debits[0])
# closing = opening - debits + credits: one debit less, one debit 50.000 more.
closing = rows[-1]
assert closing["type"] == "closing", closing
closing["amount"] = f"{Decimal(closing['amount']) + Decimal(removed['amount']) - 50000:.2f}"
with open(dst, "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=header)
    w.writeheader()
    w.writerows(rows)
print(json.dumps({"missing": removed["end_to_end_id"], "amount_mismatch": changed["end_to_end_id"]}))
