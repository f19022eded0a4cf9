"""Image bytes -> CLIP pixel tensor, the way clip-server 0.8.2's ONNX executor does it.

clip-server (``clip._transform_blob``) opens the bytes with ``PIL.Image.open`` and runs
torchvision on the PIL image: ``Resize`` (bicubic, shortest side to ``image_size``, the other
side truncated) *in the file's own mode*, ``CenterCrop``, then ``.convert("RGB")``,
``ToTensor`` and the CLIP normalisation. Resizing before the RGB conversion matters: Pillow
resizes palette images with nearest-neighbour, RGBA/LA premultiplied by alpha (transparent
pixels come out black), and CMYK/grayscale in their own channels. Doing the same Pillow calls
gives bit-identical tensors without torch.

Deliberate differences from clip-server, each measured in ``tests/encoder``:

* EXIF orientation is applied (clip-server ignores it, so a phone photo is embedded on its
  side there). Callers that forward bytes to clip-server should forward the re-oriented image.
* Large JPEGs are decoded with ``Image.draft`` to a size still >= 2x the model input, which
  is several times faster; the effect on the tensor is small and bounded by the tests.
* 16-bit (and 32-bit/float) single-channel images are rescaled to 8 bits; clip-server's
  ``convert("RGB")`` clamps them, which makes most 16-bit PNGs a white square.
* Decoding is restricted to an allowlist of formats and refuses images over ``max_pixels``
  before their pixels are allocated (clip-server has no such limit).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clipsearch.encoder.protocol import ImageDecodeError, PixelTensor

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

# Formats a browser or a camera produces. MPO is how Pillow names many camera JPEGs.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# Draft mode may shrink a JPEG by 2/4/8 at decode time; keep at least this many times the
# model input on the shortest side so the bicubic resize still has real pixels to average.
DRAFT_FACTOR = 2

_EXIF_ORIENTATION = 0x0112
# The code of a decode refused for its size (a bomb), not for its content.
TOO_LARGE = "image_too_large"


class ImageInfo(NamedTuple):
    """What the gateway stores about an upload: size as displayed (after EXIF rotation)."""

    width: int
    height: int
    format: str


class DecodedImage(NamedTuple):
    """A fully decoded, upright image and the metadata of the original file.

    ``server_differs`` is True when clip-server, given the original bytes, would start from
    other pixels (EXIF rotation applied, 16-bit samples rescaled): whoever forwards the image
    to clip-server should then send a re-encode of ``image`` instead of the original bytes.
    """

    image: Image.Image
    info: ImageInfo
    server_differs: bool = False


# Modes whose samples are wider than 8 bits. Pillow's convert("RGB") clamps them to 255, so
# clip-server turns e.g. every 16-bit grayscale PNG into a white square; we rescale instead.
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _registered_formats() -> list[str]:
    # Pillow 13 has no separate MPO opener (its JPEG plugin reads MPO files); asking
    # Image.open for an unregistered format raises KeyError, so pass only known ones.
    Image.init()
    return [f for f in ALLOWED_FORMATS if f in Image.OPEN]


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
        img = Image.open(io.BytesIO(data), formats=_registered_formats())
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"not a supported image (allowed formats: {', '.join(ALLOWED_FORMATS)})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageDecodeError(
            f"image too large (more than {max_pixels} pixels)", code=TOO_LARGE
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt image header: {exc}") from None

    fmt = img.format or "unknown"
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image too large: {width}x{height} = {width * height} pixels (limit {max_pixels})",
            code=TOO_LARGE,
        )

    if draft_size is not None and fmt in ("JPEG", "MPO"):
        target = draft_size * DRAFT_FACTOR
        # draft() picks the largest reduction that keeps both sides >= the requested size.
        img.draft(img.mode, (target, target))

    try:
        img.load()
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        # 2..8 flip and/or rotate; exif_transpose copies the image, so only call it then.
        rotated = orientation in range(2, 9)
        upright = ImageOps.exif_transpose(img) if rotated else img
    except Image.DecompressionBombError:
        raise ImageDecodeError(
            f"image too large (more than {max_pixels} pixels)", code=TOO_LARGE
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None

    rescaled = upright.mode in _WIDE_MODES
    if rescaled:
        upright = _to_8bit(upright)
    swapped = orientation in (5, 6, 7, 8)  # the transposing orientations
    info = ImageInfo(
        width=height if swapped else width, height=width if swapped else height, format=fmt
    )
    return DecodedImage(upright, info, server_differs=rotated or rescaled)


def _to_8bit(img: Image.Image) -> Image.Image:
    """A single-channel image with wide samples -> mode "L" over the same dynamic range.

    16-bit integers map 0..65535 -> 0..255; 32-bit integers holding only 8-bit values are
    kept; floats in [0, 1] are scaled by 255, other floats clipped to 0..255.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        top = 1.0 if float(arr.max(initial=0.0)) <= 1.0 else 255.0
        scaled = np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255)
    elif img.mode == "I" and int(arr.max(initial=0)) <= 255:
        scaled = np.clip(arr, 0, 255)
    else:
        scaled = np.clip(arr.astype(np.float64) / 257.0, 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8))  # 2-D uint8 -> mode "L"


