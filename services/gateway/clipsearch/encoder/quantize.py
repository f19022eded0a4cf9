"""int8 copies of model folders (dynamic quantisation) and the folder metadata file.

A model folder holds ``textual.onnx`` and ``visual.onnx`` in clip-server's ONNX layout,
plus ``clipsearch.json``, which records the model's fingerprint
(:func:`clipsearch.encoder.model_config.fingerprint_files`, the one definition).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from clipsearch.encoder.model_config import fingerprint_files

MODEL_FILES = ("textual.onnx", "visual.onnx")
METADATA_FILE = "clipsearch.json"
FINGERPRINT_DEFINITION = "sha256(bytes of textual.onnx + bytes of visual.onnx)"


def fingerprint(model_dir: Path) -> str:
    """The fingerprint of the model folder ``model_dir`` (see :func:`fingerprint_files`)."""
    return fingerprint_files(*(model_dir / name for name in MODEL_FILES))


def file_entries(model_dir: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256", "bytes"}}`` for both ONNX files."""
    return {
        name: {
            "sha256": fingerprint_files(model_dir / name),
            "bytes": (model_dir / name).stat().st_size,
        }
        for name in MODEL_FILES
    }


def write_metadata(model_dir: Path, **fields: Any) -> dict[str, Any]:
    """Write ``clipsearch.json``: ``fields`` plus the fingerprint and per-file hashes."""
    metadata = dict(fields)
    metadata["fingerprint"] = fingerprint(model_dir)
    metadata["fingerprint_definition"] = FINGERPRINT_DEFINITION
    metadata["files"] = file_entries(model_dir)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def quantize_model_dir(src: Path, dst: Path) -> dict[str, Any]:
    """Write an int8 copy of the model folder ``src`` to ``dst`` and return its metadata.

    Weights of MatMul/Gemm (and embedding Gathers) become int8 with per-tensor scales;
    activations are quantised on the fly (``quantize_dynamic``), so no calibration data is
    needed. ``clipsearch.json`` is copied with ``quantization`` set and the fingerprint and
    file hashes recomputed; without a source ``clipsearch.json`` only those are written.
    """
    # onnxruntime.quantization pulls in onnx; keep the import off the gateway's start-up path.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        quantize_dynamic(src / name, dst / name, weight_type=QuantType.QInt8)
    for extra in dst.glob("*-opt.onnx"):  # older onnxruntime left pre-processed copies behind
        extra.unlink()
    fields: dict[str, Any] = {}
    source_meta = src / METADATA_FILE
    if source_meta.exists():
        fields = json.loads(source_meta.read_text(encoding="utf-8"))
        for key in ("fingerprint", "fingerprint_definition", "files"):
            fields.pop(key, None)
        fields["name"] = f"{fields.get('name', src.name)}-int8"
    fields["quantization"] = "int8-dynamic"
    fields["source_fingerprint"] = fingerprint(src)
    for name in ("NOTICE", "README.md"):
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)
    return write_metadata(dst, **fields)
