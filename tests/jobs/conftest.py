"""Real adapters for the job tests: the local ONNX encoder on a small model folder (the
tiny shapes model when present, else a random CLIP-shaped one), Milvus Lite in tmp, and the
file blob store the gateway builds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clipsearch.bootstrap import build_blobs
from clipsearch.core.config import Settings
from clipsearch.encoder.local import LocalEncoder
from clipsearch.store.milvus import MilvusStore
from clipsearch.usecases.blobs import Blobs
from tests.encoder.onnx_fixtures import build_model_dir
from tests.helpers import SHAPES_MODEL


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (SHAPES_MODEL / "visual.onnx").is_file() and (SHAPES_MODEL / "textual.onnx").is_file():
        return SHAPES_MODEL
    return build_model_dir(tmp_path_factory.mktemp("jobs-model") / "m", seq=None, seed=3)


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
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


@pytest.fixture
def blobs(settings: Settings) -> Blobs:
    """The gateway's own blob wiring (file store + thumbnails), exactly as `serve` builds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return build_blobs(settings)
