#!/usr/bin/env bash
# Build the stand-in images for what no registry here serves (etcd, MinIO, Milvus) and tag
# them with the names docker-compose.standins.yml swaps in. Docker's layer cache makes a
# second run take seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
docker build -q -t clipsearch-standin/etcd:3.4 "$here/etcd" >/dev/null
docker build -q -t clipsearch-standin/milvus:2.3.5 "$here/milvus" >/dev/null
# s3rver comes from the npm registry through the host's npm, into a throwaway context.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/minio/Dockerfile" "$here/minio/server.js" "$here/minio/minio" "$ctx/"
npm install --silent --no-audit --no-fund --prefix "$ctx" s3rver@3.7.1 >/dev/null
docker build -q -t clipsearch-standin/minio:s3rver "$ctx" >/dev/null
