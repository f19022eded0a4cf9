"""Helpers shared by the test packages: test pictures and free ports, one home each.

Pictures are generated, never read from disk, and deterministic in their arguments.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from clipsearch.bench.loopback import free_port
from clipsearch.bench.pixels import png_of_zeros

ROOT = Path(__file__).resolve().parents[1]
# The tiny CLIP trained here on generated shapes (services/encoder/models/shapes).
SHAPES_MODEL = ROOT / "services" / "encoder" / "models" / "shapes"

__all__ = [
    "ROOT",
    "SHAPES_MODEL",
    "encoded",
    "free_port",
    "jpeg_bytes",
    "noise",
    "photo",
    "png_bomb",
    "scene",
    "second_model",
    "solid",
]


def second_model(folder: Path) -> Path:
    """A second model folder made from the shapes model: the same graphs with every 2-D
    float weight nudged by seeded noise (2 % of its spread), so another fingerprint
    (``shapes-tiny-v2``), the same dim and similar but different vectors. fp32, not an int8
    copy: dynamic quantisation scales activations per batch, so an int8 model's vectors
    depend on what they were batched with, and exact scores could not be predicted. Made
    once per ``folder``."""
    import json

    import onnx
    from onnx import numpy_helper

    from clipsearch.encoder.quantize import METADATA_FILE, MODEL_FILES, write_metadata

    if (folder / METADATA_FILE).exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for name in MODEL_FILES:
        model = onnx.load(str(SHAPES_MODEL / name))
        for init in model.graph.initializer:
            weights = numpy_helper.to_array(init)
            # 2-D float weights; not the causal mask (it holds -inf).
            if weights.dtype == np.float32 and weights.ndim == 2 and np.isfinite(weights).all():
                spread = float(weights.std()) or 1.0
                noisy = weights + rng.normal(0, 0.02 * spread, weights.shape).astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), init.name))
        onnx.save(model, str(folder / name))
    fields = json.loads((SHAPES_MODEL / METADATA_FILE).read_text(encoding="utf-8"))
    for key in ("fingerprint", "fingerprint_definition", "files", "training"):
        fields.pop(key, None)
    fields["name"] = "shapes-tiny-v2"
    fields["derived_from"] = "shapes-tiny, 2-D weights + N(0, 0.02 std) noise, seed 7"
    write_metadata(folder, **fields)
    return folder


def encoded(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    """``img`` saved in ``fmt`` (``save`` options as keywords)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def noise(seed: int, size: tuple[int, int] = (40, 36), fmt: str = "PNG", **kwargs: object) -> bytes:
    """Random RGB pixels of ``size`` (width, height): distinct bytes for distinct seeds."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return encoded(Image.fromarray(arr), fmt, **kwargs)


def solid(
    size: tuple[int, int] = (8, 8),
    color: object = (255, 0, 0),
    mode: str = "RGB",
    fmt: str = "PNG",
) -> bytes:
    """One colour all over (any PIL ``mode``)."""
    return encoded(Image.new(mode, size, color), fmt)  # type: ignore[arg-type]


def scene(width: int, height: int, seed: int) -> npt.NDArray[np.uint8]:
    """A photo-like RGB uint8 array: smooth gradients, shapes with hard edges, mild noise.

    Pure noise would exaggerate resampling differences; flat colours would hide them.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), dtype=np.float32)
    for c in range(3):
        fx, fy = rng.uniform(1, 6, size=2)
        phase = rng.uniform(0, 6.28)
        img[..., c] = 128 + 90 * np.sin(fx * 6.28 * x / width + phase) * np.cos(
            fy * 6.28 * y / height
        )
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.25) * min(width, height)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[inside] = rng.uniform(0, 255, size=3)
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A small RGB JPEG of a :func:`scene`."""
    return encoded(Image.fromarray(scene(width, height, seed)), "JPEG", quality=85)


def photo(width: int, height: int, seed: int) -> Image.Image:
    """Photo-like content: smooth colour gradients, a few shapes, mild sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            128 + 100 * np.sin(x / width * 3 + seed),
            128 + 100 * np.cos(y / height * 4),
            128 + 80 * np.sin((x + y) / (width + height) * 6),
        ],
        axis=-1,
    )
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(20, height // 4)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of ``width`` x ``height`` zeros, a few hundred KB compressed,
    built without allocating its pixels (the one builder: ``clipsearch bench pixels``'s)."""
    return png_of_zeros(width, height)
