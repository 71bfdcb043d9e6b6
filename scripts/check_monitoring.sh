#!/usr/bin/env bash
# Checks monitoring/ with Prometheus's own tools: the Prometheus configuration
# (promtool check config), the alert rules (promtool check rules) and their unit tests
# (promtool test rules), and the Grafana dashboard (valid, importable, every query parsed by a
# throwaway Prometheus, every RabbitMQ metric one that rabbitmq_prometheus exports when the local
# broker serves them). Installs promtool from Debian's `prometheus` package if it is missing.
# Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "check_monitoring: installing promtool (Debian's prometheus package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

promtool check config monitoring/prometheus.yml
promtool check rules monitoring/alerts.yml
promtool test rules monitoring/alerts_test.yml
python3 scripts/check_dashboard.py

# Parse every dashboard query in a Prometheus of our own (no targets, temporary storage, a free
# port), never in one that may be running on this machine.
if command -v prometheus >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cp monitoring/alerts.yml "$tmp/"
  printf 'global: {evaluation_interval: 1m}\nrule_files: [alerts.yml]\n' >"$tmp/prometheus.yml"
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=error >"$tmp/log" 2>&1 &
  prom_pid=$!
  trap 'kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
    echo "check_monitoring: the throwaway Prometheus did not start:" >&2
    cat "$tmp/log" >&2
    exit 1
  fi
  python3 scripts/check_dashboard.py --prometheus "http://127.0.0.1:$port"
else
  echo "check_monitoring: no prometheus binary; dashboard queries not parsed" >&2
fi

# RabbitMQ's metric names, checked against the local broker's rabbitmq_prometheus when it is on.
if scrape=$(curl -sf --max-time 10 http://127.0.0.1:15692/metrics/per-object); then
  tmpm=$(mktemp)
  printf '%s\n' "$scrape" >"$tmpm"
  python3 scripts/check_dashboard.py --rabbitmq-metrics "$tmpm" || { rm -f "$tmpm"; exit 1; }
  rm -f "$tmpm"
  echo "rabbitmq: metric names match the local broker's rabbitmq_prometheus"
else
  echo "check_monitoring: RabbitMQ's Prometheus endpoint (127.0.0.1:15692) is off; RabbitMQ" \
    "metric names not checked (enable with: rabbitmq-plugins enable rabbitmq_prometheus)" >&2
fi
echo "monitoring: all checks passed"
