"""Job life-cycle details through the real app: copies of a picture inside one job, spool
clean-up on cancel and at start-up, and ingest encoder calls showing in /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.store.blobs import blob_id_of
from tests.helpers import noise
from tests.jobs.test_api import wait_done


class FaultyBlobs:
    """The real blob store with two faults a disk can have: the first ``put`` of chosen
    ids fails, and every ``put`` can be held until ``gate`` opens (a slow disk)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_once: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def exists(self, blob_id: str) -> bool:
        return bool(self.inner.exists(blob_id))

    def put(self, blob_id: str, data: bytes, content_type: str, image: Any = None) -> None:
        self.entered.set()
        self.gate.wait(60)
        if blob_id in self.fail_once:
            self.fail_once.discard(blob_id)
            raise OSError(28, "No space left on device")
        self.inner.put(blob_id, data, content_type, image)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _client(settings: Settings, encoder: Any, store: Any, blobs: Any) -> TestClient:
    return TestClient(create_app(settings, encoder=encoder, store=store, blobs=blobs))


@pytest.fixture
def faulty(blobs: Any) -> Iterator[FaultyBlobs]:
    fb = FaultyBlobs(blobs)
    yield fb
    fb.gate.set()  # never leave a pipeline thread blocked after the test


def test_copy_is_tried_when_its_first_copy_fails(
    settings: Settings, encoder: Any, store: Any, faulty: FaultyBlobs
) -> None:
    a, b = noise(501), noise(502)
    broken = noise(503)[:70]  # truncated PNG: fails to decode, every time
    faulty.fail_once = {blob_id_of(a)}
    names = ["a1.png", "b.png", "a2.png", "a3.png", "x1.png", "x2.png"]
    datas = [a, b, a, a, broken, broken]
    with _client(settings, encoder, store, faulty) as client:
        files = [("files", (n, d, "image/png")) for n, d in zip(names, datas, strict=True)]
        body = wait_done(client, client.post("/v1/ingest", files=files).json()["job_id"])
    items = {i["source"]: i for i in body["items"]}
    # a1 hit the disk fault; a2 was not written off as its duplicate but stored, a3 is one.
    assert items["a1.png"]["status"] == "failed"
    assert "No space left" in items["a1.png"]["error"]
    assert items["a2.png"]["status"] == "stored"
    assert items["a3.png"]["status"] == "duplicate"
    assert items["a3.png"]["id"] == items["a2.png"]["id"] == blob_id_of(a)
    # A copy of a bad file fails on its own account, not as a "duplicate" of a failure.
    assert [items[n]["status"] for n in ("x1.png", "x2.png")] == ["failed", "failed"]
    assert body["counts"] == {"total": 6, "stored": 2, "updated": 0, "duplicate": 1,
                              "failed": 3, "pending": 0}  # fmt: skip
    assert store.group_info(body["collection"]).counts["images"] == 2


def test_cancel_removes_spooled_uploads(
    settings: Settings, encoder: Any, store: Any, faulty: FaultyBlobs
) -> None:
    faulty.gate.clear()  # the first write blocks: the job is surely running when cancelled
    # One job at a time, so the second one is surely still queued when cancelled.
    settings = settings.model_copy(update={"ingest_concurrent_jobs": 1})
    files = [("files", (f"c{i}.png", noise(600 + i), "image/png")) for i in range(40)]
    more = [("files", (f"d{i}.png", noise(700 + i), "image/png")) for i in range(5)]
    with _client(settings, encoder, store, faulty) as client:
        manager = client.app.state.clipsearch.jobs  # type: ignore[attr-defined]
        try:  # a failed check must not leave writes held: shutdown would wait on them
            running = client.post("/v1/ingest", files=files).json()["job_id"]
            queued = client.post("/v1/ingest", files=more).json()["job_id"]
            assert faulty.entered.wait(60), "the job never reached its first write"
            assert running in manager._running, "the first job is not running"
            assert any(manager.spool_dir(running).iterdir())  # uploads still to do are there
            assert any(manager.spool_dir(queued).iterdir())

            # A queued job's uploads go at once; a running job's once its worker stopped.
            assert client.delete(f"/v1/jobs/{queued}").json()["status"] == "cancelled"
            assert not manager.spool_dir(queued).exists()
            assert client.delete(f"/v1/jobs/{running}").json()["status"] == "cancelled"
            deadline = time.monotonic() + 30
            while manager.spool_dir(running).exists():
                assert time.monotonic() < deadline, "cancelled job's worker did not stop"
                time.sleep(0.05)
        finally:
            faulty.gate.set()
        assert client.get(f"/v1/jobs/{running}").json()["status"] == "cancelled"


def test_start_sweeps_spool_of_finished_jobs(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    stray = settings.data_dir / "spool" / "0123456789abcdef"  # e.g. a half-received upload
    stray.mkdir(parents=True)
    (stray / "000000").write_bytes(noise(1))
    with _client(settings, encoder, store, blobs):
        assert not stray.exists()


def test_ingest_encodes_show_in_metrics(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    n = 24
    files = [("files", (f"m{i}.png", noise(800 + i), "image/png")) for i in range(n)]
    with _client(settings, encoder, store, blobs) as client:
        body = wait_done(client, client.post("/v1/ingest", files=files).json()["job_id"])
        assert body["counts"]["stored"] == n
        text = client.get("/metrics").text
    images = _sample(text, 'clipsearch_encoder_batch_size_sum{kind="image"}')
    calls = _sample(text, 'clipsearch_encoder_duration_seconds_count{kind="image",outcome="ok"}')
    assert images == n  # every ingested picture went through the measured encoder
    assert 1 <= calls <= n


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text[:2000]}")
