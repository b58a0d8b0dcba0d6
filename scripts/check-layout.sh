#!/usr/bin/env bash
# The workspace's shape, checked: the layers are siblings (speed and serving depend on
# neither batch nor each other; speed compiles no DataFusion), one copy of each big
# dependency, no import circle between files, no long files (scripts/check-layout.py).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deps_of() { cargo tree --locked -e normal -p "$1" --prefix none --format '{p}' | awk '{print $1}' | sort -u; }
forbid() { # package, dependency that must not be in its tree
  if deps_of "$1" | grep -qx "$2"; then
    echo "layout: $1 depends on $2"
    fail=1
  fi
}
forbid speed batch
forbid speed datafusion
forbid speed serving
forbid batch speed
forbid batch serving
forbid serving batch
forbid serving speed
forbid lambda-sql batch
forbid lambda-sql speed
forbid lambda-io batch
forbid lambda-io speed
forbid lambda-io serving
forbid shared-logic lambda-io
for crate in arrow parquet datafusion object_store; do
  n=$(cargo tree --locked -e normal --workspace --prefix none --format '{p}' | awk -v c="$crate" '$1 == c {print $2}' | sort -u | wc -l)
  if [ "$n" -gt 1 ]; then
    echo "layout: $n versions of $crate in the build"
    fail=1
  fi
done
python3 scripts/check-layout.py || fail=1
exit $fail
