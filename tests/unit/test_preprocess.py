"""Image decoding refusals, metadata and tensor layout (gateway venv only, no clip-server)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image
from tests.encoder.image_fixtures import EXIF_ORIENTATION
from tests.helpers import encoded as encode
from tests.helpers import jpeg_bytes, png_bomb, scene, solid

from clipsearch.encoder.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    decode_image,
    load_and_preprocess,
    preprocess,
    resized_size,
)
from clipsearch.encoder.protocol import ImageDecodeError

MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def bomb_100mp() -> bytes:
    return png_bomb(10_000, 10_000)


def test_truncated_jpeg_is_refused() -> None:
    data = jpeg_bytes(640, 480)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)


def test_text_file_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="not a supported image"):
        decode_image(b"hello, this is not an image\n" * 20, max_pixels=MAX_PIXELS)


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"", max_pixels=MAX_PIXELS)


def test_format_outside_the_allowlist_is_refused() -> None:
    # Pillow reads PPM and ICO fine; the gateway must not.
    ppm = solid((8, 8), 0, fmt="PPM")
    ico = solid((16, 16), 0, fmt="ICO")
    for data in (ppm, ico):
        with pytest.raises(ImageDecodeError, match="allowed formats"):
            decode_image(data, max_pixels=MAX_PIXELS)


def test_corrupt_png_body_is_refused() -> None:
    data = bytearray(encode(Image.fromarray(scene(64, 64, 0)), "PNG"))
    data[60:200] = b"\xff" * 140  # garble the compressed pixel data, keep the header
    with pytest.raises(ImageDecodeError):
        decode_image(bytes(data), max_pixels=MAX_PIXELS)


# Pillow warns about > 89 Mpx images in open(); our own limit then refuses them.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_png_bomb_is_refused_fast(bomb_100mp: bytes) -> None:
    assert len(bomb_100mp) < 1_000_000  # 100 megapixels in well under a megabyte
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="too large: 10000x10000"):
        load_and_preprocess(bomb_100mp, 224, MAX_PIXELS)
    assert time.perf_counter() - start < 0.5


def test_png_bomb_allocates_no_pixel_memory(bomb_100mp: bytes, tmp_path: object) -> None:
    # A fresh interpreter, so its peak RSS says what this decode cost: a full decode of the
    # bomb needs 100 MB for the pixels alone.
    code = textwrap.dedent(
        """
        import resource, sys
        from clipsearch.encoder.preprocess import decode_image
        from clipsearch.encoder.protocol import ImageDecodeError
        data = sys.stdin.buffer.read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decode_image(data, max_pixels=40_000_000)
        except ImageDecodeError:
            pass
        else:
            raise SystemExit("bomb accepted")
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=bomb_100mp, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    grown_kib = int(proc.stdout.decode().strip())
    assert grown_kib < 20 * 1024, f"decode grew peak RSS by {grown_kib} KiB"


def test_bomb_beyond_pillows_own_limit_is_refused() -> None:
    # 20000 x 20000 > 2 x Image.MAX_IMAGE_PIXELS: Pillow itself raises in open().
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(png_bomb(20_000, 20_000), max_pixels=10**10)


def test_max_pixels_boundary() -> None:
    data = solid((100, 50), 0)
    assert decode_image(data, max_pixels=5000).info[:2] == (100, 50)
    with pytest.raises(ImageDecodeError, match="limit 4999"):
        decode_image(data, max_pixels=4999)


def test_exif_orientation_rotates_and_swaps_metadata() -> None:
    arr = scene(300, 200, 3)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    decoded = decode_image(encode(Image.fromarray(arr), "PNG", exif=exif), max_pixels=MAX_PIXELS)
    assert decoded.info == (200, 300, "PNG")
    assert decoded.image.size == (200, 300)
    assert decoded.server_differs
    # Orientation 6 = the camera was turned 90 degrees clockwise: rotate back.
    np.testing.assert_array_equal(np.asarray(decoded.image), np.rot90(arr, k=-1))


def test_plain_image_keeps_mode_and_is_not_flagged() -> None:
    img = Image.fromarray(scene(64, 48, 1)).quantize(16)
    decoded = decode_image(encode(img, "PNG"), max_pixels=MAX_PIXELS)
    assert decoded.image.mode == "P"  # RGB comes after the resize, as in clip-server
    assert not decoded.server_differs
    assert decoded.info == (64, 48, "PNG")


def test_16bit_samples_are_rescaled_to_8bit() -> None:
    arr = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(arr), "PNG"), max_pixels=MAX_PIXELS)
    assert decoded.image.mode == "L"
    assert np.asarray(decoded.image).tolist() == [[0, 1, 128, 255]]
    assert decoded.server_differs


def test_draft_keeps_at_least_twice_the_model_input() -> None:
    data = jpeg_bytes(2000, 1000)
    small = decode_image(data, max_pixels=MAX_PIXELS, draft_size=224)
    assert small.image.size == (1000, 500)  # 1/2: 1/4 would give 250 < 448
    assert small.info[:2] == (2000, 1000)
    full = decode_image(data, max_pixels=MAX_PIXELS)
    assert full.image.size == (2000, 1000)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    tensor, info = load_and_preprocess(buf.getvalue(), 32, MAX_PIXELS)
    assert info.format == "GIF"
    red = (1.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert tensor[0].mean() == pytest.approx(red, abs=1e-5)


def test_tensor_layout_and_normalisation() -> None:
    img = Image.new("RGB", (90, 60), (255, 0, 128))
    tensor = preprocess(img, 32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    assert tensor.shape == (3, 32, 32)
    assert tensor.dtype == np.float32
    assert tensor.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(tensor[:, 5, 5], [1.0, -2.0, (128 / 255 - 0.5) / 0.5], atol=1e-6)


def test_resized_size_truncates_the_long_side_like_torchvision() -> None:
    assert resized_size(640, 480, 224) == (298, 224)  # 224 * 640 / 480 = 298.67
    assert resized_size(10, 300, 224) == (224, 6720)
    assert resized_size(224, 224, 224) == (224, 224)
