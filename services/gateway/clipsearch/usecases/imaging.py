"""Validate uploaded image bytes before anything is encoded or written, decoding each
picture once for everything that needs its pixels."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clipsearch.core.errors import InvalidRequest, TooLarge
from clipsearch.encoder.protocol import Encoder, PixelEncoder, PixelTensor, Vectors, pixel_path
from clipsearch.usecases.common import run_sync
from clipsearch.usecases.pixel_budget import PixelBudget, decoded_pixels

if TYPE_CHECKING:
    from PIL import Image

# Validation only needs the pixels decoded, not at full scale (CLIP inputs are ~224 px).
DRAFT_SIZE = 224


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    content_type: str


def file_too_large(max_bytes: int, what: str = "file", size: int | None = None) -> TooLarge:
    """The error of a file over ``max_bytes`` (``size`` when known: a reader that stops one
    byte past the limit does not know it)."""
    said = f"is {size} bytes, more" if size is not None else "is larger"
    return TooLarge(
        f"{what} {said} than the limit of {max_bytes} bytes",
        code="file_too_large",
        details={"max_bytes": max_bytes},
    )


def check_size(data: bytes, *, max_bytes: int, what: str = "image") -> None:
    if not data:
        raise InvalidRequest(f"{what} is empty", code="empty_file")
    if len(data) > max_bytes:
        raise file_too_large(max_bytes, what, len(data))


@dataclass(frozen=True, slots=True)
class Inspected:
    """An upload that decoded: what is stored about it, the upright picture (for the
    thumbnail) and, when the encoder has a pixel path, the model input made from it."""

    info: ImageInfo
    image: Image.Image
    pixels: PixelTensor | None = None


def inspect_image(
    data: bytes, *, max_pixels: int, budget: PixelBudget, encoder: Encoder | None = None
) -> Inspected:
    """Fully decode ``data`` (so a truncated file fails here, not in the encoder), once:
    the picture returned is what the encoder (:func:`encode_pictures`) and the thumbnail
    start from. Raises :class:`~clipsearch.encoder.protocol.ImageDecodeError`
    (``invalid_image`` or ``image_too_large``). Blocking: call it in a worker thread; it
    waits while the decode would take ``budget`` past its megapixels."""
    # draft_size: a big JPEG decodes at reduced scale (all of it, so truncation still
    # fails) while the reported size stays the original one; with a pixel encoder, at
    # the scale its preprocessing expects, so the vector is the one it computes itself.
    pixel = pixel_path(encoder) if encoder is not None else None
    draft = pixel.input_size() if pixel is not None else DRAFT_SIZE
    with budget.hold(decoded_pixels(data, draft)):
        return _decode(data, max_pixels, draft, pixel)


def _decode(data: bytes, max_pixels: int, draft: int, pixel: PixelEncoder | None) -> Inspected:
    from clipsearch.encoder.preprocess import decode_image

    decoded = decode_image(data, max_pixels=max_pixels, draft_size=draft)
    info = decoded.info
    fmt = info.format.upper()
    content_type = {
        "JPEG": "image/jpeg",
        "MPO": "image/jpeg",
        "PNG": "image/png",
        "GIF": "image/gif",
        "WEBP": "image/webp",
        "BMP": "image/bmp",
        "TIFF": "image/tiff",
    }.get(fmt, "application/octet-stream")
    # The model input is made now, while the picture is decoded: a caller holding many
    # uploads then keeps small tensors, not full-size pictures, until they are encoded.
    pixels = pixel.preprocess(decoded.image) if pixel is not None else None
    return Inspected(ImageInfo(info.width, info.height, content_type), decoded.image, pixels)


async def encode_pictures(
    encoder: Encoder, data: Sequence[bytes], pixels: Sequence[PixelTensor | None]
) -> Vectors:
    """Vectors of inspected pictures: from their model inputs (:attr:`Inspected.pixels`)
    when the encoder has a pixel path, so nothing is decoded twice, else from the bytes (a
    remote encoder decodes them itself)."""
    pixel = pixel_path(encoder)
    if pixel is None or any(p is None for p in pixels):
        return await encoder.encode_images(data)
    batch = np.stack([p for p in pixels if p is not None])
    return await run_sync(pixel.encode_pixels, batch)


def decode_base64(text: str, *, max_bytes: int) -> bytes:
    """Bytes of a base64 image (a ``data:`` URI prefix is allowed)."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    # 4 base64 characters carry 3 bytes: refuse early instead of decoding a huge string.
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise file_too_large(max_bytes, "image_base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("image_base64 is not valid base64", code="invalid_base64") from exc
    check_size(data, max_bytes=max_bytes, what="image_base64")
    return data
