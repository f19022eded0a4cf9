"""Real adapters for the job tests: the local ONNX encoder on a small model folder (the
tiny shapes model when present, else a random CLIP-shaped one), Milvus Lite in tmp, and the
file blob store the gateway builds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipsearch.api.app import build_blobs
from clipsearch.core.config import Settings
from clipsearch.encoder.local import LocalEncoder
from clipsearch.store.milvus import MilvusStore
from clipsearch.usecases.blobs import Blobs
from tests.encoder.onnx_fixtures import build_model_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "services" / "encoder" / "models" / "shapes"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (TINY / "visual.onnx").is_file() and (TINY / "textual.onnx").is_file():
        return TINY
    return build_model_dir(tmp_path_factory.mktemp("jobs-model") / "m", seq=None, seed=3)


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        model_path=model_dir,
        encoder_batch_size=16,
        ingest_upsert_batch_size=32,
        ingest_queue_items=16,
        index_type="FLAT",
    )


@pytest.fixture
def encoder(settings: Settings) -> Iterator[LocalEncoder]:
    enc = LocalEncoder.from_settings(settings)
    yield enc
    enc._executor.shutdown(wait=True)


@pytest.fixture
def store(settings: Settings) -> Iterator[MilvusStore]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    st = MilvusStore.from_settings(settings)
    yield st
    st.close()


def picture(seed: int, size: tuple[int, int] = (40, 36), fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def blobs(settings: Settings) -> Blobs:
    """The gateway's own blob wiring (file store + thumbnails), exactly as `serve` builds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return build_blobs(settings)
