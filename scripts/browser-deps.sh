#!/usr/bin/env bash
# Installs what the dashboard's headless-browser test needs, idempotently: Debian's
# Chromium (when /usr/bin/chromium is missing), Node.js and npm (when missing) and the
# test's one npm dependency, playwright-core, exactly as tests/browser/package-lock.json
# pins it (when tests/browser/node_modules is missing or older than the lock file).
# Playwright never downloads a browser of its own here: the test drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

lock=tests/browser/package-lock.json
modules=tests/browser/node_modules
if [ ! -d "$modules" ] || [ "$modules" -ot "$lock" ]; then
  echo "== npm ci --prefix tests/browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
  # npm ci keeps the folder's old mtime on some versions; mark it as fresh.
  touch "$modules"
fi
echo "browser deps: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?'), node $(node --version)"
