"""Service mode with clip-server's multilingual (M-CLIP) names: accepted, the dim taken from
the server's answer (never from a table), pictures shrunk to the model's image size."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from clipsearch.core.config import Settings
from clipsearch.encoder import catalog
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.service import PROBE_TEXT, ServiceEncoder
from tests.encoder.layout_fixtures import build_immich_dir
from tests.service.stub_server import StubServer, encode_reply


@pytest.mark.parametrize(
    ("name", "served_dim", "image_size"),
    [
        ("M-CLIP/XLM-Roberta-Large-Vit-B-16Plus", 640, 240),
        ("M-CLIP/XLM-Roberta-Large-Vit-L-14", 768, 224),
        # The server's answer wins over what the catalog says the model's dim is.
        ("M-CLIP/XLM-Roberta-Large-Vit-B-32", 24, 224),
        ("M-CLIP/LABSE-Vit-L-14", 768, 224),
    ],
)
def test_mclip_names_take_the_dim_from_the_server(
    tmp_path: Path, name: str, served_dim: int, image_size: int
) -> None:
    def script(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return encode_reply(payload, dim=served_dim)

    stub = StubServer(script)
    with stub.running():
        settings = Settings(
            _env_file=None,
            data_dir=tmp_path,
            encoder_mode="service",
            encoder_url=stub.url,
            model_name=name,
        )
        enc = ServiceEncoder.from_settings(settings)
        assert enc.dim == served_dim
        # One probe encode taught it: one request, one text.
        assert [r["data"] for r in stub.requests] == [[{"text": PROBE_TEXT}]]
        assert enc.fingerprint == f"service:{name}:{served_dim}"
        assert enc.image_size == image_size
        vecs = asyncio.run(enc.encode_texts(["红色的圆形", "a red circle"]))
        assert vecs.shape == (2, served_dim)
        asyncio.run(enc.close())
    entry = catalog.lookup(name)
    assert entry is not None
    assert entry.modes == (catalog.SERVICE,)


def test_immich_layout_folder_is_refused_in_service_mode(tmp_path: Path) -> None:
    folder = build_immich_dir(tmp_path / "m", "mclip")
    with pytest.raises(EncoderError, match="ENCODER_MODE=local"):
        ServiceEncoder("http://127.0.0.1:9", model_name="x", model_path=folder)
