"""A service-mode gateway starts while clip-server is still down, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import EncoderMode, Settings
from tests.encoder.onnx_fixtures import build_model_dir
from tests.helpers import free_port


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("down") / "m", dim=16, seq=77, seed=5)


def test_gateway_starts_with_the_encoder_down(tmp_path: Path, model_dir: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        encoder_mode=EncoderMode.service,
        encoder_url=f"http://127.0.0.1:{free_port()}",  # nothing listens
        encoder_timeout_s=2.0,
        model_path=model_dir,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["error"]["details"]
        assert checks["store"] == "ok"
        assert "unreachable" in checks["encoder"]
        r = client.post("/v1/texts", json={"texts": [{"text": "a red square"}]})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "encoder_unavailable"
        assert int(r.headers["Retry-After"]) >= 1
