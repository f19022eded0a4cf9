"""Validate uploaded image bytes before anything is encoded or written."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from clipsearch.core.errors import InvalidRequest, TooLarge

# Validation only needs the pixels decoded, not at full scale (CLIP inputs are ~224 px).
DRAFT_SIZE = 224


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    content_type: str


def check_size(data: bytes, *, max_bytes: int, what: str = "image") -> None:
    if not data:
        raise InvalidRequest(f"{what} is empty", code="empty_file")
    if len(data) > max_bytes:
        raise TooLarge(
            f"{what} is {len(data)} bytes, more than the limit of {max_bytes}",
            code="file_too_large",
            details={"max_bytes": max_bytes},
        )


def inspect_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Fully decode ``data`` (so a truncated file fails here, not in the encoder) and return
    its size and type; :class:`InvalidRequest` with ``invalid_image`` or
    ``image_too_large`` otherwise. Blocking: call it in a worker thread."""
    from clipsearch.encoder.preprocess import decode_image

    # draft_size: a big JPEG decodes at reduced scale (all of it, so truncation still
    # fails) while the reported size stays the original one.
    info = decode_image(data, max_pixels=max_pixels, draft_size=DRAFT_SIZE).info
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
    return ImageInfo(width=info.width, height=info.height, content_type=content_type)


def decode_base64(text: str, *, max_bytes: int) -> bytes:
    """Bytes of a base64 image (a ``data:`` URI prefix is allowed)."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    # 4 base64 characters carry 3 bytes: refuse early instead of decoding a huge string.
    if len(text) > (max_bytes * 4) // 3 + 8:
        raise TooLarge(
            f"image_base64 decodes to more than the limit of {max_bytes} bytes",
            code="file_too_large",
            details={"max_bytes": max_bytes},
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("image_base64 is not valid base64", code="invalid_base64") from exc
    check_size(data, max_bytes=max_bytes, what="image_base64")
    return data
