"""Generated test pictures: photo-like content in any size, encoded in any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


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


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()
