"""Model folder layouts: which files a folder holds and what its configs say.

Two layouts are read:

* ``clip-server`` (clip-as-service's ONNX files): ``textual.onnx`` and ``visual.onnx`` side by
  side; the tokenizer (CLIP BPE), mean/std and resize-and-crop are implied by CLIP.
* ``immich`` (the model repositories Immich publishes, e.g. ``immich-app/ViT-B-32__openai``)::

      config.json                   open_clip's model config: embed_dim, vision_cfg, text_cfg
      textual/model.onnx            "text" (open_clip) or "input_ids"+"attention_mask" (M-CLIP)
      textual/tokenizer.json        the Hugging Face tokenizer (read with ``tokenizers``)
      textual/tokenizer_config.json its pad token (padding goes to text_cfg.context_length)
      visual/model.onnx             input "image" float32 [B,3,S,S]
      visual/preprocess_cfg.json    size, mean, std, interpolation, resize_mode

  The keys are the ones Immich's machine-learning service reads (``immich_ml/models/clip``):
  ``text_cfg.context_length`` (default 77), ``text_cfg.tokenizer_kwargs.clean ==
  "canonicalize"`` (SigLIP's text cleaning), ``preprocess_cfg.resize_mode`` ("shortest" =
  resize + centre crop, the default for older configs; "squash" = resize without crop, SigLIP).
  NLLB-CLIP models get a FLORES-200 language code before the text, as Immich does.

Which text inputs a tower takes is read from the graph at load time (the model classes in
:mod:`clipsearch.encoder.towers`), not from the name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipsearch.encoder.model_config import ModelConfig, read_json_object
from clipsearch.encoder.preprocess import CLIP_MEAN, CLIP_STD
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.tokenizer import CONTEXT_LENGTH

CLIP_SERVER = "clip-server"
IMMICH = "immich"

MODEL_CONFIG = "config.json"
TEXTUAL_ONNX = "textual/model.onnx"
VISUAL_ONNX = "visual/model.onnx"
TOKENIZER_JSON = "textual/tokenizer.json"
TOKENIZER_CONFIG = "textual/tokenizer_config.json"
PREPROCESS_CFG = "visual/preprocess_cfg.json"
# Every file an Immich-layout folder needs (the catalog downloads these).
IMMICH_FILES: tuple[str, ...] = (
    MODEL_CONFIG,
    TEXTUAL_ONNX,
    TOKENIZER_JSON,
    TOKENIZER_CONFIG,
    VISUAL_ONNX,
    PREPROCESS_CFG,
)

RESIZE_MODES = ("shortest", "squash")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming")


@dataclass(frozen=True)
class LayoutPaths:
    """Where the two graphs of a folder are, by layout."""

    layout: str
    textual: Path
    visual: Path


def layout_paths(folder: Path) -> LayoutPaths | None:
    """The folder's layout and graph paths, or None if it holds neither layout's graphs.

    Immich's wins when a folder has both (a clip-server folder never has ``textual/``).
    """
    immich = LayoutPaths(IMMICH, folder / TEXTUAL_ONNX, folder / VISUAL_ONNX)
    if immich.textual.is_file() and immich.visual.is_file():
        return immich
    server = LayoutPaths(CLIP_SERVER, folder / "textual.onnx", folder / "visual.onnx")
    if server.textual.is_file() and server.visual.is_file():
        return server
    return None


def detect_layout(folder: Path) -> str | None:
    """``"immich"``, ``"clip-server"`` or None (not a model folder)."""
    paths = layout_paths(folder)
    return paths.layout if paths else None


def _require(folder: Path, rel: str) -> Path:
    path = folder / rel
    if not path.is_file():
        raise EncoderError(f"{folder} is in Immich's layout but has no {rel}")
    return path


def _square_size(value: Any, where: str) -> int:
    """open_clip writes ``size``/``image_size`` as an int or [h, w]; only squares are fed."""
    if isinstance(value, list | tuple):
        if len(value) != 2 or int(value[0]) != int(value[1]):
            raise EncoderError(f"{where}: only square image sizes are supported, got {value}")
        value = value[0]
    if not isinstance(value, int | float) or int(value) <= 0:
        raise EncoderError(f"{where}: bad image size {value!r}")
    return int(value)


def _triple(value: Any, where: str) -> tuple[float, float, float]:
    if isinstance(value, int | float):  # open_clip allows one number for all channels
        return float(value), float(value), float(value)
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise EncoderError(f"{where}: expected 3 numbers, got {value!r}")
    a, b, c = (float(v) for v in value)
    return a, b, c


def _is_nllb(name: str, text_cfg: dict[str, Any]) -> bool:
    # Immich decides by the model name; the tokenizer name says the same for renamed folders.
    base = name.rsplit("/", 1)[-1].lower()
    return base.startswith("nllb") or "nllb" in str(text_cfg.get("hf_tokenizer_name", "")).lower()


def read_immich_config(folder: Path, default_name: str) -> ModelConfig:
    """One :class:`ModelConfig` from an Immich-layout folder's ``config.json`` and
    ``visual/preprocess_cfg.json`` (the tokenizer files are read by the tokenizer)."""
    model_path = _require(folder, MODEL_CONFIG)
    model = read_json_object(model_path)
    pre_path = _require(folder, PREPROCESS_CFG)
    pre = read_json_object(pre_path)
    _require(folder, TOKENIZER_JSON)

    text_cfg = model.get("text_cfg") or {}
    vision_cfg = model.get("vision_cfg") or {}
    if not isinstance(text_cfg, dict) or not isinstance(vision_cfg, dict):
        raise EncoderError(f"{model_path}: text_cfg and vision_cfg must be objects")
    kwargs = text_cfg.get("tokenizer_kwargs") or {}
    clean = kwargs.get("clean") if isinstance(kwargs, dict) else None

    size_value = pre.get("size", vision_cfg.get("image_size"))
    size = _square_size(size_value, str(pre_path)) if size_value is not None else None
    resize_mode = str(pre.get("resize_mode", "shortest"))
    if resize_mode not in RESIZE_MODES:
        raise EncoderError(f"{pre_path}: unsupported resize_mode {resize_mode!r}")
    interpolation = str(pre.get("interpolation", "bicubic")).lower()
    if interpolation not in INTERPOLATIONS:
        raise EncoderError(f"{pre_path}: unsupported interpolation {interpolation!r}")

    # SigLIP models carry a logit bias (open_clip's init_logit_bias); their scores are
    # sigmoids. The trained scale and bias live in the weights, not in config.json: an
    # exporter may add "logit_scale"/"logit_bias" (the trained values) for calibrated scores.
    sigmoid = "init_logit_bias" in model or "logit_bias" in model
    dim = model.get("embed_dim")
    return ModelConfig(
        name=default_name,
        dim=int(dim) if isinstance(dim, int) else None,
        image_size=size,
        mean=_triple(pre.get("mean", CLIP_MEAN), f"{pre_path}: mean"),
        std=_triple(pre.get("std", CLIP_STD), f"{pre_path}: std"),
        context_length=int(text_cfg.get("context_length", CONTEXT_LENGTH)),
        layout=IMMICH,
        resize_mode=resize_mode,
        interpolation=interpolation,
        tokenizer="tokenizer.json",
        text_clean=str(clean) if clean else None,
        language_prefix="flores200" if _is_nllb(default_name, text_cfg) else None,
        score="sigmoid" if sigmoid else "cosine",
        logit_scale=_opt_float(model.get("logit_scale")),
        logit_bias=_opt_float(model.get("logit_bias")),
    )


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def score_from_cosine(cosine: float, cfg: ModelConfig) -> float:
    """A similarity as the model defines it: the cosine for CLIP; for SigLIP
    ``sigmoid(exp(logit_scale) * cos + logit_bias)`` when the config gives both (the
    ranking is the cosine's either way, the sigmoid only calibrates it)."""
    if cfg.score != "sigmoid" or cfg.logit_scale is None or cfg.logit_bias is None:
        return cosine
    z = math.exp(cfg.logit_scale) * cosine + cfg.logit_bias
    return 1.0 / (1.0 + math.exp(-z))
