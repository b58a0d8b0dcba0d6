#!/usr/bin/env bash
# Every test of the project: formatting, lints, unit and property tests, and the
# cross-layer tests against a real Kafka-API broker (tansu, installed here when missing;
# set KAFKA_BROKERS to use a real cluster instead).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# One build directory outside the clone, reused by every run and every clone.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}

if [ -z "${KAFKA_BROKERS:-}" ]; then
  scripts/broker.sh install
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
