#!/usr/bin/env bash
# A private Docker engine for the compose test: its own socket, data root, exec root and
# pidfile under $CT_DIR, so it never touches a system dockerd (or is touched by one).
#   dockerd.sh start   # prints nothing; waits until the engine answers
#   dockerd.sh stop    # ends it by its pid (containers it ran are gone with it)
#   dockerd.sh env     # prints the DOCKER_HOST line to eval
set -euo pipefail
CT_DIR="${CT_DIR:-/var/tmp/clipsearch-compose-test}"
sock="$CT_DIR/docker.sock"
pidfile="$CT_DIR/dockerd.pid"

case "${1:-}" in
  env) echo "export DOCKER_HOST=unix://$sock" ;;
  start)
    mkdir -p "$CT_DIR/data-root" "$CT_DIR/exec-root"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      exit 0
    fi
    nohup dockerd --data-root "$CT_DIR/data-root" --exec-root "$CT_DIR/exec-root" \
      --pidfile "$pidfile" -H "unix://$sock" \
      >"$CT_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
      DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 && exit 0
      sleep 0.5
    done
    echo "dockerd did not answer in 30 s; its log: $CT_DIR/dockerd.log" >&2
    tail -20 "$CT_DIR/dockerd.log" >&2
    exit 1 ;;
  stop)
    [[ -f "$pidfile" ]] || exit 0
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
