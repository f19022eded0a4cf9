"""What a model folder says about itself: ``clipsearch.json``, or values derived from it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clipsearch.encoder.preprocess import CLIP_MEAN, CLIP_STD
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.tokenizer import CONTEXT_LENGTH

CONFIG_FILE = "clipsearch.json"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to feed a model folder; None means "ask the graph" (at load)."""

    name: str
    dim: int | None = None
    image_size: int | None = None
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    context_length: int = CONTEXT_LENGTH
    fingerprint: str | None = None

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)


def _triple(value: Any, field: str, path: Path) -> tuple[float, float, float]:
    if not isinstance(value, Sequence) or len(value) != 3:
        raise EncoderError(f"{path}: {field} must be a list of 3 numbers")
    a, b, c = (float(v) for v in value)
    return a, b, c


def read_model_config(folder: Path, default_name: str) -> ModelConfig:
    """``folder/clipsearch.json`` if present, else defaults (CLIP mean/std, context 77).

    A real clip-server download has no such file; the loader then derives size, dim and
    fingerprint from the graphs and the files.
    """
    path = folder / CONFIG_FILE
    if not path.is_file():
        return ModelConfig(name=default_name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise EncoderError(f"{path} must hold a JSON object")
    cfg = ModelConfig(name=str(raw.get("name") or default_name))
    if raw.get("dim") is not None:
        cfg = cfg.with_(dim=int(raw["dim"]))
    if raw.get("image_size") is not None:
        cfg = cfg.with_(image_size=int(raw["image_size"]))
    if raw.get("mean") is not None:
        cfg = cfg.with_(mean=_triple(raw["mean"], "mean", path))
    if raw.get("std") is not None:
        cfg = cfg.with_(std=_triple(raw["std"], "std", path))
    if raw.get("context_length") is not None:
        cfg = cfg.with_(context_length=int(raw["context_length"]))
    if raw.get("fingerprint"):
        cfg = cfg.with_(fingerprint=str(raw["fingerprint"]))
    return cfg


def fingerprint_files(*paths: Path, chunk: int = 1 << 20) -> str:
    """sha256 over the bytes of the files, concatenated in order. Given ``textual.onnx`` then
    ``visual.onnx`` it is the model's fingerprint, the one definition every writer and
    reader of ``clipsearch.json`` uses; given one file, that file's sha256."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()
