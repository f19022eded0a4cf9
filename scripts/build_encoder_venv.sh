#!/usr/bin/env bash
# Build the clip-server environment (a second venv: jina pins pydantic<2, so it cannot share
# the gateway's). Idempotent: a stamp holding the hash of the requirements, the constraints
# and the interpreter version skips all work when nothing changed.
#
#   scripts/build_encoder_venv.sh            # builds /work/main/.venv-encoder (repo root)
#   ENCODER_VENV=/tmp/enc scripts/build_encoder_venv.sh
#   FORCE=1 scripts/build_encoder_venv.sh    # rebuild from scratch
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REQ="$ROOT/services/encoder/requirements.txt"
CON="$ROOT/services/encoder/constraints.txt"
VENV="${ENCODER_VENV:-$ROOT/.venv-encoder}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
STAMP="$VENV/.clipsearch-stamp"

start=$(date +%s)
py_version="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
case "$py_version" in
  3.11.*) ;;
  *) echo "build_encoder_venv: clip-server 0.8.2 needs Python 3.11, $PYTHON is $py_version" >&2
     exit 2 ;;
esac
want="$(cat "$REQ" "$CON" <(echo "python $py_version") | sha256sum | cut -d' ' -f1)"

# One build at a time: parallel `make test` runs share the directory. The lock lives in
# /tmp so that it never shows up in the work tree.
mkdir -p "$(dirname "$VENV")"
lock="${TMPDIR:-/tmp}/clipsearch-encoder-venv-$(echo "$VENV" | sha256sum | cut -c1-12).lock"
exec 9>"$lock"
flock 9

if [[ -z "${FORCE:-}" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
  echo "build_encoder_venv: $VENV is up to date (stamp ${want:0:12})"
  exit 0
fi

echo "build_encoder_venv: building $VENV with $PYTHON $py_version"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# The export venv pins the same torch: share its files (hard links) instead of a second copy.
"$PYTHON" "$ROOT/scripts/link_torch.py" "${EXPORT_VENV:-$ROOT/.venv-export}" "$VENV"
# The constraints pin every package: without them pip backtracks over jina's and
# opentelemetry's releases for many minutes and then fails.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet \
  --progress-bar off -r "$REQ" -c "$CON"

# Import what the project uses, so that a broken install fails here and not in a test.
# From inside the venv, so that nothing in the caller's directory shadows a package.
(cd "$VENV" && "$VENV/bin/python" - <<'PY'
import warnings
warnings.simplefilter("ignore")
import clip_client  # noqa: F401
import onnxruntime  # noqa: F401
from clip_server.executors.clip_onnx import CLIPEncoder  # noqa: F401
from clip_server.model.tokenization import Tokenizer
ids = Tokenizer("ViT-B-32::openai")(["a photo of a dog"], context_length=77, truncate=True)
assert int(ids["input_ids"][0][0]) == 49406, ids
PY
)

echo "$want" >"$STAMP"
end=$(date +%s)
size="$(du -sh "$VENV" | cut -f1)"
echo "build_encoder_venv: built $VENV in $((end - start)) s ($size)"
