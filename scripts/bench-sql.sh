#!/usr/bin/env bash
# The Grafana panel "page views per URL per minute" over the last 60 minutes, answered by
# the SQL endpoint from a speed state of about a million live keys, beside the REST API's
# answer to the same question (issue 17). A local broker with MEMORY storage is preloaded
# with EVENTS (default 5,000,000) generated events spread over the last 30 minutes;
# `lambda speed` folds them and serves its views; `lambda serve` (no batch views: every
# hour is the speed layer's) answers SQL and REST. Each client runs the query closed loop
# over one connection for SECONDS (default 20), every answer computed anew (no answer
# cache; the speed layer keeps each window's grouped rows until a write touches it), first
# with no event arriving, then (LIVE_RATE events/s, default 0: skipped) with events of now
# arriving, so the newest minute is grouped anew for every answer:
# - psycopg 3 (libpq, extended protocol): scripts/bench_sql.py;
# - psql (simple protocol): the query repeated in one session with \timing;
# - REST: `lambda bench query --no-cache` over one connection.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
EVENTS=${EVENTS:-5000000}
SECONDS_PER_CLIENT=${SECONDS:-20}
PORT=${BENCH_BROKER_PORT:-9392}
WORK=${BENCH_DIR:-/var/tmp/lambda-bench}/sql
BROKERS=127.0.0.1:$PORT
SPEED=127.0.0.1:${SPEED_PORT:-19101}
API=127.0.0.1:${SERVE_PORT:-18080}
PG_PORT=${PG_PORT:-15433}
VENV=${LAMBDA_VENV:-/var/tmp/lambda-venv}

if [ -z "${LAMBDA_BIN:-}" ]; then
  cargo build --release --locked --bin lambda
  LAMBDA_BIN="$CARGO_TARGET_DIR/release/lambda"
fi
scripts/python-tools.sh
rm -rf "$WORK" && mkdir -p "$WORK/views"
export BROKER_DIR=$WORK/broker BROKER_PORT=$PORT BROKER_STORAGE=memory
unset KAFKA_BROKERS
scripts/broker.sh start
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; scripts/broker.sh stop' EXIT

# Events over the 30 minutes before now (whole minutes), so the panel's hour holds them all.
now=$(date -u +%s)
start=$(( (now / 60 - 30) * 60 ))
rate=$(( EVENTS / 1800 ))
echo "== preloading $EVENTS events ($rate events/s of event time from $(date -u -d "@$start" +%H:%M)) into topic bench"
"$LAMBDA_BIN" generate --count "$EVENTS" --seed 7 --kafka --brokers "$BROKERS" --topic bench --partitions 4 \
  --event-rate "$rate" --start "$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ)" --duplicates 0.01 --out-of-order 0.02

"$LAMBDA_BIN" speed --brokers "$BROKERS" --topic bench --group bench-sql --checkpoints "$WORK/checkpoints" \
  --listen "$SPEED" --dead-letter-topic bench-dlq --late-topic bench-late --checkpoint-interval-secs 3600 \
  >"$WORK/speed.out" 2>"$WORK/speed.err" &
pids+=($!)
echo "== waiting for the speed layer to fold them"
for _ in $(seq 1 600); do
  folded=$(curl -sf "http://$SPEED/v1/speed/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["progress"]["counters"]["records"])' 2>/dev/null || echo 0)
  [ "${folded:-0}" -ge $(( EVENTS * 97 / 100 )) ] && break
  sleep 1
done
curl -sf "http://$SPEED/v1/speed/status" >"$WORK/status.json" || true
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("speed:", s["progress"]["counters"]["records"], "records,", s["live_keys"], "live keys,", s["dedup_keys"], "dedup ids")' "$WORK/status.json"

"$LAMBDA_BIN" serve --listen "$API" --views "$WORK/views" --speed-url "http://$SPEED" --no-collector \
  --answer-max-staleness-ms 0 --pg-listen "127.0.0.1:$PG_PORT" >"$WORK/serve.out" 2>"$WORK/serve.err" &
pids+=($!)
for _ in $(seq 1 120); do
  curl -sf "http://$API/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done

# The panel's last 60 minutes, ending at the next whole minute (so the live minute is in it).
end=$(( ($(date -u +%s) / 60 + 1) * 60 ))
from=$(date -u -d "@$(( end - 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$(( end - 1 ))" +%Y-%m-%dT%H:%M:%S.999Z)
rest_to=$(date -u -d "@$end" +%Y-%m-%dT%H:%M:%SZ)
# The panel's query as Grafana sends it ($__timeGroupAlias and $__timeFilter expanded).
QUERY="SELECT floor(extract(epoch from window_start)/60)*60 AS \"time\", url AS metric, sum(views) AS views FROM page_views WHERE window_start BETWEEN '{from}' AND '{to}' GROUP BY 1, 2 ORDER BY 1"

clients() {
  echo "== SQL, psycopg: 60 minutes from $from ($1)"
  "$VENV/bin/python" scripts/bench_sql.py "host=127.0.0.1 port=$PG_PORT user=lambda dbname=lambda" \
    "$SECONDS_PER_CLIENT" "$from" "$to" "$QUERY"

  echo "== SQL, psql: 200 runs in one session ($1)"
  q=${QUERY//\{from\}/$from}
  q=${q//\{to\}/$to}
  { echo '\timing on'; for _ in $(seq 1 200); do echo "$q;"; done; } >"$WORK/psql.sql"
  psql "host=127.0.0.1 port=$PG_PORT user=lambda dbname=lambda" -X -q -o /dev/null -f "$WORK/psql.sql" \
    | awk '/^Time:/ {print $2}' | sort -n | awk '{t[NR]=$1} END {printf "psql: %d runs, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", NR, t[int(NR*0.5)+1], t[int(NR*0.99)+1], t[NR]}'

  echo "== REST: the same question (page_views per minute by url, 60 minutes; $1)"
  "$LAMBDA_BIN" bench query --url "http://$API" --no-cache --rate 0 --connections 1 --seconds "$SECONDS_PER_CLIENT" \
    --path "/v1/metrics/page_views?from=$from&to=$rest_to&granularity=minute&group_by=url&limit=100000"
}

clients "no event arriving"
if [ "${LIVE_RATE:-0}" -gt 0 ]; then
  # Events of now arriving while the clients ask: the newest minute changes under them.
  "$LAMBDA_BIN" generate --kafka --brokers "$BROKERS" --topic bench --partitions 4 --seed 8 \
    --rate "$LIVE_RATE" --duration-secs 3600 >"$WORK/live.out" 2>"$WORK/live.err" &
  pids+=($!)
  sleep 5
  clients "$LIVE_RATE events/s arriving"
fi
echo "serve peak RSS $(awk '/VmHWM/ {print $2}' "/proc/${pids[1]}/status") KB; speed peak RSS $(awk '/VmHWM/ {print $2}' "/proc/${pids[0]}/status") KB"
