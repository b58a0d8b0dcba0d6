#!/usr/bin/env bash
# Every test of the project: formatting, lints, unit and property tests, the cross-layer
# tests against a real Kafka-API broker (tansu, installed here when missing; set
# KAFKA_BROKERS to use a real cluster instead) and the dashboard's headless-browser test
# (Chromium and playwright-core, installed here when missing; the screenshot lands in
# LAMBDA_ARTIFACTS_DIR, default /var/tmp/lambda-artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# One build directory outside the clone, reused by every run and every clone.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}

if [ -z "${KAFKA_BROKERS:-}" ]; then
  scripts/broker.sh install
fi
# Chromium, Node.js and playwright-core for the dashboard's browser test (when missing).
scripts/browser-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
echo "== deploy/ manifests and compose file"
scripts/validate-deploy.sh
