#!/bin/sh
# Gateway container entrypoint: check that the data folder is writable by this image's
# user before anything else, so a bind mount owned by root fails with a line that says what
# to do instead of a traceback from deep inside Milvus Lite or SQLite.
set -eu
data="${CLIPSEARCH_DATA_DIR:-/data}"
mkdir -p "$data" 2>/dev/null || true
probe="$data/.clipsearch-write-test.$$"
if ! ( : >"$probe" ) 2>/dev/null; then
  echo "clipsearch: $data is not writable by uid $(id -u) (gid $(id -g)); chown it to" \
    "$(id -u):$(id -g), or mount a named volume there (docker-compose.yml does)." >&2
  exit 1
fi
rm -f "$probe"
exec "$@"
