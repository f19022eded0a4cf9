#!/usr/bin/env bash
# Build the model-export venv (default: <repo>/.venv-export; override with EXPORT_VENV or $1).
#
# Holds torch + torchvision + open_clip + onnx + onnxruntime and the gateway package itself
# (editable, for its tokenizer). Idempotent: a stamp file records a hash of the requirements
# (and of pyproject.toml, whose dependencies come in with the gateway package); when it
# matches, nothing is installed. Works on a fresh machine: only pip and the package index.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${EXPORT_VENV:-$ROOT/.venv-export}}"
REQS="$ROOT/scripts/export-requirements.txt"
STAMP="$VENV/.export-requirements.sha256"
# Same default as the Makefile; .ci/run exports PYTHON=python3 where python3.11 is missing.
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

want="$(cat "$REQS" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "export venv up to date: $VENV"
    exit 0
fi

start=$(date +%s)
echo "building export venv in $VENV (torch is several GB: a few minutes) ..."
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# Remove the stamp first so an interrupted build is never taken for a finished one.
rm -f "$STAMP"
# The encoder venv pins the same torch: share its files (hard links) instead of a second copy.
"$PYTHON" "$ROOT/scripts/link_torch.py" "${ENCODER_VENV:-$ROOT/.venv-encoder}" "$VENV"
# pip warns about every package missing from the machine's local package folders: noise.
quiet_pip() {
    "$VENV/bin/python" -m pip install --quiet "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
quiet_pip -r "$REQS"
quiet_pip -e "$ROOT"
# Fail here, not in a test, if the stack does not import together.
"$VENV/bin/python" -c "import open_clip, onnx, onnxruntime, torch, torchvision; \
from clipsearch.encoder.tokenizer import get_tokenizer; \
print('torch', torch.__version__, 'open_clip', open_clip.__version__, 'onnx', onnx.__version__)"
echo "$want" >"$STAMP"

elapsed=$(( $(date +%s) - start ))
echo "export venv ready in ${elapsed}s: $VENV ($(du -sh "$VENV" | cut -f1))"
