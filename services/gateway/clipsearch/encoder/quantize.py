"""int8 copies of model folders, and the folder metadata file.

A model folder holds the two graphs (``textual.onnx`` + ``visual.onnx`` in clip-server's
layout, ``textual/model.onnx`` + ``visual/model.onnx`` in Immich's) plus ``clipsearch.json``,
which records the model's fingerprint (:func:`clipsearch.encoder.model_config.
fingerprint_files`, the one definition). An int8 copy is **a model of its own**: other bytes,
so another fingerprint, and a collection built with one is never searched with the other.

Two methods:

* ``static`` (``clipsearch quantize``, what ``CLIPSEARCH_ENCODER_RUNTIME=int8`` is for): the
  image tower gets ONNX Runtime's static QDQ quantisation, int8 weights per channel, uint8
  activations whose ranges are calibrated (MinMax) on pictures: the user's own folder, or
  pictures the project generates (:mod:`clipsearch.demo.shapes`). Only MatMul/Gemm/Conv
  with a weight are quantised: LayerNorm, Softmax, the residual adds and attention's
  activation x activation MatMuls (q.k, attn.v) stay float. Quantising those too cost R@1
  0.015 on the shapes model's 1,000 held-out pictures, keeping them float 0.003 (the test
  gates 0.01). The text tower gets dynamic quantisation: its sequence length varies per
  query, and its activation ranges are then measured per call.
* ``dynamic``: both towers dynamic (no calibration data needed).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.encoder.model_config import fingerprint_files
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.protocol import EncoderError

MODEL_FILES = ("textual.onnx", "visual.onnx")
METADATA_FILE = "clipsearch.json"
FINGERPRINT_DEFINITION = "sha256(bytes of textual.onnx + bytes of visual.onnx)"
INT8_SUFFIX = "-int8"
STATIC = "static"
DYNAMIC = "dynamic"
# Quantised ops of the static method: the weights' ops (see the module docstring).
STATIC_OPS = ("MatMul", "Gemm", "Conv")
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def reduce_range() -> bool:
    """7-bit weights where the CPU has no int8 dot-product instructions (VNNI, AMX): there
    ONNX Runtime's uint8 x int8 kernels (AVX2's ``vpmaddubsw``) saturate 16-bit sums with
    8-bit weights. Measured on an AVX2-only AMD EPYC: text->image R@1 0.013 below fp32
    with 8 bits (the gate is 0.01)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    if "avx2" not in flags:  # not x86 (ARM's int8 kernels do not saturate this way)
        return False
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def fingerprint(model_dir: Path) -> str:
    """The fingerprint of the model folder ``model_dir`` (see :func:`fingerprint_files`)."""
    files = ModelFiles(model_dir)
    return fingerprint_files(files.textual, files.visual)


def _graph_paths(model_dir: Path) -> dict[str, Path]:
    files = ModelFiles(model_dir)
    return {
        files.textual.relative_to(model_dir).as_posix(): files.textual,
        files.visual.relative_to(model_dir).as_posix(): files.visual,
    }


def file_entries(model_dir: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256", "bytes"}}`` for both ONNX files."""
    return {
        name: {"sha256": fingerprint_files(path), "bytes": path.stat().st_size}
        for name, path in _graph_paths(model_dir).items()
    }


def write_metadata(model_dir: Path, **fields: Any) -> dict[str, Any]:
    """Write ``clipsearch.json``: ``fields`` plus the fingerprint and per-file hashes."""
    metadata = dict(fields)
    metadata["fingerprint"] = fingerprint(model_dir)
    metadata["fingerprint_definition"] = FINGERPRINT_DEFINITION
    metadata["files"] = file_entries(model_dir)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """The folder's ``clipsearch.json`` as a dict ({} when absent or unreadable)."""
    try:
        raw = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def is_int8(model_dir: Path) -> bool:
    """Whether the folder's metadata says it is an int8 copy."""
    return str(read_metadata(model_dir).get("quantization", "")).startswith("int8")


def int8_folder(model_dir: Path) -> Path:
    """Where ``clipsearch quantize`` writes the int8 copy by default: ``<folder>-int8``."""
    return model_dir.with_name(model_dir.name + INT8_SUFFIX)


def int8_files(files: ModelFiles) -> ModelFiles:
    """The int8 model for ``CLIPSEARCH_ENCODER_RUNTIME=int8``: the folder itself if it is an
    int8 copy, else its ``<folder>-int8`` sibling, made from *this* folder.

    Raises :class:`EncoderError` naming the command that makes it.
    """
    if is_int8(files.folder):
        return files
    target = int8_folder(files.folder)
    if not (ModelFiles(target).complete() and is_int8(target)):
        raise EncoderError(
            f"CLIPSEARCH_ENCODER_RUNTIME=int8: {files.folder} has no int8 copy at {target}; "
            f"make it with `clipsearch quantize --model-path {files.folder}` (or point "
            "CLIPSEARCH_MODEL_PATH at an int8 folder)"
        )
    source = read_metadata(files.folder).get("fingerprint")
    made_from = read_metadata(target).get("source_fingerprint")
    if source and made_from and source != made_from:
        raise EncoderError(
            f"CLIPSEARCH_ENCODER_RUNTIME=int8: {target} was made from another model "
            f"(source fingerprint {made_from}, not {source}); run `clipsearch quantize` again"
        )
    return ModelFiles(target)


def picture_files(folder: Path, limit: int) -> list[Path]:
    """Up to ``limit`` pictures under ``folder`` (recursively, sorted: reproducible)."""
    found = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
    )
    return found[:limit]


