#!/bin/sh
# Start clip-server with the flow given as the first argument (default: the torch flow).
# CLIP_NUM_THREADS=0 (the default) means "one thread per CPU this container may use":
# without OMP_NUM_THREADS the ONNX executor oversubscribes the cores and runs slower.
set -eu
if [ "${CLIP_NUM_THREADS:-0}" = "0" ]; then
  CLIP_NUM_THREADS="$(nproc)"
  export CLIP_NUM_THREADS
fi
exec python -m clip_server "${1:-/opt/clip/flow-torch.yml}"
