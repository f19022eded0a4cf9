"""Crash safety with a real gateway process: ``kill -9`` three times in the middle of a
500-image job, each followed by a restart, and the job resumes by itself and ends ``done``;
every item reported stored is searchable and nothing is stored twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipsearch.bench.loopback import GatewayProcess
from tests.helpers import noise

pytestmark = pytest.mark.slow
N, DISTINCT = 500, 480
# Kill each time at least this many items are stored: well under way, far from the end, so
# every kill lands mid-job whatever the machine's speed (checked below: items still pending).
KILL_AT = N // 10
KILLS_AT = (KILL_AT, 3 * KILL_AT, 5 * KILL_AT)


class Gateway(GatewayProcess):
    """The real gateway in a child process (bench.loopback's), plus a ``kill -9``."""

    def __init__(self, data_dir: Path, model_dir: Path) -> None:
        self.log_path = data_dir.parent / "gateway.log"
        env = {
            "CLIPSEARCH_DATA_DIR": str(data_dir),
            "CLIPSEARCH_MODEL_PATH": str(model_dir),
            "CLIPSEARCH_INDEX_TYPE": "FLAT",
            # Small batches: many commits, so the kill surely lands mid-job.
            "CLIPSEARCH_ENCODER_BATCH_SIZE": "4",
            "CLIPSEARCH_INGEST_UPSERT_BATCH_SIZE": "8",
            "CLIPSEARCH_INGEST_QUEUE_ITEMS": "8",
        }
        super().__init__(env, self.log_path.open("ab"))

    def start(self, timeout_s: float = 120.0) -> None:
        try:
            super().start(timeout_s)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}: {self.log_path.read_text()[-3000:]}") from exc

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def gateway(tmp_path: Path, model_dir: Path) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "data", model_dir)
    yield gw
    gw.stop()
    gw.log.close()


def _kill_once_stored(gateway: Gateway, job_id: str, at: int, db_path: Path) -> None:
    """Wait until ``at`` items are stored, ``kill -9`` the gateway, check it died mid-job."""
    deadline = time.monotonic() + 300
    while True:  # wait until the job is well under way, then kill
        body = httpx.get(f"{gateway.url}/v1/jobs/{job_id}", params={"limit": 0}, timeout=30).json()
        if body["counts"]["stored"] >= at:
            break
        assert body["status"] in ("queued", "running"), body
        assert time.monotonic() < deadline, f"job too slow to reach {at} stored: {body}"
        time.sleep(0.01)
    gateway.kill9()

    db = sqlite3.connect(db_path)
    (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    pending, = db.execute(
        "SELECT count(*) FROM items WHERE job_id = ? AND status = 'pending'", (job_id,)
    ).fetchone()  # fmt: skip
    db.close()
    assert status == "running"
    assert pending > 0, "the kill landed after the job ended: not a crash test"


def test_kill_9_mid_job_resumes_and_ends_done(gateway: Gateway, tmp_path: Path) -> None:
    pics = [noise(1000 + i) for i in range(DISTINCT)]
    pics += pics[: N - DISTINCT]  # 20 repeats: duplicates, must not be stored twice
    gateway.start()
    files = [("files", (f"img{i:04d}.png", data, "image/png")) for i, data in enumerate(pics)]
    r = httpx.post(f"{gateway.url}/v1/ingest", files=files, timeout=120)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    for at in KILLS_AT:
        _kill_once_stored(gateway, job_id, at, tmp_path / "data" / "jobs.db")
        gateway.start()  # no resubmission: the job must resume by itself
    deadline = time.monotonic() + 300
    while True:
        body = httpx.get(
            f"{gateway.url}/v1/jobs/{job_id}", params={"limit": 1000}, timeout=30
        ).json()
        if body["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["status"] == "done", body["counts"]
    c = body["counts"]
    assert c["failed"] == 0
    assert c["pending"] == 0
    assert c["stored"] + c["duplicate"] == N
    assert c["stored"] == DISTINCT  # each distinct picture reported stored exactly once

    stats = httpx.get(f"{gateway.url}/v1/stats", timeout=30).json()
    assert _image_count(stats, body["collection"]) == DISTINCT  # none stored twice

    stored = [i["id"] for i in body["items"] if i["status"] == "stored"]
    assert len(set(stored)) == DISTINCT
    for start in range(0, len(stored), 32):  # every stored item is searchable
        ids = stored[start : start + 32]
        res = httpx.post(
            f"{gateway.url}/v1/search/batch",
            json={"queries": [{"image_id": i} for i in ids], "target": "images", "top_k": 1},
            timeout=60,
        )
        assert res.status_code == 200, res.text
        assert [r["hits"][0]["id"] for r in res.json()["results"]] == ids


def _image_count(stats: dict[str, Any], collection: str) -> int:
    groups = stats.get("collections", stats)
    if isinstance(groups, dict):
        return int(groups[collection]["counts"]["images"])
    return int(next(g for g in groups if g["name"] == collection)["counts"]["images"])
