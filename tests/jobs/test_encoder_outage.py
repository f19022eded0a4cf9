"""An encoder outage pauses an ingest job instead of failing its items.

The logic of :class:`~clipsearch.jobs.outage.OutageWait` with a fake encoder that is down
for a number of calls, then the same through the real app (local encoder behind a switch):
the job waits, says so in its ``error`` field, and ends ``done`` once the encoder is back.
The real clip-server version of this is tests/service/test_ingest_outage.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.encoder.protocol import Vectors
from clipsearch.encoder.resilience import EncoderUnavailable
from clipsearch.jobs.outage import EncoderGaveUp, OutageWait
from clipsearch.jobs.store import JobStore, NewItem
from tests.helpers import noise
from tests.jobs.test_api import wait_done


class DownFor:
    """A fake encoder: its first ``n`` calls (encodes and health probes alike) fail as an
    unreachable server would, every later one answers."""

    mode, model_name = "fake", "fake"

    def __init__(self, n: int) -> None:
        self.left = n
        self.calls = 0
        self.health_calls = 0

    def _gate(self) -> None:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise EncoderUnavailable("connection refused")

    async def encode_images(self, images: Sequence[bytes]) -> Vectors:
        self._gate()
        return np.ones((len(images), 4), dtype=np.float32)

    async def health(self) -> None:
        self.health_calls += 1
        self._gate()


def _wait(enc: Any, wait_s: float, notes: list[str | None]) -> OutageWait:
    async def note(text: str | None) -> None:
        notes.append(text)

    return OutageWait(enc, wait_s, note, min_poll_s=0.01, max_poll_s=0.05)


def test_outage_is_waited_out_and_the_call_retried() -> None:
    notes: list[str | None] = []
    enc = DownFor(5)  # the encode, then four failed health probes
    waiter = _wait(enc, 10.0, notes)
    out = asyncio.run(waiter.call(lambda: enc.encode_images([b"a", b"b"])))
    assert out.shape == (2, 4)
    assert enc.calls == 7  # 1 failed encode + 4 failed probes + 1 good probe + 1 retry
    assert waiter.outages == 1
    assert not waiter.waiting
    # The job's status told of the wait, then was cleared once the encoder answered.
    assert len(notes) == 2
    assert notes[0] is not None
    assert notes[0].startswith("waiting for the encoder")
    assert "connection refused" in notes[0]
    assert notes[1] is None


def test_failure_with_a_healthy_encoder_is_the_inputs() -> None:
    notes: list[str | None] = []
    enc = DownFor(1)  # only the encode fails; health answers at once
    waiter = _wait(enc, 10.0, notes)
    with pytest.raises(EncoderUnavailable):
        asyncio.run(waiter.call(lambda: enc.encode_images([b"poison"])))
    assert enc.health_calls == 1
    assert waiter.outages == 0
    assert notes == []  # never shown as waiting: the pipeline fails that item instead


def test_wait_is_bounded_and_later_calls_fail_at_once() -> None:
    notes: list[str | None] = []
    enc = DownFor(10**6)
    waiter = _wait(enc, 0.3, notes)
    start = time.monotonic()
    with pytest.raises(EncoderGaveUp, match=r"more than 0\.3 s"):
        asyncio.run(waiter.call(lambda: enc.encode_images([b"a"])))
    assert 0.3 <= time.monotonic() - start < 2.0
    # Still down: the next batch gets one try and one probe, not another full wait.
    probes = enc.health_calls
    start = time.monotonic()
    with pytest.raises(EncoderGaveUp):
        asyncio.run(waiter.call(lambda: enc.encode_images([b"b"])))
    assert time.monotonic() - start < 0.2
    assert enc.health_calls == probes + 1
    # Back again: the outage is over, calls go through.
    enc.left = 0
    assert asyncio.run(waiter.call(lambda: enc.encode_images([b"c"]))).shape == (1, 4)
    assert not waiter.waiting
    assert notes[-1] is None


class Switched:
    """The real local encoder behind an on/off switch (service-mode path: no pixel fast
    path, so the pipeline calls ``encode_images`` and ``encode_texts``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mode, self.model_name = inner.mode, inner.model_name
        self.down = True
        self.failed_calls = 0

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    @property
    def fingerprint(self) -> str:
        return str(self.inner.fingerprint)

    def _gate(self) -> None:
        if self.down:
            self.failed_calls += 1
            raise EncoderUnavailable("clip-server at http://127.0.0.1:9 unreachable")

    async def encode_images(self, images: Sequence[bytes]) -> Vectors:
        self._gate()
        out: Vectors = await self.inner.encode_images(images)
        return out

    async def encode_texts(self, texts: Sequence[str]) -> Vectors:
        self._gate()
        out: Vectors = await self.inner.encode_texts(texts)
        return out

    async def health(self) -> None:
        self._gate()

    async def close(self) -> None:
        return None


def _job(client: TestClient, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    return body


def test_job_pauses_while_the_encoder_is_down(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    switched = Switched(encoder)
    n = 20
    files = [("files", (f"o{i}.png", noise(700 + i), "image/png")) for i in range(n)]
    captions = {"captions": [f"picture {i}" for i in range(n)]}
    app = create_app(settings, encoder=switched, store=store, blobs=blobs)
    with TestClient(app) as client:
        job_id = client.post("/v1/ingest", files=files, data=captions).json()["job_id"]
        deadline = time.monotonic() + 30
        while not (_job(client, job_id)["error"] or "").startswith("waiting for the encoder"):
            assert time.monotonic() < deadline, _job(client, job_id)
            time.sleep(0.05)
        time.sleep(1.0)  # several probes fail meanwhile; nothing is failed for it
        body = _job(client, job_id)
        assert body["status"] == "running"
        assert body["counts"]["failed"] == 0
        assert body["counts"]["pending"] == n
        assert switched.failed_calls >= 2
        switched.down = False
        back = time.monotonic()
        done = wait_done(client, job_id)
    assert time.monotonic() - back < 15
    assert done["status"] == "done", done
    assert done["error"] is None
    assert done["counts"]["stored"] == n
    assert store.group_info(done["collection"]).counts["images"] == n


def test_job_fails_items_when_the_wait_runs_out(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    settings.ingest_encoder_wait_s = 0.5
    switched = Switched(encoder)
    files = [("files", (f"g{i}.png", noise(800 + i), "image/png")) for i in range(3)]
    with TestClient(create_app(settings, encoder=switched, store=store, blobs=blobs)) as client:
        done = wait_done(client, client.post("/v1/ingest", files=files).json()["job_id"])
    assert done["status"] == "failed"
    assert done["counts"]["failed"] == 3
    errors = {i["error"] for i in done["items"]}
    assert len(errors) == 1
    assert "CLIPSEARCH_INGEST_ENCODER_WAIT_S" in errors.pop()


def test_note_shows_on_active_jobs_only(tmp_path: Path) -> None:
    jobs = JobStore(tmp_path / "jobs.db")
    job, _ = jobs.create_job("default", [NewItem(source="a.png", kind="upload")])
    jobs.set_status(job.id, "running")
    jobs.set_note(job.id, "waiting for the encoder")
    assert _error(jobs, job.id) == "waiting for the encoder"
    # A restarted process resumes the job: a note left by the dead one is stale.
    jobs.set_status(job.id, "running")
    assert _error(jobs, job.id) is None
    jobs.set_status(job.id, "done")
    jobs.set_note(job.id, "late note")  # a finished job's error is its final word
    assert _error(jobs, job.id) is None
    jobs.close()


def _error(jobs: JobStore, job_id: str) -> str | None:
    got = jobs.get_job(job_id)
    assert got is not None
    return got.error
