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

# The shared build directory keeps every old test binary of our crates (hundreds of MB each):
# past 30 GiB, drop our crates' artifacts (dependencies stay built; ours rebuild in minutes).
deps="$CARGO_TARGET_DIR/debug/deps"
if [ -d "$deps" ] && [ "$(du -s --block-size=1G "$deps" | cut -f1)" -gt 30 ]; then
  echo "== $deps is over 30 GiB: cleaning this workspace's own artifacts"
  cargo clean -p lambda -p lambda-tests -p lambda-tools -p lambda-sql -p serving -p speed -p batch -p lambda-io -p shared-logic
  # Another build on the machine may be writing there at the same time: best effort.
  rm -rf "$CARGO_TARGET_DIR/debug/incremental" 2>/dev/null || true
fi

# Debian packages the build and the tests need (OpenSSL headers, stunnel4, python3-venv…).
scripts/system-deps.sh test
if [ -z "${KAFKA_BROKERS:-}" ]; then
  scripts/broker.sh install
fi
# Chromium, Node.js and playwright-core for the dashboard's browser test (when missing).
scripts/browser-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== layout (one-way crates, no import circles, short files)"
scripts/check-layout.sh
echo "== cargo test"
# The Python parser the metrics test checks the Prometheus text with.
scripts/python-tools.sh
# The process-level tests in tests/tests run the `lambda` binary from the build directory.
cargo build --workspace --bins --locked
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
echo "== deploy/ manifests and compose file"
scripts/validate-deploy.sh
