#!/usr/bin/env bash
# The main job at this stage of the platform: start the local Kafka-API broker, stream a
# realistic e-commerce event stream into it, and show what arrived (validated with the
# shared logic: counts by event type, duplicates, rejects by reason).
#
#   scripts/demo.sh                 # 20,000 events/s for 10 s
#   RATE=50000 SECONDS_TO_RUN=30 scripts/demo.sh
#   KAFKA_BROKERS=host:9092 scripts/demo.sh   # a real cluster instead of the local broker
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
RATE=${RATE:-20000}
SECONDS_TO_RUN=${SECONDS_TO_RUN:-10}

cargo build --release --locked --bin lambda
lambda="$CARGO_TARGET_DIR/release/lambda"

started_broker=no
if [ -z "${KAFKA_BROKERS:-}" ]; then
  if ! scripts/broker.sh status >/dev/null 2>&1; then
    scripts/broker.sh start
    started_broker=yes
  fi
fi
cleanup() { [ "$started_broker" = yes ] && scripts/broker.sh stop; }
trap cleanup EXIT

echo "== streaming $RATE events/s for $SECONDS_TO_RUN s to topic 'events' (1% invalid, 1% duplicated, 2% out of order)"
# A new seed per run: a second run adds new events rather than repeating the first's ids.
"$lambda" generate --kafka --rate "$RATE" --duration-secs "$SECONDS_TO_RUN" --start now --seed "$(date +%s)" \
  --invalid 0.01 --duplicates 0.01 --out-of-order 0.02

echo "== what the topic holds"
"$lambda" inspect --topic events
