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

# Secure by default, and still up on a plain `docker compose up`: bound to all interfaces,
# the gateway refuses to serve without keys. With none configured (CLIPSEARCH_API_KEYS
# empty, CLIPSEARCH_AUTH not off) and a keys file named but absent, make one admin key on
# the first start, keep only its salted hash in the file (in the data volume), and print
# the key this once. Set CLIPSEARCH_API_KEYS yourself and nothing is made or printed.
keys_file="${CLIPSEARCH_API_KEYS_FILE:-}"
if [ -z "${CLIPSEARCH_API_KEYS:-}" ] && [ "${CLIPSEARCH_AUTH:-auto}" != "off" ] \
    && [ -n "$keys_file" ] && [ ! -s "$keys_file" ]; then
  made="$(clipsearch keys add --scope admin --name admin 2>/dev/null)"
  key="$(printf '%s\n' "$made" | sed -n 1p)"
  entry="$(printf '%s\n' "$made" | sed -n 2p)"
  [ -n "$key" ] && [ -n "$entry" ] || { echo "clipsearch: could not make an API key" >&2; exit 1; }
  (umask 077 && printf '# made on first start; add lines with `clipsearch keys add`\n%s\n' \
    "$entry" >"$keys_file")
  echo "clipsearch: no API key was configured: made an admin key (its hash is in $keys_file)." >&2
  echo "clipsearch: admin API key: $key   <- shown only now; keep it (Authorization: Bearer)" >&2
fi
exec "$@"
