#!/usr/bin/env bash
# Serving-layer benchmarks on a local broker with MEMORY storage (the fast engine).
#
# 1. Collector: `lambda serve` alone, `lambda bench ingest` posts INGEST_EVENTS (default
#    1,000,000) generated events as NDJSON, INGEST_BATCH (2,000) per request over
#    INGEST_CONNECTIONS (4) connections, RUNS (3) times: events/s accepted (= acknowledged
#    by the broker), request latency p50 / p99, and the CPU the server and the broker used.
# 2. Query: PRELOAD_EVENTS (2,000,000) events spread over the last 90 minutes of event time
#    are produced to a topic and consumed by `lambda speed`; a second `lambda serve`
#    (pinned to core 0, collector off, empty batch views: every answer comes from speed)
#    answers the dashboard query
#      GET /v1/metrics/page_views?from=<now-60m>&to=<now>&granularity=minute&group_by=country
#    driven by `lambda bench query` pinned to core 1: open loop at QUERY_RATE (500) req/s for
#    QUERY_SECONDS (20) s, then closed loop with QUERY_CONNECTIONS (4) connections for
#    CLOSED_SECONDS (10) s, RUNS times each, with the default answer cache (answers up to
#    500 ms old are served; one background refresh at a time); then closed loop with one
#    connection and the cache off (`--answer-max-staleness-ms 0`): the cost of computing an
#    answer, which every cache miss or refresh pays. The speed instance is not pinned.
# Peak RSS (VmHWM) of the servers and the speed layer is printed at the end.
# LAMBDA_BIN=path runs that binary instead of building one.
# The machine has 2 cores: the broker, the server, speed and the load generator share them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
RUNS=${RUNS:-3}
INGEST_EVENTS=${INGEST_EVENTS:-1000000}
INGEST_BATCH=${INGEST_BATCH:-2000}
INGEST_CONNECTIONS=${INGEST_CONNECTIONS:-4}
PRELOAD_EVENTS=${PRELOAD_EVENTS:-2000000}
QUERY_RATE=${QUERY_RATE:-500}
QUERY_SECONDS=${QUERY_SECONDS:-20}
QUERY_CONNECTIONS=${QUERY_CONNECTIONS:-4}
CLOSED_SECONDS=${CLOSED_SECONDS:-10}
PORT=${BENCH_BROKER_PORT:-9393}
SERVE_PORT=${BENCH_SERVE_PORT:-9480}
SPEED_PORT=${BENCH_SPEED_PORT:-9481}
WORK=${BENCH_DIR:-/var/tmp/lambda-bench}/serve
BROKERS=127.0.0.1:$PORT
SERVE_URL=http://127.0.0.1:$SERVE_PORT
SPEED_URL=http://127.0.0.1:$SPEED_PORT
QUERY_PATH='/v1/metrics/page_views?from={now-60m}&to={now}&granularity=minute&group_by=country'

if [ -n "${LAMBDA_BIN:-}" ]; then # a binary built before, e.g. to compare versions
  lambda=$LAMBDA_BIN
else
  cargo build --release --locked --bin lambda
  lambda="$CARGO_TARGET_DIR/release/lambda"
fi
rm -rf "$WORK" && mkdir -p "$WORK/views"
export BROKER_DIR=$WORK/broker BROKER_PORT=$PORT BROKER_STORAGE=memory
unset KAFKA_BROKERS
scripts/broker.sh start
broker_pid=$(cat "$WORK/broker/tansu.pid")
serve_pid= speed_pid=
stop_pid() { # stop_pid PID: TERM, then wait for it
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1"
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$serve_pid"
  stop_pid "$speed_pid"
  scripts/broker.sh stop
}
trap cleanup EXIT

wait_http() { # wait_http URL: until it answers, 30 s at most
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not answer within 30 s" >&2
  exit 1
}
cpu_ticks() { # user + system clock ticks of a process so far
  awk '{print $14 + $15}' "/proc/$1/stat"
}
cpu_secs() { # cpu_secs BEFORE AFTER
  awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}'
}
peak_rss() {
  awk '/VmHWM/ {print $2 " kB"}' "/proc/$1/status"
}

echo "== collector: lambda serve alone, $RUNS x $INGEST_EVENTS events ($INGEST_BATCH per request, $INGEST_CONNECTIONS connections)"
"$lambda" serve --listen "127.0.0.1:$SERVE_PORT" --views "$WORK/views" --speed-url "$SPEED_URL" \
  --brokers "$BROKERS" --topic collected --dead-letter-topic collected-dlq \
  >"$WORK/serve-ingest.out" 2>"$WORK/serve-ingest.err" &
