"""Our Pillow+numpy preprocessing gives clip-server 0.8.2's pixel tensors.

clip-server's own transform runs in the encoder venv (``clip_server_preprocess.py``) on the
same files. Measured on these fixtures: every image without EXIF rotation or 16-bit samples
is bit-identical (max |diff| = 0). Draft mode on the 4000x3000 JPEG: max |diff| 0.030,
mean 0.0026 (normalised units; 0.030 is ~2/255 of a pixel value).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from clipsearch.encoder.preprocess import decode_image, load_and_preprocess
from tests.encoder.image_fixtures import make_images

pytestmark = pytest.mark.encoder_venv

SCRIPT = Path(__file__).with_name("clip_server_preprocess.py")
SIZE = 224
MAX_PIXELS = 40_000_000
EXACT = [
    "rgb_jpeg", "large_jpeg", "rgba_png", "palette_png", "gray_png", "gray_alpha_png",
    "cmyk_jpeg", "tiny_png", "webp", "gif", "bmp", "tiff", "bilevel_png",
]  # fmt: skip


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("parity")
    found = make_images(folder)
    # What our decoder sees for the EXIF and 16-bit files, saved losslessly as plain 8-bit
    # upright PNGs: clip-server given these must produce exactly our tensors.
    with Image.open(found["exif_jpeg"]) as img:
        upright = ImageOps.exif_transpose(img)
        upright.save(folder / "exif_upright.png")
    found["exif_upright"] = folder / "exif_upright.png"
    decoded = decode_image(found["gray16_png"].read_bytes(), max_pixels=MAX_PIXELS)
    decoded.image.save(folder / "gray16_as_8bit.png")
    found["gray16_as_8bit"] = folder / "gray16_as_8bit.png"
    return found


@pytest.fixture(scope="module")
def server_tensors(
    images: dict[str, Path], encoder_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """clip-server's tensors for every fixture, from one subprocess in the encoder venv."""
    out = tmp_path_factory.mktemp("server") / "tensors.npz"
    names = list(images)
    proc = subprocess.run(
        [str(encoder_python), str(SCRIPT), str(out), *(str(images[n]) for n in names)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as npz:
        errors = {names[int(k[6:])]: str(npz[k]) for k in npz.files if k.startswith("error_")}
        assert not errors, f"clip-server failed on: {errors}"
        return {names[int(k)]: npz[k] for k in npz.files}


def ours(path: Path, *, draft: bool = False) -> np.ndarray:
    tensor, _info = load_and_preprocess(path.read_bytes(), SIZE, MAX_PIXELS, draft=draft)
    return tensor


@pytest.mark.parametrize("name", EXACT)
def test_bit_identical_to_clip_server(
    name: str, images: dict[str, Path], server_tensors: dict[str, np.ndarray]
) -> None:
    mine = ours(images[name])
    theirs = server_tensors[name]
    assert mine.shape == theirs.shape == (3, SIZE, SIZE)
    assert mine.dtype == np.float32
    diff = float(np.abs(mine - theirs).max())
    assert diff <= 1e-6, f"{name}: max |diff| {diff}"


def test_draft_mode_difference_is_small(
    images: dict[str, Path], server_tensors: dict[str, np.ndarray]
) -> None:
    data = images["large_jpeg"].read_bytes()
    decoded = decode_image(data, max_pixels=MAX_PIXELS, draft_size=SIZE)
    # Draft really was used (4000x3000 decoded at 1/4), never below 2x the model input.
    assert decoded.image.size == (1000, 750)
    assert decoded.info[:2] == (4000, 3000)
    diff = np.abs(ours(images["large_jpeg"], draft=True) - server_tensors["large_jpeg"])
    print(f"draft mode vs clip-server: max |diff| {diff.max():.4f}, mean {diff.mean():.5f}")
    assert 0 < float(diff.max()) < 0.08
    assert float(diff.mean()) < 0.006
    mine = ours(images["large_jpeg"], draft=True).ravel()
    theirs = server_tensors["large_jpeg"].ravel()
    cosine = float(mine @ theirs / (np.linalg.norm(mine) * np.linalg.norm(theirs)))
    assert cosine > 0.9999


def test_exif_rotation_is_applied_where_clip_server_ignores_it(
    images: dict[str, Path], server_tensors: dict[str, np.ndarray]
) -> None:
    mine = ours(images["exif_jpeg"])
    # Equal to clip-server on the upright picture ...
    assert float(np.abs(mine - server_tensors["exif_upright"]).max()) <= 1e-6
    # ... and not to clip-server on the raw bytes, which it embeds on its side.
    assert float(np.abs(mine - server_tensors["exif_jpeg"]).max()) > 0.5
    assert decode_image(images["exif_jpeg"].read_bytes(), max_pixels=MAX_PIXELS).server_differs


def test_16bit_grayscale_is_rescaled_where_clip_server_clamps(
    images: dict[str, Path], server_tensors: dict[str, np.ndarray]
) -> None:
    mine = ours(images["gray16_png"])
    assert float(np.abs(mine - server_tensors["gray16_as_8bit"]).max()) <= 1e-6
    # clip-server's convert("RGB") clamps 16-bit samples: a uniform white square.
    theirs = server_tensors["gray16_png"]
    assert float(theirs.std(axis=(1, 2)).max()) < 1e-6
    assert float(mine.std(axis=(1, 2)).min()) > 0.3
