#!/usr/bin/env bash
# Starts PostgreSQL and RabbitMQ on this machine if they are not running, and waits until both
# answer. Installs them from Debian's packages if they are missing. Safe to run any number of times.
set -euo pipefail

need_install=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_install+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || need_install+=(rabbitmq-server)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "services: installing ${need_install[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
fi

rmq_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rmq_up; then
  echo "services: starting RabbitMQ" >&2
  # RabbitMQ 3.10 takes a file handle per AMQP connection from a budget derived from the open
  # files limit; with the default soft limit of 1024, test runs side by side exhaust it and
  # every new connection then waits forever (TCP accepted, AMQP never answered). Start it with
  # the hard limit instead. Debian's wrapper switches user with `su`, whose PAM session resets
  # the soft limit to 1024 again, so switch user with setpriv (no PAM) when running as root.
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
     setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
       sh -c 'cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached') || true
  else
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; rabbitmq-server -detached) || true
  fi
fi

# Banks' RabbitMQ users (`salur bank add`, bank-sim, the demo, the tests) are made through
# RabbitMQ's management HTTP API on port 15672. Debian's rabbitmq-server ships the plugin; it is
# enabled once (kept in /etc/rabbitmq/enabled_plugins, so it survives restarts).
mgmt_up() { (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null; }

for _ in $(seq 1 120); do
  if pg_up && rmq_up; then
    # RabbitMQ accepts TCP a moment before it accepts AMQP sessions; give it that moment.
    rabbitmqctl await_startup >/dev/null 2>&1 || sleep 2
    # Answering TCP is not answering AMQP: a broker out of file handles accepts and stays silent.
    if ! timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672; printf "AMQP\0\0\11\1" >&3; head -c 1 <&3 | grep -q .' 2>/dev/null; then
      echo "services: RabbitMQ on 5672 accepts connections but does not answer AMQP; see" \
        "\`rabbitmq-diagnostics status\` (file descriptors) and \`rabbitmq-diagnostics maybe_stuck\`" >&2
      exit 1
    fi
    if ! mgmt_up; then
      echo "services: enabling RabbitMQ's management plugin (bank users are made through it)" >&2
      rabbitmq-plugins enable rabbitmq_management >/dev/null
      for _ in $(seq 1 30); do mgmt_up && break; sleep 1; done
      mgmt_up || { echo "services: RabbitMQ's management API did not come up on 127.0.0.1:15672" >&2; exit 1; }
    fi
    exit 0
  fi
  sleep 1
done
pg_up || echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2
rmq_up || echo "services: RabbitMQ did not come up on 127.0.0.1:5672" >&2
exit 1
