#!/usr/bin/env python3
"""Checks the Grafana dashboard in monitoring/grafana/dashboards/.

- It is valid JSON that Grafana can import: a uid, a title, unique panel ids, every panel and
  query on the `${datasource}` variable (so it works with the provisioned Prometheus or any other
  one picked at import).
- With --prometheus URL: every query parses in that Prometheus (Grafana's variables replaced by
  plain values), asked through its HTTP API.
- With --rabbitmq-metrics FILE: every rabbitmq_* metric the dashboard and the alerts use is one
  that RabbitMQ's rabbitmq_prometheus exports (FILE is a scrape of /metrics/per-object).

Usage: scripts/check_dashboard.py [--prometheus URL] [--rabbitmq-metrics FILE]
Exits non-zero with one line per problem.
"""

import argparse
import json
import pathlib
import re
import sys
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
ALERTS = ROOT / "monitoring" / "alerts.yml"
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$program": ".*",
}


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def queries(dash):
    """(where, expr) for every query of the dashboard."""
    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            yield f"panel {p.get('id')} {p.get('title')!r} query {t.get('refId')}", t.get("expr", "")
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict) and "query" in q:
            yield f"variable {v['name']}", q["query"]


def check_structure(path, dash, problems):
    for key in ("uid", "title", "panels", "schemaVersion"):
        if not dash.get(key):
            problems.append(f"{path}: no {key}")
    names = [v.get("name") for v in dash.get("templating", {}).get("list", [])]
    if "datasource" not in names:
        problems.append(f"{path}: no `datasource` template variable")
    ids = [p.get("id") for p in panels(dash.get("panels", []))]
    if len(ids) != len(set(ids)):
        problems.append(f"{path}: panel ids are not unique")
    for p in panels(dash.get("panels", [])):
        if p.get("type") == "row":
            continue
        where = f"{path}: panel {p.get('id')} {p.get('title')!r}"
        for obj in [p] + p.get("targets", []):
            ds = obj.get("datasource")
            if ds != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"{where}: datasource {ds!r} is not the ${{datasource}} variable")
        if not p.get("targets"):
            problems.append(f"{where}: no query")
        if not p.get("description"):
            problems.append(f"{where}: no description (say what the operator sees)")
        for t in p.get("targets", []):
            if not t.get("expr", "").strip():
                problems.append(f"{where}: empty query {t.get('refId')}")


def substitute(expr):
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


def check_parses(prometheus, dash, path, problems):
    for where, expr in queries(dash):
        expr = substitute(expr)
        if expr.startswith("label_values("):
            continue  # Grafana's own function, not PromQL
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            problems.append(f"{path}: {where}: {body.get('error')}: {expr}")


def check_rabbitmq_names(scrape_file, texts, problems):
    exported = set(re.findall(r"^# TYPE (rabbitmq_\w+) ", pathlib.Path(scrape_file).read_text(), re.M))
    if not exported:
        problems.append(f"{scrape_file}: no rabbitmq_* metrics in it")
        return
    for name, text in texts:
        for metric in sorted(set(re.findall(r"\brabbitmq_[a-z0-9_]+", text))):
            if metric != "rabbitmq_prometheus" and metric not in exported:  # the plugin's name
                problems.append(f"{name}: {metric} is not a metric rabbitmq_prometheus exports")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", help="base URL of a Prometheus to parse the queries")
    ap.add_argument("--rabbitmq-metrics", help="a scrape of RabbitMQ's /metrics/per-object")
    args = ap.parse_args()
    problems = []
    files = sorted(DASHBOARDS.glob("*.json"))
    if not files:
        problems.append(f"{DASHBOARDS}: no dashboard")
    texts = [(str(ALERTS.relative_to(ROOT)), ALERTS.read_text())]
    for f in files:
        rel = str(f.relative_to(ROOT))
        try:
            dash = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            problems.append(f"{rel}: not JSON: {e}")
            continue
        texts.append((rel, json.dumps(dash)))
        check_structure(rel, dash, problems)
        if args.prometheus:
            check_parses(args.prometheus.rstrip("/"), dash, rel, problems)
    if args.rabbitmq_metrics:
        check_rabbitmq_names(args.rabbitmq_metrics, texts, problems)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    n = sum(1 for f in files for _ in queries(json.loads(f.read_text())))
    how = f", each parsed by {args.prometheus}" if args.prometheus else ""
    print(f"dashboards: {len(files)} file(s), {n} queries checked{how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
