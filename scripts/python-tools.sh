#!/usr/bin/env bash
# The Python tools the Rust tests call, in the project's virtual environment (LAMBDA_VENV,
# default /var/tmp/lambda-venv, shared with scripts/validate-deploy.sh), created here when
# missing: no system pip needed (PEP 668).
# - prometheus-client: its parser checks the serving layer's /metrics text
#   (tests/tests/serving_telemetry.rs).
set -euo pipefail
VENV=${LAMBDA_VENV:-/var/tmp/lambda-venv}
PROMETHEUS_CLIENT_VERSION=0.26.0

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
py="$VENV/bin/python"
if ! "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('prometheus-client') != '$PROMETHEUS_CLIENT_VERSION')" 2>/dev/null; then
  "$py" -m pip install --quiet --disable-pip-version-check "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
fi
