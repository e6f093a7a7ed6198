#!/usr/bin/env bash
# Installs the pinned real client libraries the compatibility suite drives
# (PyPI: msal, azure-identity; npm: @azure/identity, @azure/msal-node) into
# target/compat/. `.ci/run` runs it; run it yourself once to include the suite
# in `cargo test` (without it the suite is skipped with a notice, except in CI).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/target/compat"
mkdir -p "$out"

if [ ! -x "$out/venv/bin/python" ]; then
  python3 -m venv "$out/venv"
fi
"$out/venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/compat/python/requirements.txt"

mkdir -p "$out/node"
cp "$root/tests/compat/node/package.json" "$root/tests/compat/node/package-lock.json" "$out/node/"
(cd "$out/node" && npm ci --no-audit --no-fund --loglevel=error)
echo "compat clients installed in $out"
