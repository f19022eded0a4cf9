#!/usr/bin/env bash
# Base images the project's Dockerfiles and the stand-ins build FROM, made without a
# registry: `local/debian:bookworm` from debootstrap (minbase) and a
# `python:3.11-slim-bookworm` stand-in on top of it. Skipped when the tags already exist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CT_DIR="${CT_DIR:-/var/tmp/clipsearch-compose-test}"

if ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
  mirror="$(bash "$here/debian-mirror.sh")"
  root="$CT_DIR/rootfs-bookworm"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$CT_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CT_DIR/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - local/debian:bookworm >/dev/null
  rm -rf "$root"
fi

if ! docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1; then
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$here/python-base/Dockerfile" "$ctx/"
  mkdir "$ctx/certs"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/certs/" 2>/dev/null || true
  docker build -q -t python:3.11-slim-bookworm "$ctx" >/dev/null
fi
