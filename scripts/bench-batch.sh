#!/usr/bin/env bash
# Batch-layer benchmark: EVENTS generated events (default 10 million, about an hour at
# 3,000 events/s, with 1% duplicates and 2% out of order) imported into a local lake, then
# the hour computed by `lambda batch` and by DuckDB (same files, same dedup rule, same three
# per-event metrics and sessions, results written to Parquet), RUNS times each, interleaved.
# Prints medians, the ratio, the load average, and lambda's peak RSS.
#
#   scripts/bench-batch.sh                 # 10,000,000 events, 3 runs
#   EVENTS=2000000 RUNS=5 scripts/bench-batch.sh
#   LAMBDA_BIN=/var/tmp/lambda-x LAKE=/var/tmp/lambda-bench/lake-10M-delta scripts/bench-batch.sh
#                                          # a given binary (no build) on an existing lake
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
EVENTS=${EVENTS:-10000000}
RUNS=${RUNS:-3}
WORK=${BENCH_DIR:-/var/tmp/lambda-bench}
HOUR=2026-01-01T00

python3 -c "import duckdb" 2>/dev/null || pip install --quiet duckdb
if [ -n "${LAMBDA_BIN:-}" ]; then
  lambda=$LAMBDA_BIN
else
  cargo build --release --locked --bin lambda
  lambda="$CARGO_TARGET_DIR/release/lambda"
fi

mkdir -p "$WORK"
if [ -z "${LAKE:-}" ] && [ ! -f "$WORK/lake-$EVENTS/.complete" ]; then
  rm -rf "$WORK/lake-$EVENTS"
  echo "== generating and importing $EVENTS events"
  "$lambda" generate --count "$EVENTS" --seed 42 --event-rate 3000 --duplicates 0.01 --out-of-order 0.02 \
    | "$lambda" lake import - --lake "$WORK/lake-$EVENTS" --max-future-skew-secs 999999999
  touch "$WORK/lake-$EVENTS/.complete"
fi
lake=${LAKE:-$WORK/lake-$EVENTS}
if [ ! -d "$lake/events/_delta_log" ]; then
  # A lake imported by a binary before the Delta tables (issue 18): hive-layout Parquet.
  echo "== converting the hive-layout lake $lake to Delta tables"
  "$lambda" lake migrate --lake "$lake"
fi
rows=$(ls "$lake/events/date=2026-01-01/hour=00/" | grep -c '\.parquet$')
echo "== hour $HOUR: $rows file(s) in $lake"

mkdir -p "$WORK/duckdb-out"
lambda_times=()
duck_times=()
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$lambda" batch --lake "$lake" --hour "$HOUR" >"$WORK/batch.out" 2>"$WORK/batch.err"
  read -r secs kb <"$WORK/time.txt"
  echo "lambda run $i: $secs s, load $(cut -d' ' -f1 /proc/loadavg), peak RSS $((kb / 1024)) MiB :: $(cat "$WORK/batch.out")"
  lambda_times+=("$secs")
  peak_kb=$kb
  d=$(python3 scripts/bench_batch_duckdb.py "$lake" "$HOUR" "$WORK/duckdb-out" 1 | awk '/run 1/ {print $4}')
  echo "duckdb run $i: $d s, load $(cut -d' ' -f1 /proc/loadavg)"
  duck_times+=("$d")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
lm=$(median "${lambda_times[@]}")
dm=$(median "${duck_times[@]}")
echo "== medians over $RUNS runs: lambda batch $lm s, duckdb $dm s, duckdb/lambda = $(awk -v d="$dm" -v l="$lm" 'BEGIN {printf "%.2f", d / l}')"
echo "== lambda: $(awk -v n="$EVENTS" -v l="$lm" 'BEGIN {printf "%.0f", n / l}') events/s end to end; peak RSS of the last run $((peak_kb / 1024)) MiB"
