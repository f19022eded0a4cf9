"""Kill clip-server during an ingest job: the job must finish after the restart, no item lost.

The ingest pipeline owns the retry policy (:mod:`clipsearch.jobs.outage`); this test holds
it to its service-mode contract: an *unavailable* encoder is waited out, not
blamed on the items; searches meanwhile fail fast with 503; once clip-server is back the
job resumes within 30 s and ends ``done`` with every picture stored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from tests.helpers import encoded, photo
from tests.service.conftest import ClipServer, crash, service_settings

pytestmark = pytest.mark.encoder_venv

N_IMAGES = 120
TIMEOUT_S = 3.0
RECOVERY_S = 30.0


def job(client: TestClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", params={"limit": 1000}).json()
    return body


def test_job_survives_a_clip_server_crash(
    own_server: ClipServer,
    service_model: Path,
    tmp_path: Path,
) -> None:
    settings = service_settings(
        tmp_path,
        own_server.url,
        service_model,
        encoder_timeout_s=TIMEOUT_S,
        encoder_breaker_cooldown_s=2.0,
        encoder_batch_size=8,
    )
    pics = [encoded(photo(256, 224, seed=i), "JPEG", quality=90) for i in range(N_IMAGES)]
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(pics)]
    search = {"query": "a photo", "top_k": 3}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/v1/ingest", files=files)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        deadline = time.monotonic() + 120
        while job(client, job_id)["counts"]["stored"] == 0:
            assert time.monotonic() < deadline, "job stored nothing"
            time.sleep(0.05)
        crash(own_server)
        at_crash = job(client, job_id)["counts"]
        assert at_crash["pending"] > 0, at_crash  # the kill landed mid-job

        # Searches during the outage: 503 within the encoder timeout, never a hang.
        for _ in range(3):
            started = time.monotonic()
            r = client.post("/v1/search/text", json=search)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "encoder_unavailable"
            assert time.monotonic() - started < TIMEOUT_S + 1.0
        time.sleep(3)  # the pipeline meets the outage and waits
        during = job(client, job_id)
        assert during["status"] == "running"
        assert (during["error"] or "").startswith("waiting for the encoder"), during["error"]
        assert during["counts"]["failed"] == 0
        assert during["counts"]["pending"] > 0
        stored_before = during["counts"]["stored"]

        own_server.start()  # same ports; returns once the server answers
        back = time.monotonic()
        while job(client, job_id)["counts"]["stored"] == stored_before:
            assert time.monotonic() - back < RECOVERY_S, "no progress 30 s after the restart"
            time.sleep(0.2)
        recovery = time.monotonic() - back

        deadline = time.monotonic() + 180
        while (body := job(client, job_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, body["counts"]
            time.sleep(0.2)
        assert client.post("/v1/search/text", json=search).status_code == 200
    assert recovery <= RECOVERY_S, recovery
    assert body["counts"]["failed"] == 0, [i for i in body["items"] if i["status"] == "failed"][:3]
    assert body["counts"]["stored"] == N_IMAGES
    assert body["status"] == "done"
    assert body["error"] is None
