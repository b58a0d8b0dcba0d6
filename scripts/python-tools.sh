#!/usr/bin/env bash
# The Python tools the Rust tests call, in the project's virtual environment (LAMBDA_VENV,
# default /var/tmp/lambda-venv, shared with scripts/validate-deploy.sh), created here when
# missing: no system pip needed (PEP 668). Versions are pinned; a package already at its
# pinned version is not reinstalled.
# - prometheus-client: its parser checks the serving layer's /metrics text
#   (tests/tests/serving_telemetry.rs);
# - deltalake, pyarrow, duckdb: readers we did not write read the lake's and the views'
#   Delta tables (tests/delta/check_tables.py, driven by tests/tests/delta_readers.rs);
# - psycopg (with its binary build of libpq): the extended query protocol with parameters
#   and binary results against the SQL endpoint (tests/sql/psycopg_probe.py).
set -euo pipefail
VENV=${LAMBDA_VENV:-/var/tmp/lambda-venv}
PACKAGES=(
  prometheus-client==0.26.0
  deltalake==1.6.6
  pyarrow==26.0.1
  duckdb==2.0.1
  psycopg==3.3.9
  psycopg-binary==3.3.9
)

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
py="$VENV/bin/python"
missing=()
for spec in "${PACKAGES[@]}"; do
  name=${spec%%==*} version=${spec##*==}
  "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null \
    || missing+=("$spec")
done
if [ ${#missing[@]} -gt 0 ]; then
  "$py" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
