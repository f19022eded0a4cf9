"""What the gateway sends clip-server for an image: the original bytes, or a smaller re-encode.

clip-server resizes every image to the model input (e.g. 224 px on the shortest side), so
a 12-megapixel photo is mostly wasted bandwidth and server-side decode time. The gateway
decodes the image anyway (to validate it and refuse bombs); when the shortest side is more
than ``SHRINK_FACTOR`` times the model input, it resizes to exactly that factor and
re-encodes, which keeps enough pixels for the server's bicubic resize to give the same
vector (measured: cosine >= 0.9999, see tests/service/test_service_images.py).

It also re-encodes images whose EXIF orientation rotates them: the local encoder embeds the
upright picture and clip-server ignores EXIF, so forwarding the raw bytes would embed the
photo on its side in service mode only.
"""

from __future__ import annotations

import io
from typing import NamedTuple

from PIL import Image

from clipsearch.encoder.preprocess import decode_image, to_rgb

SHRINK_FACTOR = 2
# High quality keeps the re-encode error far below what the bicubic downscale averages out.
JPEG_QUALITY = 95
NEAREST_ONLY_MODES = frozenset({"P", "1"})
PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})


class WireImage(NamedTuple):
    """Bytes to send and whether they differ from the upload (for logs and tests)."""

    data: bytes
    reencoded: bool


def prepare_image(data: bytes, *, image_size: int, max_pixels: int) -> WireImage:
    """Validate ``data`` and return what clip-server should decode.

    Raises :class:`~clipsearch.encoder.protocol.ImageDecodeError` for unsupported, corrupt
    or oversized images, exactly as the local encoder would.
    """
    target = image_size * SHRINK_FACTOR
    # draft_size lets a big JPEG decode straight to >= target px: the same pixels the local
    # encoder starts from, and several times faster than a full decode.
    decoded = decode_image(data, max_pixels=max_pixels, draft_size=image_size)
    img = decoded.image
    with Image.open(io.BytesIO(data)) as raw:
        raw_size = raw.size
        # 0x0112 = EXIF Orientation; 1 (or absent) means the pixels are already upright.
        rotated = raw.getexif().get(0x0112, 1) not in (0, 1)
    # Pillow resizes palette and 1-bit images with nearest-neighbour, whose result depends
    # on the exact source grid: a two-step resize (here, then on the server) picks other
    # pixels (measured cosine 0.993). They compress well anyway: send them at full size.
    too_big = min(raw_size) > target and img.mode not in NEAREST_ONLY_MODES
    if not too_big and not rotated:
        return WireImage(data, reencoded=False)

    # Keep the file's mode: clip-server resizes in that mode (palette images nearest-
    # neighbour, RGBA premultiplied) and converts to RGB last, and so does the local encoder.
    if min(img.size) > target and img.mode not in NEAREST_ONLY_MODES:
        w, h = img.size
        scale = target / min(w, h)
        # Round the long side, but never let the short side drop below the target.
        if w <= h:
            new = (target, max(target, round(h * scale)))
        else:
            new = (max(target, round(w * scale)), target)
        img = img.resize(new, Image.Resampling.BICUBIC, reducing_gap=None)

    out = io.BytesIO()
    if decoded.info.format in ("JPEG", "MPO") and img.mode in ("RGB", "L", "CMYK"):
        img.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    elif img.mode in PNG_MODES:
        # Lossless for everything else: graphics, transparency and palettes survive as is.
        img.save(out, format="PNG", compress_level=1)
    else:
        # Modes PNG cannot hold (CMYK, YCbCr TIFFs): clip-server would end in RGB anyway.
        to_rgb(img).save(out, format="PNG", compress_level=1)
    if not rotated and out.tell() >= len(data):
        # A lossless re-encode of a well-compressed file (e.g. WebP) can be larger.
        return WireImage(data, reencoded=False)
    return WireImage(out.getvalue(), reencoded=True)
