"""A service-mode gateway starts while clip-server is still down, and says so."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import EncoderMode, Settings
from clipsearch.encoder.service import START_HINT, describe_unreachable
from tests.encoder.onnx_fixtures import build_model_dir
from tests.service.conftest import free_port


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("down") / "m", dim=16, seq=77, seed=5)


def test_gateway_starts_with_the_encoder_down(tmp_path: Path, model_dir: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
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


def test_a_missing_encoder_service_is_named_in_readyz_and_the_log(
    tmp_path: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Compose without an encoder service: its name does not resolve on the network.
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        encoder_mode=EncoderMode.service,
        encoder_url="http://clip-server.invalid:51001",
        encoder_timeout_s=2.0,
        encoder_start_period_s=0.3,
        model_path=model_dir,
    )
    caplog.set_level(logging.INFO, logger="clipsearch.encoder.service")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        encoder_check = ready.json()["error"]["details"]["encoder"]
        assert "'clip-server.invalid' does not resolve" in encoder_check
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(r.levelno == logging.ERROR for r in caplog.records):
                break
            time.sleep(0.1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("does not resolve" in m and START_HINT in m for m in warnings), warnings
    assert errors, "no error once the start period had passed"
    assert "still not ready after" in errors[0]
    assert "docker-compose.cpu.yml" in errors[0]


def test_describe_unreachable_tells_a_refused_connection_from_a_bad_name() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    assert "does not resolve" not in describe_unreachable("http://127.0.0.1:1", refused)
    bad_name = httpx.ConnectError("[Errno -2] Name or service not known")
    bad_name.__cause__ = socket.gaierror(-2, "Name or service not known")
    text = describe_unreachable("http://clip-server:51001", bad_name)
    assert text == (
        "clip-server at http://clip-server:51001 unreachable: the name 'clip-server' does not "
        "resolve"
    )