serve_pid=$!
wait_http "$SERVE_URL/healthz"
for run in $(seq 1 "$RUNS"); do
  s0=$(cpu_ticks "$serve_pid") b0=$(cpu_ticks "$broker_pid")
  "$lambda" bench ingest --url "$SERVE_URL" --events "$INGEST_EVENTS" --batch "$INGEST_BATCH" \
    --connections "$INGEST_CONNECTIONS" --seed "$run" 2>/dev/null || echo "   (run $run had failed requests)"
  echo "   run $run: CPU seconds used by the server $(cpu_secs "$s0" "$(cpu_ticks "$serve_pid")"), by the broker $(cpu_secs "$b0" "$(cpu_ticks "$broker_pid")")"
done
echo "collector server: peak RSS $(peak_rss "$serve_pid")"
stop_pid "$serve_pid"
serve_pid=

start=$(date -u -d '-90 min' +%Y-%m-%dT%H:%M:%SZ)
event_rate=$(awk -v n="$PRELOAD_EVENTS" 'BEGIN {printf "%.3f", n / 5400}')
echo "== query: $PRELOAD_EVENTS events from $start ($event_rate events/s of event time) into topic events"
"$lambda" generate --kafka --brokers "$BROKERS" --topic events --partitions 4 --seed 11 \
  --count "$PRELOAD_EVENTS" --start "$start" --event-rate "$event_rate" \
  --duplicates 0.01 --out-of-order 0.02 2>&1 | tail -n 1
"$lambda" speed --brokers "$BROKERS" --topic events --group bench-serve \
  --checkpoints "$WORK/checkpoints" --listen "127.0.0.1:$SPEED_PORT" \
  --dead-letter-topic events-dlq --late-topic events-late \
  >"$WORK/speed.out" 2>"$WORK/speed.err" &
speed_pid=$!
wait_http "$SPEED_URL/healthz"
for _ in $(seq 1 600); do
  consumed=$(curl -fsS "$SPEED_URL/v1/speed/status" | grep -o '"offsets":{[^}]*}' | grep -o ':[0-9]*' | tr -d : | awk '{s += $1} END {print s + 0}')
  [ "$consumed" -ge "$PRELOAD_EVENTS" ] && break
  sleep 0.5
done
echo "speed has consumed $consumed records; $(curl -fsS "$SPEED_URL/v1/speed/status" | grep -o '"live_keys":[0-9]*')"

# A generous speed timeout: the benchmark measures how long answers take, not the default
# 2 s cut-off.
taskset -c 0 "$lambda" serve --listen "127.0.0.1:$SERVE_PORT" --views "$WORK/views" \
  --speed-url "$SPEED_URL" --speed-timeout-ms 60000 --no-collector >"$WORK/serve-query.out" 2>"$WORK/serve-query.err" &
serve_pid=$!
wait_http "$SERVE_URL/healthz"
for run in $(seq 1 "$RUNS"); do
  s0=$(cpu_ticks "$serve_pid") p0=$(cpu_ticks "$speed_pid")
  taskset -c 1 "$lambda" bench query --url "$SERVE_URL" --path "$QUERY_PATH" \
    --rate "$QUERY_RATE" --seconds "$QUERY_SECONDS" --connections 8 --timeout-secs 60 2>/dev/null ||
    echo "   (run $run had failed requests)"
  echo "   run $run: CPU seconds used by the server $(cpu_secs "$s0" "$(cpu_ticks "$serve_pid")"), by speed $(cpu_secs "$p0" "$(cpu_ticks "$speed_pid")")"
done
for run in $(seq 1 "$RUNS"); do
  s0=$(cpu_ticks "$serve_pid") p0=$(cpu_ticks "$speed_pid")
  taskset -c 1 "$lambda" bench query --url "$SERVE_URL" --path "$QUERY_PATH" \
    --rate 0 --seconds "$CLOSED_SECONDS" --connections "$QUERY_CONNECTIONS" --timeout-secs 60 2>/dev/null ||
    echo "   (run $run had failed requests)"
  echo "   run $run: CPU seconds used by the server $(cpu_secs "$s0" "$(cpu_ticks "$serve_pid")"), by speed $(cpu_secs "$p0" "$(cpu_ticks "$speed_pid")")"
done
echo "query server: peak RSS $(peak_rss "$serve_pid"); speed: peak RSS $(peak_rss "$speed_pid")"
stop_pid "$serve_pid"

# The cost of computing an answer (no answer cache): what a cache miss or a refresh costs.
taskset -c 0 "$lambda" serve --listen "127.0.0.1:$SERVE_PORT" --views "$WORK/views" \
  --speed-url "$SPEED_URL" --speed-timeout-ms 60000 --no-collector --answer-max-staleness-ms 0 \
  >"$WORK/serve-uncached.out" 2>"$WORK/serve-uncached.err" &
serve_pid=$!
wait_http "$SERVE_URL/healthz"
echo "== uncached: every answer computed (closed loop, 1 connection, $CLOSED_SECONDS s)"
taskset -c 1 "$lambda" bench query --url "$SERVE_URL" --path "$QUERY_PATH" \
  --rate 0 --seconds "$CLOSED_SECONDS" --connections 1 --timeout-secs 60 2>/dev/null ||
  echo "   (had failed requests)"
