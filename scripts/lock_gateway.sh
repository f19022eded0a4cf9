#!/usr/bin/env bash
# Regenerate deploy/gateway.lock.txt: install the gateway's runtime dependencies (no dev
# extras) into a throwaway venv and freeze them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet "$ROOT"
out="$ROOT/deploy/gateway.lock.txt"
{
  sed -n '1,/^# tests\/deploy/p' "$out"
  "$tmp/venv/bin/pip" freeze --all | grep -v -E '^(pip|setuptools|wheel|clipsearch)[= @]'
} >"$out.new"
mv "$out.new" "$out"
echo "wrote $out ($(grep -vc '^#' "$out") packages)"
