#!/usr/bin/env bash
# `make run`: the embedded default, offline. Generates demo pictures (once), serves the
# gateway with the local encoder + the embedded store + the bundled tiny model, and ingests the
# pictures through the public ingest API (a re-run finds them all as duplicates).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DEMO_DIR=${DEMO_DIR:-data/demo}
DEMO_N=${DEMO_N:-300}
# The bilingual tiny model (English and Chinese, Immich's layout); `.../models/shapes` is the
# English-only one. Its own collection: one that the English-only model filled in an earlier
# `make run` stays as it was (a collection holds one model's vectors).
export CLIPSEARCH_MODEL_PATH=${CLIPSEARCH_MODEL_PATH:-services/encoder/models/shapes-bilingual}
export CLIPSEARCH_DEFAULT_COLLECTION=${CLIPSEARCH_DEFAULT_COLLECTION:-bilingual}
host=${CLIPSEARCH_HOST:-127.0.0.1}
port=${CLIPSEARCH_PORT:-8000}
url="http://$host:$port"

if [ ! -f "$DEMO_DIR/captions.csv" ]; then
  echo "run_demo: generating $DEMO_N demo pictures in $DEMO_DIR"
  # Seed 2: neither the training split (0) nor the held-out evaluation split (1).
  "$BIN/python" -m clipsearch.demo.shapes --out "$DEMO_DIR" --n "$DEMO_N" --seed 2
fi

"$BIN/clipsearch" serve &
server=$!
trap 'kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM

echo "run_demo: waiting for $url/readyz"
ready=""
for _ in $(seq 1 240); do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "run_demo: the gateway exited during start-up" >&2
    exit 1
  fi
  if "$BIN/python" -c "import sys, httpx; sys.exit(httpx.get('$url/readyz', timeout=2).status_code != 200)" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "run_demo: not ready after 120 s" >&2; exit 1; }

"$BIN/clipsearch" ingest "$DEMO_DIR/images" --captions "$DEMO_DIR/captions.csv" --url "$url"
cat <<MSG

clipsearch is serving $url  (web page: $url/ , API docs: $url/docs)
  try: $BIN/clipsearch search "a red circle" --url $url
       $BIN/clipsearch search 红色的圆形 --url $url     (the bilingual model reads Chinese)
       $BIN/clipsearch search 红色的圆形 --expand --url $url   (plus the expansion dictionary)
Ctrl-C stops it.
MSG
wait "$server"
