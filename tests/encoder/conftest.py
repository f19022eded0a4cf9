"""Shared fixtures: random CLIP-shaped model folders and small generated images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.encoder.encoder_venv import encoder_python  # noqa: F401  (fixture)
from tests.encoder.onnx_fixtures import build_model_dir


@pytest.fixture(scope="session")
def dynamic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dynamic text length, 32 px images, 16-d, no clipsearch.json."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "dynamic", seq=None, seed=0)


@pytest.fixture(scope="session")
def fixed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Text length fixed at 77 in the graph, like clip-server's published models."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "fixed", seq=77, seed=10)


def png_bytes(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
