"""Ingest API through the real app: real LocalEncoder, Milvus Lite, SQLite, blobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from tests.helpers import noise


@pytest.fixture
def client(settings: Settings, encoder: Any, store: Any, blobs: Any) -> Iterator[TestClient]:
    app = create_app(settings, encoder=encoder, store=store, blobs=blobs)
    with TestClient(app) as c:
        yield c


def wait_done(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", params={"limit": 1000}).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_upload_job_end_to_end(client: TestClient, store: Any, encoder: Any) -> None:
    pics = [noise(i) for i in range(40)]
    files = [("files", (f"p{i}.png", data, "image/png")) for i, data in enumerate(pics)]
    files.append(("files", ("dup.png", pics[0], "image/png")))  # same bytes twice
    files.append(("files", ("broken.png", pics[1][:60], "image/png")))  # truncated
    files.append(("files", ("notes.txt", b"hello, not an image", "text/plain")))
    captions = b"image_path,caption\np3.png,a red circle\n"
    files.append(("captions_file", ("captions.csv", captions, "text/csv")))
    r = client.post(
        "/v1/ingest",
        files=files,
        data={"metadata": json.dumps({"batch": "t1"})},
        headers={"Idempotency-Key": "job-1"},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    again = client.post("/v1/ingest", files=files[:1], headers={"Idempotency-Key": "job-1"})
    assert again.status_code == 200
    assert again.json()["job_id"] == job_id

    body = wait_done(client, job_id)
    assert body["status"] == "partial", body["items"][:3]
    assert body["counts"] == {"total": 43, "stored": 40, "updated": 0, "duplicate": 1,
                              "failed": 2, "pending": 0}  # fmt: skip
    by_source = {i["source"]: i for i in body["items"]}
    assert by_source["dup.png"]["status"] == "duplicate"
    assert by_source["broken.png"]["status"] == "failed"
    assert "unsupported format" in by_source["notes.txt"]["error"]
    # Stored means searchable: each picture finds itself first.
    stored = [i for i in body["items"] if i["status"] == "stored"]
    group = body["collection"]
    assert store.group_info(group).counts["images"] == 40
    rows = store.get(group, "images", [by_source["p3.png"]["id"]])
    assert rows[0]["caption"] == "a red circle"
    assert rows[0]["metadata"]["batch"] == "t1"
    vecs = np.stack([encoder.encode_pixels(encoder.preprocess_image(p)[None])[0] for p in pics[:5]])
    hits = store.search(group, "images", vecs, top_k=1)
    assert [h[0].id for h in hits] == [i["id"] for i in stored[:5]]
    # Spool files are gone once items are final.
    assert not list((Path(client.app.state.clipsearch.jobs.spool_root)).glob("**/0*"))  # type: ignore[attr-defined]

    # The same job again adds nothing.
    r2 = client.post("/v1/ingest", files=files[:40])
    second = wait_done(client, r2.json()["job_id"])
    assert second["status"] == "done"
    assert second["counts"]["duplicate"] == 40
    assert store.group_info(group).counts["images"] == 40

    listed = client.get("/v1/jobs", params={"status": "partial"}).json()["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    events = client.get(f"/v1/jobs/{job_id}/events").text
    assert "event: end" in events
    assert '"status": "partial"' in events


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {}}, 422, "no_items"),
        ({"json": {"urls": "not-a-list"}}, 422, "invalid_input"),
        ({"json": {"paths": ["/etc"]}}, 403, "forbidden"),
        ({"json": {"urls": ["http://x/a.png"], "collection": "bad name!"}}, 422, "invalid_input"),
        ({"content": b"raw", "headers": {"content-type": "text/plain"}}, 415,
         "unsupported_media_type"),
        ({"files": [("captions_file", ("c.csv", b"no,header\n", "text/csv")),
                    ("files", ("a.png", noise(1), "image/png"))]}, 422, "invalid_captions_file"),
        ({"content": b"--x\r\ngarbage", "headers": {"content-type": "multipart/form-data"}}, 422,
         "invalid_multipart"),
        ({"files": [("files", ("a.png", noise(1), "image/png"))],
          "data": {"metadata": "[1, 2]"}}, 422, "invalid_input"),
    ],
)  # fmt: skip
def test_bad_input_is_4xx_with_error_shape(
    client: TestClient, kwargs: dict[str, Any], status: int, code: str
) -> None:
    r = client.post("/v1/ingest", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert client.get("/v1/jobs").json()["jobs"] == []  # nothing half-written


def test_unknown_job_and_bad_query(client: TestClient) -> None:
    assert client.get("/v1/jobs/nope").json()["error"]["code"] == "job_not_found"
    assert client.delete("/v1/jobs/nope").status_code == 404
    assert client.get("/v1/jobs", params={"status": "weird"}).status_code == 422


def test_url_and_path_items(
    client: TestClient, settings: Settings, tmp_path: Path, store: Any
) -> None:
    # URL items fail (blocked target, refused before connecting) without stopping the job;
    # path items need an allowlisted root.
    root = tmp_path / "pics"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(noise(101))
    (root / "b.jpg").write_bytes(noise(102, fmt="JPEG"))
    settings.ingest_roots = [root]
    r = client.post(
        "/v1/ingest",
        json={"paths": [str(root)], "urls": ["http://169.254.169.254/latest/meta-data/",
                                              "ftp://example.com/x.png"],
              "captions": {"sub/a.png": "a blue square"}},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    body = wait_done(client, r.json()["job_id"])
    assert body["counts"]["stored"] == 2
    assert body["counts"]["failed"] == 2
    errors = [i["error"] for i in body["items"] if i["status"] == "failed"]
    assert all("blocked" in e for e in errors)
    outside = client.post("/v1/ingest", json={"paths": [str(tmp_path)]})
    assert outside.status_code == 422
    assert outside.json()["error"]["code"] == "path_refused"


def test_queue_full_gives_429(client: TestClient, settings: Settings) -> None:
    settings.ingest_max_pending_items = 3
    files = [("files", (f"q{i}.png", noise(200 + i), "image/png")) for i in range(5)]
    r = client.post("/v1/ingest", files=files)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["code"] == "too_many_requests"


def test_job_end_flushes_its_collection(settings: Settings, encoder: Any, blobs: Any) -> None:
    # Background flushing off: only the job runner's end-of-job flush can flush here.
    settings.milvus_flush_rows = 0
    settings.milvus_flush_idle_s = 0
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from clipsearch.store.milvus import MilvusStore

    store = MilvusStore.from_settings(settings)
    try:
        app = create_app(settings, encoder=encoder, store=store, blobs=blobs)
        with TestClient(app) as client:
            files = [("files", (f"f{i}.png", noise(300 + i), "image/png")) for i in range(12)]
            r = client.post("/v1/ingest", files=files)
            assert r.status_code == 202, r.text
            body = wait_done(client, r.json()["job_id"])
            assert body["counts"]["stored"] == 12
            name = store.collection(body["collection"], "images")
            assert store.flush_policy.flushes(name) >= 1
            assert store.flush_policy.pending(name) == 0
    finally:
        store.close()
