#!/usr/bin/env bash
# Uncached query latency over published batch views (issue 21): `lambda serve` over VIEWS
# (no speed layer reachable: every hour asked is batch-covered), each query driven closed
# loop over one connection for SECONDS (default 10) by `lambda bench query --no-cache`,
# so every answer is computed anew (as for a dashboard whose time range moves). Prints,
# per query, the rows answered, p50 / p99 / max latency and rows/s, then the server's peak
# RSS and how long warming the views took.
#
#   scripts/bench-query.sh hour VIEWS [HOUR]     # the queries of one hour (default
#                                                # 2026-01-01T00), e.g. the views of
#                                                # scripts/bench-batch.sh
#   scripts/bench-query.sh range VIEWS FROM TO   # 31-day style ranges: hour granularity
#                                                # totals, per URL totals over the range
#
# LAMBDA_BIN=path runs that binary instead of building one; SERVER_BIN=path serves with
# another binary (an older build, for before/after pairs; answers uncached through
# `--answer-max-staleness-ms 0`, which every version has); SERVE_PORT (default 18080).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
MODE=${1:?usage: bench-query.sh hour VIEWS [HOUR] | range VIEWS FROM TO}
VIEWS=${2:?views location}
SECONDS_PER_QUERY=${SECONDS:-10}
PORT=${SERVE_PORT:-18080}
if [ -z "${LAMBDA_BIN:-}" ]; then
  cargo build --release --locked --bin lambda
  LAMBDA_BIN="$CARGO_TARGET_DIR/release/lambda"
fi
URL=http://127.0.0.1:$PORT

case "$MODE" in
  hour)
    H=${3:-2026-01-01T00}
    NEXT=$(date -u -d "@$(($(date -u -d "${H/T/ }:00" +%s) + 3600))" +%Y-%m-%dT%H)
    QUERIES=(
      "/v1/metrics/page_views?from=$H:10:00Z&to=$H:40:00Z&granularity=minute"
      "/v1/metrics/page_views?from=$H:00:00Z&to=$NEXT:00:00Z&granularity=hour"
      "/v1/metrics/page_views?from=$H:00:00Z&to=$NEXT:00:00Z&granularity=hour&group_by=country"
      "/v1/metrics/revenue?from=$H:00:00Z&to=$NEXT:00:00Z&granularity=minute&group_by=category"
      "/v1/metrics/funnel?from=$H:00:00Z&to=$NEXT:00:00Z&granularity=hour&group_by=device&filter=country:US"
      "/v1/metrics/page_views?from=$H:10:00Z&to=$H:40:00Z&granularity=minute&group_by=device&filter=url:/c/toys"
      "/v1/metrics/funnel?from=$H:10:00Z&to=$H:40:00Z&granularity=minute&group_by=country,device"
      "/v1/metrics/page_views?from=$H:10:00Z&to=$H:40:00Z&granularity=minute&group_by=url&filter=country:US&limit=100000"
      "/v1/metrics/page_views?from=$H:10:00Z&to=$H:40:00Z&granularity=minute&group_by=url&limit=100000"
    )
    PROBE=${QUERIES[0]}
    ;;
  range)
    FROM=${3:?from}
    TO=${4:?to}
    QUERIES=(
      "/v1/metrics/page_views?from=$FROM&to=$TO&granularity=hour"
      "/v1/metrics/page_views?from=$FROM&to=$TO&granularity=day&group_by=country"
      "/v1/metrics/funnel?from=$FROM&to=$TO&granularity=hour&group_by=device"
      "/v1/metrics/page_views?from=$FROM&to=$TO&granularity=all&group_by=url&limit=100000"
    )
    PROBE=${QUERIES[0]}
    ;;
  *)
    echo "unknown mode $MODE" >&2
    exit 2
    ;;
esac

LOG=$(mktemp)
"${SERVER_BIN:-$LAMBDA_BIN}" serve --listen "127.0.0.1:$PORT" --views "$VIEWS" --speed-url http://127.0.0.1:1 \
  --manifest-poll-secs 3600 --batch-cache-hours 4096 --answer-max-staleness-ms 0 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
# Ready once the views are loaded (the first query answers 200) and warmed (servers before
# issue 21 do not warm: the untimed request before each query decodes its hours).
for _ in $(seq 1 1200); do
  if curl -sf "$URL$PROBE" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
for _ in $(seq 1 1200); do
  if grep -q "batch views warmed" "$LOG" || [ -n "${SERVER_BIN:-}" ]; then break; fi
  sleep 0.5
done
echo "== $(grep -o 'hours=[0-9]* ms=[0-9]*' "$LOG" | tail -1) warmed; serving $VIEWS; load $(cut -d' ' -f1-3 /proc/loadavg)"
for q in "${QUERIES[@]}"; do
  rows=$(curl -sf "$URL$q" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rows"]))')
  line=$("$LAMBDA_BIN" bench query --url "$URL" --path "$q" --rate 0 --connections 1 \
    --seconds "$SECONDS_PER_QUERY" --no-cache | tail -1)
  p50=$(sed -n 's/.*p50 \([0-9.]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.*p99 \([0-9.]*\).*/\1/p' <<<"$line")
  max=$(sed -n 's/.*max \([0-9.]*\).*/\1/p' <<<"$line")
  n=$(sed -n 's/.*s: \([0-9]*\) ok.*/\1/p' <<<"$line")
  echo "rows $rows | p50 $p50 ms | p99 $p99 ms | max $max ms | $(awk -v r="$rows" -v p="$p50" 'BEGIN {printf "%.0f", (p > 0 ? r / p * 1000 : 0)}') rows/s at p50 | $n answers | GET $q"
done
echo "== server peak RSS $(awk '/VmHWM/ {printf "%d MiB", $2 / 1024}' /proc/$SERVER/status)"
