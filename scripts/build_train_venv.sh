#!/usr/bin/env bash
# Build .venv-train: PyTorch (CPU) + onnx + onnxruntime for training and exporting the tiny
# `shapes` CLIP. Kept apart from the gateway venv because the gateway must never need torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv-train}"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# torch 2.13.0 resolves to a CPU build from the local wheel cache on these machines.
# onnx 1.22: newer releases need protobuf>=6.31 (see the shared field notes).
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "onnx==1.22.0" onnxruntime
# The project itself, for the CLIP tokenizer and the shapes generator.
"$VENV/bin/python" -m pip install --quiet -e .
"$VENV/bin/python" -c "import torch, onnx, onnxruntime, clipsearch; print('torch', torch.__version__, 'onnx', onnx.__version__, 'ort', onnxruntime.__version__)"
