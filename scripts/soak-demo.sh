#!/usr/bin/env bash
# The demo left running (issue 23's soak): `lambda demo` at its default 500 events/s with
# its default local broker (tansu, sqlite storage, the store indexed as the demo makes it)
# in a fresh data directory, sampled every INTERVAL seconds for DURATION seconds. Each
# sample prints one row (and appends it to $DATA/soak.tsv):
# - the speed layer's consumer lag (records, summed over partitions) and freshness (age of
#   the newest visible event), from the serving layer's /metrics;
# - the broker's store: records, header rows, size on disk and how much of it is free pages;
# - the broker's fetch rate on that store: a fresh 20,000-record probe topic written and
#   read back from offset 0 (`lambda bench broker --backlog 20000 --consume`).
#
#   scripts/soak-demo.sh                      # 24 hours, a sample every 10 minutes
#   DURATION=3600 INTERVAL=300 scripts/soak-demo.sh
#   scripts/soak-demo.sh --broker-retention-hours 1   # arguments go to `lambda demo`
#
# The probe topics (20,000 records each) have no retention: they add 20,000 records a sample.
#
# Environment: LAMBDA_BIN (default: a release build in $CARGO_TARGET_DIR or ./target),
# DURATION (s, default 86400), INTERVAL (s, default 600), DATA (default
# /var/tmp/lambda-soak, emptied first), SOAK_BROKER_PORT (9395), SOAK_API (127.0.0.1:18090),
# SOAK_PG (127.0.0.1:15440), SOAK_VIEWS (127.0.0.1:19110).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
BIN=${LAMBDA_BIN:-$target/release/lambda}
DURATION=${DURATION:-86400}
INTERVAL=${INTERVAL:-600}
DATA=${DATA:-/var/tmp/lambda-soak}
PORT=${SOAK_BROKER_PORT:-9395}
API=${SOAK_API:-127.0.0.1:18090}
PG=${SOAK_PG:-127.0.0.1:15440}
VIEWS=${SOAK_VIEWS:-127.0.0.1:19110}
unset KAFKA_BROKERS

[ -x "$BIN" ] || { echo "no lambda binary at $BIN: cargo build --release --bin lambda, or set LAMBDA_BIN" >&2; exit 1; }
rm -rf "$DATA" && mkdir -p "$DATA"
"$BIN" demo --data-dir "$DATA" --broker-port "$PORT" --listen "$API" --pg-listen "$PG" \
  --views-listen "$VIEWS" --duration-secs "$((DURATION + 120))" "$@" >"$DATA/demo.log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://$API/metrics" >/dev/null 2>&1 && break
  kill -0 "$demo" 2>/dev/null || { echo "the demo exited; its log:" >&2; tail -20 "$DATA/demo.log" >&2; exit 1; }
  sleep 1
done

metric() { # metric NAME: the sum of its samples
  curl -fsS "http://$API/metrics" 2>/dev/null | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%g", s; else printf "-" }'
}
store() {
  python3 - "$DATA/broker/tansu.db" <<'PY'
import os, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
records = c.execute("select count(*) from record").fetchone()[0]
headers = c.execute("select count(*) from header").fetchone()[0]
size = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
free = c.execute("pragma freelist_count").fetchone()[0] * c.execute("pragma page_size").fetchone()[0]
print(f"{records}\t{headers}\t{size / 2**20:.0f}\t{free / 2**20:.0f}")
PY
}

started=$(date +%s)
printf 'elapsed_min\tconsumer_lag\tfreshness_s\trecords\theader_rows\tstore_mib\tfree_mib\tprobe_fetch_msg_s\n' | tee "$DATA/soak.tsv"
sample=0
while :; do
  elapsed=$(( $(date +%s) - started ))
  sample=$((sample + 1))
  kill -0 "$demo" 2>/dev/null || { echo "the demo exited after $elapsed s; its log: $DATA/demo.log" >&2; exit 1; }
  lag=$(metric lambda_speed_consumer_lag_records)
  fresh=$(metric lambda_speed_freshness_seconds)
  probe=$("$BIN" bench broker --brokers "127.0.0.1:$PORT" --topic "soak-probe-$sample" \
            --backlog 20000 --consume --max-seconds 120 2>/dev/null \
          | sed -n 's/.*: \([0-9]*\) msg\/s.*/\1/p; s/.*no record arrived.*/0/p' | tail -1)
  printf '%d\t%s\t%s\t%s\t%s\n' "$((elapsed / 60))" "$lag" "$fresh" "$(store)" "${probe:--}" | tee -a "$DATA/soak.tsv"
  [ "$elapsed" -ge "$DURATION" ] && break
  sleep "$(( INTERVAL - ( ($(date +%s) - started) % INTERVAL ) ))"
done
