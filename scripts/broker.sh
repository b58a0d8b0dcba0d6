#!/usr/bin/env bash
# The local Kafka-API broker (tansu) for the demo and the tests.
#
#   scripts/broker.sh install   build tansu 0.6.0 into ~/.cargo/bin when missing (once, ~10-17 min)
#   scripts/broker.sh start     start it in the background and wait until it answers
#   scripts/broker.sh stop      stop it
#   scripts/broker.sh status    say whether it runs
#
# Environment:
#   BROKER_PORT     port on 127.0.0.1 (default 9092)
#   BROKER_DIR      working directory: pid file, log, sqlite database (default ./data/broker)
#   BROKER_STORAGE  sqlite (default: durable, correct watermarks, ~25k msg/s)
#                   or memory (fast, but loses everything on restart; benchmarks only)
#
# With sqlite storage the store gets the indexes tansu 0.6.0 lacks (io/src/kafka/tansu_store.sql,
# idempotent; docs/broker.md): before the broker starts on an existing store, and as soon as
# it answers on a fresh one (it creates its schema before it listens). Python's sqlite3 module.
# BROKER_STORE_INDEXES=off leaves the store as tansu makes it (scripts/bench-broker.sh
# measures the difference).
#   KAFKA_BROKERS   when set, a real cluster is used: start/stop do nothing
set -euo pipefail

TANSU_VERSION=0.6.0
PORT=${BROKER_PORT:-9092}
DIR=${BROKER_DIR:-./data/broker}
STORAGE=${BROKER_STORAGE:-sqlite}
export PATH="$HOME/.cargo/bin:$PATH"

tansu_ok() {
  command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"
}

install() {
  if tansu_ok; then
    echo "tansu $TANSU_VERSION is installed: $(command -v tansu)"
    return
  fi
  echo "building tansu $TANSU_VERSION (a Kafka-API broker) into ~/.cargo/bin; this takes several minutes once"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STORE_SQL="$HERE/../io/src/kafka/tansu_store.sql"

# Creates the missing indexes in $DIR/tansu.db when it holds the broker's schema.
prepare_store() {
  [ "$STORAGE" = sqlite ] && [ -f "$DIR/tansu.db" ] && [ "${BROKER_STORE_INDEXES:-on}" != off ] \
    || return 0
  python3 - "$DIR/tansu.db" "$STORE_SQL" <<'PY'
import sqlite3, sys
db, script = sys.argv[1], open(sys.argv[2]).read()
c = sqlite3.connect(db, timeout=30)
if c.execute("select count(*) from sqlite_master where type='table' and name='header'").fetchone()[0]:
    before = {r[0] for r in c.execute("select name from sqlite_master where type='index'")}
    c.executescript(script)
    made = sorted({r[0] for r in c.execute("select name from sqlite_master where type='index'")} - before)
    if made:
        print("indexed the broker's store:", ", ".join(made))
PY
}

pid_alive() {
  [ -f "$DIR/tansu.pid" ] && kill -0 "$(cat "$DIR/tansu.pid")" 2>/dev/null
}

answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    echo "KAFKA_BROKERS=$KAFKA_BROKERS: using that cluster, not starting a local broker"
    return
  fi
  if pid_alive; then
    echo "broker already running (pid $(cat "$DIR/tansu.pid")) on 127.0.0.1:$PORT"
    return
  fi
  if answers; then
    echo "something else already listens on 127.0.0.1:$PORT; stop it or set BROKER_PORT" >&2
    exit 1
  fi
  tansu_ok || install
  mkdir -p "$DIR"
  prepare_store
  case "$STORAGE" in
    sqlite) engine="sqlite://tansu.db" ;;
    memory) engine="memory://tansu/" ;;
    *) echo "BROKER_STORAGE must be sqlite or memory, found $STORAGE" >&2; exit 1 ;;
  esac
  (cd "$DIR" || exit 1; nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine "$engine" >tansu.log 2>&1 & echo $! >tansu.pid)
  for _ in $(seq 1 150); do
    if answers; then
      prepare_store
      echo "broker started (pid $(cat "$DIR/tansu.pid"), $STORAGE storage in $DIR) on 127.0.0.1:$PORT"
      return
    fi
    if ! pid_alive; then
      echo "broker exited at start; its log:" >&2
      tail -20 "$DIR/tansu.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "broker did not answer on 127.0.0.1:$PORT within 30 s; log: $DIR/tansu.log" >&2
  exit 1
}

stop() {
  [ -n "${KAFKA_BROKERS:-}" ] && return
  if pid_alive; then
    pid=$(cat "$DIR/tansu.pid")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "broker stopped"
  fi
  rm -f "$DIR/tansu.pid"
}

status() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then echo "using KAFKA_BROKERS=$KAFKA_BROKERS"; return; fi
  if pid_alive; then echo "running (pid $(cat "$DIR/tansu.pid")) on 127.0.0.1:$PORT"; else echo "not running"; exit 1; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
