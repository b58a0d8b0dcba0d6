#!/usr/bin/env bash
# Speed-layer benchmarks on a local broker with MEMORY storage (the fast engine; its
# watermarks are not used: the consumer stops after a known record count).
#
# 1. Throughput: EVENTS (default 5,000,000) generated events preloaded into a topic, then
#    `lambda speed --stop-after-records EVENTS`: records/s from first poll to the views
#    complete, and peak RSS. Beside it, the same processing path fed from a file
#    (`lambda bench speed-file`), which the broker does not bound.
# 2. Freshness: `lambda speed` running while `lambda generate` produces RATE (default
#    50,000) events/s for SECONDS (default 30): produce-to-visible latency p50 / p99
#    (visible = the micro-batch holding the record is applied to the views), peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
EVENTS=${EVENTS:-5000000}
RATE=${RATE:-50000}
SECONDS_TO_RUN=${SECONDS_TO_RUN:-30}
PORT=${BENCH_BROKER_PORT:-9392}
WORK=${BENCH_DIR:-/var/tmp/lambda-bench}/speed
BROKERS=127.0.0.1:$PORT

cargo build --release --locked --bin lambda
lambda="$CARGO_TARGET_DIR/release/lambda"
rm -rf "$WORK" && mkdir -p "$WORK"
export BROKER_DIR=$WORK/broker BROKER_PORT=$PORT BROKER_STORAGE=memory
unset KAFKA_BROKERS
scripts/broker.sh start
trap 'scripts/broker.sh stop' EXIT

echo "== preloading $EVENTS events into topic bench (4 partitions, memory storage)"
/usr/bin/time -f "generate: %e s" "$lambda" generate --count "$EVENTS" --seed 7 --kafka --brokers "$BROKERS" \
  --topic bench --partitions 4 --event-rate 3000 --duplicates 0.01 --out-of-order 0.02

echo "== throughput: lambda speed over the preloaded topic"
/usr/bin/time -f "speed: %e s wall, peak RSS %M KB" "$lambda" speed --brokers "$BROKERS" --topic bench \
  --group bench-throughput --checkpoints "$WORK/checkpoints" --listen 127.0.0.1:0 \
  --dead-letter-topic bench-dlq --late-topic bench-late --stop-after-records "$EVENTS" \
  --max-future-skew-secs 999999999 --checkpoint-interval-secs 30 2>"$WORK/speed.err"
grep -E "speed:" "$WORK/speed.err"

echo "== the same path fed from a file (no broker)"
"$lambda" generate --count "$EVENTS" --seed 7 --event-rate 3000 --duplicates 0.01 --out-of-order 0.02 -o "$WORK/events.ndjson"
/usr/bin/time -f "speed-file: %e s wall, peak RSS %M KB" "$lambda" bench speed-file "$WORK/events.ndjson" 2>&1

echo "== freshness: $RATE events/s for $SECONDS_TO_RUN s while lambda speed runs"
"$lambda" generate --count 0 --kafka --brokers "$BROKERS" --topic live --partitions 4 2>/dev/null
"$lambda" speed --brokers "$BROKERS" --topic live \
  --group bench-fresh --checkpoints "$WORK/checkpoints" --listen 127.0.0.1:0 \
  --dead-letter-topic bench-dlq --late-topic bench-late --checkpoint-interval-secs 5 \
  >"$WORK/fresh.out" 2>"$WORK/fresh.err" &
speed_pid=$!
sleep 2
"$lambda" generate --kafka --brokers "$BROKERS" --topic live --partitions 4 --rate "$RATE" \
  --duration-secs "$SECONDS_TO_RUN" --start now --seed 8
sleep 2
echo "speed (freshness run): peak RSS $(awk '/VmHWM/ {print $2}' "/proc/$speed_pid/status") KB"
kill -TERM "$speed_pid"
wait "$speed_pid" || true
cat "$WORK/fresh.out"