def _copy_folder(src: Path, dst: Path) -> None:
    """Everything but the graphs (configs, tokenizer files, NOTICE, README)."""
    dst.mkdir(parents=True, exist_ok=True)
    graphs = set(_graph_paths(src))
    for path in src.rglob("*"):
        rel = path.relative_to(src).as_posix()
        if not path.is_file() or rel in graphs or rel == METADATA_FILE:
            continue
        if path.suffix in (".part", ".lock", ".md5", ".sha256", ".git-sha1"):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)


class _Batches:
    """ONNX Runtime's ``CalibrationDataReader``: one feed dict per batch, then None."""

    def __init__(self, name: str, batches: Sequence[npt.NDArray[np.float32]]) -> None:
        self._feeds: Iterator[dict[str, npt.NDArray[np.float32]]] = iter(
            [{name: b} for b in batches]
        )

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._feeds, None)


def calibration_pixels(
    src: Path, model_name: str, pictures: Path | None, count: int, seed: int = 5
) -> tuple[npt.NDArray[np.float32], str]:
    """``count`` preprocessed pictures [N,3,S,S] for the model in ``src`` and where they came
    from: the user's folder ``pictures``, or generated shape pictures."""
    from clipsearch.encoder.local import LocalEncoder

    enc = LocalEncoder(ModelFiles(src), model_name=model_name)
    if pictures is not None:
        paths = picture_files(pictures, count)
        if not paths:
            raise EncoderError(f"no pictures ({', '.join(PICTURE_SUFFIXES)}) under {pictures}")
        rows = [enc.preprocess_image(p.read_bytes()) for p in paths]
        origin = f"{len(rows)} pictures from {pictures}"
    else:
        from clipsearch.demo.shapes import iter_samples

        rows = [enc.preprocess(image) for image, _ in iter_samples(count, seed)]
        origin = f"{len(rows)} generated pictures (clipsearch.demo.shapes, seed {seed})"
    return np.stack(rows).astype(np.float32), origin


def _quantize_visual_static(src: Path, dst: Path, pixels: npt.NDArray[np.float32]) -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    weights |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    # Attention's q.k and attn.v multiply two activations: their int8 ranges cost accuracy.
    both_activations = [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and not any(i in weights for i in n.input)
    ]
    del model
    graph = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    first = graph.get_inputs()[0]
    fixed = first.shape[0] if isinstance(first.shape[0], int) else None
    step = fixed or 8
    batches = [pixels[i : i + step] for i in range(0, len(pixels), step)]
    if fixed is not None:
        batches = [b for b in batches if len(b) == fixed]
    del graph
    quantize_static(
        src,
        dst,
        _Batches(first.name, batches),  # duck-typed CalibrationDataReader
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        # uint8 activations x int8 weights: x86's fast int8 path (VNNI, AMX). With int8
        # activations the same graph ran slower than fp32 here (BENCHMARKS.md).
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=list(STATIC_OPS),
        nodes_to_exclude=both_activations,
        calibrate_method=CalibrationMethod.MinMax,
        reduce_range=reduce_range(),
    )


def quantize_model_dir(
    src: Path,
    dst: Path,
    *,
    method: str = DYNAMIC,
    pictures: Path | None = None,
    count: int = 64,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Write an int8 copy of the model folder ``src`` to ``dst`` and return its metadata.

    ``method`` ``dynamic``: MatMul/Gemm (and embedding Gather) weights int8, activations
    quantised on the fly. ``static``: the image tower calibrated on ``count`` pictures (from
    ``pictures``, or generated), see the module docstring. ``clipsearch.json`` is copied with
    ``quantization`` set and the fingerprint and file hashes recomputed.
    """
    # onnxruntime.quantization pulls in onnx; keep the import off the gateway's start-up path.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if method not in (STATIC, DYNAMIC):
        raise ValueError(f"unknown quantisation method {method!r} (static or dynamic)")
    if not ModelFiles(src).complete():
        raise EncoderError(f"{src} holds no model (textual and visual ONNX files)")
    started = time.perf_counter()
    _copy_folder(src, dst)
    source_meta = read_metadata(src)
    fields: dict[str, Any] = {k: v for k, v in source_meta.items() if k not in ("files",)}
    for key in ("fingerprint", "fingerprint_definition"):
        fields.pop(key, None)
    name = str(fields.get("name") or model_name or src.name)
    fields["name"] = f"{name}{INT8_SUFFIX}"
    src_files, dst_files = ModelFiles(src), ModelFiles(dst)
    dst_files.textual.parent.mkdir(parents=True, exist_ok=True)
    dst_files.visual.parent.mkdir(parents=True, exist_ok=True)
    # Weight type QInt8 on both: the per-tensor scales of dynamic quantisation.
    quantize_dynamic(
        src_files.textual,
        dst_files.textual,
        weight_type=QuantType.QInt8,
        reduce_range=reduce_range(),
    )
    if method == STATIC:
        pixels, origin = calibration_pixels(src, name, pictures, count)
        _quantize_visual_static(src_files.visual, dst_files.visual, pixels)
        fields["quantization"] = "int8-static"
        fields["quantization_detail"] = {
            "visual": "static QDQ, int8 weights per channel, uint8 activations, MinMax on "
            + origin
            + f"; ops {', '.join(STATIC_OPS)} with a weight",
            "textual": "dynamic, int8 weights",
        }
    else:
        quantize_dynamic(src_files.visual, dst_files.visual, weight_type=QuantType.QInt8)
        fields["quantization"] = "int8-dynamic"
    for extra in dst.rglob("*-opt.onnx"):  # older onnxruntime left pre-processed copies behind
        extra.unlink()
    fields["reduce_range"] = reduce_range()  # 7-bit weights: see reduce_range()
    fields["source_fingerprint"] = source_meta.get("fingerprint") or fingerprint(src)
    fields["quantize_seconds"] = round(time.perf_counter() - started, 1)
    return write_metadata(dst, **fields)
