"""What a model folder says about itself: one :class:`ModelConfig`, whatever the layout.

clip-server's layout (``textual.onnx`` + ``visual.onnx``) says little: CLIP's BPE, mean/std and
resize-and-crop are implied, and ``clipsearch.json`` may add the rest. Immich's layout says
more (``config.json``, ``visual/preprocess_cfg.json``, the tokenizer files); it is read by
:mod:`clipsearch.encoder.layouts`, and ``clipsearch.json`` at the folder's root overrides both.
"""

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
    # "clip-server" (textual.onnx/visual.onnx) or "immich" (textual/ + visual/ + config.json).
    layout: str = "clip-server"
    # "shortest": shortest side to the size, then centre crop (CLIP); "squash": both sides to
    # the size without crop (SigLIP). Pillow's name of the resampling filter.
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    # "clip-bpe" (the project's own, bit-identical to clip-server) or "tokenizer.json".
    tokenizer: str = "clip-bpe"
    # open_clip's text cleaning: None (collapse whitespace) or "canonicalize" (SigLIP: also
    # strip punctuation and lower-case).
    text_clean: str | None = None
    # NLLB-CLIP: a FLORES-200 language code is put before the text ("flores200"), else None.
    language_prefix: str | None = None
    # "cosine" (CLIP) or "sigmoid" (SigLIP: p = sigmoid(scale * cos + bias); same ranking).
    score: str = "cosine"
    logit_scale: float | None = None
    logit_bias: float | None = None
    # Languages the text tower was trained on (ISO 639-1), None when not known.
    languages: tuple[str, ...] | None = None

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)


def _triple(value: Any, field: str, path: Path) -> tuple[float, float, float]:
    if not isinstance(value, Sequence) or len(value) != 3:
        raise EncoderError(f"{path}: {field} must be a list of 3 numbers")
    a, b, c = (float(v) for v in value)
    return a, b, c


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object, or :class:`EncoderError` naming the file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise EncoderError(f"{path} must hold a JSON object")
    return raw


def read_model_config(folder: Path, default_name: str) -> ModelConfig:
    """The folder's config: its layout's own files, then ``clipsearch.json`` over them.

    A real clip-server download has neither; the loader then derives size, dim and
    fingerprint from the graphs and the files (CLIP mean/std, context 77).
    """
    from clipsearch.encoder.layouts import IMMICH, detect_layout, read_immich_config

    base = ModelConfig(name=default_name)
    if detect_layout(folder) == IMMICH:
        base = read_immich_config(folder, default_name)
    path = folder / CONFIG_FILE
    if not path.is_file():
        return base
    return apply_clipsearch_json(base, read_json_object(path), path)


def apply_clipsearch_json(base: ModelConfig, raw: dict[str, Any], path: Path) -> ModelConfig:
    """``clipsearch.json``'s keys over ``base`` (keys absent or null keep the base value)."""
    cfg = base.with_(name=str(raw.get("name") or base.name))
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
    if isinstance(raw.get("languages"), list):
        cfg = cfg.with_(languages=tuple(str(x) for x in raw["languages"]))
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
