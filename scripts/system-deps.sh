#!/usr/bin/env bash
# Installs the Debian packages the build (and, with `test`, the tests) need when they are
# missing, idempotently:
#
#   scripts/system-deps.sh build   C toolchain, pkg-config, perl, zlib, OpenSSL and SQLite headers
#                                  (librdkafka is built by rdkafka-sys, with TLS and SASL)
#   scripts/system-deps.sh test    the above, plus the openssl CLI and stunnel4 (the Kafka TLS
#                                  test), python3-venv (the Prometheus text parser) and
#                                  postgresql-client (psql), a JRE and the PostgreSQL JDBC
#                                  driver (the SQL endpoint tests), prometheus (promtool, for the
#                                  alerting rules in deploy/prometheus)
#
# On a machine without Debian's package tools it only names what it would install.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

wanted=(build-essential pkg-config perl zlib1g-dev libssl-dev libsqlite3-dev)
case "${1:-build}" in
  build) ;;
  test) wanted+=(openssl stunnel4 python3 python3-venv ca-certificates postgresql-client
                 openjdk-17-jre-headless libpostgresql-jdbc-java prometheus) ;;
  *) echo "usage: scripts/system-deps.sh build|test" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "not a Debian machine: make sure the equivalents of ${wanted[*]} are installed" >&2
  exit 0
fi
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "== apt-get install ${missing[*]}"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
