#!/usr/bin/env bash
# The local broker's store over time: how fast a consumer reads a fresh backlog from a
# tansu sqlite store that already holds a history with record headers, as tansu 0.6.0
# makes the store and as scripts/broker.sh (and `lambda demo`) make it, side by side on
# the same store (docs/broker.md).
#
#   scripts/bench-broker.sh              # the store before and after its indexes
#   scripts/bench-broker.sh retention    # the indexed store with retention on the history
#
# Environment: LAMBDA_BIN (default: a release build in $CARGO_TARGET_DIR or ./target),
# FILL (history records, default 5,000,000), FILL_HEADERS (of which with headers, default
# 25,000), HEADERS (headers each, default 4: 100,000 header rows), BACKLOG (default 300,000),
# MAX_SECONDS (a read's time budget, default 120), ROUNDS (before/after pairs, default 2),
# RETENTION_MS (the history's retention in `retention` mode, default 60,000), BROKER_PORT
# (default 9394), BENCH_DIR (default /var/tmp/lambda-bench/broker, emptied).
# Takes about FILL / 20,000 s to fill, then ROUNDS x (MAX_SECONDS + the fast read), then a
# replay of the history for MAX_SECONDS.
#
# `retention` mode (docs/broker.md, "Another storage?"): the history goes to a topic created
# with `cleanup.policy=delete` and RETENTION_MS, which tansu's maintenance deletes (when the
# broker starts, then every 10 minutes). It reports how long the deletion takes, what a
# producer and a consumer of another topic see while it runs, a fresh backlog's fetch rate
# after it, and the store's size before, after, and after the history is written again.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
BIN=${LAMBDA_BIN:-$target/release/lambda}
FILL=${FILL:-5000000}
FILL_HEADERS=${FILL_HEADERS:-25000}
HEADERS=${HEADERS:-4}
BACKLOG=${BACKLOG:-300000}
MAX_SECONDS=${MAX_SECONDS:-120}
ROUNDS=${ROUNDS:-2}
RETENTION_MS=${RETENTION_MS:-60000}
MODE=${1:-indexes}
export BROKER_PORT=${BROKER_PORT:-9394}
export BROKER_DIR=${BENCH_DIR:-/var/tmp/lambda-bench/broker}
export BROKER_STORAGE=sqlite
unset KAFKA_BROKERS
BROKERS=127.0.0.1:$BROKER_PORT

[ -x "$BIN" ] || { echo "no lambda binary at $BIN: cargo build --release --bin lambda, or set LAMBDA_BIN" >&2; exit 1; }
scripts/broker.sh stop >/dev/null 2>&1 || true
rm -rf "$BROKER_DIR"
mkdir -p "$BROKER_DIR"
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT

store() {
  python3 - "$BROKER_DIR/tansu.db" "$@" <<'PY'
import sqlite3, sys, os
db, what = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, timeout=30)
if what == "drop-indexes":
    for (name,) in c.execute("select name from sqlite_master where type='index' and name like 'lambda_%'").fetchall():
        c.execute(f"drop index {name}")
    c.commit()
else:
    records = c.execute("select count(*) from record").fetchone()[0]
    headers = c.execute("select count(*) from header").fetchone()[0]
    indexes = [r[0] for r in c.execute("select name from sqlite_master where type='index' and name like 'lambda_%' order by name")]
    size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
    free = c.execute("pragma freelist_count").fetchone()[0] * c.execute("pragma page_size").fetchone()[0]
    print(f"store: {records:,} records, {headers:,} header rows, {size / 2**20:,.0f} MiB "
          f"({free / 2**20:,.0f} MiB of it free pages); our indexes: {', '.join(indexes) or 'none'}")
PY
}