def to_rgb(img: Image.Image) -> Image.Image:
    """``img.convert("RGB")`` (what clip-server does after its resize and crop, not before)."""
    return img if img.mode == "RGB" else img.convert("RGB")


def resized_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """Shortest side -> ``image_size``, the other side truncated (torchvision ``Resize``)."""
    if width <= height:
        return image_size, int(image_size * height / width)
    return int(image_size * width / height), image_size


def resampling(name: str) -> Image.Resampling:
    """Pillow's filter for a config's ``interpolation`` name (``bicubic``, ``bilinear``...)."""
    try:
        return Image.Resampling[name.upper()]
    except KeyError:
        raise ValueError(f"unknown interpolation {name!r}") from None


def preprocess(
    img: Image.Image,
    image_size: int,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    *,
    resize_mode: str = "shortest",
    interpolation: str = "bicubic",
) -> PixelTensor:
    """Resize, (crop), RGB, normalise -> float32 [3,S,S].

    ``resize_mode`` ``"shortest"`` (CLIP, the default): the shortest side to ``image_size``,
    then a centre crop. ``"squash"`` (SigLIP): both sides to ``image_size``, nothing cut, the
    aspect ratio not kept. The order (resize and crop in the image's own mode, RGB last) is
    clip-server's.
    """
    resample = resampling(interpolation)
    if resize_mode == "squash":
        crop = img.resize((image_size, image_size), resample).convert("RGB")
    elif resize_mode == "shortest":
        new_w, new_h = resized_size(img.width, img.height, image_size)
        resized = img.resize((new_w, new_h), resample)
        # torchvision's CenterCrop rounds the offset with Python's round (half to even).
        left = round((new_w - image_size) / 2.0)
        top = round((new_h - image_size) / 2.0)
        box = (left, top, left + image_size, top + image_size)
        crop = resized.crop(box).convert("RGB")
    else:
        raise ValueError(f"unknown resize_mode {resize_mode!r}")
    # ToTensor: uint8 HWC -> float32 CHW / 255; Normalize: (x - mean) / std, all in float32.
    # Made contiguous CHW first: the same element-wise float32 operations (bit-identical),
    # but each channel's mean/std then applies over one long run instead of a stride-3
    # walk, which made this the costliest step of ingest after the model itself.
    out = np.ascontiguousarray(np.asarray(crop, dtype=np.float32).transpose(2, 0, 1))
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
    resize_mode: str = "shortest",
    interpolation: str = "bicubic",
) -> tuple[PixelTensor, ImageInfo]:
    """``decode_image`` + ``preprocess``: bytes -> (float32 [3,S,S], original metadata)."""
    decoded = decode_image(data, max_pixels=max_pixels, draft_size=image_size if draft else None)
    pixels = preprocess(
        decoded.image,
        image_size,
        mean,
        std,
        resize_mode=resize_mode,
        interpolation=interpolation,
    )
    return pixels, decoded.info
