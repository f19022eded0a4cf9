#!/usr/bin/env bash
# `make compose-test`: build and run the compose stack for real on this machine, then take
# the user's steps through the published port (deploy/compose-test/steps.py). Opt-in: it
# needs root, and ~9 minutes and ~15 GB of disk cold (~2 minutes warm). Not part of
# `make test` or CI. Record a run's figures in deploy/COMPOSE-TEST.md.
#
# What it cannot test here: the pinned upstream images (no registry is reachable, so
# etcd, MinIO and Milvus are stand-ins swapped in by image: lines only), the GPU flow (no
# GPU or NVIDIA runtime: the CPU override runs), and model download by name (no internet:
# the bundled tiny model is served from the models bind mount).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=deploy/compose-test
export CT_DIR="${CT_DIR:-/var/tmp/clipsearch-compose-test}"
BIN="${BIN:-.venv/bin}"
mkdir -p "$CT_DIR"

[[ "$(id -u)" == 0 ]] || { echo "compose-test: needs root (apt, dockerd)" >&2; exit 2; }
t() { local name="$1"; shift; local s=$SECONDS; "$@"; echo "setup: $name $((SECONDS - s)) s"; }

t "engine, compose v2, buildx installed" bash "$here/install-engine.sh"
t "private dockerd started" bash "$here/dockerd.sh" start
eval "$(bash "$here/dockerd.sh" env)"
trap 'bash "$here/dockerd.sh" stop' EXIT
t "base images (debootstrap, python stand-in)" bash "$here/base-images.sh"
t "stand-in images (etcd, MinIO, Milvus)" bash "$here/build-standins.sh"
"$BIN/python" "$here/steps.py"
