"""Shared fixtures: random CLIP-shaped model folders and small generated images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.encoder.encoder_venv import encoder_python  # noqa: F401  (fixture)
from tests.encoder.onnx_fixtures import build_model_dir
from tests.helpers import noise


@pytest.fixture(scope="session")
def dynamic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dynamic text length, 32 px images, 16-d, no clipsearch.json."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "dynamic", seq=None, seed=0)


@pytest.fixture(scope="session")
def fixed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Text length fixed at 77 in the graph, like clip-server's published models."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "fixed", seq=77, seed=10)


def png_bytes(seed: int) -> bytes:
    """The encoder tests' picture: 48 x 40 noise."""
    return noise(seed, (48, 40))
