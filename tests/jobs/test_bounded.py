"""Jobs never block each other: a FIFO swapped in after submit fails its item at once, a
job stuck on a slow host is stopped by its time limit while another job runs beside it,
URL timeouts count from the connection (a per-host cap queues the rest), and finished jobs
are pruned after the retention. Real loopback servers, real FIFOs, the real app."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.jobs.fetch import Fetcher
from clipsearch.jobs.paths import PathRefused, read_checked
from clipsearch.jobs.store import NewItem
from tests.helpers import noise
from tests.jobs.test_api import wait_done

PNG = noise(4242)


class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.5
    active = 0
    most = 0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.most = max(cls.most, cls.active)
        try:
            time.sleep(float(self.path.rsplit("/", 1)[-1].split("-")[0]) if "/hang/" in self.path
                       else cls.delay_s)  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        finally:
            with cls.lock:
                cls.active -= 1


@pytest.fixture
def slow_host() -> Iterator[str]:
    _Slow.active = _Slow.most = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "a.png"
    os.mkfifo(fifo)  # no writer: a plain open() would wait forever
    started = time.monotonic()
    with pytest.raises(PathRefused, match="not a regular file"):
        read_checked(fifo, [tmp_path], 1024)
    assert time.monotonic() - started < 1


def test_url_timeouts_count_from_the_connection(slow_host: str) -> None:
    # 12 URLs to one host answering in 0.5 s, 1.5 s each allowed, 3 at a time to the host:
    # the last ones wait ~1.5 s for a slot, which must not count against their 1.5 s.
    async def go() -> list[Any]:
        fetcher = Fetcher(
            allow_networks=["127.0.0.1/32"], timeout_s=1.5, max_connections=8, per_host=3
        )
        try:
            urls = [f"{slow_host}/img{i}.png" for i in range(12)]
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls), return_exceptions=True)
        finally:
            await fetcher.aclose()

    got = asyncio.run(go())
    assert [type(g).__name__ for g in got] == ["Fetched"] * 12
    assert _Slow.most <= 3  # the per-host cap held


def _portal(client: TestClient) -> BlockingPortal:
    assert client.portal is not None  # inside the client's `with`
    return client.portal


def _client(settings: Settings, encoder: Any, store: Any, blobs: Any) -> TestClient:
    return TestClient(create_app(settings, encoder=encoder, store=store, blobs=blobs))


def test_a_stuck_job_neither_blocks_another_nor_runs_forever(
    settings: Settings, encoder: Any, store: Any, blobs: Any, slow_host: str, tmp_path: Path
) -> None:
    cfg = settings.model_copy(
        update={
            "ingest_concurrent_jobs": 2,
            "ingest_job_timeout_s": 3.0,
            "fetch_timeout_s": 60.0,
            "fetch_allow_networks": ["127.0.0.1/32"],
            "ingest_roots": [tmp_path],
        }
    )
    fifo = tmp_path / "swapped.png"
    with _client(cfg, encoder, store, blobs) as client:
        manager = client.app.state.clipsearch.jobs  # type: ignore[attr-defined]
        # A job whose URL answers after 30 s: held by its host, stopped by its time limit.
        stuck, _ = _portal(client).call(
            manager.submit, "default", [NewItem(f"{slow_host}/hang/30-a.png", "url")]
        )
        # Submitted as a file, then swapped for a FIFO (submit checks; this is after it).
        os.mkfifo(fifo)
        swapped, _ = _portal(client).call(manager.submit, "default", [NewItem(str(fifo), "path")])
        files = [("files", (f"f{i}.png", noise(9000 + i), "image/png")) for i in range(6)]
        started = time.monotonic()
        fast = client.post("/v1/ingest", files=files).json()["job_id"]

        body = wait_done(client, swapped.id, timeout=60)
        assert body["status"] == "failed"
        assert "not a regular file" in body["items"][0]["error"]
        body = wait_done(client, fast, timeout=60)
        assert body["counts"]["stored"] == 6
        assert time.monotonic() - started < 20  # not behind the stuck job's 30 s

        body = wait_done(client, stuck.id, timeout=60)
        assert body["status"] == "failed"
        assert body["items"][0]["error"] == "job time limit of 3 s exceeded"
        assert body["error"] == "job time limit exceeded"


def test_finished_jobs_are_pruned_after_the_retention(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    cfg = settings.model_copy(update={"job_retention_s": 0.5})
    with _client(cfg, encoder, store, blobs) as client:
        manager = client.app.state.clipsearch.jobs  # type: ignore[attr-defined]
        files = [("files", ("p.png", noise(77), "image/png"))]
        job = client.post("/v1/ingest", files=files).json()["job_id"]
        assert wait_done(client, job)["status"] == "done"
        assert _portal(client).call(manager.prune) == 0  # not old enough yet
        time.sleep(0.6)
        assert _portal(client).call(manager.prune) == 1
        assert client.get(f"/v1/jobs/{job}").status_code == 404


def test_the_upload_spool_has_a_byte_quota(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    big = noise(31, size=(300, 300))  # ~270 KB of incompressible PNG
    cfg = settings.model_copy(update={"spool_max_bytes": int(len(big) * 2.5)})
    with _client(cfg, encoder, store, blobs) as client:
        spool = client.app.state.clipsearch.jobs.spool  # type: ignore[attr-defined]
        files = [("files", (f"b{i}.png", noise(40 + i, size=(300, 300)), "image/png"))
                 for i in range(3)]  # fmt: skip
        refused = client.post("/v1/ingest", files=files)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "spool_full"
        assert int(refused.headers["retry-after"]) >= 1
        assert spool.used == 0  # the partial upload's files went, and their bytes with them
        assert not any(spool.root.iterdir())
        # Two fit; once their job has read them the quota is free again.
        job = client.post("/v1/ingest", files=files[:2]).json()["job_id"]
        assert wait_done(client, job)["counts"]["stored"] == 2
        assert spool.used == 0


def test_event_streams_end_with_the_job_and_are_capped(
    settings: Settings, encoder: Any, store: Any, blobs: Any, slow_host: str
) -> None:
    cfg = settings.model_copy(
        update={
            "max_event_streams": 1,
            "event_stream_max_s": 1.0,
            "fetch_allow_networks": ["127.0.0.1/32"],
        }
    )
    with _client(cfg, encoder, store, blobs) as client:
        files = [("files", ("p.png", noise(78), "image/png"))]
        done = client.post("/v1/ingest", files=files).json()["job_id"]
        wait_done(client, done)
        assert "event: end" in client.get(f"/v1/jobs/{done}/events").text
        # A job that outlives the stream's lifetime: the stream says so and ends.
        manager = client.app.state.clipsearch.jobs  # type: ignore[attr-defined]
        slow, _ = _portal(client).call(
            manager.submit, "default", [NewItem(f"{slow_host}/hang/4-a.png", "url")]
        )
        started = time.monotonic()
        with client.stream("GET", f"/v1/jobs/{slow.id}/events", params={"interval": 0.1}) as r:
            # The one slot is taken: a second stream is refused at once.
            second = client.get(f"/v1/jobs/{slow.id}/events")
            assert second.status_code == 503
            assert second.json()["error"]["code"] == "overloaded"
            assert "retry-after" in second.headers
            text = "".join(r.iter_text())
        assert "event: expired" in text
        assert "event: end" not in text
        assert time.monotonic() - started < 3.5
        assert client.app.state.event_streams.open == 0  # type: ignore[attr-defined]
        wait_done(client, slow.id)
        assert "event: end" in client.get(f"/v1/jobs/{slow.id}/events").text
