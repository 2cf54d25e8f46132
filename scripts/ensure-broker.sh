#!/usr/bin/env bash
# Find RabbitMQ at $AMQP_URI (default localhost:5672); start a local one if it is
# installed but not running; otherwise name the command that installs it.
set -euo pipefail
uri="${AMQP_URI:-amqp://guest:guest@localhost:5672/}"
hostport="${uri#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5672

reachable() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if reachable; then exit 0; fi
if [ "$host" != "localhost" ] && [ "$host" != "127.0.0.1" ]; then
  echo "RabbitMQ is not reachable at $host:$port (AMQP_URI=$uri)." >&2; exit 1
fi
if ! command -v rabbitmq-server >/dev/null; then
  echo "RabbitMQ is not installed. Install it with:  sudo apt-get install -y rabbitmq-server" >&2
  exit 1
fi
echo "Starting the local RabbitMQ…"
rabbitmq-server -detached >/dev/null 2>&1 || sudo -n rabbitmq-server -detached
for _ in $(seq 1 60); do reachable && exit 0; sleep 1; done
echo "RabbitMQ did not come up on $host:$port within 60 s." >&2
exit 1
