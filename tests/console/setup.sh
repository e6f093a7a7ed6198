#!/usr/bin/env bash
# Installs what the console's browser test drives: Debian's Chromium (if it is
# missing and this user may install packages) and the pinned playwright-core
# from npm, which uses that system browser (it downloads none) — into
# target/console/. `.ci/run` runs it; run it yourself once to include the
# browser test in `cargo test` (without it the test is skipped with a notice,
# except in CI).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/target/console"

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update -qq && apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    echo "Chromium is not installed: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

mkdir -p "$out"
cp "$root/tests/console/package.json" "$root/tests/console/package-lock.json" "$out/"
(cd "$out" && npm ci --no-audit --no-fund --loglevel=error)
echo "console browser test installed in $out (browser: $(command -v chromium))"
