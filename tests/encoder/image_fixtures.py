"""Generated test images in every mode the preprocessing must handle (no binary fixtures)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def scene(width: int, height: int, seed: int) -> np.ndarray:
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


def _save(img: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    img.save(path, format=fmt, **kwargs)
    return path


def make_images(folder: Path) -> dict[str, Path]:
    """Write the parity fixture images into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(scene(640, 480, 1))
    rgba_arr = np.dstack([scene(500, 400, 2), np.zeros((400, 500), np.uint8)])
    # Alpha from fully transparent (left) to opaque (right), plus an opaque disc.
    rgba_arr[..., 3] = np.linspace(0, 255, 500, dtype=np.float32)[None, :].astype(np.uint8)
    palette = Image.fromarray(scene(300, 200, 3)).quantize(colors=64)
    palette.info["transparency"] = 0
    gray16 = (scene(320, 240, 4)[..., 0].astype(np.uint16) * 257) ^ 0x0F0F
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90 degrees clockwise to display
    return {
        "rgb_jpeg": _save(rgb, folder / "rgb.jpg", "JPEG", quality=90),
        "large_jpeg": _save(
            Image.fromarray(scene(4000, 3000, 5)), folder / "large.jpg", "JPEG", quality=90
        ),
        "rgba_png": _save(Image.fromarray(rgba_arr, "RGBA"), folder / "rgba.png", "PNG"),
        "palette_png": _save(palette, folder / "palette.png", "PNG"),
        "gray_png": _save(rgb.convert("L"), folder / "gray.png", "PNG"),
        "gray_alpha_png": _save(
            Image.fromarray(rgba_arr, "RGBA").convert("LA"), folder / "la.png", "PNG"
        ),
        "gray16_png": _save(Image.fromarray(gray16), folder / "gray16.png", "PNG"),
        "cmyk_jpeg": _save(rgb.convert("CMYK"), folder / "cmyk.jpg", "JPEG", quality=92),
        "exif_jpeg": _save(
            Image.fromarray(scene(400, 260, 6)), folder / "exif.jpg", "JPEG", exif=exif
        ),
        "tiny_png": _save(Image.fromarray(scene(10, 300, 7)), folder / "tiny.png", "PNG"),
        "webp": _save(Image.fromarray(scene(333, 222, 8)), folder / "img.webp", "WEBP"),
        "gif": _save(Image.fromarray(scene(240, 180, 9)).quantize(), folder / "img.gif", "GIF"),
        "bmp": _save(Image.fromarray(scene(225, 300, 10)), folder / "img.bmp", "BMP"),
        "tiff": _save(Image.fromarray(scene(301, 229, 11)), folder / "img.tiff", "TIFF"),
        "bilevel_png": _save(rgb.convert("1"), folder / "bilevel.png", "PNG"),
    }


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of ``width`` x ``height`` zeros, a few hundred KB compressed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A small RGB JPEG."""
    buf = io.BytesIO()
    Image.fromarray(scene(width, height, seed)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
