"""bank-sim's MT940 statements checked with an independent parser (PyPI mt-940).

Called by scripts/mt940_crosscheck.sh after a demo batch was paid: for every bank and day in
bank-sim's ledger, writes the statement with `salur bank-sim statement` (MT940 and CSV, returns
at 5%), parses the MT940 with mt-940 and checks it against the CSV export (read here with the
csv module), against the ledger (psql), and against `salur reconcile`.

Usage: mt940_crosscheck.py SALUR_BINARY OUT_DIR
"""

import csv
import decimal
import json
import os
import subprocess
import sys

import mt940

BIN, OUT = sys.argv[1], sys.argv[2]
D = decimal.Decimal
failures = []
failed = set()


def check(ok, what):
    if not ok:
        failures.append(what)
        failed.add(what.split(":")[0])
        print("FAIL", what)


def psql(sql):
    """A query on bank-sim's ledger (its own database, SALUR_BANK_LEDGER_URL)."""
    out = subprocess.run(
        ["psql", os.environ["SALUR_BANK_LEDGER_URL"], "-Atc", sql],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line.split("|") for line in out.splitlines() if line]


def salur(*args):
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True).stdout


days = psql(
    "SELECT DISTINCT bank_code, (settled_at AT TIME ZONE 'Asia/Jakarta')::date "
    "FROM bank_sim.transfers WHERE status = 'ok' ORDER BY 1, 2"
)
check(len(days) > 0, "the demo paid something")
statements = lines_seen = 0
for bank, day in days:
    sta = os.path.join(OUT, f"{bank}-{day}.sta")
    exp = os.path.join(OUT, f"{bank}-{day}.csv")
    salur("bank-sim", "statement", "--bank", bank, "--date", day,
          "--return-rate", "0.05", "--seed", "11", "-o", sta)
    salur("bank-sim", "statement", "--bank", bank, "--date", day, "--format", "csv", "-o", exp)
    name = f"{bank} {day}"

    t = mt940.parse(sta)
    opening = t.data["final_opening_balance"].amount.amount
    closing = t.data["final_closing_balance"].amount.amount
    debits = [x for x in t if x.data["status"] == "D"]
    credits = [x for x in t if x.data["status"] == "C"]
    debit_sum = -sum((x.data["amount"].amount for x in debits), D(0))
    credit_sum = sum((x.data["amount"].amount for x in credits), D(0))
    check(t.data["transaction_reference"].startswith("SALUR" + bank), f"{name}: :20:")
    check(all(x.data["currency"] == "IDR" for x in t), f"{name}: IDR")
    check(opening - debit_sum + credit_sum == closing, f"{name}: opening + lines = closing")
    check(len(debits) + len(credits) == len(t), f"{name}: only D and C lines")
    check(all(x.data["id"] == "NTRF" for x in debits), f"{name}: debits are NTRF")
    check(all(x.data["id"] == "NRTI" for x in credits), f"{name}: credits are NRTI")
    keys = []
    for x in t:
        details = x.data["transaction_details"] or ""
        eref = [p[len("/EREF/"):] for p in details.splitlines() if p.startswith("/EREF/")]
        check(len(eref) == 1, f"{name}: each line has one /EREF/")
        keys.append(eref[0] if eref else "")
        check(x.data["customer_reference"] == eref[0].replace("-", "")[:16] if eref else False,
              f"{name}: :61: reference is the start of /EREF/")
    check(all("/RTRN/" in (x.data["transaction_details"] or "") for x in credits),
          f"{name}: every credit says why (/RTRN/)")

    # The CSV export, read with the csv module: the same lines and balances.
    with open(exp, newline="") as f:
        rows = list(csv.DictReader(f))
    by_type = lambda k: [r for r in rows if r["type"] == k]
    check(D(by_type("opening")[0]["amount"]) == opening, f"{name}: CSV opening")
    check(D(by_type("closing")[0]["amount"]) == closing, f"{name}: CSV closing")
    check(len(by_type("debit")) == len(debits), f"{name}: CSV debit count")
    check(len(by_type("credit")) == len(credits), f"{name}: CSV credit count")
    check(sum(D(r["amount"]) for r in by_type("debit")) == debit_sum, f"{name}: CSV debit sum")
    check(sum(D(r["amount"]) for r in by_type("credit")) == credit_sum, f"{name}: CSV credit sum")
    check([r["end_to_end_id"] for r in rows if r["type"] in ("debit", "credit")] == keys,
          f"{name}: CSV references in the same order")

    # bank-sim's ledger: what it paid that day and what came back.
    [[n, s]] = psql(
        f"SELECT count(*), COALESCE(sum(amount), 0) FROM bank_sim.transfers WHERE bank_code = '{bank}' "
        f"AND status = 'ok' AND (settled_at AT TIME ZONE 'Asia/Jakarta')::date = '{day}'"
    )
    check((int(n), D(s)) == (len(debits), debit_sum), f"{name}: ledger debits {n} {s}")
    [[n, s]] = psql(
        f"SELECT count(*), COALESCE(sum(amount), 0) FROM bank_sim.returns "
        f"WHERE bank_code = '{bank}' AND returned_on = '{day}'"
    )
    check((int(n), D(s)) == (len(credits), credit_sum), f"{name}: ledger returns {n} {s}")

    # salur reconciles it: every debit matched, every credit a return, no exception.
    report = json.loads(salur("reconcile", sta, "--bank", bank, "--json"))
    check(report["matched"] == len(debits), f"{name}: salur matched {report['matched']}")
    check(report["returned"] == len(credits), f"{name}: salur returned {report['returned']}")
    check(report["exception_count"] == 0, f"{name}: salur exceptions {report['exceptions_by_kind']}")
    statements += 1
    lines_seen += len(t)
    print(f"{name}: {len(debits)} debits Rp{debit_sum}, {len(credits)} returns Rp{credit_sum}: "
          f"mt-940, CSV, ledger and salur agree")

print(f"{statements} statements, {lines_seen} lines checked")
print(f"mt940: {statements - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failures else 0)
