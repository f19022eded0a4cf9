"""clip-server dies and comes back: the gateway fails fast with 503 and recovers by itself.

Uses its own clip-server (the session one stays up for the other tests) and the real app
over Milvus Lite, in service mode.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from tests.service.conftest import ClipServer, crash, service_settings

pytestmark = pytest.mark.encoder_venv

TIMEOUT_S = 3.0
COOLDOWN_S = 2.0


def test_outage_gives_503_fast_and_recovers_after_restart(
    own_server: ClipServer, service_model: Path, tmp_path: Path
) -> None:
    settings = service_settings(
        tmp_path,
        own_server.url,
        service_model,
        encoder_timeout_s=TIMEOUT_S,
        encoder_retries=2,
        encoder_backoff_s=0.1,
        encoder_breaker_threshold=3,
        encoder_breaker_cooldown_s=COOLDOWN_S,
    )
    search = {"query": "a red square", "target": "texts", "top_k": 2}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/v1/texts", json={"texts": [{"text": "a red square"}, {"text": "sky"}]})
        assert r.status_code == 200, r.text
        assert client.post("/v1/search/text", json=search).status_code == 200
        assert client.get("/readyz").status_code == 200

        crash(own_server)

        # Every request fails within the timeout, as 503 with Retry-After, until the
        # breaker opens; then it fails at once.
        for _ in range(5):
            start = time.monotonic()
            r = client.post("/v1/search/text", json=search)
            elapsed = time.monotonic() - start
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "encoder_unavailable"
            assert elapsed < TIMEOUT_S + 1.0
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["details"]["encoder"].startswith("error")

        own_server.start()  # same ports
        back = time.monotonic()
        while True:
            r = client.post("/v1/search/text", json=search)
            if r.status_code == 200:
                break
            assert time.monotonic() - back < 30, f"no recovery in 30 s: {r.text}"
            time.sleep(0.5)
        recovery = time.monotonic() - back
        assert r.json()["hits"][0]["text"] == "a red square"
        assert client.get("/readyz").status_code == 200
    # The breaker's cooldown bounds the recovery once the server answers again.
    assert recovery <= COOLDOWN_S + TIMEOUT_S + 1.0, recovery
