"""Kill clip-server during an ingest job: the job must finish after the restart, no item lost.

The ingest pipeline (issue 5) owns the retry policy; this test holds it to the service-mode
contract: an *unavailable* encoder is waited out, not blamed on the items.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import EncoderMode, Settings
from tests.service.conftest import MODEL_NAME, ClipServer, crash
from tests.service.pictures import encoded, photo

pytestmark = pytest.mark.encoder_venv

N_IMAGES = 120


def job(client: TestClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", params={"limit": 1000}).json()
    return body


@pytest.mark.xfail(
    strict=True,
    reason="jobs/pipeline.py fails the items of a batch whose encode raised EncoderUnavailable "
    "instead of waiting for the encoder and retrying them (issue 5/6 hand-off)",
)
def test_job_survives_a_clip_server_crash(
    own_server: ClipServer,
    service_model: Path,
    tmp_path: Path,
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        encoder_mode=EncoderMode.service,
        encoder_url=own_server.url,
        model_name=MODEL_NAME,
        model_path=service_model,
        encoder_timeout_s=3.0,
        encoder_breaker_cooldown_s=2.0,
        encoder_batch_size=8,
    )
    pics = [encoded(photo(256, 224, seed=i), "JPEG", quality=90) for i in range(N_IMAGES)]
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(pics)]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/v1/ingest", files=files)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        deadline = time.monotonic() + 120
        while job(client, job_id)["counts"]["stored"] == 0:
            assert time.monotonic() < deadline, "job stored nothing"
            time.sleep(0.05)
        crash(own_server)
        time.sleep(5)  # the pipeline meets the outage
        assert job(client, job_id)["status"] in ("queued", "running")
        own_server.start()

        deadline = time.monotonic() + 180
        while (body := job(client, job_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, body["counts"]
            time.sleep(0.2)
    assert body["counts"]["failed"] == 0, [i for i in body["items"] if i["status"] == "failed"][:3]
    assert body["counts"]["stored"] == N_IMAGES
    assert body["status"] == "done"
