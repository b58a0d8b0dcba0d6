#!/usr/bin/env bash
# The main job: the whole platform on this machine with `lambda demo` — the local
# Kafka-API broker, a generator posting to the collector, the speed layer, the lake writer,
# the batch job every two minutes (one settled hour per run, so the boundary visibly
# moves) and the serving layer with the live dashboard at http://127.0.0.1:8080/.
# Ctrl-C stops everything cleanly; ./data is kept and reused by the next start.
#
#   scripts/demo.sh                                  # defaults
#   scripts/demo.sh --rate 10000 --batch-period-secs 60
#   KAFKA_BROKERS=host:9092 scripts/demo.sh          # a real cluster instead of the local broker
#   scripts/demo.sh --help                           # every flag
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}

if [ -z "${KAFKA_BROKERS:-}" ]; then
  scripts/broker.sh install
fi
scripts/system-deps.sh build
cargo build --release --locked --bin lambda
exec "$CARGO_TARGET_DIR/release/lambda" demo "$@"
