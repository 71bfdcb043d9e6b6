#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, from Debian's rabbitmq-server, next to (never
# touching) the machine's own broker `rabbit@localhost` on 5672:
#
#   scripts/cluster.sh up       # nodes salur1..3@localhost, AMQP on 5701..5703, one Erlang cookie
#   scripts/cluster.sh status   # nodes running, and where every quorum queue has its replicas
#   scripts/cluster.sh down     # stops the three nodes (only them) and deletes their data
#   scripts/cluster.sh url      # the AMQP_URL that reaches all three nodes
#   scripts/cluster.sh ctl N ARGS...   # rabbitmqctl ARGS on node N (1..3)
#
# Then e.g. `AMQP_URL=$(scripts/cluster.sh url) salur worker`: a process connects to any node
# and, when its node goes away, to another. Quorum queues declared on the cluster get a replica
# on each of the three nodes. SALUR_CLUSTER_DIR (default /tmp/salur-cluster) holds the data,
# logs and configuration; SALUR_CLUSTER_PORT (default 5700) is the base of the ports: AMQP on
# base+N, Erlang distribution on base+20000+N, the management API (banks' users are made
# through it) on base+10000+N.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${SALUR_CLUSTER_DIR:-/tmp/salur-cluster}
BASE=${SALUR_CLUSTER_PORT:-5700}
NODES=(1 2 3)
RMQ=/usr/lib/rabbitmq/bin

node() { echo "salur$1@localhost"; }
amqp_port() { echo $((BASE + $1)); }
dist_port() { echo $((BASE + 20000 + $1)); }
mgmt_port() { echo $((BASE + 10000 + $1)); }

# Runs a RabbitMQ command for node N with that node's environment, as the rabbitmq user (whose
# Erlang cookie all three nodes and rabbitmqctl share).
rmq() {
  local n=$1 cmd=$2
  shift 2
  local d="$DIR/node$n"
  local envs=(
    "RABBITMQ_NODENAME=$(node "$n")"
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
    "RABBITMQ_NODE_PORT=$(amqp_port "$n")"
    "RABBITMQ_DIST_PORT=$(dist_port "$n")"
    "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf"
    "RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins"
    "RABBITMQ_MNESIA_BASE=$d/mnesia"
    "RABBITMQ_LOG_BASE=$d/log"
    "RABBITMQ_PID_FILE=$d/pid"
    "ERL_EPMD_ADDRESS=127.0.0.1"
  )
  # The hard open-files limit (see scripts/services.sh: a node's file-handle budget for AMQP
  # connections derives from it).
  if [ "$(id -un)" = rabbitmq ]; then
    (cd "$DIR" && ulimit -n "$(ulimit -Hn)" 2>/dev/null; env "${envs[@]}" "$RMQ/$cmd" "$@")
  else
    local line
    line=$(printf '%q ' env "${envs[@]}" "$RMQ/$cmd" "$@")
    (cd "$DIR" && su rabbitmq -s /bin/sh -c "ulimit -n \$(ulimit -Hn) 2>/dev/null; $line")
  fi
}

running() { rmq "$1" rabbitmqctl -q -n "$(node "$1")" status >/dev/null 2>&1; }

