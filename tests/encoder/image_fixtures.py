"""Generated test images in every mode the preprocessing must handle (no binary fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import scene

EXIF_ORIENTATION = 0x0112


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
