"""CLIPSEARCH_ENCODER_FALLBACK=local: the local encoder stands in only for the same model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.core.config import EncoderMode, Settings
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.resilience import EncoderUnavailable
from clipsearch.encoder.service import ServiceEncoder
from tests.encoder.onnx_fixtures import build_model_dir
from tests.helpers import free_port


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("fallback") / "m", dim=16, seq=77, seed=3)


def settings_for(tmp_path: Path, model_path: Path | None, **kw: Any) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        encoder_mode=EncoderMode.service,
        # Nothing listens there: clip-server is "down" for the whole test.
        encoder_url=f"http://127.0.0.1:{free_port()}",
        encoder_timeout_s=2.0,
        encoder_retries=0,
        model_path=model_path,
        **kw,
    )


def test_fallback_uses_local_encoder_when_fingerprints_match(
    tmp_path: Path, model_dir: Path
) -> None:
    settings = settings_for(tmp_path, model_dir, encoder_fallback="local")
    enc = ServiceEncoder.from_settings(settings)
    local = LocalEncoder.from_settings(settings)

    got = asyncio.run(enc.encode_texts(["a red square", "a blue circle"]))
    want = asyncio.run(local.encode_texts(["a red square", "a blue circle"]))

    np.testing.assert_allclose(got, want, atol=1e-6)
    assert enc.fingerprint == local.fingerprint
    asyncio.run(enc.close())
    asyncio.run(local.close())


def test_no_fallback_without_a_model_folder_to_compare(tmp_path: Path, model_dir: Path) -> None:
    # The local encoder would load model_dir, but the served model is only known by name:
    # the fingerprints cannot be shown equal, so the outage surfaces as unavailable.
    settings = settings_for(tmp_path, None, encoder_fallback="local", model_cache_dir=model_dir)
    enc = ServiceEncoder.from_settings(settings)
    enc._fallback_factory = lambda: LocalEncoder(
        ModelFiles(model_dir), model_name="ViT-B-32::openai"
    )
    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["a red square"]))
    asyncio.run(enc.close())


def test_no_fallback_configured_means_unavailable(tmp_path: Path, model_dir: Path) -> None:
    enc = ServiceEncoder.from_settings(settings_for(tmp_path, model_dir))
    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["a red square"]))
    asyncio.run(enc.close())