up() {
  command -v rabbitmq-server >/dev/null || scripts/services.sh
  mkdir -p "$DIR"
  for n in "${NODES[@]}"; do
    local d="$DIR/node$n"
    mkdir -p "$d/mnesia" "$d/log"
    printf 'listeners.tcp.local = 127.0.0.1:%s\nloopback_users.guest = true\nmanagement.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' \
      "$(amqp_port "$n")" "$(mgmt_port "$n")" >"$d/rabbitmq.conf"
    echo '[rabbitmq_management].' >"$d/enabled_plugins"
    : >"$d/rabbitmq-env.conf"
  done
  chown -R rabbitmq:rabbitmq "$DIR"
  for n in "${NODES[@]}"; do
    if running "$n"; then
      echo "$(node "$n") already runs"
    else
      rmq "$n" rabbitmq-server -detached >/dev/null 2>&1
    fi
  done
  # `rabbitmq-server -detached` returns before the node has registered with epmd, and
  # `await_startup` fails at once ("not running at all") until it has: on a loaded machine that
  # takes seconds. Retry until the node answers, for up to 2 minutes.
  for n in "${NODES[@]}"; do
    local deadline=$((SECONDS + 120))
    until rmq "$n" rabbitmqctl -q -n "$(node "$n")" await_startup --timeout 120 >/dev/null 2>&1; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "cluster.sh: $(node "$n") did not start within 2 minutes; its log: $DIR/node$n/log" >&2
        rmq "$n" rabbitmqctl -q -n "$(node "$n")" await_startup --timeout 1 >&2 || true
        return 1
      fi
      sleep 1
    done
  done
  for n in 2 3; do
    if ! rmq "$n" rabbitmqctl -q -n "$(node "$n")" cluster_status --formatter json 2>/dev/null |
      grep -q "\"$(node 1)\""; then
      rmq "$n" rabbitmqctl -q -n "$(node "$n")" stop_app >/dev/null
      rmq "$n" rabbitmqctl -q -n "$(node "$n")" join_cluster "$(node 1)" >/dev/null
      rmq "$n" rabbitmqctl -q -n "$(node "$n")" start_app >/dev/null
    fi
  done
  echo "cluster up: $(url)"
}

down() {
  for n in "${NODES[@]}"; do
    if running "$n"; then
      rmq "$n" rabbitmqctl -q -n "$(node "$n")" stop >/dev/null 2>&1 || true
      echo "stopped $(node "$n")"
    elif [ -s "$DIR/node$n/pid" ] && kill -0 "$(cat "$DIR/node$n/pid")" 2>/dev/null; then
      # Still booting (not yet answering): stop its Erlang VM by its pid.
      kill "$(cat "$DIR/node$n/pid")" 2>/dev/null || true
      echo "stopped $(node "$n") (by its pid: it had not finished starting)"
    fi
  done
  # Only this cluster's directory, and only when it is one (it has our node directories).
  if [ -d "$DIR/node1" ]; then rm -rf "$DIR"; fi
}

status() {
  local any=""
  for n in "${NODES[@]}"; do
    if running "$n"; then
      any="$n"
      echo "$(node "$n"): running, AMQP on 127.0.0.1:$(amqp_port "$n")"
    else
      echo "$(node "$n"): not running"
    fi
  done
  [ -n "$any" ] || return 1
  echo "cluster members (seen from $(node "$any")):"
  rmq "$any" rabbitmqctl -q -n "$(node "$any")" cluster_status --formatter json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("  running:", " ".join(sorted(d["running_nodes"])))'
  echo "quorum queues (vhost, queue, leader, replicas):"
  for vhost in $(rmq "$any" rabbitmqctl -q -n "$(node "$any")" list_vhosts name); do
    rmq "$any" rabbitmqctl -q -n "$(node "$any")" list_queues -p "$vhost" name type leader members --formatter json |
      python3 -c '
import json, sys
vhost = sys.argv[1]
for q in json.load(sys.stdin):
    if q.get("type") == "quorum":
        name, leader, members = q["name"], q["leader"], q["members"]
        print(f"  {vhost} {name} leader={leader} replicas={len(members)}")
' "$vhost"
  done
}

url() {
  local first="amqp://guest:guest@127.0.0.1:$(amqp_port 1)/%2f"
  echo "$first,127.0.0.1:$(amqp_port 2),127.0.0.1:$(amqp_port 3)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  url) url ;;
  ctl)
    n=${2:?node number 1..3}
    shift 2
    rmq "$n" rabbitmqctl -q -n "$(node "$n")" "$@"
    ;;
  *)
    echo "usage: scripts/cluster.sh up|down|status|url|ctl N ARGS..." >&2
    exit 2
    ;;
esac
