"""Image bytes -> CLIP pixel tensor, the way clip-server 0.8.2's ONNX executor does it.

clip-server decodes with docarray (``PIL.Image.open`` then ``.convert("RGB")``), turns the
uint8 array into a float tensor in [0, 1] (``ToTensor``), and only then resizes: bicubic,
shortest side to ``image_size``, antialiased, on *float* values (no rounding to uint8, no
clamping), then a centre crop and the CLIP normalisation. We reproduce that with Pillow's
32-bit float ("F") resampler, which is the algorithm torchvision's antialiased resize was
ported from, so no torch is needed in the gateway.

Deliberate differences from clip-server, each measured in ``tests/encoder``:

* EXIF orientation is applied (clip-server ignores it, so a phone photo is embedded on its
  side there). Callers that forward bytes to clip-server should forward the re-oriented image.
* Large JPEGs are decoded with ``Image.draft`` to a size still >= 2x the model input, which
  is several times faster; the effect on the tensor is small and bounded by the tests.
* Decoding is restricted to an allowlist of formats and refuses images over ``max_pixels``
  before their pixels are allocated (clip-server has no such limit).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from clipsearch.encoder.protocol import ImageDecodeError

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

# Formats a browser or a camera produces. MPO is how Pillow names many camera JPEGs.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# Draft mode may shrink a JPEG by 2/4/8 at decode time; keep at least this many times the
# model input on the shortest side so the bicubic resize still has real pixels to average.
DRAFT_FACTOR = 2

PixelTensor = npt.NDArray[np.float32]


class ImageInfo(NamedTuple):
    """What the gateway stores about an upload: size as displayed (after EXIF rotation)."""

    width: int
    height: int
    format: str


class DecodedImage(NamedTuple):
    """A fully decoded, upright image and the metadata of the original file."""

    image: Image.Image
    info: ImageInfo


def decode_image(data: bytes, *, max_pixels: int, draft_size: int | None = None) -> DecodedImage:
    """Decode ``data`` into an upright PIL image, refusing anything unsafe or unsupported.

    ``max_pixels`` is checked against the header before any pixel is decoded, so a
    decompression bomb costs a header parse. ``draft_size`` (the model's input size) lets a
    large JPEG decode at a reduced scale that keeps both sides >= ``DRAFT_FACTOR`` times it.
    The returned image keeps the file's mode (``preprocess`` converts it to RGB).

    Raises :class:`ImageDecodeError` with a reason a client can act on.
    """
    if not data:
        raise ImageDecodeError("empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"not a supported image (allowed formats: {', '.join(ALLOWED_FORMATS)})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageDecodeError(f"image too large (more than {max_pixels} pixels)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt image header: {exc}") from None

    fmt = img.format or "unknown"
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height} pixels (limit {max_pixels})"
        )

    if draft_size is not None and fmt in ("JPEG", "MPO"):
        target = draft_size * DRAFT_FACTOR
        # draft() picks the largest reduction that keeps both sides >= the requested size.
        img.draft(img.mode, (target, target))

    try:
        img.load()
        upright = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError:
        raise ImageDecodeError(f"image too large (more than {max_pixels} pixels)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None

    swapped = upright.size != img.size and upright.size == (img.size[1], img.size[0])
    info = ImageInfo(
        width=height if swapped else width, height=width if swapped else height, format=fmt
    )
    return DecodedImage(upright, info)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert to RGB exactly as clip-server (docarray) does: ``Image.convert("RGB")``."""
    return img if img.mode == "RGB" else img.convert("RGB")


def resized_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """Shortest side -> ``image_size``, the other side truncated (torchvision ``Resize``)."""
    if width <= height:
        return image_size, int(image_size * height / width)
    return int(image_size * width / height), image_size


def preprocess(
    img: Image.Image,
    image_size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> PixelTensor:
    """RGB, bicubic resize of the shortest side, centre crop, normalise -> float32 [3,S,S]."""
    rgb = to_rgb(img)
    new_w, new_h = resized_size(rgb.width, rgb.height, image_size)
    # torchvision's CenterCrop rounds the offset with Python's round (half to even).
    left = round((new_w - image_size) / 2.0)
    top = round((new_h - image_size) / 2.0)
    out = np.empty((3, image_size, image_size), dtype=np.float32)
    for c, band in enumerate(rgb.split()):
        # Resample in float without clamping, as torch does on the ToTensor output. The
        # resize is linear, so dividing by 255 afterwards differs only by float rounding.
        resized = band.convert("F").resize((new_w, new_h), Image.Resampling.BICUBIC)
        crop = resized.crop((left, top, left + image_size, top + image_size))
        out[c] = np.asarray(crop, dtype=np.float32)
    out /= np.float32(255.0)
    out -= np.asarray(mean, dtype=np.float32)[:, None, None]
    out /= np.asarray(std, dtype=np.float32)[:, None, None]
    return out


def load_and_preprocess(
    data: bytes,
    image_size: int,
    max_pixels: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    *,
    draft: bool = True,
) -> tuple[PixelTensor, ImageInfo]:
    """``decode_image`` + ``preprocess``: bytes -> (float32 [3,S,S], original metadata)."""
    decoded = decode_image(data, max_pixels=max_pixels, draft_size=image_size if draft else None)
    return preprocess(decoded.image, image_size, mean, std), decoded.info