# Records of one topic in the store (read beside the running broker: sqlite readers wait
# for its writer).
topic_records() {
  python3 - "$BROKER_DIR/tansu.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=600)
print(c.execute("select count(*) from record r join topition tp on tp.id = r.topition "
                "join topic t on t.id = tp.topic where t.name = ?", (sys.argv[2],)).fetchone()[0])
PY
}

now() { date +%s.%N; }

if [ "$MODE" = retention ]; then
  echo "== filling a fresh store: $FILL records ($FILL_HEADERS with $HEADERS headers) kept for $RETENTION_MS ms, then a $BACKLOG-record backlog"
  scripts/broker.sh start
  "$BIN" bench broker --brokers "$BROKERS" --fill "$FILL" --fill-headers "$FILL_HEADERS" \
    --headers-per-record "$HEADERS" --fill-retention-ms "$RETENTION_MS" --backlog "$BACKLOG"
  scripts/broker.sh stop
  store stats
  sleep $(( RETENTION_MS / 1000 + 5 ))
  echo "== restart: tansu's maintenance (at start, then every 10 minutes) deletes the history"
  started=$(now)
  scripts/broker.sh start
  # Beside the deletion: a producer of another topic, and a consumer of the backlog.
  ( "$BIN" bench broker --brokers "$BROKERS" --topic bench-beside --backlog 100000 \
      | sed 's/^/  beside the deletion: /' ) &
  beside_producer=$!
  ( "$BIN" bench broker --brokers "$BROKERS" --consume --max-seconds "$MAX_SECONDS" \
      | sed 's/^/  beside the deletion: /' ) &
  beside_consumer=$!
  deadline=$(( $(date +%s) + 3600 ))
  while left=$(topic_records bench-backlog-fill) && [ "$left" -gt 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "the history is still there after an hour ($left records)"; exit 1; }
    sleep 1
  done
  echo "history deleted $(python3 -c "print(f'{$(now) - $started:.1f}')") s after the broker's start"
  wait "$beside_producer" "$beside_consumer"
  store stats
  echo "== after the deletion: a fresh $BACKLOG-record backlog"
  "$BIN" bench broker --brokers "$BROKERS" --topic bench-after --backlog "$BACKLOG" --consume \
    --max-seconds "$MAX_SECONDS"
  echo "== the history written again (the store reuses the freed pages)"
  "$BIN" bench broker --brokers "$BROKERS" --fill "$FILL" --fill-headers "$FILL_HEADERS" \
    --headers-per-record "$HEADERS" --fill-retention-ms "$RETENTION_MS"
  scripts/broker.sh stop
  store stats
  exit 0
fi

echo "== filling a fresh store: $FILL records ($FILL_HEADERS with $HEADERS headers), then a $BACKLOG-record backlog"
scripts/broker.sh start
"$BIN" bench broker --brokers "$BROKERS" --fill "$FILL" --fill-headers "$FILL_HEADERS" \
  --headers-per-record "$HEADERS" --backlog "$BACKLOG"
scripts/broker.sh stop

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: before (the store as tansu 0.6.0 makes it)"
  store drop-indexes
  BROKER_STORE_INDEXES=off scripts/broker.sh start
  store stats
  "$BIN" bench broker --brokers "$BROKERS" --consume --max-seconds "$MAX_SECONDS"
  scripts/broker.sh stop
  echo "== round $round: after (the store as scripts/broker.sh makes it)"
  scripts/broker.sh start
  store stats
  "$BIN" bench broker --brokers "$BROKERS" --consume --max-seconds "$MAX_SECONDS"
  scripts/broker.sh stop
done

# A replay of the history itself from offset 0 (FILL / 4 records per partition): bounded by
# tansu's fetch statement, which reads a partition from the requested offset to its end on
# every fetch (docs/broker.md), not by the indexes.
echo "== replay of the history from offset 0, indexed store"
scripts/broker.sh start
"$BIN" bench broker --brokers "$BROKERS" --topic bench-backlog-fill --consume --max-seconds "$MAX_SECONDS"
scripts/broker.sh stop
