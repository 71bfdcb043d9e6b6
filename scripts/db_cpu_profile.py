#!/usr/bin/env python3
"""Where PostgreSQL's CPU goes, per statement and record, from a server log written with
`log_statement_stats = on` (scripts/db_cpu_profile.sh sets it for one `salur bench` run).

With that setting every backend logs, after each message it handles (a simple query, or an
extended-protocol parse, bind or execute), the CPU time (user + system, from getrusage) and the
wall time that message took, followed by the statement's text. This sums them per database and
statement and divides by the number of records, so that the column adds up to the CPU the
backends spent in statements (unlike pg_stat_statements' times, which are wall times: a statement
waiting for a core, a lock or a WAL flush counts there too). Bind includes planning (a custom
plan is made at bind time). What a backend spends between messages (reading the socket, Sync)
is not in any row.

With --by-kind, statements are summed by what they do in salur ([KINDS], matched on the
statement's text) instead of listed one by one.

Usage: db_cpu_profile.py LOG RECORDS [--database NAME] [--top N] [--by-kind]
"""

import argparse
import collections
import re
import sys

ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (?:(\S*)@(\S*) )?"
    r"(LOG|DETAIL|STATEMENT|[A-Z]+):  (.*)$"
)
STATS = re.compile(r"^(?:(PARSE|BIND|EXECUTE) MESSAGE|QUERY) STATISTICS$")
# What a statement does, by its text: the first that matches.
KINDS = [
    ("a step's update (record, audit row, counters)", r"^WITH u AS \( SELECT u\.\*"),
    ("the stages' reads of their records", r"^SELECT r\.id, r\.batch_id, r\.row_number, r\.state,"),
    ("verification's NIK claims", r"recipient_claims"),
    ("bank-sim's ledger", r"bank_sim\."),
    ("intake (COPY, ids, batch)", r"^COPY |pg_get_serial_sequence\('records'|intake_pending|"
                                  r"^INSERT INTO batches"),
    ("bank requests (insert, look-ups)", r"bank_requests|^SELECT id, bank_code FROM"),
    ("outbox and relay", r"outbox"),
    ("programmes and approval checks", r"programmes"),
    ("BEGIN / COMMIT", r"^(BEGIN|COMMIT|ROLLBACK)$"),
    ("the bench's polling of the batch, its measurement and checks",
     r"FILTER \(WHERE state = 'disbursed'\)|percentile_cont|min\(e\.at\)|"
     r"count\(DISTINCT record_id\)"),
    ("the gauges (worker's metrics)", r"b\.program, [rt]\.state|FROM stopped_records p JOIN"
                                      r"|WHERE state IN \('blocked', 'dead'\) GROUP"),
]
USAGE = re.compile(r"([\d.]+) s user, ([\d.]+) s system, ([\d.]+) s elapsed")


def parse(lines):
    """Yields (database, message kind, cpu seconds, elapsed seconds, the statement's lines)."""
    open_entry = {}  # pid -> the entry its last STATISTICS line started
    target = None  # (field, entry) that continuation lines (tab-indented) belong to
    done = []
    for line in lines:
        m = ENTRY.match(line)
        if m:
            pid, _user, db, level, rest = m.groups()
            target = None
            if level == "LOG":
                s = STATS.match(rest)
                if s:
                    e = {"db": db or "", "kind": s.group(1) or "QUERY", "cpu": None,
                         "elapsed": None, "sql": []}
                    open_entry[pid] = e
                    done.append(e)
                    target = ("detail", e)
            elif level == "DETAIL" and pid in open_entry:
                target = ("detail", open_entry[pid])
            elif level == "STATEMENT" and pid in open_entry and not open_entry[pid]["sql"]:
                target = ("sql", open_entry.pop(pid))
                target[1]["sql"].append(rest)
            continue
        if target is None:
            continue
        field, e = target
        if field == "detail":
            u = USAGE.search(line)
            if u and e["cpu"] is None:
                e["cpu"] = float(u.group(1)) + float(u.group(2))
                e["elapsed"] = float(u.group(3))
        else:
            e["sql"].append(line.rstrip("\n"))
    for e in done:
        if e["cpu"] is not None:
            yield e["db"], e["kind"], e["cpu"], e["elapsed"], e["sql"]


def kind_of(text):
    for name, pattern in KINDS:
        if re.search(pattern, text):
            return name
    return "everything else"


def label(sql_lines, limit=150):
    """A statement's text without comments, on one line, cut to a readable length. A record
    read's personal columns that are not read (`NULL::bytea AS name`) are left out, so that the
    variants of the stages' read differ within the length shown."""
    text = " ".join(re.sub(r"--.*$", "", line).strip() for line in sql_lines)
    text = re.sub(r"NULL::bytea AS \w+, ", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    ap.add_argument("records", type=int)
    ap.add_argument("--database", help="only this database (default: every one)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--by-kind", action="store_true", help="sum statements by what they do")
    args = ap.parse_args()
    per_db = collections.defaultdict(lambda: collections.defaultdict(
        lambda: {"parse": 0.0, "bind": 0.0, "execute": 0.0, "elapsed": 0.0, "calls": 0}))
    try:
        f = open(args.log, errors="replace")
    except OSError as e:
        sys.exit(f"{args.log}: {e.strerror}")
    with f:
        for db, kind, cpu, elapsed, sql_lines in parse(f):
            if args.database and db != args.database:
                continue
            sql = kind_of(label(sql_lines, None)) if args.by_kind else label(sql_lines)
            s = per_db[db][sql]
            s[{"PARSE": "parse", "BIND": "bind"}.get(kind, "execute")] += cpu
            s["elapsed"] += elapsed
            if kind in ("EXECUTE", "QUERY"):
                s["calls"] += 1
    if not per_db:
        sys.exit(f"{args.log}: no statement statistics (was log_statement_stats on?)")
    us = 1e6 / args.records
    for db, stmts in sorted(per_db.items(), key=lambda kv: kv[0]):
        cpu = {k: v["parse"] + v["bind"] + v["execute"] for k, v in stmts.items()}
        total = sum(cpu.values())
        if total * us < 1:
            continue
        print(f"database {db or '(none)'}: {total * us:.1f} µs of CPU per record in statements "
              f"({sum(v['calls'] for v in stmts.values())} statements, {args.records} records)")
        print(f"{'µs/record':>10} {'bind':>6} {'wall':>8} {'calls':>7}  statement")
        shown = 0.0
        for sql, c in sorted(cpu.items(), key=lambda kv: -kv[1])[:args.top]:
            s = stmts[sql]
            shown += c
            print(f"{c * us:10.1f} {s['bind'] * us:6.1f} {s['elapsed'] * us:8.1f} "
                  f"{s['calls']:7d}  {sql}")
        if len(cpu) > args.top:
            print(f"{max(total - shown, 0.0) * us:10.1f} {'':6} {'':8} {'':7}  "
                  f"(the other {len(cpu) - args.top} statements)")
        print()


if __name__ == "__main__":
    main()
