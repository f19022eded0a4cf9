"""The gateway's shrink-before-send must not change the vectors (cosine >= 0.9999).

Measured with the local encoder on the service model: the vector of the original upload
against the vector of the bytes the service encoder would send instead.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.service_images import SHRINK_FACTOR, prepare_image
from tests.helpers import encoded, photo
from tests.service.conftest import MODEL_NAME

IMAGE_SIZE = 224
MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def local(service_model: Path) -> LocalEncoder:
    return LocalEncoder(ModelFiles(service_model), model_name=MODEL_NAME)


def cosine_after_shrink(local: LocalEncoder, data: bytes) -> tuple[float, bytes]:
    wire = prepare_image(data, image_size=IMAGE_SIZE, max_pixels=MAX_PIXELS)
    assert wire.reencoded
    vecs = asyncio.run(local.encode_images([data, wire.data]))
    return float(vecs[0] @ vecs[1]), wire.data


@pytest.mark.parametrize(
    ("size", "fmt", "mode"),
    [
        ((4000, 3000), "JPEG", "RGB"),  # a phone photo
        ((1200, 1600), "JPEG", "RGB"),  # portrait, shortest side just over 2x
        ((2000, 1500), "PNG", "RGB"),
        ((1800, 1000), "PNG", "RGBA"),
    ],
)
def test_shrunk_image_gives_the_same_vector(
    local: LocalEncoder, size: tuple[int, int], fmt: str, mode: str
) -> None:
    img = photo(*size, seed=size[0])
    if mode == "RGBA":
        img.putalpha(Image.fromarray(np.full(size[::-1], 200, dtype=np.uint8)))
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    data = encoded(img, fmt, **({"quality": 92} if fmt in ("JPEG", "WEBP") else {}))

    cos, wire = cosine_after_shrink(local, data)

    with Image.open(io.BytesIO(wire)) as sent:
        assert min(sent.size) == IMAGE_SIZE * SHRINK_FACTOR
        assert sent.mode == img.mode  # the server resizes in the file's mode, like local
    assert cos >= 0.9999, f"{fmt} {size}: cosine {cos:.6f}"
    if fmt in ("JPEG", "PNG"):
        assert len(wire) < len(data) / 3  # the point of shrinking


def test_exif_rotated_photo_is_sent_upright(local: LocalEncoder) -> None:
    img = photo(600, 400, seed=7)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encoded(img, "JPEG", quality=95, exif=exif)

    cos, wire = cosine_after_shrink(local, data)

    with Image.open(io.BytesIO(wire)) as sent:
        assert sent.size == (400, 600)  # upright; not shrunk (shortest side < 448)
        assert sent.getexif().get(0x0112, 1) == 1
    assert cos >= 0.9999


def test_reencode_that_would_not_save_bytes_is_skipped() -> None:
    # A lossy WebP shrunk and stored losslessly as PNG grows: the original is sent.
    data = encoded(photo(2400, 1200, seed=9), "WEBP", quality=80)
    wire = prepare_image(data, image_size=IMAGE_SIZE, max_pixels=MAX_PIXELS)
    assert not wire.reencoded
    assert wire.data is data


def test_small_image_is_forwarded_unchanged() -> None:
    data = encoded(photo(400, 300, seed=1), "PNG")
    wire = prepare_image(data, image_size=IMAGE_SIZE, max_pixels=MAX_PIXELS)
    assert not wire.reencoded
    assert wire.data is data


def test_large_palette_image_is_not_resized() -> None:
    # Nearest-neighbour twice would pick other pixels than the local encoder's single pass.
    img = photo(1500, 1500, seed=3).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    data = encoded(img, "GIF")
    wire = prepare_image(data, image_size=IMAGE_SIZE, max_pixels=MAX_PIXELS)
    assert not wire.reencoded


def test_bad_images_are_refused_before_sending() -> None:
    from clipsearch.encoder.protocol import ImageDecodeError

    with pytest.raises(ImageDecodeError):
        prepare_image(b"not an image", image_size=IMAGE_SIZE, max_pixels=MAX_PIXELS)
    big = encoded(photo(300, 200, seed=2), "PNG")
    with pytest.raises(ImageDecodeError, match="too large"):
        prepare_image(big, image_size=IMAGE_SIZE, max_pixels=300 * 200 - 1)
